"""HTP batches in parallel processes: one HTP session per worker process, fed chunks of images.

The emulated HTP of an x86-64 host runs one inference at a time per session on about one core; a pool of
processes, each with its own session of the same model, runs as many chunks at once as it has workers.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["HtpPool"]

_session: Any = None
_input_name = ""


def _init(model_path: str, provider_options: dict[str, str]) -> None:
    global _session, _input_name
    from archai_aml.qnn.session import htp_session

    _session = htp_session(Path(model_path), provider_options)
    _input_name = _session.get_inputs()[0].name


def _run(x: np.ndarray) -> np.ndarray:
    step = _session.get_inputs()[0].shape[0]
    step = step if isinstance(step, int) and step > 0 else x.shape[0]
    outs = [_session.run(None, {_input_name: x[i : i + step]})[0] for i in range(0, x.shape[0], step)]
    return np.concatenate(outs, axis=0)


class HtpPool:
    """``workers`` processes holding an HTP session of ``model_path`` each (started with ``spawn``)."""

    def __init__(self, model_path: Path, provider_options: dict[str, str], workers: int) -> None:
        self.model_path = model_path
        self.workers = workers
        self._pool = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init,
            initargs=(str(model_path), dict(provider_options)),
        )

    def run(self, x: np.ndarray, step: int) -> np.ndarray:
        """Outputs for ``x``, split into one chunk per worker (whole multiples of the model's batch)."""
        n = x.shape[0]
        per = max(step, -(-n // self.workers // step) * step)
        chunks = [x[i : i + per] for i in range(0, n, per)]
        return np.concatenate(list(self._pool.map(_run, chunks)), axis=0)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
