"""AzureStore against a real Azurite: auth forms, type mapping, CAS, queries, blobs, retries, no secrets."""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from azure.core.credentials import AzureNamedKeyCredential
from azure.core.pipeline.policies import SansIOHTTPPolicy
from azure.data.tables import TableSasPermissions, generate_table_sas
from azure.storage.blob import (
    AccountSasPermissions,
    ContainerSasPermissions,
    ResourceTypes,
    generate_account_sas,
    generate_container_sas,
)
from pydantic import SecretStr

from archai_aml.config import StoreConfig
from archai_aml.errors import (
    BlobConflictError,
    BlobExistsError,
    ConcurrencyError,
    ConfigError,
    EntityExistsError,
    StoreError,
    UnsafeBlobNameError,
)
from archai_aml.store import open_store, store_config_from_env
from archai_aml.store.azure.retry import TableRetry
from archai_aml.store.azure.store import (
    AzureStore,
    BlobRetry,
    odata_filter,
    odata_literal,
    parse_connection_string,
)
from archai_aml.testing.azurite import DEV_ACCOUNT_KEY, Azurite, ports_free, run_azurite

pytestmark = pytest.mark.azure


class CountRequests(SansIOHTTPPolicy):  # type: ignore[type-arg]
    """A per-call policy that records every request the SDK sends (method and path)."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str]] = []

    def on_request(self, request: Any) -> None:
        http = request.http_request
        self.requests.append((http.method, http.url.split("?", 1)[0]))


def names() -> tuple[str, str]:
    return "t" + uuid.uuid4().hex[:12], "c" + uuid.uuid4().hex[:12]


@pytest.fixture
def azure_store(azurite: Azurite) -> Iterator[AzureStore]:
    table, container = names()
    with AzureStore.from_connection_string(
        azurite.connection_string, table_name=table, container_name=container, progress=False
    ) as store:
        yield store


# ------------------------------------------------------------------------------------------ types
def test_values_round_trip_exactly(azure_store: AzureStore) -> None:
    when = datetime(2024, 2, 29, 23, 59, 58, 123457, tzinfo=timezone.utc)
    values = {
        "big": 2**40,
        "small": 7,
        "negative": -(2**62),
        "zero_float": 0.0,
        "one_float": 1.0,
        "large_float": 3.0e15,
        "ratio": 0.1,
        "flag": True,
        "off": False,
        "digits": "123",
        "truthy": "true",
        "date_text": "2024-01-01T00:00:00Z",
        "float_text": "1.0",
        "when": when,
        "offset": datetime(2024, 1, 1, 12, 0, tzinfo=timezone(timedelta(hours=2))),
    }
    azure_store.create("exp", "m1", values)
    got = azure_store.get("exp", "m1")
    assert got is not None
    for key, value in values.items():
        assert got[key] == value, key
        assert type(got[key]) is type(value), key
    assert got["big"] == 1099511627776 and isinstance(got["big"], int)
    assert got["when"].microsecond == 123457 and got["when"].tzinfo == timezone.utc
    assert type(got["when"]) is datetime  # not the SDK's TablesEntityDatetime subclass
    assert got["offset"] == datetime(2024, 1, 1, 10, 0, tzinfo=timezone.utc)
    assert isinstance(got["_version"], str) and got["_version"]
    assert isinstance(got["_timestamp"], datetime) and got["_timestamp"].tzinfo == timezone.utc
    # query returns the same types as get
    [row] = azure_store.query("exp", where={"big": 2**40, "one_float": 1.0, "flag": True})
    assert row == got


def test_int64_beyond_range_is_rejected(azure_store: AzureStore) -> None:
    with pytest.raises(ValueError, match="64-bit"):
        azure_store.create("exp", "m", {"huge": 2**63})


# ------------------------------------------------------------------------------------------- CAS
def test_compare_and_swap(azure_store: AzureStore) -> None:
    first = azure_store.create("exp", "m", {"status": "new", "n": 1})
    with pytest.raises(EntityExistsError):
        azure_store.create("exp", "m", {"status": "other"})
    second = azure_store.merge("exp", "m", {"n": 2}, expected_version=first["_version"])
    assert second["n"] == 2 and second["status"] == "new" and second["_version"] != first["_version"]
    with pytest.raises(ConcurrencyError):
        azure_store.merge("exp", "m", {"n": 3}, expected_version=first["_version"])
    with pytest.raises(ConcurrencyError):
        azure_store.replace("exp", "m", {"n": 3}, expected_version=first["_version"])
    with pytest.raises(ConcurrencyError):  # removing a column is CAS too
        azure_store.merge("exp", "m", {"status": None}, expected_version=first["_version"])
    with pytest.raises(ConcurrencyError):
        azure_store.delete("exp", "m", expected_version=first["_version"])
    third = azure_store.merge("exp", "m", {"status": None, "x": "y"}, expected_version=second["_version"])
    assert "status" not in third and third["x"] == "y" and third["n"] == 2
    assert azure_store.get("exp", "m") == third
    replaced = azure_store.replace("exp", "m", {"only": 1.5}, expected_version=third["_version"])
    assert azure_store.get("exp", "m") == replaced
    assert set(replaced) == {"partition", "name", "only", "_version", "_timestamp"}
    assert azure_store.delete("exp", "m", expected_version=replaced["_version"]) is True
    assert azure_store.delete("exp", "m") is False
    with pytest.raises(ConcurrencyError):
        azure_store.merge("exp", "m", {"n": 1}, expected_version=replaced["_version"])
    with pytest.raises(ConcurrencyError):
        azure_store.delete("exp", "m", expected_version=replaced["_version"])


def test_concurrent_cas_has_one_winner(azure_store: AzureStore) -> None:
    base = azure_store.create("exp", "race", {"owner": "none"})
    winners: list[str] = []
    barrier = threading.Barrier(4)

    def attempt(who: str) -> None:
        barrier.wait()
        try:
            azure_store.merge("exp", "race", {"owner": who}, expected_version=base["_version"])
            winners.append(who)
        except ConcurrencyError:
            pass

    threads = [threading.Thread(target=attempt, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(winners) == 1
    final = azure_store.get("exp", "race")
    assert final is not None and final["owner"] == winners[0]


# ----------------------------------------------------------------------------------------- query
def counted_store(azurite: Azurite) -> tuple[AzureStore, CountRequests, str]:
    """A store on a fresh table and container whose every HTTP request is recorded; and its container."""
    counter = CountRequests()
    table, container = names()
    store = AzureStore.from_connection_string(
        azurite.connection_string, table_name=table, container_name=container, per_call_policies=[counter]
    )
    return store, counter, container


def test_query_filters_and_single_request(azurite: Azurite) -> None:
    store, counter, container = counted_store(azurite)
    with store:
        for i in range(100):
            values: dict[str, Any] = {"i": i, "quote": "it's" if i % 10 == 0 else "plain"}
            if i % 3:
                values["status"] = "done" if i % 3 == 1 else "running"
            store.create("exp", f"m{i:03d}", values)
        store.create("other", "x", {"status": "done"})
        counter.requests.clear()
        rows = store.query("exp")
        assert len(rows) == 100 and [r["name"] for r in rows] == sorted(r["name"] for r in rows)
        assert len(counter.requests) == 1  # one HTTP request for 100 rows
        done = store.query("exp", status="done")
        assert {r["i"] for r in done} == {i for i in range(100) if i % 3 == 1}
        not_done = store.query("exp", status_not=["done"])
        assert {r["i"] for r in not_done} == {i for i in range(100) if i % 3 != 1}  # rows without status too
        assert {r["i"] for r in store.query("exp", where={"quote": "it's"})} == set(range(0, 100, 10))
        wanted = [f"m{i:03d}" for i in range(0, 100, 2)] + ["missing"]
        counter.requests.clear()
        picked = store.query("exp", names=wanted, status=["done", "running"])
        assert {r["i"] for r in picked} == {i for i in range(0, 100, 2) if i % 3}
        # 51 names with 3 other comparisons: chunks of 12 names -> 5 requests
        assert len(counter.requests) == 5
        assert store.query("exp", names=[]) == []
        counter.requests.clear()
        assert store.partitions() == ["exp", "other"]
        assert len(counter.requests) == 3  # one per partition plus the empty answer
        counter.requests.clear()
        store.upload_bytes("exp", "m000", "f.txt", b"x")  # the blob client carries the policy too
        assert ("PUT", f"{azurite.blob_url}/{container}/exp/m000/f.txt") in counter.requests


def test_one_blob_upload_does_not_list_the_entity(azurite: Azurite) -> None:
    """A sync sends thousands of blobs into one entity: each upload checks its own folders, not every blob."""
    store, counter, _ = counted_store(azurite)
    with store:
        for i in range(40):
            store.upload_bytes("data", "working", f"ds/part{i % 4}/f{i:03d}.bin", b"x")
        store.upload_bytes("data", "working", "ds-sibling", b"a name that starts like the folder")
        counter.requests.clear()
        store.upload_bytes("data", "working", "ds/part1/new.bin", b"y")
        # two folder levels, the names below it, the upload itself
        assert [method for method, _ in counter.requests] == ["GET", "GET", "GET", "PUT"]
        with pytest.raises(
            BlobConflictError, match="'ds/part1/new.bin/x'.*conflicts with blob 'ds/part1/new.bin'"
        ):
            store.upload_bytes("data", "working", "ds/part1/new.bin/x", b"z")
        with pytest.raises(BlobConflictError, match="'ds/part2'.*conflicts with blob 'ds/part2/f002.bin'"):
            store.upload_bytes("data", "working", "ds/part2", b"z")
        assert len(store.list_blobs("data", "working")) == 42
        # many blobs at once: one listing checks them all, then one request each
        counter.requests.clear()
        store.upload_blobs(
            "data", "working", {f"ds/part9/g{i}.bin": b"g" for i in range(10)}, max_concurrency=4
        )
        assert sorted(method for method, _ in counter.requests) == ["GET"] + ["PUT"] * 10


def test_sixteen_transfers_keep_their_connections(azurite: Azurite, caplog: pytest.LogCaptureFixture) -> None:
    """requests keeps 10 connections per host; the blob client's pool holds more, so that 16 threads do not
    open and drop a connection per request."""
    with open_store(azurite.store_config(container_name=names()[1])) as store:
        caplog.set_level(logging.WARNING, logger="urllib3.connectionpool")
        store.upload_blobs("p", "m", {f"b{i:03d}": b"x" * 100 for i in range(200)}, max_concurrency=16)
        assert len(store.list_blobs("p", "m")) == 200
    assert not [r for r in caplog.records if "pool is full" in r.getMessage()]


def test_odata_quoting() -> None:
    assert odata_literal("it's") == "'it''s'"
    assert odata_literal(5) == "5L"
    assert odata_literal(1.0) == "1.0"
    assert odata_literal(True) == "true"
    assert odata_literal(datetime(2024, 1, 1, tzinfo=timezone.utc)) == "datetime'2024-01-01T00:00:00.000000Z'"
    text, count = odata_filter("p'q", status=frozenset({"a"}), names=["x' or 1 eq 1 or 'y"])
    assert text == "PartitionKey eq 'p''q' and (status eq 'a') and (RowKey eq 'x'' or 1 eq 1 or ''y')"
    assert count == 3
    with pytest.raises(ValueError):
        odata_filter("p", where={"bad column": 1})


# ----------------------------------------------------------------------------------------- blobs
def test_blobs(azure_store: AzureStore, tmp_path: Path) -> None:
    folder = tmp_path / "model"
    (folder / "sub").mkdir(parents=True)
    (folder / "model.onnx").write_bytes(b"onnx")
    (folder / "sub" / "log.txt").write_text("log")
    (folder / "sub" / "it's.json").write_text("{}")
    uploaded = azure_store.upload("exp", "m1", folder, max_concurrency=2)
    assert uploaded == ["exp/m1/model.onnx", "exp/m1/sub/it's.json", "exp/m1/sub/log.txt"]
    azure_store.upload_bytes("exp", "m2", "a.bin", b"\x00\x01")
    assert azure_store.list_blobs("exp", "m1") == ["model.onnx", "sub/it's.json", "sub/log.txt"]
    assert azure_store.list_blobs("exp") == [
        "m1/model.onnx",
        "m1/sub/it's.json",
        "m1/sub/log.txt",
        "m2/a.bin",
    ]
    assert azure_store.list_blobs("exp", "m1", pattern=r"\.txt$") == ["sub/log.txt"]
    out = tmp_path / "out"
    paths = azure_store.download("exp", "m1", out, pattern=r"^sub/")
    assert sorted(p.relative_to(out).as_posix() for p in paths) == ["sub/it's.json", "sub/log.txt"]
    assert (out / "sub" / "log.txt").read_text() == "log"
    assert azure_store.download_bytes("exp", "m2", "a.bin") == b"\x00\x01"
    with pytest.raises(FileNotFoundError):
        azure_store.download_bytes("exp", "m2", "nope.bin")
    with pytest.raises(BlobExistsError, match="already exists"):
        azure_store.upload_bytes("exp", "m2", "a.bin", b"x", overwrite=False)
    # an unsafe name anywhere in the list: nothing at all is written
    fresh = tmp_path / "fresh"
    with pytest.raises(UnsafeBlobNameError):
        azure_store.download("exp", "m1", fresh, blob_names=["model.onnx", "../escape.txt"])
    assert not fresh.exists() and not (tmp_path / "escape.txt").exists()
    with pytest.raises(UnsafeBlobNameError):
        azure_store.upload_bytes("exp", "m1", "../m2/a.bin", b"overwrite another model")
    assert azure_store.delete_blobs("exp", "m1", pattern=r"\.json$") == 1
    assert azure_store.delete_blobs("exp", "m1") == 2
    assert azure_store.list_blobs("exp", "m1") == []


# ------------------------------------------------------------------------------------ auth forms
def test_open_store_from_config_with_connection_string(azurite: Azurite) -> None:
    table, container = names()
    with open_store(azurite.store_config(table_name=table, container_name=container)) as store:
        assert isinstance(store, AzureStore) and store.auth == "account key"
        store.create("exp", "m", {"v": 1})
        other = store.with_table(names()[0])
        assert other.get("exp", "m") is None
        other.create("exp", "m", {"v": 2})
        other.close()
        assert store.get("exp", "m")["v"] == 1  # type: ignore[index]


def test_parse_connection_strings() -> None:
    dev = parse_connection_string("UseDevelopmentStorage=true")
    assert dev.table_url == "http://127.0.0.1:10002/devstoreaccount1"
    assert dev.blob_url == "http://127.0.0.1:10000/devstoreaccount1"
    assert dev.account_name == "devstoreaccount1" and dev.account_key == DEV_ACCOUNT_KEY
    proxy = parse_connection_string("UseDevelopmentStorage=true;DevelopmentStorageProxyUri=http://azurite")
    assert proxy.table_url == "http://azurite:10002/devstoreaccount1"
    real = parse_connection_string(
        "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=c2VjcmV0a2V5==;EndpointSuffix=core.windows.net"
    )
    assert real.table_url == "https://acct.table.core.windows.net"
    assert real.blob_url == "https://acct.blob.core.windows.net"
    assert real.account_key == "c2VjcmV0a2V5=="  # '=' inside the value is kept
    assert "c2VjcmV0a2V5" not in repr(real)
    sas = parse_connection_string(
        "BlobEndpoint=https://a.blob.core.windows.net/;TableEndpoint=https://a.table.core.windows.net/;"
        "SharedAccessSignature=sv=2022-11-02&sig=abc%3D"
    )
    assert sas.sas_token == "sv=2022-11-02&sig=abc%3D" and sas.account_key is None
    assert sas.table_url == "https://a.table.core.windows.net"
    for bad in ("AccountName=acct", "AccountKey=c2VjcmV0a2V5==", "garbage"):
        with pytest.raises(ConfigError) as info:
            parse_connection_string(bad)
        assert "c2VjcmV0a2V5" not in str(info.value)


def test_use_development_storage_end_to_end(tmp_path: Path) -> None:
    """``UseDevelopmentStorage=true`` against an Azurite on the default ports (when they are free here)."""
    if not ports_free(10000, 10001, 10002):  # parsing is covered by test_parse_connection_strings
        pytest.skip("ports 10000-10002 are in use on this machine")
    table, container = names()
    with run_azurite(ports=(10000, 10001, 10002)):
        config = store_config_from_env(
            {"ARCHAI_AML_STORE": "UseDevelopmentStorage=true"}, table_name=table, container_name=container
        )
        assert config is not None and config.backend == "azure"
        with open_store(config) as store:
            created = store.create("exp", "m", {"v": 2**40})
            assert store.get("exp", "m") == created
            store.upload_bytes("exp", "m", "f.bin", b"dev")
            assert store.download_bytes("exp", "m", "f.bin") == b"dev"


def test_account_sas(azurite: Azurite, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    sas = generate_account_sas(
        azurite.account_name,
        azurite.account_key,
        resource_types=ResourceTypes(service=True, container=True, object=True),
        permission=AccountSasPermissions(
            read=True, write=True, delete=True, list=True, add=True, create=True, update=True
        ),
        expiry=datetime.now(timezone.utc) + timedelta(hours=1),
        services="bt",  # one account SAS for the blob and table services
    )
    table, container = names()
    config = StoreConfig(
        backend="azure",
        table_url=azurite.table_url,
        blob_url=azurite.blob_url,
        sas_token=SecretStr(sas),
        table_name=table,
        container_name=container,
    )
    with open_store(config) as store:
        assert isinstance(store, AzureStore) and store.auth == "SAS"
        created = store.create("exp", "m", {"v": 2**40})
        assert store.get("exp", "m") == created
        store.upload_bytes("exp", "m", "f.txt", b"sas")
        assert store.download_bytes("exp", "m", "f.txt") == b"sas"
        assert sas not in repr(store)
    signature = dict(part.split("=", 1) for part in sas.split("&"))["sig"]
    assert caplog.records  # the SDK logged its requests at DEBUG/INFO
    assert signature not in caplog.text and azurite.account_key not in caplog.text


def test_table_and_container_sas(azurite: Azurite) -> None:
    """Narrow SASes that may not create the table or container: the store assumes they exist."""
    table, container = names()
    with AzureStore.from_connection_string(
        azurite.connection_string, table_name=table, container_name=container
    ) as admin:
        admin.create("exp", "seed")
        admin.upload_bytes("exp", "seed", "x", b"1")
    expiry = datetime.now(timezone.utc) + timedelta(hours=1)
    table_sas = generate_table_sas(
        AzureNamedKeyCredential(azurite.account_name, azurite.account_key),
        table,
        permission=TableSasPermissions(read=True, add=True, update=True, delete=True),
        expiry=expiry,
    )
    container_sas = generate_container_sas(
        azurite.account_name,
        container,
        account_key=azurite.account_key,
        permission=ContainerSasPermissions(read=True, write=True, list=True, delete=True),
        expiry=expiry,
    )
    with AzureStore.from_sas(
        azurite.table_url,
        azurite.blob_url,
        table_sas,
        blob_sas_token=container_sas,
        table_name=table,
        container_name=container,
    ) as store:
        store.merge("exp", "seed", {"v": 1})
        assert store.get("exp", "seed")["v"] == 1  # type: ignore[index]
        assert store.list_blobs("exp", "seed") == ["x"]
        # the table SAS names one table: another table is refused with a typed, secret-free error
        with pytest.raises(StoreError, match="SAS") as info:
            store.with_table("t" + uuid.uuid4().hex[:12]).get("exp", "seed")
        assert table_sas not in str(info.value) and "sig=" not in str(info.value)


def test_identity_form_fails_clearly_without_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET", "AZURE_FEDERATED_TOKEN_FILE"):
        monkeypatch.delenv(var, raising=False)
    config = StoreConfig(
        backend="azure",
        table_url="https://127.0.0.1:9/devstoreaccount1",
        blob_url="https://127.0.0.1:9/devstoreaccount1",
        managed_identity_client_id="00000000-0000-0000-0000-000000000000",
    )
    with open_store(config, retry_total=0) as store:
        assert isinstance(store, AzureStore) and store.auth == "identity"
        with pytest.raises(StoreError, match="az login"):
            store.get("exp", "m")


def test_wrong_key_error_has_no_secret(azurite: Azurite) -> None:
    wrong_key = "d3Jvbmcta2V5LXRoYXQtbXVzdC1uZXZlci1iZS1wcmludGVk"
    connection = azurite.connection_string.replace(DEV_ACCOUNT_KEY, wrong_key)
    config = StoreConfig(backend="azure", connection_string=SecretStr(connection), table_name=names()[0])
    with open_store(config, retry_total=0) as store:
        for text in (repr(store), str(store), repr(config), str(config)):
            assert wrong_key not in text and DEV_ACCOUNT_KEY not in text
        with pytest.raises(StoreError, match="account key") as info:
            store.get("exp", "m")
        assert wrong_key not in str(info.value) and connection not in str(info.value)


# ---------------------------------------------------------------------------------- retries
class _Unavailable(BaseHTTPRequestHandler):
    hits = 0

    def _answer(self) -> None:
        type(self).hits += 1
        self.send_response(503)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_PATCH = _answer

    def log_message(self, *args: Any) -> None:
        pass


def test_transient_errors_are_retried_by_the_sdk_policy(azurite: Azurite) -> None:
    """A real HTTP server that answers 503: the SDK retry policies send the request retry_total+1 times."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Unavailable)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/devstoreaccount1"
        connection = f"AccountName=devstoreaccount1;AccountKey={DEV_ACCOUNT_KEY};TableEndpoint={url};BlobEndpoint={url}"
        with AzureStore.from_connection_string(connection, retry_total=2, retry_backoff=0.01) as store:
            table_policies = store._table._client._client._pipeline._impl_policies
            blob_policies = store._container._pipeline._impl_policies
            assert [p.total_retries for p in table_policies if isinstance(p, TableRetry)] == [2]
            assert [p.total_retries for p in blob_policies if isinstance(p, BlobRetry)] == [2]
            _Unavailable.hits = 0
            with pytest.raises(StoreError, match="HTTP 503"):
                store.get("exp", "m")
            assert _Unavailable.hits == 3
            _Unavailable.hits = 0
            with pytest.raises(StoreError, match="HTTP 503"):
                store.download_bytes("exp", "m", "f")
            assert _Unavailable.hits == 3
    finally:
        server.shutdown()
        server.server_close()


# ------------------------------------------------------------------------------ issue 8 and 12
def test_int32_columns_written_by_another_tool_read_back_as_int(azurite: Azurite) -> None:
    """A row written with the raw azure-data-tables client (Edm.Int32, as the anchor's own store does)."""
    from azure.data.tables import EdmType, EntityProperty, TableClient

    table, container = names()
    raw = TableClient.from_connection_string(azurite.connection_string, table)
    raw.create_table()
    raw.create_entity(
        {
            "PartitionKey": "exp",
            "RowKey": "anchor",
            "epochs": EntityProperty(5, EdmType.INT32),
            "negative": EntityProperty(-(2**31), EdmType.INT32),
            "macs": EntityProperty(2**40, EdmType.INT64),
            "small64": EntityProperty(3, EdmType.INT64),
            "mean": EntityProperty(1.0, EdmType.DOUBLE),
            "ratio": 0.25,
        }
    )
    raw.close()
    with AzureStore.from_connection_string(
        azurite.connection_string, table_name=table, container_name=container
    ) as store:
        got = store.get("exp", "anchor")
        assert got is not None
        row = {k: got[k] for k in ("epochs", "negative", "macs", "small64", "mean", "ratio")}
        assert row == {
            "epochs": 5,
            "negative": -(2**31),
            "macs": 2**40,
            "small64": 3,
            "mean": 1.0,
            "ratio": 0.25,
        }
        assert [type(row[k]) for k in row] == [int, int, int, int, float, float]
        assert [e["epochs"] for e in store.query("exp", where={"small64": 3})] == [5]


def test_a_403_from_a_malformed_path_does_not_blame_the_account_key(azurite: Azurite) -> None:
    """With the account key, a path with '..' segments is rewritten by the HTTP stack, so the signature fails
    (HTTP 403): the message says the name was malformed, not that the key is wrong."""
    from azure.core.exceptions import HttpResponseError
    from azure.storage.blob import BlobServiceClient

    table, container = names()
    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    service.create_container(container)
    service.create_container(container + "v")
    with pytest.raises(HttpResponseError) as info:
        service.get_container_client(container).upload_blob(f"p/../../{container}v/model.onnx", b"x")
    assert info.value.status_code == 403
    assert list(service.get_container_client(container + "v").list_blobs()) == []
    with AzureStore.from_connection_string(
        azurite.connection_string, table_name=table, container_name=container
    ) as store:
        message = str(store._fail("uploading blob", info.value))
        assert "malformed" in message and "'..'" in message
        assert "check the account name and key" not in message
        # the store itself never sends such a path: the key rule refuses it first
        with pytest.raises(ValueError, match="'.' and '..'"):
            store.upload_bytes("..", container + "v", "model.onnx", b"x")
    assert list(service.get_container_client(container + "v").list_blobs()) == []
    service.close()
