"""The scoring script of the Azure ML online deployment (``CodeConfiguration(code=<this folder>,
scoring_script="score.py")``): Azure ML calls ``init()`` once when the deployment starts and ``run(raw_data)``
per request, with the registered model mounted at ``$AZUREML_MODEL_DIR`` (the contract of a custom scoring
script: https://learn.microsoft.com/en-us/training/modules/deploy-model-managed-online-endpoint/4-eploy-custom-model-managed-online-endpoint).
The environment must have archai-aml installed (as for the pipeline components). Request and response
follow :mod:`archai_aml.steps.serving`."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from archai_aml.steps.serving import Detector, score_payload

_detector: Detector | None = None


def init() -> None:
    global _detector
    threshold = float(os.environ.get("SCORE_THRESHOLD", "0.3"))
    _detector = Detector.load(Path(os.environ["AZUREML_MODEL_DIR"]), score_threshold=threshold)


def run(raw_data: str) -> Any:
    if _detector is None:
        init()
    assert _detector is not None
    return score_payload(_detector, json.loads(raw_data))
