"""The entry point of the test SNPE SDK's executables (:mod:`archai_aml.testing.snpe_sdk`): the host tools
of :mod:`~archai_aml.testing.snpe_sdk_tools` and the device tools of :mod:`~archai_aml.testing.snpe_sdk_device`
by their SDK names."""

from __future__ import annotations

import sys

from archai_aml.testing.snpe_sdk_device import net_run, snpe_bench
from archai_aml.testing.snpe_sdk_tools import _TOOLS, ToolError

__all__ = ["main"]


def main(tool: str, argv: list[str]) -> int:
    """Entry point of the test SDK's executables."""
    tools = {**_TOOLS, "snpe-net-run": net_run, "snpe_bench.py": snpe_bench}
    try:
        return tools[tool](argv)
    except ToolError as exc:
        print(f"[ERROR] {exc}", file=sys.stderr)  # noqa: T201 - the tool's own stderr
        return 1
