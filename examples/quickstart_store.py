"""Quick start of the archai-aml status store: no Azure account, no server, a few seconds.

1. exports three tiny segmentation nets to ONNX with torch;
2. uploads each one as a new status row with ``archai-aml upload`` (the console script's code, in-process);
3. takes a lease on one model as a "runner" would, runs it with onnxruntime, writes the measured latency
   and releases the lease with status ``complete``;
4. prints ``archai-aml status``; downloads the blobs back and checks they are byte-identical.

The store is the embedded one under ``--output`` unless ``--config`` or ``ARCHAI_AML_STORE`` /
``MODEL_STORAGE_CONNECTION_STRING`` name another (for example Azurite: ``UseDevelopmentStorage=true``).

    python examples/quickstart_store.py --output demo_output
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
import warnings
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from archai_aml.cli import main as archai_aml
from archai_aml.config import load_config
from archai_aml.store import LeaseManager, open_store, store_config_from_env

log = logging.getLogger("quickstart")

EXPERIMENT = "quickstart"


class TinySegNet(torch.nn.Module):
    """A two-layer conv net that maps an RGB image to per-pixel logits of ``classes`` classes."""

    def __init__(self, width: int, classes: int = 3) -> None:
        super().__init__()
        self.body = torch.nn.Sequential(
            torch.nn.Conv2d(3, width, 3, padding=1),
            torch.nn.ReLU(),
            torch.nn.Conv2d(width, width, 3, padding=1),
        )
        self.head = torch.nn.Conv2d(width, classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.body(x)))


def export_models(folder: Path, widths: list[int]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    torch.manual_seed(0)
    for width in widths:
        path = folder / f"tiny_w{width}.onnx"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter: fast and quiet
            torch.onnx.export(
                TinySegNet(width).eval(),
                (torch.randn(1, 3, 64, 64),),
                str(path),
                dynamo=False,
                input_names=["input"],
                output_names=["logits"],
            )
        log.info("exported %s (%d bytes)", path, path.stat().st_size)
        paths.append(path)
    return paths


def measure(model: Path, runs: int = 20) -> tuple[float, list[int]]:
    """Median latency in ms of one 64x64 image on the CPU, and the output shape."""
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).standard_normal((1, 3, 64, 64), dtype=np.float32)
    out = session.run(None, {"input": x})[0]
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        session.run(None, {"input": x})
        times.append((time.perf_counter() - t0) * 1000)
    return float(np.median(times)), list(out.shape)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--output", default="demo_output", help="folder for the models, the store, downloads")
    parser.add_argument("--config", help="YAML configuration naming another store")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    output = Path(args.output).resolve()
    output.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()

    cli_prefix: list[str] = []
    if args.config:
        store_config = load_config(args.config).store
        cli_prefix = ["--config", args.config]
    else:
        store_config = store_config_from_env()
        if store_config is None:  # the default: an embedded store in the output folder
            os.environ["ARCHAI_AML_STORE"] = str(output / "store")
            store_config = store_config_from_env()
    assert store_config is not None
    log.info("store: %s backend, table %s", store_config.backend, store_config.table_name)

    # 1-2. export and upload (re-running the example replaces the rows: --reset)
    models = export_models(output / "models", widths=[4, 8, 16])
    for priority, model in enumerate(models):
        code = archai_aml(
            [*cli_prefix, "upload", str(model), "-e", EXPERIMENT, "--priority", str(priority), "--reset"]
        )
        if code != 0:
            return code

    with open_store(store_config) as store:
        # 3. a runner takes the lease on the first new model by priority, measures it, releases it
        leases = LeaseManager(store, EXPERIMENT)
        new_rows = sorted(store.query(EXPERIMENT, status="new"), key=lambda r: r.get("priority", 0))
        row = new_rows[0]
        lease = leases.acquire(row["name"], owner=f"quickstart-{os.getpid()}", ttl=60, entity=row)
        if lease is None:
            log.error("could not lease %s: another runner holds it", row["name"])
            return 1
        log.info("leased %s until %s", lease.name, lease.expires.isoformat())
        lease = leases.write(lease, {"status": "running"})
        workdir = output / "runner" / lease.name
        store.download(EXPERIMENT, lease.name, workdir, pattern=r"^model\.onnx$")
        latency_ms, shape = measure(workdir / "model.onnx")
        leases.release(
            lease,
            extra={"status": "complete", "cpu_latency_ms": latency_ms, "output_shape": json.dumps(shape)},
        )
        log.info("measured %s: %.3f ms median, output %s", lease.name, latency_ms, shape)

        # 4. the status table, then every blob back, byte for byte
        archai_aml([*cli_prefix, "status", "-e", EXPERIMENT, "--sort", "priority"])
        for model in models:
            back = store.download(EXPERIMENT, model.stem, output / "downloaded" / model.stem)
            if [p.read_bytes() for p in back] != [model.read_bytes()]:
                log.error("downloaded blobs of %s differ from the upload", model.stem)
                return 1
        done = store.get(EXPERIMENT, lease.name)
        assert done is not None and done["status"] == "complete" and "lease_owner" not in done
    print(
        f"quickstart: {len(models)} models uploaded, {lease.name} leased and measured "
        f"({latency_ms:.3f} ms), blobs verified, in {time.perf_counter() - started:.1f}s; output in {output}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
