"""The Azure store's retries (archai_aml/store/azure/retry.py), measured on real sockets and a real Azurite:
every method retried while the endpoint refuses connections, on the documented schedule; a write whose
answer is lost is sent again only where that is harmless, and a compare-and-swap settles by reading back;
calls made during an outage of a restarted Azurite (same ports, data kept) succeed once it is back."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from archai_aml.errors import StoreError
from archai_aml.store import LeaseManager, open_store
from archai_aml.store.azure import AzureStore
from archai_aml.store.azure.retry import (
    DEFAULT_RETRY_BACKOFF,
    DEFAULT_RETRY_BACKOFF_MAX,
    DEFAULT_RETRY_TOTAL,
    TableRetry,
    backoff_delay,
    retry_window,
)
from archai_aml.store.connection import DEV_ACCOUNT_KEY
from archai_aml.testing.azurite import Azurite
from archai_aml.testing.faults import FaultProxy

pytestmark = pytest.mark.azure

ROOT = Path(__file__).resolve().parents[1]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _connection(table_url: str, blob_url: str) -> str:
    return f"AccountName=devstoreaccount1;AccountKey={DEV_ACCOUNT_KEY};TableEndpoint={table_url};BlobEndpoint={blob_url}"


def test_the_documented_schedule_is_the_policy_s() -> None:
    window = retry_window(DEFAULT_RETRY_TOTAL, DEFAULT_RETRY_BACKOFF, DEFAULT_RETRY_BACKOFF_MAX)
    assert window == 0 + 1 + 2 + 4 + 8 + 5 * 10
    doc = (ROOT / "docs" / "azure-store.md").read_text(encoding="utf-8")
    assert f"| `retry_total` | {DEFAULT_RETRY_TOTAL} |" in doc
    assert f"about {window:.0f} s" in doc
    delays = [backoff_delay(3, 0.5, 10.0) for _ in range(200)]
    assert 0.8 * 2.0 <= min(delays) < max(delays) <= 1.2 * 2.0  # jittered around 2 s


def test_every_method_is_retried_while_the_endpoint_refuses_connections() -> None:
    url = f"http://127.0.0.1:{_closed_port()}/devstoreaccount1"
    total, backoff = 3, 0.2
    window = retry_window(total, backoff, 10.0)  # 0 + 0.4 + 0.8 s
    with AzureStore.from_connection_string(
        _connection(url, url), retry_total=total, retry_backoff=backoff
    ) as store:
        policies = store._table._client._client._pipeline._impl_policies
        assert [type(p) for p in policies if isinstance(p, TableRetry)] == [TableRetry]
        entity = {"partition": "p", "name": "n", "_version": "W/\"datetime'2026-01-01T00%3A00%3A00Z'\""}
        calls: dict[str, Callable[[], Any]] = {
            "get": lambda: store.get("p", "n"),
            "query": lambda: store.query("p"),
            "create": lambda: store.create("p", "n", {"v": 1}),
            "merge": lambda: store.merge("p", "n", {"v": 1}),
            "cas_merge": lambda: store.cas_merge(entity, {"v": 1}),
            "delete": lambda: store.delete("p", "n"),
            "upload_bytes": lambda: store.upload_bytes("p", "n", "b", b"x"),
            "download_bytes": lambda: store.download_bytes("p", "n", "b"),
        }
        for name, call in calls.items():
            start = time.monotonic()
            with pytest.raises(StoreError, match="could not be reached"):
                call()
            elapsed = time.monotonic() - start
            # the first try and one per retry, with the jittered waits between (+2 s for a loaded machine)
            assert 0.8 * window <= elapsed <= 1.2 * window + 2.0, (name, elapsed)


@pytest.fixture
def proxied(azurite: Azurite) -> Iterator[tuple[AzureStore, FaultProxy]]:
    with FaultProxy(azurite.table_port) as proxy:
        table_url = f"http://127.0.0.1:{proxy.port}/{azurite.account_name}"
        connection = _connection(table_url, azurite.blob_url)
        table = "t" + uuid.uuid4().hex[:12]
        with AzureStore.from_connection_string(connection, table_name=table, retry_backoff=0.05) as store:
            yield store, proxy


def _writes(proxy: FaultProxy, method: str, name: str) -> int:
    return sum(1 for m, path, _ in proxy.requests if m == method and f"RowKey='{name}'" in path)


def _conditional(method: str, headers: dict[str, str]) -> bool:
    return method in ("PATCH", "PUT", "MERGE") and headers.get("if-match", "*") != "*"


def test_a_compare_and_swap_whose_answer_is_lost_reads_back_its_token(
    proxied: tuple[AzureStore, FaultProxy],
) -> None:
    store, proxy = proxied
    store.create("exp", "m", {"status": "new"})
    leases = LeaseManager(store, "exp")
    proxy.drop_answers(1, _conditional)
    lease = leases.acquire("m", "runner-a", 30.0)  # its conditional MERGE lands, the answer is lost
    assert lease is not None and len(proxy.dropped) == 1
    assert _writes(proxy, "PATCH", "m") == 1  # sent once: never twice
    row = store.get("exp", "m")
    assert row is not None and row["lease_token"] == lease.token and row["_version"] == lease.version
    # the lease's version is the real one: the next CAS write goes through
    renewed = leases.renew(lease, 30.0)
    assert renewed.version != lease.version
    # a second lost answer, on a CAS from a fresh read: read back, its own write, one request
    proxy.drop_answers(1, _conditional)
    stale = store.get("exp", "m")
    assert stale is not None
    written = store.cas_merge(stale, {"status": "converting", "lease_token": "x1"})
    assert written["status"] == "converting" and _writes(proxy, "PATCH", "m") == 3


def test_an_insert_whose_answer_is_lost_is_not_sent_twice_and_an_upsert_is(
    proxied: tuple[AzureStore, FaultProxy],
) -> None:
    store, proxy = proxied
    store.create("exp", "seed", {"v": 0})  # the table exists
    proxy.drop_answers(1, lambda method, headers: method == "POST")
    with pytest.raises(StoreError, match="answer was lost|could not be reached"):
        store.create("exp", "once", {"v": 1})
    assert sum(1 for m, path, _ in proxy.requests if m == "POST" and "Tables" not in path) == 2  # seed + 1
    assert store.get("exp", "once") is not None  # it did land, exactly once
    proxy.drop_answers(1, lambda method, headers: method == "PATCH" and "if-match" not in headers)
    store.merge("exp", "seed", {"v": 2})  # an upsert: sent again after the lost answer
    assert _writes(proxy, "PATCH", "seed") == 2
    row = store.get("exp", "seed")
    assert row is not None and row["v"] == 2


def test_creating_the_table_is_sent_again_when_its_answer_is_lost(
    proxied: tuple[AzureStore, FaultProxy],
) -> None:
    """Creating a table is a POST (never resent by the retry policy), but twice is harmless (409 = exists):
    the store's first call must not fail because the table creation lost its answer (seen in CI: a client's
    first write during an Azurite restart)."""
    store, proxy = proxied
    proxy.drop_answers(1, lambda method, headers: method == "POST")  # the first POST creates the table
    store.merge("exp", "first", {"v": 1})
    creates = [path for m, path, _ in proxy.requests if m == "POST" and path.rstrip("/").endswith("Tables")]
    assert len(proxy.dropped) == 1 and len(creates) == 2  # sent again; the second answered 409
    row = store.get("exp", "first")
    assert row is not None and row["v"] == 1


def test_calls_during_an_outage_succeed_when_azurite_comes_back(persisted: Azurite) -> None:
    """Azurite stopped for 5 s (then started again on the same ports with its data): every call made while
    it is down waits for it with the default retry settings and succeeds, nothing written twice."""
    store = open_store(persisted.store_config(table_name="outage", container_name="outage"))
    store.create("exp", "row", {"v": 0})
    store.upload_bytes("exp", "row", "model.onnx", b"model")
    lease = LeaseManager(store, "exp").acquire("row", "a", 120.0)
    assert lease is not None
    durations: dict[str, float] = {}
    errors: dict[str, BaseException] = {}
    calls: dict[str, Callable[[], Any]] = {
        "get": lambda: store.get("exp", "row"),
        "query": lambda: store.query("exp", status_not=["complete"]),
        "create": lambda: store.create("exp", "new", {"v": 1}),
        "merge": lambda: store.merge("exp", "other", {"v": 1}),
        "cas_merge": lambda: LeaseManager(store, "exp").renew(lease, 120.0),
        "upload_bytes": lambda: store.upload_bytes("exp", "row", "csv", b"a,b"),
        "download_bytes": lambda: store.download_bytes("exp", "row", "model.onnx"),
    }

    def run(name: str, call: Callable[[], Any]) -> None:
        start = time.monotonic()
        try:
            call()
        except BaseException as exc:
            errors[name] = exc
        durations[name] = time.monotonic() - start

    outage = 5.0
    persisted.stop()
    threads = [threading.Thread(target=run, args=item) for item in calls.items()]
    for t in threads:
        t.start()
    time.sleep(outage)
    persisted.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == {}
    assert all(outage <= d < outage + 60 for d in durations.values()), durations
    assert store.download_bytes("exp", "row", "csv") == b"a,b"
    rows = {r["name"]: r for r in store.query("exp")}
    assert set(rows) == {"row", "new", "other"} and rows["row"]["lease_token"] == lease.token
    print("call durations through a 5 s outage (s):", {k: round(v, 2) for k, v in durations.items()})
    store.close()
