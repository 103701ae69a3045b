"""A procedural segmentation data set: shapes of several classes over textured, noisy backgrounds.

Every item is made on the fly from ``(seed, split, index)`` alone, so item ``i`` is identical on every call,
in every process, on every machine, and the ``train``/``val``/``test`` splits never share a random stream.
Generation is vectorized numpy (no Python loop over pixels): a 256x256 item takes a few milliseconds.

Class 0 is the background. Class ``k >= 1`` is a shape kind (circle, rectangle, triangle, ellipse,
diamond, ring, cycling when there are more classes than kinds) painted in a class colour (hue spread
over the colour wheel, jittered per shape, shaded and noised), so a model can learn the class from both
its shape and its colour. Later shapes occlude earlier ones; the mask follows what is visible.
"""

from __future__ import annotations

import colorsys
from typing import Literal

import numpy as np

Split = Literal["train", "val", "test"]

SPLIT_CODES: dict[str, int] = {"train": 0, "val": 1, "test": 2}
DEFAULT_LENGTHS: dict[str, int] = {"train": 8000, "val": 1000, "test": 10000}
SHAPE_KINDS = ("circle", "rectangle", "triangle", "ellipse", "diamond", "ring")


def _size_tuple(image_size: int | tuple[int, int]) -> tuple[int, int]:
    if isinstance(image_size, int):
        h = w = image_size
    else:
        h, w = (int(v) for v in image_size)
    if h < 8 or w < 8:
        raise ValueError(f"image_size {image_size!r} is too small: use at least 8x8 pixels")
    return h, w


def _interp_matrix(n_out: int, n_in: int) -> np.ndarray:
    """The ``(n_out, n_in)`` matrix of linear interpolation from ``n_in`` grid points to ``n_out`` pixels."""
    pos = np.linspace(0.0, n_in - 1.0, n_out)
    lo = np.minimum(pos.astype(np.int64), n_in - 2)
    frac = pos - lo
    m = np.zeros((n_out, n_in), dtype=np.float32)
    m[np.arange(n_out), lo] = 1.0 - frac
    m[np.arange(n_out), lo + 1] = frac
    return m


class ProceduralSegmentation:
    """A deterministic, on-the-fly segmentation data set (implements ``SegmentationData``).

    ``image`` is float32 ``(3, H, W)`` with values in ``[0, 1]`` (the same scaling as the FaceSynthetics
    loader); ``mask`` is int64 ``(H, W)`` with values in ``[0, num_classes)``.
    """

    def __init__(
        self,
        *,
        split: Split = "test",
        length: int | None = None,
        image_size: int | tuple[int, int] = 256,
        num_classes: int = 7,
        seed: int = 0,
        max_shapes: int = 5,
    ) -> None:
        if split not in SPLIT_CODES:
            raise ValueError(f"split must be one of {sorted(SPLIT_CODES)}, got {split!r}")
        if num_classes < 2:
            raise ValueError(
                f"num_classes must be at least 2 (background + one shape class), got {num_classes}"
            )
        if max_shapes < 1:
            raise ValueError(f"max_shapes must be at least 1, got {max_shapes}")
        self.split: Split = split
        self.length = DEFAULT_LENGTHS[split] if length is None else int(length)
        if self.length < 0:
            raise ValueError(f"length must be >= 0, got {length}")
        self.height, self.width = _size_tuple(image_size)
        self.num_classes = int(num_classes)
        self.seed = int(seed)
        self.max_shapes = int(max_shapes)
        self.class_names = ["background"] + [
            f"{SHAPE_KINDS[(k - 1) % len(SHAPE_KINDS)]}_{(k - 1) // len(SHAPE_KINDS)}"
            if k > len(SHAPE_KINDS)
            else SHAPE_KINDS[k - 1]
            for k in range(1, self.num_classes)
        ]
        n = self.num_classes - 1
        self._class_colors = np.array(
            [colorsys.hsv_to_rgb(i / n, 0.75, 0.85 if i % 2 == 0 else 0.6) for i in range(n)],
            dtype=np.float32,
        )
        yy, xx = np.mgrid[0 : self.height, 0 : self.width]
        self._yy = yy.astype(np.float32)
        self._xx = xx.astype(np.float32)
        self._interp: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        # per-pixel noise comes from a bank made once from the seed, read at a random offset per item
        bank_rng = np.random.default_rng(np.random.SeedSequence([self.seed, 99, self.height, self.width]))
        self._noise = bank_rng.standard_normal(size=(3, 2 * self.height, 2 * self.width), dtype=np.float32)
        self._ys = np.arange(self.height, dtype=np.float32)
        self._xs = np.arange(self.width, dtype=np.float32)

    def __len__(self) -> int:
        return self.length

    def __repr__(self) -> str:
        return (
            f"ProceduralSegmentation(split={self.split!r}, length={self.length}, "
            f"image_size=({self.height}, {self.width}), num_classes={self.num_classes}, seed={self.seed})"
        )

    def spec(self) -> dict[str, object]:
        """A JSON-able description that rebuilds this data set (``procedural.json`` holds the same keys)."""
        return {
            "kind": "procedural",
            "split": self.split,
            "length": self.length,
            "image_size": [self.height, self.width],
            "num_classes": self.num_classes,
            "seed": self.seed,
            "max_shapes": self.max_shapes,
        }

    def _rng(self, index: int) -> np.random.Generator:
        return np.random.default_rng(np.random.SeedSequence([self.seed, SPLIT_CODES[self.split], index]))

    def _background(self, rng: np.random.Generator) -> np.ndarray:
        h, w = self.height, self.width
        base = rng.uniform(0.15, 0.85, size=(3, 1, 1)).astype(np.float32)
        g = int(rng.integers(3, 9))
        grid = rng.normal(0.0, 0.12, size=(3, g, g)).astype(np.float32) + base
        if g not in self._interp:
            self._interp[g] = (_interp_matrix(h, g), _interp_matrix(w, g).T.copy())
        wy, wx = self._interp[g]
        image = np.matmul(np.matmul(wy[None], grid), wx[None])  # bilinear upsampling as two small matmuls
        # stripes sin(a*x + b*y + c), separable: sin(ax)cos(by+c) + cos(ax)sin(by+c)
        angle, freq, phase = rng.uniform(0.0, np.pi), rng.uniform(0.05, 0.5), rng.uniform(0.0, 2 * np.pi)
        ax = (freq * np.cos(angle)) * self._xs
        by = (freq * np.sin(angle)) * self._ys + phase
        stripes = np.sin(by)[:, None] * np.cos(ax)[None, :] + np.cos(by)[:, None] * np.sin(ax)[None, :]
        amp = rng.uniform(0.0, 0.08, size=(3, 1, 1)).astype(np.float32)
        image += amp * stripes[None]
        return image

    def _shape_mask(
        self, kind: str, rng: np.random.Generator, ys: slice, xs: slice, cy: float, cx: float, r: float
    ) -> np.ndarray:
        dy = self._yy[ys, xs] - cy
        dx = self._xx[ys, xs] - cx
        theta = rng.uniform(0.0, np.pi)
        c, s = np.float32(np.cos(theta)), np.float32(np.sin(theta))
        u = dx * c + dy * s
        v = -dx * s + dy * c
        aspect = rng.uniform(0.45, 0.8)
        if kind == "circle":
            return dx * dx + dy * dy <= r * r
        if kind == "rectangle":
            return (np.abs(u) <= r * 0.95) & (np.abs(v) <= r * aspect)
        if kind == "ellipse":
            return (u / r) ** 2 + (v / (r * aspect * 0.8)) ** 2 <= 1.0
        if kind == "diamond":
            return np.abs(u) / r + np.abs(v) / (r * aspect) <= 1.0
        if kind == "ring":
            d2 = dx * dx + dy * dy
            return (d2 <= r * r) & (d2 >= (r * rng.uniform(0.45, 0.65)) ** 2)
        # triangle: three vertices around the centre; inside when every edge sees the point on the same side
        angles = theta + np.array([0.0, 2.0944, 4.1888]) + rng.uniform(-0.3, 0.3, size=3)
        radii = r * rng.uniform(0.8, 1.0, size=3)
        vx, vy = radii * np.cos(angles), radii * np.sin(angles)
        signs = []
        for i in range(3):
            j = (i + 1) % 3
            signs.append((vx[j] - vx[i]) * (dy - vy[i]) - (vy[j] - vy[i]) * (dx - vx[i]) >= 0)
        return (signs[0] & signs[1] & signs[2]) | (~signs[0] & ~signs[1] & ~signs[2])

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        index = int(index)
        if index < 0:
            index += self.length
        if not 0 <= index < self.length:
            raise IndexError(f"index {index} out of range for a data set of {self.length} items")
        rng = self._rng(index)
        h, w = self.height, self.width
        image = self._background(rng)
        mask = np.zeros((h, w), dtype=np.int64)
        side = min(h, w)
        n_shapes = int(rng.integers(1, self.max_shapes + 1))
        classes = rng.choice(
            np.arange(1, self.num_classes), size=n_shapes, replace=n_shapes >= self.num_classes
        )
        for cls in classes:
            kind = SHAPE_KINDS[(int(cls) - 1) % len(SHAPE_KINDS)]
            r = float(rng.uniform(0.1, 0.25) * side)
            cy, cx = float(rng.uniform(0.1, 0.9) * h), float(rng.uniform(0.1, 0.9) * w)
            reach = 1.3 * r  # the farthest any kind reaches from its centre (a rotated rectangle's corner)
            ys = slice(max(0, int(cy - reach) - 1), min(h, int(cy + reach) + 2))
            xs = slice(max(0, int(cx - reach) - 1), min(w, int(cx + reach) + 2))
            inside = self._shape_mask(kind, rng, ys, xs, cy, cx, r)
            color = self._class_colors[int(cls) - 1] + rng.uniform(-0.08, 0.08, size=3).astype(np.float32)
            ang = rng.uniform(0.0, 2 * np.pi)
            shade = 1.0 + 0.15 * (
                (np.cos(ang) * (self._xx[ys, xs] - cx) + np.sin(ang) * (self._yy[ys, xs] - cy)) / max(r, 1.0)
            )
            patch = color[:, None, None] * shade[None]
            region = image[:, ys, xs]
            region[:, inside] = patch[:, inside]
            mask[ys, xs][inside] = cls
        oy, ox = int(rng.integers(0, h)), int(rng.integers(0, w))
        sigma = np.float32(rng.uniform(0.01, 0.05))
        image += sigma * self._noise[:, oy : oy + h, ox : ox + w]
        np.clip(image, 0.0, 1.0, out=image)
        return image.astype(np.float32, copy=False), mask
