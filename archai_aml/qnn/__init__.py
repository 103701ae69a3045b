"""The ``qnn`` target: QNN HTP through onnxruntime-qnn (the ``qnn`` extra).

:class:`QnnTarget` converts, quantizes (QDQ, onnxruntime's QNN recipe) and compiles (EP-context model)
float ONNX models, benchmarks them and runs batches on the HTP with CPU fallback disabled. On an x86-64
host the HTP is the wheel's emulator: outputs are the HTP's, latencies are marked simulated.

Names are imported on first use: :mod:`archai_aml.qnn.settings` (what the registry loads) needs no
onnxruntime-qnn.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from archai_aml._lazy import lazy_attributes

__all__ = [
    "cpu_placed_nodes",
    "htp_is_simulated",
    "htp_session",
    "register_qnn",
    "QnnTarget",
]

__getattr__, __dir__ = lazy_attributes(
    __name__,
    {
        "cpu_placed_nodes": "archai_aml.qnn.session",
        "htp_is_simulated": "archai_aml.qnn.session",
        "htp_session": "archai_aml.qnn.session",
        "register_qnn": "archai_aml.qnn.session",
        "QnnTarget": "archai_aml.qnn.target",
    },
)

if TYPE_CHECKING:
    from archai_aml.qnn.session import cpu_placed_nodes, htp_is_simulated, htp_session, register_qnn
    from archai_aml.qnn.target import QnnTarget
