"""The data-preparation step of the Azure ML launcher (aml.py): the search's data set into ``--output``.

    python prepare_data.py --output OUT [--source FACESYNTHETICS_FOLDER] [--length N]

With ``--source`` (a FaceSynthetics folder: ``000000.png`` + ``000000_seg.png``, ...) the image/label pairs
are copied (``--length`` caps how many); without, ``procedural.json`` is written, which makes the folder the
procedural data set for every consumer (train.py, the runners). Resumable: files already there are kept.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

log = logging.getLogger("prepare_data")
_PAIR = re.compile(r"^(\d{6})\.png$")


def prepare(output: Path, source: Path | None = None, length: int | None = None) -> int:
    """Fill ``output``; returns how many image/label pairs (0 for the procedural set)."""
    output.mkdir(parents=True, exist_ok=True)
    if source is None:
        (output / "procedural.json").write_text(json.dumps({"num_classes": 7, "seed": 0}), encoding="utf-8")
        return 0
    pairs = sorted(
        p for p in source.iterdir() if _PAIR.match(p.name) and (source / f"{p.stem}_seg.png").is_file()
    )
    if not pairs:
        raise SystemExit(f"{source} holds no FaceSynthetics pairs (000000.png + 000000_seg.png)")
    for image in pairs[:length]:
        for path in (image, source / f"{image.stem}_seg.png"):
            if not (output / path.name).exists():
                shutil.copyfile(path, output / path.name)
    return len(pairs[:length])


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--output", type=Path, required=True)
    p.add_argument("--source", type=Path)
    p.add_argument("--length", type=int)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    n = prepare(args.output, args.source, args.length)
    log.info("%s: %s", args.output, f"{n} image/label pairs" if n else "the procedural data set")
    return 0


if __name__ == "__main__":
    sys.exit(main())
