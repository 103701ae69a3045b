"""``python -m archai_aml.runner runner|usage [options]``: the runner alone, without the other commands."""

from __future__ import annotations

import argparse
import logging
import sys

from archai_aml.errors import ArchaiAmlError
from archai_aml.runner.cli import register


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m archai_aml.runner")
    parser.add_argument("--config", "-c", help="YAML configuration")
    parser.add_argument("--log-level", default="WARNING")
    sub = parser.add_subparsers(dest="command")
    register(sub)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        return int(args.func(args) or 0)
    except ArchaiAmlError as exc:
        sys.stderr.write(f"archai-aml {args.command}: {exc}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
