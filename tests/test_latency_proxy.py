"""The round-trip proxy of the blob-sync bench: bytes pass unchanged, each request waits a round trip more."""

from __future__ import annotations

import time
import uuid

import pytest
from pydantic import SecretStr

from archai_aml.config import StoreConfig
from archai_aml.store import open_store
from archai_aml.testing.azurite import Azurite
from archai_aml.testing.latency import LatencyProxy

pytestmark = pytest.mark.azure


def timed_reads(config: StoreConfig, payload: bytes, count: int) -> float:
    with open_store(config) as store:
        store.upload_bytes("p", "m", "blob.bin", payload)
        assert store.download_bytes("p", "m", "blob.bin") == payload  # and the connection is open
        start = time.perf_counter()
        for _ in range(count):
            assert store.download_bytes("p", "m", "blob.bin") == payload
        return (time.perf_counter() - start) / count


def test_each_request_takes_a_round_trip_longer(azurite: Azurite) -> None:
    payload = bytes(range(256)) * 1000  # 256 kB: several chunks each way, delayed once, in order
    container = "c" + uuid.uuid4().hex[:16]
    direct = timed_reads(azurite.store_config(container_name=container), payload, 5)
    with LatencyProxy(azurite.blob_port, rtt_s=0.2) as proxy:
        text = azurite.connection_string.replace(
            azurite.blob_url, f"http://127.0.0.1:{proxy.port}/{azurite.account_name}"
        )
        config = StoreConfig(backend="azure", connection_string=SecretStr(text), container_name=container)
        proxied = timed_reads(config, payload, 5)
    # a download is one request: one round trip (0.2 s) more, not one per chunk (that would be seconds)
    assert 0.2 <= proxied - direct < 0.4, (direct, proxied)


def test_a_negative_round_trip_is_refused() -> None:
    with pytest.raises(ValueError, match="rtt_s"):
        LatencyProxy(10000, rtt_s=-1)
