"""The files side of the embedded store: blobs as files written atomically (temp file, then rename)."""

from __future__ import annotations

import hashlib
import logging
import os
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from archai_aml.errors import BlobExistsError
from archai_aml.store.base import BlobInfo
from archai_aml.store.embedded.fs import _CHUNK, EmbeddedBase, os_error
from archai_aml.store.parallel import run_parallel
from archai_aml.store.progress import TransferProgress
from archai_aml.store.rules import (
    blob_conflicts,
    check_key,
    conflict_error,
    matching,
    requested_blobs,
    safe_blob_path,
    upload_plan,
)

log = logging.getLogger("archai_aml.store.embedded")

T = TypeVar("T")


class EmbeddedBlobSide(EmbeddedBase):
    """Blobs under ``blobs/<container>/<partition>/<name>/`` (see :class:`~archai_aml.store.base.Store`)."""

    def _folder(self, partition: str, name: str | None = None) -> Path:
        """The blob folder of a partition or an entity, its keys checked (the key rule refuses '.' and '..',
        and the path is checked once more to stay in the container)."""
        check_key(partition, name)
        parts = [partition] if name is None else [partition, name]
        return safe_blob_path(self.blob_root, "/".join(parts))

    def _writable_folder(self, partition: str, name: str, what: str) -> Path:
        if self.read_only:
            raise self._read_only_error(f"{what} {partition}/{name}")
        return self._folder(partition, name)

    @staticmethod
    def _conflict(folder: Path, blob: str) -> tuple[str, str] | None:
        """(blob, other) when ``blob`` is the folder of an existing blob, or an existing blob is its folder."""
        target = folder / blob
        if target.is_dir():
            inner = next((p for p in sorted(target.rglob("*")) if p.is_file()), None)
            return (blob, inner.relative_to(folder).as_posix() if inner else blob + "/")
        parts = blob.split("/")
        for i in range(1, len(parts)):
            if (folder / "/".join(parts[:i])).is_file():
                return (blob, "/".join(parts[:i]))
        return None

    def _check_tree(self, partition: str, name: str, folder: Path, blobs: Sequence[str]) -> None:
        """:class:`BlobConflictError` before anything is written when a new blob and another one (new or
        stored) would be a file and a folder of the same name."""
        conflicts = blob_conflicts(blobs, [])
        conflicts += [c for c in (self._conflict(folder, b) for b in blobs) if c is not None]
        if conflicts:
            raise conflict_error(f"{partition}/{name}", conflicts)

    def _write_file(
        self,
        target: Path,
        write: Callable[[Any], None],
        *,
        overwrite: bool,
        where: tuple[str, str, Path, str],
    ) -> None:
        """Write a file atomically: into a temp file first, then rename (or link, to refuse an existing one).
        Whatever fails, the temp file is removed and the blob is either the old one or the new one."""
        partition, name, folder, blob = where
        tmp = self.tmp_dir / f"{uuid.uuid4().hex}.part"
        try:
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                with open(tmp, "wb") as f:
                    write(f)
                if overwrite:
                    os.replace(tmp, target)
                else:
                    os.link(tmp, target)  # atomic create-if-absent
            except (FileExistsError, NotADirectoryError, IsADirectoryError) as exc:
                if not overwrite and isinstance(exc, FileExistsError) and target.is_file():
                    raise BlobExistsError(f"blob {target} already exists (pass overwrite=True)") from None
                # a concurrent writer made a file where a folder goes (or the reverse)
                found = self._conflict(folder, blob) or (blob, blob)
                raise conflict_error(f"{partition}/{name}", [found]) from None
            except OSError as exc:
                raise os_error(f"writing blob {partition}/{name}/{blob} in {self.path}", exc) from None
        finally:
            try:
                tmp.unlink(missing_ok=True)
            except OSError:  # pragma: no cover - the folder went read-only meanwhile
                pass

    def upload_bytes(
        self, partition: str, name: str, blob_name: str, data: bytes, *, overwrite: bool = True
    ) -> str:
        folder = self._writable_folder(partition, name, "uploading to")
        target = safe_blob_path(folder, blob_name)
        self._check_tree(partition, name, folder, [blob_name])
        self._write_file(
            target, lambda f: f.write(data), overwrite=overwrite, where=(partition, name, folder, blob_name)
        )
        return f"{partition}/{name}/{blob_name}"

    def upload(
        self,
        partition: str,
        name: str,
        local_path: str | Path,
        *,
        blob_name: str | None = None,
        overwrite: bool = True,
        max_concurrency: int | None = None,
        progress: bool | None = None,
    ) -> list[str]:
        folder = self._writable_folder(partition, name, "uploading to")
        targets = [  # every name checked before anything is written
            (src, blob, safe_blob_path(folder, blob)) for src, blob in upload_plan(local_path, blob_name)
        ]
        self._check_tree(partition, name, folder, [blob for _, blob, _ in targets])
        sizes = sum(src.stat().st_size for src, _, _ in targets)
        show = self.progress if progress is None else progress

        with TransferProgress(f"upload {partition}/{name}", sizes, len(targets), show) as bar:

            def copy(item: tuple[Path, str, Path]) -> str:
                src, blob, target = item

                def write(f: Any) -> None:
                    with open(src, "rb") as fin:
                        while chunk := fin.read(_CHUNK):
                            f.write(chunk)
                            bar.add(len(chunk))

                self._write_file(target, write, overwrite=overwrite, where=(partition, name, folder, blob))
                bar.file_done()
                return f"{partition}/{name}/{blob}"

            done = self._run_all(copy, targets, max_concurrency, "upload")
        log.debug("uploaded %d blob(s) to %s/%s", len(done), partition, name)
        return done

    def _run_all(
        self, fn: Callable[[Any], T], jobs: Sequence[Any], max_concurrency: int | None, label: str
    ) -> list[T]:
        return run_parallel(fn, jobs, max(1, max_concurrency or self.max_concurrency), name=label)

    def download_bytes(self, partition: str, name: str, blob_name: str) -> bytes:
        path = safe_blob_path(self._folder(partition, name), blob_name)
        if not path.is_file():
            raise FileNotFoundError(f"no blob {blob_name!r} under {partition}/{name}")
        return path.read_bytes()

    def download(
        self,
        partition: str,
        name: str,
        target_folder: str | Path,
        *,
        blob_names: Sequence[str] | None = None,
        pattern: str | None = None,
        max_concurrency: int | None = None,
        progress: bool | None = None,
    ) -> list[Path]:
        folder = self._folder(partition, name)
        if blob_names is not None:
            names = requested_blobs(blob_names, pattern)  # unsafe names refused before any look-up
            missing = [n for n in names if not safe_blob_path(folder, n).is_file()]
            if missing:
                raise FileNotFoundError(f"no blob(s) {missing} under {partition}/{name}")
        else:
            names = self.list_blobs(partition, name, pattern=pattern)
        plan = [(safe_blob_path(folder, n), safe_blob_path(target_folder, n)) for n in names]  # all checked
        target_root = Path(target_folder)
        sizes = sum(src.stat().st_size for src, _ in plan)
        show = self.progress if progress is None else progress
        try:
            target_root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise os_error(f"creating the download folder {target_root}", exc) from None

        with TransferProgress(f"download {partition}/{name}", sizes, len(plan), show) as bar:

            def copy(item: tuple[Path, Path]) -> Path:
                src, dst = item
                tmp = dst.parent / f".{dst.name}.{uuid.uuid4().hex}.part"
                try:
                    dst.parent.mkdir(parents=True, exist_ok=True)
                    with open(src, "rb") as fin, open(tmp, "wb") as fout:
                        while chunk := fin.read(_CHUNK):
                            fout.write(chunk)
                            bar.add(len(chunk))
                    os.replace(tmp, dst)
                except FileNotFoundError:
                    if not src.is_file():
                        raise FileNotFoundError(f"no blob {src.name!r} under {partition}/{name}") from None
                    raise
                except OSError as exc:
                    raise os_error(f"downloading blob {partition}/{name} to {dst}", exc) from None
                finally:
                    try:
                        tmp.unlink(missing_ok=True)
                    except OSError:  # pragma: no cover
                        pass
                bar.file_done()
                return dst

            return self._run_all(copy, plan, max_concurrency, "download")

    def list_blobs(self, partition: str, name: str | None = None, *, pattern: str | None = None) -> list[str]:
        folder = self._folder(partition, name)
        if not folder.is_dir():
            return []
        files = (path.relative_to(folder).as_posix() for path in folder.rglob("*") if path.is_file())
        return sorted(matching(files, pattern))

    def list_blob_info(
        self, partition: str, name: str | None = None, *, pattern: str | None = None
    ) -> dict[str, BlobInfo]:
        """Sizes from the file system; MD5s from the database, each file hashed again (and remembered) only
        when its size, modification time or inode differ from what was remembered (written since)."""
        folder = self._folder(partition, name)
        if not folder.is_dir():
            return {}
        prefix = folder.relative_to(self.blob_root).as_posix() + "/"
        known = self._known_md5s(prefix)
        out: dict[str, BlobInfo] = {}
        fresh: list[tuple[str, int, int, int, str]] = []
        for rel in self.list_blobs(partition, name, pattern=pattern):
            key = prefix + rel
            try:
                with open(folder / rel, "rb") as handle:
                    st = os.fstat(handle.fileno())  # the file this handle reads, even if replaced meanwhile
                    seen = known.get(key)
                    if seen is not None and seen[:3] == (st.st_size, st.st_mtime_ns, st.st_ino):
                        md5 = seen[3]
                    else:
                        digest = hashlib.md5(usedforsecurity=False)
                        while chunk := handle.read(_CHUNK):
                            digest.update(chunk)
                        md5 = digest.hexdigest()
                        fresh.append((key, st.st_size, st.st_mtime_ns, st.st_ino, md5))
            except FileNotFoundError:
                continue  # deleted meanwhile
            except OSError as exc:
                raise os_error(f"listing blob {partition}/{name}/{rel}", exc) from None
            out[rel] = BlobInfo(st.st_size, md5)
        self._remember_md5s(fresh)
        return out

    def delete_blobs(self, partition: str, name: str, *, pattern: str | None = None) -> int:
        folder = self._writable_folder(partition, name, "deleting blobs of")
        count = 0
        for rel in self.list_blobs(partition, name, pattern=pattern):
            try:
                safe_blob_path(folder, rel).unlink()
                count += 1
            except FileNotFoundError:
                continue  # deleted by somebody else meanwhile
            except OSError as exc:
                raise os_error(f"deleting blob {partition}/{name}/{rel}", exc) from None
        # prune the folders left empty, deepest first, up to the entity folder itself
        if folder.is_dir():
            for sub in sorted((p for p in folder.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
                try:
                    sub.rmdir()
                except OSError:
                    pass
            try:
                folder.rmdir()
            except OSError:
                pass
        return count
