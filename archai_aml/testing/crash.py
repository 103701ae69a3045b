"""A store that dies on a chosen call: the process of a runner killed between two store writes, in-process.

:class:`CrashingStore` wraps a real store (:class:`~archai_aml.store.counting.CountingStore`, so its calls
are counted too) and raises :class:`SimulatedCrash` *instead of* the ``nth`` call of ``method`` on a table
whose name ends with ``table_suffix``. ``SimulatedCrash`` is a ``BaseException``: no ``except Exception``
or ``except StoreError`` of the library catches it, so like a killed process nothing the code would have
done after that point happens (``finally`` blocks still run, as they would not after SIGKILL: tests that
use it check the store, not the process's last words).
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

from archai_aml.store.base import Store
from archai_aml.store.counting import CountingStore

__all__ = ["CrashingStore", "SimulatedCrash"]


class SimulatedCrash(BaseException):  # noqa: N818 - a crash, not an error to handle
    """Raised in place of the store call the process "died" on."""


class _Plan:
    def __init__(self, method: str, table_suffix: str, nth: int) -> None:
        self.method, self.table_suffix, self.nth = method, table_suffix, nth
        self.seen = 0
        self.fired = False
        self.lock = threading.Lock()


class CrashingStore(CountingStore):
    """See the module docstring."""

    def __init__(
        self,
        inner: Store,
        *,
        method: str,
        table_suffix: str = "",
        nth: int = 1,
        _plan: _Plan | None = None,
        _counts: Counter[str] | None = None,
        _lock: threading.Lock | None = None,
    ) -> None:
        super().__init__(inner, _counts, _lock)
        self.plan = _plan or _Plan(method, table_suffix, nth)

    @property
    def fired(self) -> bool:
        return self.plan.fired

    def _count(self, method: str) -> None:
        plan = self.plan
        if method == plan.method and self.table_name.endswith(plan.table_suffix):
            with plan.lock:
                plan.seen += 1
                if plan.seen == plan.nth and not plan.fired:
                    plan.fired = True
                    raise SimulatedCrash(f"crashed instead of {method} #{plan.nth} on {self.table_name}")
        super()._count(method)

    def with_table(self, table_name: str) -> Store:
        plan = self.plan
        return CrashingStore(
            self.inner.with_table(table_name),
            method=plan.method,
            _plan=plan,
            _counts=self.counts,
            _lock=self._lock,
        )

    def __getattr__(self, name: str) -> Any:  # anything the protocol does not name goes to the real store
        return getattr(self.inner, name)
