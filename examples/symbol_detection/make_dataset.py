"""A small synthetic symbol data set: JPEG images of filled squares/discs/bars with ``.npy`` labels, zipped.

    python examples/symbol_detection/make_dataset.py out/symbols.zip --images 36

Each image (64x64 by default) holds one or two symbols on a noisy gray background; class ``i`` of
``classes.txt`` is drawn in its own color and shape. Labels: ``(N, 5)`` arrays ``class_id, x0, y0, x1, y1``
in pixels (the data loader's input format).
"""

from __future__ import annotations

import argparse
import io
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

CLASSES = ("square", "disc", "bar")
COLORS = ((220, 40, 40), (40, 200, 60), (40, 80, 230))


def make_image(rng: np.random.Generator, size: int, classes: list[int]) -> tuple[Image.Image, np.ndarray]:
    background = rng.integers(90, 140, size=(size, size, 3), dtype=np.uint8)
    image = Image.fromarray(background)
    draw = ImageDraw.Draw(image)
    rows: list[list[float]] = []
    for cls in classes:
        side = int(rng.integers(size // 5, size // 3))
        x0, y0 = (int(v) for v in rng.integers(0, size - side, size=2))
        x1, y1 = x0 + side, y0 + (side // 2 if CLASSES[cls] == "bar" else side)
        if CLASSES[cls] == "disc":
            draw.ellipse((x0, y0, x1 - 1, y1 - 1), fill=COLORS[cls])
        else:
            draw.rectangle((x0, y0, x1 - 1, y1 - 1), fill=COLORS[cls])
        rows.append([cls, x0, y0, x1, y1])
    return image, np.asarray(rows, dtype=np.float32).reshape(-1, 5)


def make_archive(path: Path, images: int = 36, size: int = 64, seed: int = 0, max_symbols: int = 2) -> Path:
    """Write the zip; every class appears in at least ``images // len(CLASSES)`` images' first symbol."""
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("classes.txt", "\n".join(CLASSES) + "\n")
        for i in range(images):
            extra = [int(c) for c in rng.integers(len(CLASSES), size=int(rng.integers(0, max_symbols)))]
            image, boxes = make_image(rng, size, [i % len(CLASSES), *extra])  # every class as a first symbol
            buf = io.BytesIO()
            image.save(buf, format="JPEG", quality=95)
            zf.writestr(f"symbols/img_{i:04d}.jpg", buf.getvalue())
            npy = io.BytesIO()
            np.save(npy, boxes)
            zf.writestr(f"labels/img_{i:04d}.npy", npy.getvalue())
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("output", type=Path)
    parser.add_argument("--images", type=int, default=36)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(make_archive(args.output, args.images, args.size, args.seed))


if __name__ == "__main__":
    main()
