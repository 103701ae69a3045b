"""The device-usage table: one row per stretch of time a runner kept a device busy.

Rows live in the table ``<status table>usage`` of the same store, partition = device, name = start time
plus a random suffix, with columns ``device``, ``node``, ``start``, ``end`` (UTC), ``row`` (the model),
``experiment`` and ``item`` (the work item). :func:`utilization` turns them into busy seconds per device
and UTC calendar day; a day's utilization is its busy seconds over the 86,400 seconds of the day, and the
``window`` figure of a device is its busy seconds over the span from its first start to its last end.
"""

from __future__ import annotations

import random
import secrets
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

from archai_aml.errors import EntityExistsError, StoreError
from archai_aml.store.base import Store

__all__ = ["DayUsage", "format_usage", "record_usage", "usage_name", "usage_store", "utilization"]

DAY_SECONDS = 86400.0


def usage_store(store: Store) -> Store:
    """The usage table beside ``store``'s status table."""
    return store.with_table(f"{store.table_name}usage")


def record_usage(
    usage: Store,
    *,
    device: str,
    node: str,
    start: datetime,
    end: datetime,
    row: str,
    experiment: str,
    item: str,
    attempts: int = 4,
    name: str | None = None,
) -> None:
    """Append one usage row (an atomic insert with a unique name: never overwrites another).

    An insert that fails on a store error (its answer may have been lost after it landed) is tried again
    up to ``attempts`` times with backoff: the name is this call's alone, so "already exists" means an
    earlier try landed, and the row is never written twice (also when the caller runs it again with the
    same ``name``, see :func:`usage_name`)."""
    name = name or usage_name(start)
    values = {
        "device": device,
        "node": node,
        "start": start,
        "end": end,
        "row": row,
        "experiment": experiment,
        "item": item,
    }
    for attempt in range(1, attempts + 1):
        try:
            usage.create(device, name, values)
            return
        except EntityExistsError:
            return  # an earlier try landed
        except StoreError:
            if attempt == attempts:
                raise
            time.sleep(min(30.0, 0.5 * 2**attempt) * random.uniform(0.5, 1.0))


def usage_name(start: datetime) -> str:
    """A usage row's name: its start time and a random suffix (unique)."""
    return f"{start.astimezone(timezone.utc):%Y%m%dT%H%M%S.%f}-{secrets.token_hex(4)}"


@dataclass(frozen=True)
class DayUsage:
    device: str
    day: date | None  # None: the device's whole observed window
    busy_s: float
    span_s: float
    items: int

    @property
    def utilization(self) -> float:
        return self.busy_s / self.span_s if self.span_s > 0 else 0.0


def _split_by_day(start: datetime, end: datetime) -> list[tuple[date, float]]:
    out: list[tuple[date, float]] = []
    cur = start
    while cur < end:
        next_day = datetime.combine(cur.date() + timedelta(days=1), datetime.min.time(), tzinfo=timezone.utc)
        stop = min(end, next_day)
        out.append((cur.date(), (stop - cur).total_seconds()))
        cur = stop
    return out


def utilization(usage: Store, *, device: str | None = None) -> list[DayUsage]:
    """Busy seconds and utilization per device and UTC day, then one whole-window line per device.

    Overlapping rows of one device (two runners sharing it) are merged, so utilization never exceeds 1.
    """
    out: list[DayUsage] = []
    devices = [device] if device else usage.partitions()
    for dev in devices:
        spans = []
        for row in usage.query(dev):
            start, end = row.get("start"), row.get("end")
            if isinstance(start, datetime) and isinstance(end, datetime) and end > start:
                spans.append((start.astimezone(timezone.utc), end.astimezone(timezone.utc)))
        if not spans:
            continue
        spans.sort()
        merged: list[list[datetime]] = []
        for start, end in spans:
            if merged and start <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, end])
        per_day: dict[date, float] = {}
        items_per_day: dict[date, int] = {}
        for start, _ in spans:
            items_per_day[start.date()] = items_per_day.get(start.date(), 0) + 1
        for start, end in merged:
            for day, seconds in _split_by_day(start, end):
                per_day[day] = per_day.get(day, 0.0) + seconds
        for day in sorted(per_day):
            out.append(DayUsage(dev, day, per_day[day], DAY_SECONDS, items_per_day.get(day, 0)))
        busy = sum((end - start).total_seconds() for start, end in merged)
        window = (merged[-1][1] - merged[0][0]).total_seconds()
        out.append(DayUsage(dev, None, busy, window, len(spans)))
    return out


def format_usage(rows: list[DayUsage]) -> str:
    """A readable table of :func:`utilization`'s answer."""
    lines = [f"{'device':<32} {'day':<10} {'items':>6} {'busy h':>8} {'util':>7}"]
    for r in rows:
        day = r.day.isoformat() if r.day else "window"
        lines.append(
            f"{r.device:<32} {day:<10} {r.items:>6} {r.busy_s / 3600:>8.3f} {100 * r.utilization:>6.1f}%"
        )
    return "\n".join(lines)
