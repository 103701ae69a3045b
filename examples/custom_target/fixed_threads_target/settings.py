"""The target's settings: the fields of its ``target:`` section (pydantic only, loaded with the config)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from archai_aml.config import TargetConfig


class FixedThreadsTargetConfig(TargetConfig):
    """``ort-fixed-threads``: onnxruntime on the CPU with ``threads`` intra-op threads."""

    factory = "fixed_threads_target.target:FixedThreadsTarget"  # imported when a runner builds it

    name: Literal["ort-fixed-threads"] = "ort-fixed-threads"
    threads: int = Field(default=1, ge=1, le=64, description="onnxruntime intra-op threads")

    def factory_kwargs(self, **context: Any) -> dict[str, Any]:
        return {"threads": self.threads}
