"""Running one call per item on a bounded thread pool, stopping cleanly on the first failure or Ctrl-C."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

__all__ = ["run_parallel"]


class _Stopped(Exception):
    """A call not started because another one failed first."""


def run_parallel(
    fn: Callable[[T], R], items: Sequence[T], max_concurrency: int, *, name: str = "transfer"
) -> list[R]:
    """``[fn(item) for item in items]`` with at most ``max_concurrency`` calls at once, results in order.

    On the first exception of a call (or a KeyboardInterrupt while waiting) no further call starts, the
    calls in flight finish, and that exception is raised: a caller's record of what completed is then final.
    ``name`` prefixes the threads' names. Every parallel transfer of the stores and the data sync runs here.
    """
    if max_concurrency < 1:
        raise ValueError(f"max_concurrency must be at least 1, got {max_concurrency}")
    if len(items) <= 1 or max_concurrency == 1:
        return [fn(item) for item in items]
    stop = threading.Event()

    def guarded(item: T) -> R:
        if stop.is_set():
            raise _Stopped
        try:
            return fn(item)
        except BaseException:
            stop.set()
            raise

    pool = ThreadPoolExecutor(max_workers=min(max_concurrency, len(items)), thread_name_prefix=name)
    try:
        futures = [pool.submit(guarded, item) for item in items]
        wait(futures, return_when=FIRST_EXCEPTION)
        failures = [f.exception() for f in futures if f.done() and not f.cancelled()]
        first = next((e for e in failures if e is not None and not isinstance(e, _Stopped)), None)
        if first is not None:
            raise first
        return [future.result() for future in futures]
    except BaseException:
        stop.set()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
