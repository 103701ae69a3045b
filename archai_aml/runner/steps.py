"""The steps of a work item: convert + quantize + model info, one latency benchmark run, one F1 run.

:class:`ItemSteps` does one item on a leased row and returns the columns to write with the release; its
store writes (uploads, usage rows) go through the runner's ``later`` hook, so they run on the runner's I/O
threads next to the work. A failure of the model or the target raises :class:`ItemFailed` (the row's
``error``); store errors and a lost lease pass through to the runner.
"""

from __future__ import annotations

import csv
import json
import logging
import shutil
import statistics
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from archai_aml.errors import InvalidRowError, LeaseLostError, StoreError, TargetError
from archai_aml.runner.failures import ItemFailed
from archai_aml.runner.holding import LeaseHolder
from archai_aml.runner.queue import (
    DEVICE_KINDS,
    F1_COLUMNS,
    WorkItem,
    check_json_columns,
    is_benchmark_only,
    parse_json_list,
    parse_shape,
)
from archai_aml.runner.settings import RunnerSettings
from archai_aml.runner.usage import record_usage, usage_name
from archai_aml.store.base import Store, as_float
from archai_aml.store.leases import utcnow
from archai_aml.targets.base import Target

__all__ = ["CONVERTED_DIR", "MODEL_BLOB", "QUANTIZED_DIR", "ItemSteps"]

log = logging.getLogger(__name__)

CONVERTED_DIR = "converted"
QUANTIZED_DIR = "quantized"
MODEL_BLOB = "model.onnx"


class ItemSteps:
    """Does the work items of one runner (see the module docstring)."""

    def __init__(
        self,
        store: Store,
        target: Target,
        settings: RunnerSettings,
        *,
        node: str,
        device_id: str,
        usage: Store,
        later: Callable[..., None],
    ) -> None:
        self.store = store
        self.target = target
        self.settings = settings
        self.experiment = settings.experiment
        self.node = node
        self.device_id = device_id
        self.usage = usage
        self._later = later

    def _upload(self, name: str, path: Path, blob_name: str) -> None:
        self._later(self.store.upload, self.experiment, name, path, blob_name=blob_name)

    def _record_usage(self, name: str, item: str, start: datetime, end: datetime) -> None:
        self._later(
            record_usage,
            self.usage, device=self.device_id, node=self.node, start=start, end=end,
            row=name, experiment=self.experiment, item=item, name=usage_name(start),
        )  # fmt: skip

    def _status(self, holder: LeaseHolder, status: str, what: str) -> None:
        """Say what is happening in the row, with the next lease renewal (nothing when the lease write
        already said it)."""
        if holder.lease.entity.get("status") != status or holder.notes:
            holder.note({"status": status, "message": f"{what} on {self.node}"})

    def _call(self, what: str, fn: Any, *args: Any, artifact: str | None = None, **kwargs: Any) -> Any:
        """Call the target; any failure of the model or backend becomes the row's error (``artifact``: the
        derived blob the call reads, if any)."""
        try:
            return fn(*args, **kwargs)
        except (LeaseLostError, StoreError):
            raise
        except Exception as exc:
            raise ItemFailed(what, artifact) from exc

    def _note_source(
        self,
        holder: LeaseHolder,
        values: dict[str, Any],
        columns: list[str],
        step: str,
        model: Path,
        target: Target | None = None,
    ) -> None:
        """Add to ``values`` the row's ``sources`` column (JSON: figure column -> where it came from, as
        :meth:`Target.source` says), keeping what earlier steps wrote there."""
        target = target or self.target
        try:
            what = str(target.source(step, model))
        except Exception as exc:  # a description must never cost the measured figures
            log.warning("%s could not say where its %s figures came from: %s", target.name, step, exc)
            what = f"{target.name} target"
        try:
            sources = json.loads(holder.lease.entity.get("sources") or "{}")
        except (TypeError, ValueError):
            sources = {}
        if not isinstance(sources, dict):
            sources = {}
        sources.update(dict.fromkeys(columns, what))
        values["sources"] = json.dumps(sources, sort_keys=True)

    def _download(
        self, name: str, folder: Path, blob: str, *, what: str | None = None, missing: str | None = None
    ) -> Path:
        """Download one blob of the row; a missing one fails the item as ``what`` (default: the blob)."""
        try:
            paths = self.store.download(self.experiment, name, folder, blob_names=[blob])
        except FileNotFoundError:
            paths = []
        if not paths:
            raise ItemFailed(what or blob) from FileNotFoundError(
                missing or f"blob {blob} of {name} is missing"
            )
        return paths[0]

    def do(self, item: WorkItem, holder: LeaseHolder, folder: Path) -> dict[str, Any]:
        entity = holder.lease.entity
        check_json_columns(entity)  # InvalidRowError before any work (and device time) is spent
        shapes = parse_shape(entity)
        if item.kind == "convert":
            return self._convert(item, holder, folder, shapes)
        if item.kind == "benchmark":
            return self._benchmark(item, holder, folder)
        return self._f1(item, holder, folder, shapes)

    # ---------------------------------------------------------------------------- convert + quantize
    def _convert(
        self, item: WorkItem, holder: LeaseHolder, folder: Path, shapes: list[list[int]] | None
    ) -> dict[str, Any]:
        name = item.name
        blobs = set(self.store.list_blobs(self.experiment, name))  # what a runner before us left
        if MODEL_BLOB not in blobs:
            raise ItemFailed("missing model") from FileNotFoundError(_missing_model(name))
        results: dict[str, Any] = {}
        onnx_path = self._download(name, folder, MODEL_BLOB)
        if shapes is None:
            shapes = self._call("reading the model's input shape", _onnx_input_shapes, onnx_path)
            results["shape"] = json.dumps(shapes[0] if len(shapes) == 1 else shapes)
        converted = sorted(b for b in blobs if b.startswith(CONVERTED_DIR + "/"))
        if converted:
            results["converted_model"] = converted[0]
        else:
            self._status(holder, "converting", "converting")
            conv_path = self._call("convert", self.target.convert, onnx_path, folder / CONVERTED_DIR)
            holder.check()
            results["converted_model"] = f"{CONVERTED_DIR}/{conv_path.name}"
            self._upload(name, conv_path, results["converted_model"])
        # a quantized model's companions (an EP-context model's .bin context binary) are never the model
        quantized = sorted(b for b in blobs if b.startswith(QUANTIZED_DIR + "/") and not b.endswith(".bin"))
        if quantized:
            quant_path = self._download(name, folder, quantized[0])
            self._download_companions(name, folder, quant_path, quantized[0])
            results["quantized_model"] = quantized[0]
        else:
            self._status(holder, "quantizing", "quantizing")
            calibration = _calibration(self.settings, shapes[0])
            quant_path = self._call(
                "quantize", self.target.quantize, onnx_path, calibration, folder / QUANTIZED_DIR
            )
            holder.check()
            results["quantized_model"] = f"{QUANTIZED_DIR}/{quant_path.name}"
            for extra in self.target.companion_files(quant_path):
                self._upload(name, quant_path.parent / extra, f"{QUANTIZED_DIR}/{extra}")
            self._upload(name, quant_path, results["quantized_model"])
        info = self._call(
            "model info",
            self.target.info,
            quant_path,
            folder / "info",
            artifact=quantized[0] if quantized else None,
        )
        holder.check()
        if info.layers_csv is not None and Path(info.layers_csv).is_file():
            self._upload(name, Path(info.layers_csv), "model.info.csv")
        self._note_source(holder, results, ["macs", "params"], "info", quant_path)
        results.update(
            {
                "macs": int(info.macs),
                "params": int(info.params),
                "quantized": True,
                "status": "converted",
                "message": f"converted on {self.node}",
            }
        )
        return results

    # ------------------------------------------------------------------------------------- benchmark
    def _model(self, holder: LeaseHolder, folder: Path, prefix: str) -> Path:
        """Download the row's converted or quantized model: the blob its ``<prefix>_model`` column names
        (written by the conversion), else the first ``<prefix>/`` blob listed (rows converted before that
        column existed)."""
        name = holder.lease.name
        recorded = holder.lease.entity.get(f"{prefix}_model")
        if isinstance(recorded, str) and recorded.startswith(prefix + "/"):
            blob = recorded
        else:
            found = sorted(
                b
                for b in self.store.list_blobs(self.experiment, name)
                if b.startswith(prefix + "/") and not b.endswith(".bin")  # a context binary is a companion
            )
            if not found:
                raise ItemFailed(f"missing {prefix} model") from FileNotFoundError(_missing_derived(prefix))
            blob = found[0]
        path = self._download(
            name, folder, blob, what=f"missing {prefix} model", missing=_missing_derived(prefix, blob)
        )
        self._download_companions(name, folder, path, blob)
        return path

    def _download_companions(self, name: str, folder: Path, model: Path, blob: str) -> None:
        """The files a downloaded model loads from beside it (:meth:`Target.companion_files`)."""
        extras = self._call("reading the model's companion files", self.target.companion_files, model)
        prefix = blob.rpartition("/")[0]
        for extra in extras:
            what = f"missing {extra} beside {blob}"
            self._download(name, folder, f"{prefix}/{extra}" if prefix else extra, what=what)

    def _benchmark(self, item: WorkItem, holder: LeaseHolder, folder: Path) -> dict[str, Any]:
        name, entity = item.name, holder.lease.entity
        model = self._model(holder, folder, QUANTIZED_DIR)
        self._status(
            holder, "running benchmark", f"benchmark run {item.run + 1}/{self.settings.max_benchmark_runs}"
        )
        start = utcnow()
        result = self._call(
            "benchmark",
            self.target.benchmark,
            model,
            iterations=self.settings.benchmark_iterations,
            artifact=model.relative_to(folder).as_posix(),
        )
        end = utcnow()
        holder.check()
        csv_path = folder / f"benchmark_{item.run + 1}.csv"
        if result.csv is not None and Path(result.csv).is_file():
            shutil.copyfile(result.csv, csv_path)
        else:
            with csv_path.open("w", newline="", encoding="utf-8") as f:
                w = csv.writer(f)
                w.writerow(["iteration", "latency_ms"])
                w.writerows(enumerate(result.samples_ms))
        self._upload(name, csv_path, f"benchmark/{csv_path.name}")
        self._record_usage(name, item.label, start, end)
        runs = [float(x) for x in parse_json_list(entity, "total_inference_avg")] + [float(result.mean_ms)]
        mean = statistics.mean(runs)
        # robust figures beside the mean: on a shared host a few preempted runs double a sub-millisecond
        # model's mean while its median and fastest run hardly move (docs/search.md, measurement noise)
        medians = [float(x) for x in parse_json_list(entity, "total_inference_median")]
        medians.append(float(result.median_ms))
        fastest = min(result.samples_ms) if result.samples_ms else float(result.median_ms)
        previous_min = as_float(entity.get("min"))
        values: dict[str, Any] = {
            "total_inference_avg": json.dumps(runs),
            "mean": mean,
            "total_inference_median": json.dumps(medians),
            "median": statistics.median(medians),
            "min": fastest if previous_min is None else min(previous_min, fastest),
            "latency_simulated": bool(result.latency_simulated),
            # who measured it: a latency predictor learns per target and device (archai_aml.predict)
            "target": self.target.name,
            "device": self.device_id,
            "status": "benchmarked",
            "message": f"benchmark run {len(runs)} done on {self.node}",
        }
        if len(runs) > 1 and mean > 0:
            values["stdev"] = statistics.stdev(runs) * 100.0 / mean
        self._note_source(
            holder, values, ["mean", "stdev", "total_inference_avg", "median", "min"], "benchmark", model
        )
        if len(runs) >= self.settings.max_benchmark_runs and is_benchmark_only(
            entity, self.settings.benchmark_only
        ):
            values.update({"status": "complete", "completed": end, "message": f"complete on {self.node}"})
        return values

    # -------------------------------------------------------------------------------------------- F1
    def _f1(
        self,
        item: WorkItem,
        holder: LeaseHolder,
        folder: Path,
        shapes: list[list[int]] | None,
    ) -> dict[str, Any]:
        from archai_aml.data import open_dataset
        from archai_aml.scoring.segmentation import F1Accumulator, save_pr_curve_png, write_scores_csv

        name, prop, s = item.name, item.kind, self.settings
        if shapes is None:
            raise InvalidRowError(f"row {name!r} has no shape: cannot build the {prop} test set")
        size = {"f1_onnx": s.f1_onnx_images, "f1_1k": s.f1_1k_images, "f1_1k_f": s.f1_1k_images}.get(
            prop, s.f1_10k_images
        )
        target = self.target
        if prop == "f1_onnx":  # the float export on onnxruntime's CPU provider, wherever the runner is
            from archai_aml.targets import get_target

            model = self._download(name, folder, MODEL_BLOB)
            target = get_target("cpu", progress=False)  # one session for the whole test set
        elif prop == "f1_1k_f":
            model = self._model(holder, folder, CONVERTED_DIR)
        else:
            model = self._model(holder, folder, QUANTIZED_DIR)
        derived = None if prop == "f1_onnx" else model.relative_to(folder).as_posix()
        self._status(holder, f"running {prop}", f"{prop} on {size} images")
        shape = shapes[0]
        data = self._call("opening the test set", open_dataset, s.dataset, split="test", length=size,
                          image_size=(shape[-2], shape[-1]))  # fmt: skip
        acc = F1Accumulator(
            data.num_classes, pr_classes=range(data.num_classes) if data.num_classes <= 20 else ()
        )
        start = utcnow()
        batch = max(1, shape[0])
        for first in range(0, len(data), 64):
            holder.check()
            pairs = [data[i] for i in range(first, min(first + 64, len(data)))]
            images = np.stack([p[0] for p in pairs]).astype(np.float32)
            labels = np.stack([p[1] for p in pairs])
            outputs = self._call(prop, target.run_batch, model, images, batch_size=batch, artifact=derived)
            self._call(f"{prop} scoring", acc.update, labels, outputs)
        end = utcnow()
        scores, curves = acc.scores(), acc.pr_curves()
        results_csv = write_scores_csv(scores, folder / f"test_results_{prop}.csv", pr_curves=curves)
        self._upload(name, results_csv, results_csv.name)
        if curves:
            png = save_pr_curve_png(
                {f"class {c}": curve for c, curve in curves.items()},
                folder / f"pr_curve_{prop}.png",
                title=f"{name} {prop}",
            )
            self._upload(name, png, png.name)
        if prop in DEVICE_KINDS:
            self._record_usage(name, prop, start, end)
        f1 = float(scores.mean_f1)
        values: dict[str, Any] = {
            prop: f1,
            "status": f"{prop} done",
            "message": f"{prop}={f1:.4f} on {self.node}",
        }
        self._note_source(holder, values, [prop], "f1", model, target)
        entity = holder.lease.entity
        if all(entity.get(c) is not None or c == prop for c in F1_COLUMNS):
            values.update({"status": "complete", "completed": end, "message": f"complete on {self.node}"})
        return values


def _missing_model(name: str) -> str:
    return f"{MODEL_BLOB} is missing in blob storage for {name}: upload it again"


def _missing_derived(prefix: str, blob: str | None = None) -> str:
    what = f"blob {blob}" if blob else f"no {prefix}/ model"
    return f"{what} missing in blob storage: reset the row's macs/quantized columns to redo the conversion"


def _onnx_input_shapes(path: Path) -> list[list[int]]:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    init = {t.name for t in model.graph.initializer}
    shapes = []
    for inp in model.graph.input:
        if inp.name in init:
            continue
        dims = [d.dim_value if d.dim_value > 0 else 1 for d in inp.type.tensor_type.shape.dim]
        shapes.append(dims)
    if not shapes:
        raise TargetError(f"{path.name} declares no input")
    return shapes


def _calibration(settings: RunnerSettings, shape: list[int]) -> Iterator[np.ndarray]:
    """Calibration batches (1 x C x H x W) from the training split, opened only if the target reads them."""
    from archai_aml.data import open_dataset

    data = open_dataset(
        settings.dataset, split="train", length=settings.calibration_images, image_size=(shape[-2], shape[-1])
    )
    for i in range(len(data)):
        yield np.asarray(data[i][0], dtype=np.float32)[None]
