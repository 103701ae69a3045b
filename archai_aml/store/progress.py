"""The progress bar of large blob transfers (folders): bytes and files, ``tqdm.auto``, can be turned off.

``progress`` is ``True`` (always shown), ``False`` (never) or ``None`` (shown on a terminal only, tqdm's own
rule). A transfer of one small file never shows a bar.

``tqdm.auto`` is imported when the first bar is made, not with the store: it pulls in ``asyncio``, ``ssl`` and
``email`` (49 modules), which every process opening an embedded store (each training job) paid at start.
"""

from __future__ import annotations

import threading
from types import TracebackType

#: A single file at least this large gets a bar too (folders always do).
LARGE_FILE_BYTES = 64 << 20


class TransferProgress:
    """Thread-safe counters behind one tqdm bar: ``add(n)`` bytes moved, ``file_done()`` one file finished."""

    def __init__(self, desc: str, total_bytes: int | None, files: int, progress: bool | None) -> None:
        """``total_bytes`` None: not known in advance (the bar counts bytes without a total)."""
        self.files = files
        self.done = 0
        self._lock = threading.Lock()
        show = progress is not False and (files > 1 or (total_bytes or 0) >= LARGE_FILE_BYTES)
        from tqdm.auto import tqdm

        self._bar = tqdm(
            total=total_bytes,
            desc=desc,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            disable=None if (show and progress is None) else not show,
            leave=False,
        )
        self._bar.set_postfix_str(f"0/{files} files", refresh=False)

    def add(self, nbytes: int) -> None:
        if nbytes:
            with self._lock:
                self._bar.update(nbytes)

    def file_done(self) -> None:
        with self._lock:
            self.done += 1
            self._bar.set_postfix_str(f"{self.done}/{self.files} files", refresh=False)
            self._bar.refresh()

    def hook(self) -> _BlobHook:
        """A ``progress_hook(current, total)`` for one blob of the Azure SDK (it reports running totals)."""
        return _BlobHook(self)

    def close(self) -> None:
        self._bar.close()

    def __enter__(self) -> TransferProgress:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class _BlobHook:
    def __init__(self, progress: TransferProgress) -> None:
        self._progress = progress
        self._seen = 0

    def __call__(self, current: int, total: int | None) -> None:
        self._progress.add(max(0, current - self._seen))
        self._seen = max(self._seen, current)
