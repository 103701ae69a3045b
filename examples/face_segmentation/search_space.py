"""A configurable encoder-decoder segmentation search space for Archai (``ConfigSearchSpace`` route).

An architecture is an :class:`~archai.discrete_search.search_spaces.config.ArchConfig`:

- ``stem_stride`` in {1, 2, 4} and ``stem_channels``: a 3x3 conv that sets the working resolution;
- ``down``: 2 to 4 blocks, each a ``op`` (conv 3x3 / 5x5 / 7x7, stride 2) with its own ``channels``;
- ``up``: one decoder block per down block (bilinear x2, concatenate the encoder feature of that scale,
  then its own ``op`` and ``channels``); up blocks beyond the chosen depth are unused and do not count in
  the archid;
- a 1x1 classifier, and a bilinear resize back to the input size.

The ArchConfig JSON (``ArchConfig.to_dict()``, what :meth:`save_arch` writes and the training pipeline
uploads) is what rebuilds the model: :func:`load_model` gives the same archid and the same output shapes.
The archid is archai's SHA-1 of the encoded used parameters, so it is a deterministic hash of the config.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from archai.discrete_search.api.archai_model import ArchaiModel
from archai.discrete_search.search_spaces.config import (
    ArchConfig,
    ArchParamTree,
    ConfigSearchSpace,
    DiscreteChoice,
    repeat_config,
)
from archai.discrete_search.search_spaces.config.arch_config import build_arch_config
from overrides import overrides
from torch import nn

OPS = {"conv3x3": 3, "conv5x5": 5, "conv7x7": 7}
CHANNELS = [8, 16, 24, 32, 48]
MAX_BLOCKS = 4


def arch_param_tree(
    stem_strides: tuple[int, ...] = (1, 2, 4),
    depths: tuple[int, ...] = (2, 3, 4),
    channels: tuple[int, ...] = tuple(CHANNELS),
) -> ArchParamTree:
    """The parameter tree of the search space (the choices can be narrowed for small experiments)."""
    if max(depths) > MAX_BLOCKS:
        raise ValueError(f"at most {MAX_BLOCKS} down blocks")
    block = {"op": DiscreteChoice(list(OPS)), "channels": DiscreteChoice(list(channels))}
    return ArchParamTree(
        {
            "stem_stride": DiscreteChoice(list(stem_strides)),
            "stem_channels": DiscreteChoice(list(channels)),
            "down": repeat_config(block, repeat_times=list(depths)),
            "up": repeat_config(block, repeat_times=MAX_BLOCKS),
            "num_classes_hint": 0,  # a constant: num_classes comes from the data set, not the architecture
        }
    )


class ConvBNReLU(nn.Sequential):
    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1) -> None:
        super().__init__(
            nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
        )


class SegmentationNet(nn.Module):
    """The encoder-decoder an ArchConfig describes; ``forward`` maps ``(N,3,H,W)`` to ``(N,C,H,W)`` logits."""

    def __init__(self, arch_config: ArchConfig, num_classes: int = 7) -> None:
        super().__init__()
        self.num_classes = num_classes
        stem_stride = int(arch_config.pick("stem_stride"))
        stem_ch = int(arch_config.pick("stem_channels"))
        self.stem = ConvBNReLU(3, stem_ch, 3, stride=stem_stride)
        down_configs = list(arch_config.pick("down"))
        depth = len(down_configs)
        up_list = arch_config.pick("up")
        encoder_ch = [stem_ch]
        self.down = nn.ModuleList()
        for cfg in down_configs:
            cout = int(cfg.pick("channels"))
            self.down.append(ConvBNReLU(encoder_ch[-1], cout, OPS[cfg.pick("op")], stride=2))
            encoder_ch.append(cout)
        self.up = nn.ModuleList()
        cin = encoder_ch[-1]
        for i in range(depth):  # from the deepest scale up; block i merges encoder feature depth-1-i
            cfg = up_list[i]
            cout = int(cfg.pick("channels"))
            self.up.append(ConvBNReLU(cin + encoder_ch[depth - 1 - i], cout, OPS[cfg.pick("op")]))
            cin = cout
        self.classifier = nn.Conv2d(cin, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        x = self.stem(x)
        features = [x]
        for block in self.down:
            x = block(x)
            features.append(x)
        for i, block in enumerate(self.up):
            skip = features[len(self.down) - 1 - i]
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = block(torch.cat([x, skip], dim=1))
        x = self.classifier(x)
        if x.shape[-2:] != size:
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        return x


class SegmentationSearchSpace(ConfigSearchSpace):
    """Archai's ``ConfigSearchSpace`` over :class:`SegmentationNet`, with weights saved as a ``state_dict``."""

    def __init__(
        self, num_classes: int = 7, seed: int | None = None, mutation_prob: float = 0.3, **tree_kwargs: Any
    ) -> None:
        super().__init__(
            SegmentationNet,
            arch_param_tree(**tree_kwargs),
            seed=seed,
            mutation_prob=mutation_prob,
            model_kwargs={"num_classes": num_classes},
        )

    @overrides
    def save_model_weights(self, model: ArchaiModel, path: str) -> None:
        torch.save(model.arch.state_dict(), path)

    @overrides
    def load_model_weights(self, model: ArchaiModel, path: str) -> None:
        model.arch.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))

    def model_from_dict(self, config: dict[str, Any]) -> ArchaiModel:
        """The model an ArchConfig dictionary (the stored JSON) describes."""
        arch_config = build_arch_config(config)
        net = self.model_cls(arch_config, **self.model_kwargs)
        return ArchaiModel(arch=net, archid=self.get_archid(arch_config), metadata={"config": arch_config})


def config_json(model: ArchaiModel) -> str:
    """The ArchConfig JSON of a model (the same text the training pipeline uploads)."""
    return json.dumps(model.metadata["config"].to_dict(), indent=2, sort_keys=True)


def load_model(path: str | Path, num_classes: int = 7) -> ArchaiModel:
    """Rebuild a model from its ArchConfig JSON file (JSON only: nothing stored is evaluated)."""
    config = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(config, dict):
        raise ValueError(f"{path} does not hold an ArchConfig JSON object")
    return SegmentationSearchSpace(num_classes=num_classes).model_from_dict(config)
