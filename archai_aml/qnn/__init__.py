"""The ``qnn`` target: QNN HTP through onnxruntime-qnn (the ``qnn`` extra).

:class:`QnnTarget` converts, quantizes (QDQ, onnxruntime's QNN recipe) and compiles (EP-context model)
float ONNX models, benchmarks them and runs batches on the HTP with CPU fallback disabled. On an x86-64
host the HTP is the wheel's emulator: outputs are the HTP's, latencies are marked simulated.
"""

from archai_aml.qnn.session import cpu_placed_nodes, htp_is_simulated, htp_session, register_qnn
from archai_aml.qnn.target import QnnTarget

__all__ = ["QnnTarget", "cpu_placed_nodes", "htp_is_simulated", "htp_session", "register_qnn"]
