"""The local scoring server: a Starlette app on uvicorn, bound to 127.0.0.1 unless told otherwise::

    python -m archai_aml.steps.serving.app --model-dir MODEL_FOLDER --port 8765 [--host 127.0.0.1]

``POST /score`` takes and returns the JSON of :mod:`archai_aml.steps.serving` (the Azure scoring script's);
a bad request answers 400 with ``{"error": ...}``. ``GET /health`` answers ``{"status": "ok", "model": ...}``
once the model is loaded. The deploy step (:mod:`archai_aml.steps.deploy`) starts and stops it.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from archai_aml.errors import ArchaiAmlError
from archai_aml.steps.serving import Detector, score_payload

__all__ = ["build_app", "main"]

MAX_BODY = 32 * 1024 * 1024


def build_app(detector: Detector, model: str) -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def score(request: Request) -> JSONResponse:
        body = await request.body()
        if len(body) > MAX_BODY:
            return JSONResponse({"error": f"request larger than {MAX_BODY} bytes"}, status_code=413)
        try:
            payload = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            return JSONResponse({"error": f"the body is not JSON: {exc}"}, status_code=400)
        try:
            return JSONResponse(score_payload(detector, payload))
        except ArchaiAmlError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "model": model})

    return Starlette(routes=[Route("/score", score, methods=["POST"]), Route("/health", health)])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="archai_aml.steps.serving.app", description=__doc__)
    parser.add_argument("--model-dir", required=True, type=Path)
    parser.add_argument("--model", default="", help="the model's name:version, shown by /health")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--score-threshold", type=float, default=0.3)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    import uvicorn

    detector = Detector.load(args.model_dir, score_threshold=args.score_threshold)
    uvicorn.run(build_app(detector, args.model), host=args.host, port=args.port, log_level="warning")
    return 0


if __name__ == "__main__":
    sys.exit(main())
