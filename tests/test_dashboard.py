"""The dashboard without a browser: what one refresh reads (a constant number of store requests, counted by
CountingStore), what it shows (runners presumed dead, held leases, failures, usage, simulated figures),
the front of two picked columns, and the HTTP rules (read-only, loopback Host, token, CSP, escaping,
conditional requests and the long poll) on the real Starlette application."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from archai_aml.config import StoreConfig
from archai_aml.dashboard.app import create_app
from archai_aml.dashboard.poller import Poller
from archai_aml.dashboard.security import check_token, needs_token
from archai_aml.dashboard.snapshot import read_snapshot
from archai_aml.dashboard.view import front_view
from archai_aml.errors import ConfigError
from archai_aml.plots import pareto_front
from archai_aml.store import open_store
from archai_aml.store.base import Store
from archai_aml.store.counting import CountingStore
from archai_aml.testing.dashboard import seed_experiment

ROOT = Path(__file__).resolve().parents[1]
EXP = "dash"


@pytest.fixture
def seeded(tmp_path: Path) -> Store:
    store = open_store(StoreConfig(path=tmp_path / "store"))
    seed_experiment(store, EXP, 10)
    return store


def test_a_refresh_costs_the_same_requests_for_10_and_100_rows(tmp_path: Path) -> None:
    counts = {}
    for rows in (10, 100):
        store = open_store(StoreConfig(path=tmp_path / f"s{rows}"))
        seed_experiment(store, EXP, rows)
        counting = CountingStore(store)
        snapshot = read_snapshot(counting, EXP, dead_after_s=60)
        assert len(snapshot["table"]["rows"]) == rows and len(snapshot["models"]) == rows
        counts[rows] = dict(counting.counts)
        store.close()
    assert counts[10] == counts[100]
    # partitions (status, usage tables), the two partitions, two heartbeat partitions, one usage device
    assert counts[10] == {"partitions": 2, "query": 5}


def test_the_snapshot_shows_the_fleet_failures_usage_and_marks(seeded: Store) -> None:
    snap = read_snapshot(seeded, EXP, dead_after_s=60)
    assert snap["partner"] == f"{EXP}-latency" and snap["experiments"] == [EXP, f"{EXP}-latency"]
    assert snap["iterations"] == 2 and snap["counts"] == {"complete": 10}
    assert snap["table"]["columns"][:2] == ["name", "status"]  # the columns of `archai-aml status`
    assert "lease_token" not in snap["table"]["columns"]
    runners = {r["owner"]: r for r in snap["runners"]}
    assert not runners["hostA:1:aaaa"]["presumed_dead"] and runners["hostB:7:bbbb"]["presumed_dead"]
    assert [h["name"] for h in runners["hostA:1:aaaa"]["holds"]] == ["id_0002"]
    # counted in the runner's own partition only (the training rows there were written on hostA too)
    assert runners["hostA:1:aaaa"]["done"] == 8 and runners["hostA:1:aaaa"]["failed"] == 1
    assert [(f["name"], f["error"]) for f in snap["failures"]] == [
        ("id_0001", "benchmark 1: the model did not load")
    ]
    assert [u["day"] for u in snap["usage"]][-1] == "window" and snap["usage"][0]["items"] == 1
    simulated = {m["name"] for m in snap["models"] if m["marks"].get("mean") == "simulated"}
    assert simulated == {"id_0004", "id_0009"}


def test_the_front_is_the_pareto_front_of_the_picked_columns_with_fading(seeded: Store) -> None:
    snap = read_snapshot(seeded, EXP, dead_after_s=60)
    view = front_view(snap, "mean", "val_iou")
    points = view["points"]
    expected = pareto_front([(p["x"], p["y"]) for p in points], maximize=[False, True])
    assert set(view["front"]) == {points[i]["name"] for i in expected}
    assert {p["opacity"] for p in points if p["iteration"] == 2} == {1.0}
    assert {p["opacity"] for p in points if p["iteration"] == 1} == {0.7}  # plots' fade of age 1
    flipped = front_view(snap, "mean", "val_iou", maximize_x=True, maximize_y=False)
    assert set(flipped["front"]) != set(view["front"])
    assert front_view(snap, "nope", None)["x"] == "mean"  # unknown axes fall back to the defaults


def test_the_host_rule_and_the_token() -> None:
    for host in ("127.0.0.1", "localhost", "::1", "[::1]"):
        assert not needs_token(host) and check_token(host, None) is None
    for host in ("127.0.0.2", "0.0.0.0", "192.168.1.5", "::"):
        assert needs_token(host)
        with pytest.raises(ConfigError, match="needs a token"):
            check_token(host, None)
    with pytest.raises(ConfigError, match="at least 16"):
        check_token("0.0.0.0", "short")


def _client(store: Store, token: str | None = None, interval: float = 0.2) -> tuple[TestClient, Poller]:
    poller = Poller(store, EXP, interval_s=interval, dead_after_s=60)
    return TestClient(create_app(poller, token=token, wait_s=3.0), base_url="http://127.0.0.1"), poller


def test_read_only_loopback_host_csp_and_escaping(seeded: Store) -> None:
    client, _ = _client(seeded)
    page = client.get("/")
    assert page.status_code == 200 and "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff" and "<script>" not in page.text
    hostile = '"><img src=x onerror=alert(1)>'
    shown = client.get("/", params={"experiment": hostile}).text
    assert hostile not in shown and "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;" in shown
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        assert client.request(method, "/api/state").status_code == 405
    assert client.get("/", headers={"Host": "attacker.example:8765"}).status_code == 421
    assert client.get("/api/state", params={"experiment": "a/b"}).status_code == 400
    assert client.get("/download", params={"name": "id_0000", "blob": "../x"}).status_code == 400


def test_the_token_is_checked_on_every_request(seeded: Store) -> None:
    token = "t" * 24
    client, _ = _client(seeded, token=token)
    for path in ("/", "/api/state", "/static/dashboard.js", "/api/model?name=id_0000"):
        assert client.get(path).status_code == 401, path
    assert client.get("/api/state", headers={"Authorization": "Bearer wrong-token-wrong"}).status_code == 401
    assert client.get("/api/state", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    answer = client.get(f"/?experiment={EXP}&token={token}", follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == f"/?experiment={EXP}"
    assert "HttpOnly" in answer.headers["set-cookie"] and "SameSite=Strict" in answer.headers["set-cookie"]
    client.cookies.set("archai_aml_dashboard", token)
    assert client.get("/api/state").status_code == 200


def test_conditional_requests_and_a_change_within_one_refresh(seeded: Store) -> None:
    client, poller = _client(seeded, interval=0.2)
    poller.start()
    try:
        first = client.get("/api/state", params={"experiment": EXP})
        etag = first.headers["etag"]
        again = client.get("/api/state", params={"experiment": EXP}, headers={"If-None-Match": etag})
        assert again.status_code == 304
        started = time.monotonic()
        timer = threading.Timer(0.5, lambda: seeded.merge(EXP, "id_0003", {"status": "retrained"}))
        timer.start()
        changed = client.get(
            "/api/state", params={"experiment": EXP, "wait": "1"}, headers={"If-None-Match": etag}
        )
        took = time.monotonic() - started
        timer.join()
        assert changed.status_code == 200 and changed.headers["etag"] != etag
        assert changed.json()["data"]["counts"]["retrained"] == 1
        assert 0.5 <= took < 0.5 + 0.2 + 1.0  # the change, then at most one refresh (and slack)
        other = client.get("/api/state", params={"experiment": EXP, "x": "val_iou", "y": "mean"})
        assert other.headers["etag"] != changed.headers["etag"]  # the view is part of the ETag
    finally:
        poller.stop()


def test_model_page_data_and_download(seeded: Store, tmp_path: Path) -> None:
    seeded.upload_bytes(f"{EXP}-latency", "id_0000", "model.onnx", b"onnx-bytes")
    client, _ = _client(seeded)
    model = client.get("/api/model", params={"experiment": EXP, "name": "id_0000"}).json()
    assert [r["partition"] for r in model["rows"]] == [EXP, f"{EXP}-latency"]
    assert model["sources"] == {"mean": "cpu target: onnxruntime 1.x on x86-64"}
    assert model["blobs"] == [{"partition": f"{EXP}-latency", "blob": "model.onnx", "kind": "model"}]
    got = client.get(
        "/download", params={"experiment": f"{EXP}-latency", "name": "id_0000", "blob": "model.onnx"}
    )
    assert got.content == b"onnx-bytes" and got.headers["content-disposition"].startswith("attachment")
    assert client.get("/api/model", params={"experiment": EXP, "name": "nobody"}).status_code == 404


def test_the_command_names_the_extra_when_starlette_is_missing(tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['starlette'] = None\n"
        "from archai_aml.cli import main\n"
        "sys.exit(main(['dashboard']))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert proc.returncode == 2 and "pip install 'archai-aml[dashboard]'" in proc.stderr, proc.stderr


@pytest.mark.azure
def test_a_refresh_sends_the_same_http_requests_for_10_and_60_rows_on_azurite(azurite: Any) -> None:
    from archai_aml.runner.settings import runners_store
    from archai_aml.runner.usage import usage_store
    from archai_aml.store.azure.http_counter import HttpCounter

    sent = {}
    for rows in (10, 60):
        counter = HttpCounter()
        config = azurite.store_config(table_name=f"d{uuid.uuid4().hex[:10]}", container_name="dash")
        with open_store(config, per_call_policies=[counter]) as store:
            seed_experiment(store, EXP, rows)
            tables = {"runners": runners_store(store), "usage": usage_store(store)}
            read_snapshot(store, EXP, dead_after_s=60, **tables)
            before = counter.total
            assert len(read_snapshot(store, EXP, dead_after_s=60, **tables)["models"]) == rows
            sent[rows] = counter.total - before
            counter.counts.clear()
            read_snapshot(store, EXP, dead_after_s=60, **tables)
            assert set(counter.counts) == {"GET table"}  # reads only, no table creation once warm
    assert sent[10] == sent[60]


def test_predicted_and_simulated_figures_are_marked() -> None:
    from archai_aml.dashboard.snapshot import figure_marks

    row = {
        "mean": 2.0,
        "f1_1k": 0.8,
        "val_iou": 0.5,
        "sources": '{"f1_1k": "qnn HTP emulator on x86-64 (simulated)", "val_iou": "train.py, 1 epoch"}',
    }
    assert figure_marks(row) == {"f1_1k": "simulated"}
    assert figure_marks({**row, "latency_source": "predicted"}) == {"f1_1k": "simulated", "mean": "predicted"}
    assert figure_marks({**row, "latency_simulated": True})["mean"] == "simulated"
    assert figure_marks({"mean": 1.0, "sources": '{"mean": "predicted by the cpu latency model"}'}) == {
        "mean": "predicted"
    }
    assert figure_marks({"sources": "not json <script>"}) == {}  # unreadable sources: no marks, no error


@pytest.mark.parametrize("ci", ["", "true"])
def test_the_browser_tests_skip_without_chromium_and_fail_under_ci(ci: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env.update({"CHROMIUM_BIN": str(tmp_path / "no-chromium"), "PYTHONPATH": str(ROOT), "CI": ci})
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider",
         "tests/test_dashboard_browser.py", "-k", "hostile"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    if ci:
        assert proc.returncode == 1 and "CI=true and the dashboard's browser tests cannot run" in proc.stdout
    else:
        assert proc.returncode == 0 and "1 skipped" in proc.stdout, proc.stdout[-2000:]
        assert "no headless Chromium for the dashboard's browser tests: no chromium found" in proc.stdout
