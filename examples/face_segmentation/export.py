"""A trained checkpoint of the face-segmentation search space to ONNX, checked on onnxruntime.

    python examples/face_segmentation/export.py --config examples/face_segmentation/demo.yaml \
        --output demo_output --model-id id_abc --to model.onnx --input-shape 1,3,64,64 --dynamic-batch
    python examples/face_segmentation/export.py --checkpoint model.pt --arch arch.json --to model.onnx

The weights (``model.pt``) and ArchConfig (``arch.json``) come from files, or from the store where
``train_pareto.py`` left them (``<experiment>-final/<model_id>/``). The export (``--opset``, default 17;
``--input-shape``, default ``target.input_shape``; ``--dynamic-batch``) is loaded in onnxruntime and its
outputs compared with PyTorch's on random inputs (``--rtol``/``--atol``); the script exits 1 if they differ.
Resumable: an existing ``--to`` file that passes the check is kept (``--force`` exports again).
The library does the work: :mod:`archai_aml.onnx.export`.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
from _script import add_common, load, setup_logging  # noqa: E402
from search_space import load_model  # noqa: E402

from archai_aml.errors import ConfigError  # noqa: E402
from archai_aml.onnx.export import ExportCheckError, check_onnx, export_onnx, load_state_dict  # noqa: E402
from archai_aml.store import open_store  # noqa: E402


def _shape(text: str) -> list[int]:
    try:
        return [int(d) for d in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--input-shape takes integers like 1,3,256,256, got {text!r}"
        ) from None


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common(p, output_help="the search's output folder (sets ARCHAI_AML_OUTPUT for the configuration)")
    p.add_argument("--to", type=Path, required=True, help="the ONNX file to write")
    p.add_argument("--model-id", help="model id (id_<archid>) whose fully trained weights are in the store")
    p.add_argument("--experiment", help="partition holding them (default <experiment>-final)")
    p.add_argument("--checkpoint", type=Path, help="model.pt (state dict) instead of the store")
    p.add_argument("--arch", type=Path, help="the ArchConfig JSON of --checkpoint")
    p.add_argument("--opset", type=int, default=17)
    p.add_argument("--input-shape", type=_shape, help="N,C,H,W (default: target.input_shape)")
    p.add_argument("--dynamic-batch", action="store_true", help="a dynamic batch axis")
    p.add_argument("--rtol", type=float, default=1e-3)
    p.add_argument("--atol", type=float, default=1e-4)
    p.add_argument("--force", action="store_true", help="export even if --to exists and passes the check")
    args = p.parse_args(argv)
    log = setup_logging("export", args.verbose)
    config = load(args.config, args.output)
    shape = args.input_shape or list(config.target.input_shape)
    with tempfile.TemporaryDirectory() as tmp:
        if args.checkpoint is not None:
            if args.arch is None:
                raise ConfigError("--checkpoint needs --arch (the model's ArchConfig JSON)")
            checkpoint, arch = args.checkpoint, args.arch
        elif args.model_id:
            experiment = args.experiment or f"{config.experiment_name}-final"
            with open_store(config.store) as store:
                try:
                    store.download(experiment, args.model_id, tmp, blob_names=["model.pt", "arch.json"])
                except FileNotFoundError:
                    raise ConfigError(
                        f"{experiment}/{args.model_id} has no model.pt/arch.json in the store: train it with "
                        "train_pareto.py, or give --checkpoint and --arch"
                    ) from None
            checkpoint, arch = Path(tmp) / "model.pt", Path(tmp) / "arch.json"
        else:
            raise ConfigError("give --model-id (weights from the store) or --checkpoint and --arch")
        state = torch.load(str(checkpoint), map_location="cpu", weights_only=True)
        model = load_model(arch, num_classes=int(state["classifier.weight"].shape[0])).arch
        load_state_dict(model, checkpoint)
    if args.to.exists() and not args.force:
        try:
            check = check_onnx(model, args.to, shape, rtol=args.rtol, atol=args.atol)
        except Exception as exc:  # an unreadable or stale file is exported again
            log.warning("%s exists but fails the check (%s): exporting again", args.to, exc)
        else:
            if (check.opset, check.dynamic_batch) == (args.opset, args.dynamic_batch):
                log.info(
                    "%s exists and matches the checkpoint (max diff %s): kept", args.to, check.max_abs_diff
                )
                return 0
            log.info("%s exists with other export options: exporting again", args.to)
    export_onnx(model, args.to, shape, opset=args.opset, dynamic_batch=args.dynamic_batch)
    try:
        check = check_onnx(model, args.to, shape, rtol=args.rtol, atol=args.atol)
    except ExportCheckError as exc:
        log.error("%s", exc)
        return 1
    log.info("wrote %s (opset %d, input %s%s): onnxruntime matches PyTorch, largest difference %s",
             args.to, check.opset, shape, ", dynamic batch" if check.dynamic_batch else "", check.max_abs_diff)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
