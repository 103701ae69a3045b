"""The elastic quantizer fleet (docker/quantizer/): the manifests against the Kubernetes schemas, the container's
entrypoint command as a real process on the embedded store, and the queue-depth endpoint KEDA polls.

Docker is not available on the development machine: the image is not built here. What the image would run is
run instead: the Dockerfile's ENTRYPOINT (without tini) plus the Deployment's args, with the Deployment's env.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from archai_aml.config import StoreConfig
from archai_aml.runner.metrics import HELP, MetricsServer, QueueMetrics, queue_counts
from archai_aml.runner.worker import runners_store
from archai_aml.store import open_store
from archai_aml.store.leases import LeaseManager
from archai_aml.targets import available_targets
from tests.runner_models import add_rows

ROOT = Path(__file__).resolve().parents[1]
FLEET = ROOT / "docker" / "quantizer"
K8S_VERSION = "1.30.0"
ARCHAI_AML = Path(sys.executable).with_name("archai-aml")


def manifests() -> dict[tuple[str, str], dict[str, Any]]:
    docs = {}
    for path in sorted((FLEET / "k8s").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                docs[(doc["kind"], doc["metadata"]["name"])] = doc
    return docs


def entrypoint() -> list[str]:
    text = (FLEET / "Dockerfile").read_text()
    entry = json.loads(re.search(r"^ENTRYPOINT (\[.*\])$", text, re.M).group(1))  # type: ignore[union-attr]
    assert entry[:2] == ["tini", "--"]
    return entry[2:]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def prometheus_value(text: str, name: str) -> float:
    """The sample of ``name`` in a Prometheus text exposition (as the metrics-api scaler reads it)."""
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, value = line.split()
            if key == name:
                return float(value)
    raise AssertionError(f"{name} not in {text!r}")


def test_manifests_validate_against_the_kubernetes_schemas() -> None:
    docs = manifests()
    keda = {k: d for k, d in docs.items() if d["apiVersion"].startswith("keda.sh/")}
    for key, doc in docs.items():
        if key not in keda:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    # a broken manifest does fail: the validator is not a formality
    bad = json.loads(json.dumps(docs[("Deployment", "archai-aml-quantizer")]))
    bad["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["cpu"] = {"many": 2}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, K8S_VERSION, strict=True)

    # the KEDA ScaledObject is not in kubernetes-validate's schemas: checked structurally against the others
    (scaled,) = keda.values()
    assert scaled["apiVersion"] == "keda.sh/v1alpha1" and scaled["kind"] == "ScaledObject"
    spec = scaled["spec"]
    target = docs[("Deployment", spec["scaleTargetRef"]["name"])]
    assert (
        spec["scaleTargetRef"]["kind"] == "Deployment"
        and target["metadata"]["name"] == "archai-aml-quantizer"
    )
    assert 0 <= spec["minReplicaCount"] < spec["maxReplicaCount"]
    (trigger,) = spec["triggers"]
    meta = trigger["metadata"]
    assert trigger["type"] == "metrics-api" and meta["format"] == "prometheus"
    assert meta["valueLocation"].removeprefix("archai_aml_") in HELP and float(meta["targetValue"]) > 0
    m = re.fullmatch(r"http://([a-z0-9-]+)\.([a-z0-9-]+)\.svc\.cluster\.local:(\d+)/metrics", meta["url"])
    assert m, meta["url"]
    service = docs[("Service", m.group(1))]
    assert service["metadata"]["namespace"] == m.group(2) == scaled["metadata"]["namespace"]
    assert int(m.group(3)) == service["spec"]["ports"][0]["port"]
    # the Service selects the metrics-only pod (there is none of the scaled Deployment at zero replicas)
    metrics_pod = docs[("Deployment", "archai-aml-queue-metrics")]["spec"]["template"]
    assert service["spec"]["selector"].items() <= metrics_pod["metadata"]["labels"].items()
    assert "--metrics-only" in metrics_pod["spec"]["containers"][0]["args"]


def test_deployment_secrets_probes_and_graceful_stop() -> None:
    dep = manifests()[("Deployment", "archai-aml-quantizer")]
    pod = dep["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    env = {e["name"]: e for e in c["env"]}
    assert env["ARCHAI_AML_STORE"]["valueFrom"]["secretKeyRef"]["name"] == "archai-aml-store"
    assert all("value" not in e or "AccountKey" not in e["value"] for e in c["env"])
    assert {"cpu", "memory"} <= set(c["resources"]["requests"])
    port = {p["name"]: p["containerPort"] for p in c["ports"]}["metrics"]
    assert f"--metrics-port {port}" in " ".join(entrypoint())
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    args = c["args"]
    ttl = float(args[args.index("--lease-ttl") + 1])
    poll = float(args[args.index("--poll-interval") + 1])
    # liveness fails only after the runner's heartbeat limit (3 x ttl + poll) has passed
    probe = c["livenessProbe"]
    assert probe["periodSeconds"] * probe["failureThreshold"] >= 0.4 * (3 * ttl + poll)
    # a pod killed after its grace period loses its lease within ttl; the grace period covers an item
    assert pod["terminationGracePeriodSeconds"] > ttl
    assert pod["securityContext"]["runAsNonRoot"] and pod["securityContext"]["runAsUser"] != 0
    text = (FLEET / "Dockerfile").read_text()
    assert re.search(r'pip install "\.\[azure,qnn\]"', text) and re.search(r"^USER 10001", text, re.M)
    assert entrypoint()[:3] == ["archai-aml", "runner", "--no-device-work"]


def test_queue_counts_follow_leases(tmp_path: Path) -> None:
    with open_store(StoreConfig(path=tmp_path / "store")) as store:
        add_rows(store, "e", 3, benchmark_only=True)
        add_rows(store, "other", 2)
        metrics = QueueMetrics(store, "e", cache_s=0)
        assert metrics.counts() == {"rows_waiting_quantization": 3, "rows_quantizing": 0,
                                    "quantization_backlog": 3, "rows_waiting_no_device_work": 3, "rows_open": 3}  # fmt: skip
        LeaseManager(store, "e").acquire("id_001", "somebody", 60)
        counts = metrics.counts()
        assert counts["rows_waiting_quantization"] == 2 and counts["rows_quantizing"] == 1
        assert counts["quantization_backlog"] == 3
        store.merge("e", "id_002", {"macs": 10, "quantized": True})  # converted: no longer in the backlog
        store.merge("e", "id_000", {"status": "error", "error": "x"})
        counts = metrics.counts()  # id_001 leased, id_002 converted (its benchmarks need a device)
        assert counts["quantization_backlog"] == 1 and counts["rows_open"] == 2
        assert counts["rows_waiting_no_device_work"] == 0
        assert queue_counts([]) == dict.fromkeys(counts, 0)
        # served over HTTP, with a heartbeat that goes stale
        beat = [time.monotonic()]
        server = MetricsServer(QueueMetrics(store, "e", heartbeat=lambda: beat[0], max_heartbeat_age_s=30),
                               "127.0.0.1", 0).start()  # fmt: skip
        try:
            base = f"http://127.0.0.1:{server.port}"
            status, body = get(base + "/metrics")
            assert status == 200 and prometheus_value(body, "archai_aml_quantization_backlog") == 1
            assert "# TYPE archai_aml_rows_open gauge" in body
            assert json.loads(get(base + "/queue")[1])["quantization_backlog"] == 1
            assert get(base + "/healthz")[0] == 200
            beat[0] -= 31
            status, body = get(base + "/healthz")
            assert status == 503 and "last heartbeat" in json.loads(body)["detail"]
            assert get(base + "/nope")[0] == 404
        finally:
            server.stop()


def _command(args: list[str], env: dict[str, str], **replace: str) -> list[str]:
    expanded = [re.sub(r"\$\((\w+)\)", lambda m: env[m.group(1)], a) for a in args]
    return [replace.get(a, a) for a in expanded]


@pytest.mark.slow
def test_the_entrypoint_quantizes_queued_rows_and_the_backlog_follows(tmp_path: Path) -> None:
    docs = manifests()
    quantizer = docs[("Deployment", "archai-aml-quantizer")]["spec"]["template"]["spec"]["containers"][0]
    meter = docs[("Deployment", "archai-aml-queue-metrics")]["spec"]["template"]["spec"]["containers"][0]
    deployment_env = {e["name"]: e.get("value", "") for e in quantizer["env"]}
    assert {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}} in quantizer["env"]
    assert "$(POD_IP)" in quantizer["args"] and "$(POD_IP)" in meter["args"]
    deployment_env["POD_IP"] = "127.0.0.1"  # the downward API's pod address, here
    experiment = deployment_env["ARCHAI_AML_EXPERIMENT"]
    if "qnn" not in available_targets():  # the QNN target is another issue's; the CPU target stands in
        deployment_env["ARCHAI_AML_TARGET"] = "cpu"
    store_dir = tmp_path / "store"
    with open_store(StoreConfig(path=store_dir)) as store:
        names = add_rows(store, experiment, 3, benchmark_only=True)
    # the Secret's connection string is the embedded store's folder here; /tmp and /work are the pod's emptyDirs
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARCHAI_AML_")}
    env.update({"ARCHAI_AML_STORE": str(store_dir), "TMPDIR": str(tmp_path), "OMP_NUM_THREADS": "1"})
    meter_port, runner_port = free_port(), free_port()
    work = str(tmp_path / "work" / "runner")
    meter_cmd = _command([*entrypoint(), *meter["args"]], deployment_env, **{"9100": str(meter_port)})
    runner_cmd = _command([*entrypoint(), *quantizer["args"]], deployment_env,
                          **{"9100": str(runner_port), "/work/runner": work})  # fmt: skip
    runner_cmd[0] = meter_cmd[0] = str(ARCHAI_AML)
    meter_proc = subprocess.Popen(
        meter_cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    runner_proc = None
    try:
        base = f"http://127.0.0.1:{meter_port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                status, body = get(base + "/metrics")
                break
            except OSError:
                assert time.monotonic() < deadline and meter_proc.poll() is None, meter_proc.stdout.read()  # type: ignore[union-attr]
                time.sleep(0.3)
        assert status == 200 and prometheus_value(body, "archai_aml_quantization_backlog") == 3
        assert prometheus_value(body, "archai_aml_rows_waiting_quantization") == 3
        assert get(base + "/healthz")[0] == 200

        runner_proc = subprocess.Popen(runner_cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                       text=True)  # fmt: skip
        seen = []
        deadline = time.monotonic() + 240
        while not seen or seen[-1] > 0:
            assert time.monotonic() < deadline, (seen, shlex.join(runner_cmd))
            assert runner_proc.poll() is None, runner_proc.stdout.read()  # type: ignore[union-attr]
            seen.append(prometheus_value(get(base + "/metrics")[1], "archai_aml_quantization_backlog"))
            time.sleep(1.0)
        assert seen[0] == 3 and seen == sorted(seen, reverse=True), seen
        status, body = get(f"http://127.0.0.1:{runner_port}/healthz")
        assert status == 200, body
        assert prometheus_value(get(f"http://127.0.0.1:{runner_port}/metrics")[1],
                                "archai_aml_runner_heartbeat_age_seconds") < 60  # fmt: skip
        with open_store(StoreConfig(path=store_dir)) as store:
            for name in names:
                row = store.get(experiment, name)
                assert row is not None and row["quantized"] and row["macs"] is not None, row
                assert row["quantized_model"] in store.list_blobs(experiment, name)
                assert row.get("total_inference_avg") is None  # no device work in the no-device mode
        # SIGTERM (a scale-in): the runner stops at once when idle, exits 0, says it stopped
        runner_proc.send_signal(signal.SIGTERM)
        assert runner_proc.wait(timeout=60) == 0
        with open_store(StoreConfig(path=store_dir)) as store:
            beats = runners_store(store).query(experiment)
            assert beats and {b["state"] for b in beats} == {"stopped"}
    finally:
        for proc in (runner_proc, meter_proc):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
    assert meter_proc.returncode == 0
