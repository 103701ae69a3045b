"""The dashboard's cost and speed: store requests per refresh for 10, 100 and 1,000 rows (constant), and the
time from a row's change in the store to its appearance in an open page (median of 20, against the poll
interval).

- Requests: one refresh (:func:`archai_aml.dashboard.read_snapshot`, what the poller does every interval;
  the second one, as the poller's steady state: its first also opens the table clients) of an experiment of N training rows plus N latency rows, runner heartbeats and device usage, counted by
  :class:`~archai_aml.store.counting.CountingStore` (calls of the store protocol) on the embedded store,
  and, when Azurite is found, the HTTP requests the Azure store sends (:class:`HttpCounter`).
- Change to page: ``archai-aml dashboard --interval 0.5`` (the demo's ``runner.poll_interval_s``) as a child
  process, a headless Chromium on its page, and 20 status changes written to the store at random phases of
  the poll; a MutationObserver in the page stamps when each new status appears (same host clock). Without
  Chromium the long-poll API is timed instead (said in the table).

    python bench/dashboard.py
"""

from __future__ import annotations

import json
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from archai_aml.config import StoreConfig  # noqa: E402
from archai_aml.dashboard.snapshot import read_snapshot  # noqa: E402
from archai_aml.runner.settings import runners_store  # noqa: E402
from archai_aml.runner.usage import usage_store  # noqa: E402
from archai_aml.store import open_store  # noqa: E402
from archai_aml.store.base import Store  # noqa: E402
from archai_aml.store.counting import CountingStore  # noqa: E402
from archai_aml.testing.browser import find_chromium, headless_chromium  # noqa: E402
from archai_aml.testing.dashboard import DashboardProcess, seed_experiment  # noqa: E402

EXP = "bench"
SIZES = (10, 100, 1000)
POLL_S = 0.5
CHANGES = 20
OBSERVER = """
window.__seen = {};
new MutationObserver(() => {
  const text = document.getElementById('main').textContent;
  for (const m of window.__markers || []) if (!(m in window.__seen) && text.includes(m)) window.__seen[m] = Date.now();
}).observe(document.getElementById('main'), {childList: true, subtree: true, characterData: true});
"""


def requests_per_refresh(make_store: Any, rows: int) -> tuple[int, dict[str, int], int | None]:
    """(protocol calls, by method, HTTP requests or None) of one refresh of ``rows`` rows."""
    store, http = make_store(rows)
    try:
        seed_experiment(store, EXP, rows)
        counting = CountingStore(store)
        tables = {
            "runners": runners_store(counting),
            "usage": usage_store(counting),
        }  # as the poller keeps them
        read_snapshot(counting, EXP, dead_after_s=60, **tables)  # the first refresh (Azure: creates clients)
        counting.counts.clear()
        before = http.total if http is not None else 0
        snapshot = read_snapshot(counting, EXP, dead_after_s=60, **tables)
        assert len(snapshot["table"]["rows"]) == rows
        sent = http.total - before if http is not None else None
        return counting.total, dict(counting.counts), sent
    finally:
        store.close()


def embedded(folder: Path) -> Any:
    def make(rows: int) -> tuple[Store, None]:
        return open_store(StoreConfig(path=folder / f"rows{rows}")), None

    return make


def change_to_page(folder: Path) -> tuple[list[float], str]:
    """Milliseconds from each of the 20 writes to its appearance (in the page, or at the API)."""
    store = open_store(StoreConfig(path=folder / "live"))
    seed_experiment(store, EXP, 100)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARCHAI_AML_")}
    env["ARCHAI_AML_STORE"] = str(folder / "live")
    rng = random.Random(7)
    delays: list[float] = []
    found = find_chromium()
    with DashboardProcess(["--experiment", EXP, "--interval", str(POLL_S)], env, log_level="WARNING") as dash:
        if isinstance(found, str):
            return _at_api(store, dash.base, rng), f"API long poll ({found})"
        with headless_chromium() as driver:
            driver.get(dash.url)
            deadline = time.monotonic() + 60
            while not driver.execute_script(
                "return document.querySelectorAll('#status-table tbody tr').length"
            ):
                if time.monotonic() > deadline:
                    raise RuntimeError("the page never showed its table")
                time.sleep(0.05)
            driver.execute_script(OBSERVER)
            for i in range(CHANGES):
                marker = f"changed-{uuid.uuid4().hex[:8]}"
                driver.execute_script("window.__markers = [arguments[0]];", marker)
                time.sleep(rng.uniform(0, POLL_S))  # a random phase of the poll
                start = time.time() * 1000
                store.merge(EXP, "id_0000", {"status": marker})
                seen = None
                while seen is None and time.time() * 1000 - start < 10_000:
                    seen = driver.execute_script("return window.__seen[arguments[0]] || null", marker)
                    time.sleep(0.01)
                if seen is None:
                    raise RuntimeError(f"change {i} never reached the page")
                delays.append(float(seen) - start)
    store.close()
    return delays, "page (headless Chromium)"


def _at_api(store: Store, base: str, rng: random.Random) -> list[float]:
    import httpx

    delays = []
    with httpx.Client(timeout=30) as client:
        etag = client.get(base + "api/state", params={"experiment": EXP}).headers["etag"]
        for _ in range(CHANGES):
            marker = f"changed-{uuid.uuid4().hex[:8]}"
            time.sleep(rng.uniform(0, POLL_S))
            start = time.time() * 1000
            store.merge(EXP, "id_0000", {"status": marker})
            while True:
                r = client.get(
                    base + "api/state",
                    params={"experiment": EXP, "wait": "1"},
                    headers={"If-None-Match": etag},
                )
                if r.status_code == 200:
                    etag = r.headers["etag"]
                    if marker in r.text:
                        break
            delays.append(time.time() * 1000 - start)
    return delays


def main() -> int:
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-dashboard-") as tmp:
        folder = Path(tmp)
        calls = {n: requests_per_refresh(embedded(folder), n) for n in SIZES}
        http: dict[int, int | None] = {}
        try:
            from archai_aml.store.azure.http_counter import HttpCounter
            from archai_aml.testing.azurite import run_azurite

            with run_azurite() as azurite:

                def make(rows: int) -> tuple[Store, Any]:
                    counter = HttpCounter()
                    config = azurite.store_config(
                        table_name=f"b{uuid.uuid4().hex[:10]}", container_name="bench"
                    )
                    return open_store(config, per_call_policies=[counter]), counter

                for n in SIZES:
                    http[n] = requests_per_refresh(make, n)[2]
        except Exception as exc:  # no Azurite here: the embedded figures stand alone
            print(f"(no Azurite: HTTP requests not measured: {exc})")
        delays, where = change_to_page(folder)
    print(f"{'rows':>6} {'store calls':>12} {'HTTP requests (Azurite)':>24}  calls by method")
    for n in SIZES:
        total, by, _ = calls[n]
        print(f"{n:>6} {total:>12} {str(http.get(n, '-')):>24}  {by}")
    median = statistics.median(delays)
    print(
        f"change to {where}: median {median:.0f} ms, min {min(delays):.0f}, max {max(delays):.0f} ms "
        f"over {len(delays)} changes; poll interval {POLL_S * 1000:.0f} ms"
    )
    results["requests_per_refresh"] = {str(n): calls[n][0] for n in SIZES}
    if http:
        results["http_requests_per_refresh"] = {str(n): v for n, v in http.items()}
    results["change_to_page_ms_median"] = round(median, 1)
    results["change_to_page_ms_max"] = round(max(delays), 1)
    results["measured_in"] = where
    results["poll_interval_ms"] = POLL_S * 1000
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
