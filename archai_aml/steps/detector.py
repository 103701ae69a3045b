"""A small object detector in plain PyTorch (no pretrained weights, nothing downloaded) for local training.

Center-point detection (the CenterNet idea) on a stride-4 feature map: a per-class heatmap of object
centers (penalty-reduced focal loss against Gaussian peaks) and, per cell, the center's sub-cell offset and
the box size as fractions of the image (L1 at the centers). Decoding keeps the heatmap's local maxima
(3x3 max pooling) and the ``top_k`` best of them.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["STRIDE", "TinyDetector", "decode", "detection_loss", "encode_targets"]

STRIDE = 4


def _block(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
    )


class TinyDetector(nn.Module):
    """``forward(images [B,3,S,S]) -> (heatmap logits [B,C,S/4,S/4], box [B,4,S/4,S/4])``."""

    def __init__(self, num_classes: int, width: int = 16) -> None:
        super().__init__()
        self.num_classes = num_classes
        w = width
        self.backbone = nn.Sequential(
            _block(3, w, 2),
            _block(w, w, 1),
            _block(w, 2 * w, 2),
            _block(2 * w, 2 * w, 1),
            _block(2 * w, 2 * w, 1),
        )
        self.heatmap = nn.Conv2d(2 * w, num_classes, 1)
        self.box = nn.Conv2d(2 * w, 4, 1)
        assert self.heatmap.bias is not None
        nn.init.constant_(self.heatmap.bias, -2.19)  # initial center probability ~0.1

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.backbone(images)
        return self.heatmap(features), self.box(features)


def encode_targets(
    boxes: Sequence[Sequence[float]], labels: Sequence[int], num_classes: int, grid: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(heatmap [C,G,G], box target [4,G,G], mask [G,G]) of one image; boxes are fractions (x0, y0, x1, y1)."""
    heat = torch.zeros(num_classes, grid, grid)
    target = torch.zeros(4, grid, grid)
    mask = torch.zeros(grid, grid)
    ys, xs = torch.meshgrid(
        torch.arange(grid, dtype=torch.float32), torch.arange(grid, dtype=torch.float32), indexing="ij"
    )
    for (x0, y0, x1, y1), cls in zip(boxes, labels, strict=True):
        cx, cy = (x0 + x1) / 2 * grid, (y0 + y1) / 2 * grid
        ix, iy = min(int(cx), grid - 1), min(int(cy), grid - 1)
        sigma = max(0.5, min(x1 - x0, y1 - y0) * grid / 6)
        peak = torch.exp(-((xs - ix) ** 2 + (ys - iy) ** 2) / (2 * sigma**2))
        heat[cls] = torch.maximum(heat[cls], peak)
        target[:, iy, ix] = torch.tensor([cx - ix, cy - iy, x1 - x0, y1 - y0])
        mask[iy, ix] = 1.0
    return heat, target, mask


def detection_loss(
    heat_logits: torch.Tensor, box: torch.Tensor, heat: torch.Tensor, target: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """Focal loss on the heatmap plus L1 on offsets and sizes at the centers, per object."""
    p = torch.sigmoid(heat_logits).clamp(1e-4, 1 - 1e-4)
    pos = heat.eq(1.0).float()
    pos_loss = (torch.log(p) * (1 - p) ** 2 * pos).sum()
    neg_loss = (torch.log(1 - p) * p**2 * (1 - heat) ** 4 * (1 - pos)).sum()
    n = pos.sum().clamp(min=1.0)
    pred = torch.sigmoid(box)
    l1 = (F.l1_loss(pred, target, reduction="none").sum(1) * mask).sum()
    return -(pos_loss + neg_loss) / n + 5.0 * l1 / n


@torch.no_grad()
def decode(
    heat_logits: torch.Tensor, box: torch.Tensor, top_k: int = 20
) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Per image: (boxes [K,4] as fractions x0,y0,x1,y1, scores [K], labels [K])."""
    batch, classes, grid, _ = heat_logits.shape
    p = torch.sigmoid(heat_logits)
    peaks = p * (F.max_pool2d(p, 3, stride=1, padding=1) == p).float()
    pred = torch.sigmoid(box)
    out = []
    for b in range(batch):
        scores, index = peaks[b].reshape(-1).topk(min(top_k, classes * grid * grid))
        labels = index // (grid * grid)
        cell = index % (grid * grid)
        iy, ix = (cell // grid).float(), (cell % grid).float()
        values = pred[b].reshape(4, -1)[:, cell]
        cx, cy = (ix + values[0]) / grid, (iy + values[1]) / grid
        w, h = values[2], values[3]
        boxes = torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 1).clamp(0.0, 1.0)
        out.append((boxes, scores, labels))
    return out
