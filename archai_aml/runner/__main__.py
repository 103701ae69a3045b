"""``python -m archai_aml.runner runner|usage [options]``: the runner commands alone, without the others."""

from __future__ import annotations

from archai_aml.cli import main as cli_main


def main(argv: list[str] | None = None) -> int:
    return cli_main(argv, prog="python -m archai_aml.runner", modules=("archai_aml.runner.cli",))


if __name__ == "__main__":
    raise SystemExit(main())
