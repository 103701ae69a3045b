"""The detector behind the endpoints: one JSON request/response schema for the Azure scoring script
(:mod:`.score`) and the local HTTP server (:mod:`.app`).

The schema is AutoML's for image object detection online endpoints ("Data schema for online scoring",
https://learn.microsoft.com/en-us/azure/machine-learning/reference-automl-images-schema), so that a client
works the same against an AutoML-trained model and against the local detector:

- request: ``{"input_data": {"columns": ["image"], "data": ["<base64 of the image file>", ...]}}``;
- response: one entry per image, ``[{"boxes": [{"box": {"topX", "topY", "bottomX", "bottomY"}, "label": "<class
  name>", "score": <float>}, ...]}, ...]``, box corners as fractions of the image size.

The model folder is the training step's MLflow model: ``MLmodel`` (its ``metadata``: classes, image size,
width) and ``state_dict.pt``, loaded with ``torch.load(weights_only=True)`` into a fresh
:class:`~archai_aml.steps.detector.TinyDetector`: no pickle from the registry is ever unpickled here.
"""

from __future__ import annotations

import base64
import binascii
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from archai_aml.errors import ConfigError, DatasetError

__all__ = ["Detector", "find_model_dir", "parse_request", "request_for", "score_payload"]

MAX_IMAGES = 64


def find_model_dir(root: Path) -> Path:
    """The folder under ``root`` (itself included) that holds ``MLmodel`` (Azure ML mounts a registered model
    at ``$AZUREML_MODEL_DIR``, its files possibly one folder deeper)."""
    if (root / "MLmodel").is_file():
        return root
    found = sorted(p.parent for p in root.rglob("MLmodel"))
    if not found:
        raise ConfigError(f"no MLmodel file under {root}: deploy the training step's MLflow model folder")
    return found[0]


@dataclass
class Detector:
    """A loaded :class:`TinyDetector` and what it needs to score an image."""

    model: Any
    classes: list[str]
    image_size: int
    score_threshold: float = 0.3

    @classmethod
    def load(cls, folder: Path, *, score_threshold: float = 0.3) -> Detector:
        import torch

        from archai_aml.steps.detector import TinyDetector
        from archai_aml.steps.train import STATE_DICT_FILE

        folder = find_model_dir(folder)
        meta = (yaml.safe_load((folder / "MLmodel").read_text(encoding="utf-8")) or {}).get("metadata") or {}
        weights = folder / STATE_DICT_FILE
        if not meta.get("classes") or not weights.is_file():
            raise ConfigError(
                f"{folder} is not a local detector model (needs MLmodel metadata and {weights.name})"
            )
        model = TinyDetector(len(meta["classes"]), int(meta.get("width", 16)))
        model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
        model.eval()
        return cls(model, [str(c) for c in meta["classes"]], int(meta["image_size"]), score_threshold)

    def detect(self, image_bytes: bytes) -> dict[str, Any]:
        import numpy as np
        import torch
        from PIL import Image, UnidentifiedImageError

        from archai_aml.steps.detector import decode

        try:
            with Image.open(io.BytesIO(image_bytes)) as im:
                rgb = im.convert("RGB").resize((self.image_size, self.image_size))
        except (UnidentifiedImageError, OSError, ValueError) as exc:
            raise DatasetError(f"the image cannot be read: {exc}") from None
        x = torch.from_numpy(np.asarray(rgb, dtype=np.float32) / 255.0).permute(2, 0, 1)[None]
        with torch.no_grad():
            ((boxes, scores, labels),) = decode(*self.model(x))
        out = []
        for box, score, label in zip(boxes.tolist(), scores.tolist(), labels.tolist(), strict=True):
            if score >= self.score_threshold:
                corners = dict(zip(("topX", "topY", "bottomX", "bottomY"), box, strict=True))
                out.append({"box": corners, "label": self.classes[int(label)], "score": float(score)})
        return {"boxes": out}


def request_for(*images: bytes) -> dict[str, Any]:
    """The request body for ``images`` (file bytes)."""
    return {
        "input_data": {"columns": ["image"], "data": [base64.b64encode(i).decode("ascii") for i in images]}
    }


def parse_request(payload: Any) -> list[bytes]:
    """The images of a request; a malformed one raises :class:`DatasetError` saying what is expected."""
    expected = 'expected {"input_data": {"columns": ["image"], "data": ["<base64 image>", ...]}}'
    data = payload.get("input_data") if isinstance(payload, dict) else None
    if (
        not isinstance(data, dict)
        or data.get("columns") != ["image"]
        or not isinstance(data.get("data"), list)
    ):
        raise DatasetError(f"bad request: {expected}")
    rows = data["data"]
    if not rows or len(rows) > MAX_IMAGES:
        raise DatasetError(f"bad request: 1 to {MAX_IMAGES} images per request, got {len(rows)}")
    images = []
    for i, row in enumerate(rows):
        value = row[0] if isinstance(row, list) and len(row) == 1 else row
        try:
            images.append(base64.b64decode(str(value), validate=True))
        except (binascii.Error, ValueError):
            raise DatasetError(f"bad request: image {i} is not base64 ({expected})") from None
    return images


def score_payload(detector: Detector, payload: Any) -> list[dict[str, Any]]:
    """The response to a request (see the module docstring)."""
    return [detector.detect(image) for image in parse_request(payload)]


def check_response(response: Any) -> int:
    """How many boxes a response holds; one that does not follow the schema raises :class:`DatasetError`."""
    if not isinstance(response, list) or not all(
        isinstance(r, dict) and isinstance(r.get("boxes"), list) for r in response
    ):
        raise DatasetError(
            f"the response does not follow the schema ([{{'boxes': [...]}}]): {str(response)[:200]}"
        )
    count = 0
    for entry in response:
        for b in entry["boxes"]:
            if not (isinstance(b, dict) and {"box", "label", "score"} <= set(b)):
                raise DatasetError(f"a box of the response lacks box/label/score: {str(b)[:200]}")
            count += 1
    return count
