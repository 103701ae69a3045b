"""Launch the face-segmentation search on Azure ML: workspace, configuration, one pipeline.

    python examples/face_segmentation/aml.py --config my-azure.yaml [--test] [--source azureml:faces:1]

1. sets up the workspace (``archai_aml.workspace.setup_workspace``: clusters, environment, datastores);
2. writes the configuration the job reads, ``<output>/aml/search.yaml``: every secret replaced by its
   ``${VAR}`` name, other variables resolved here, ``training.data`` pointed at the prepared data and
   ``search.local_runners`` set to 0 (the runner fleet measures); it is uploaded with the job;
3. submits one pipeline: ``prepare_data`` (``prepare_data.py``: the FaceSynthetics folder ``--source``, or
   the procedural set, to ``azureml://datastores/<data>/paths/<experiment>/prepared``) then ``search``
   (``search.py`` on the CPU cluster; it submits the training pipelines and queues the latency rows for the
   runners). ``--test`` submits only ``prepare_data``;
4. prints the studio URL.

The store must be reachable by identity (``store.account_name``): no secret goes into a job.
The library does the work: :mod:`archai_aml.launcher`.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _script import HERE, setup_logging  # noqa: E402

from archai_aml.config import load_config  # noqa: E402
from archai_aml.errors import ConfigError  # noqa: E402
from archai_aml.launcher import build_search_pipeline, check_no_secret, config_for_job  # noqa: E402
from archai_aml.workspace import setup_workspace  # noqa: E402


def main(argv: Sequence[str] | None = None, *, ml_client: Any = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--config", type=Path, required=True, help="the search's configuration, with an aml: section"
    )
    p.add_argument(
        "--output", type=Path, default=Path("aml_output"), help="where the job's files are written"
    )
    p.add_argument(
        "--source", help="a FaceSynthetics folder or data asset for prepare_data (default: procedural)"
    )
    p.add_argument("--test", action="store_true", help="submit only the data preparation")
    p.add_argument("--no-setup", action="store_true", help="do not create missing workspace resources")
    p.add_argument("--verbose", action="store_true", help="debug logging")
    args = p.parse_args(argv)
    log = setup_logging("aml", args.verbose)
    os.environ.setdefault("ARCHAI_AML_EXAMPLE_DIR", str(HERE))
    os.environ.setdefault("ARCHAI_AML_OUTPUT", str(args.output.resolve()))
    config = load_config(args.config)
    if config.aml is None:
        raise ConfigError(f"{args.config}: no aml: section (workspace, clusters, environment)")
    if ml_client is None:
        from archai_aml.pipelines.azureml import AzureMLJobRunner

        ml_client = AzureMLJobRunner.from_config(config.aml).ml_client
    data_uri = f"azureml://datastores/{config.aml.datastores.data}/paths/{config.experiment_name}/prepared"
    text, secret_vars = config_for_job(
        args.config.read_text(encoding="utf-8"),
        os.environ,
        {
            "training.data": data_uri,
            "search.local_runners": 0,
            "training.code_dir": "${ARCHAI_AML_EXAMPLE_DIR}",
            # the search job opens the store with the job's identity
            "store.managed_identity_client_id": config.store.managed_identity_client_id
            or config.aml.identity_client_id,
        },
    )
    resources = setup_workspace(ml_client, config, dry_run=args.no_setup, progress=False)
    job_config = args.output.resolve() / "aml" / "search.yaml"
    job_config.parent.mkdir(parents=True, exist_ok=True)
    job_config.write_text(text, encoding="utf-8")
    job = build_search_pipeline(config, job_config, code_dir=HERE, environment=resources.environment,
                                data_uri=data_uri, source=args.source, test=args.test)  # fmt: skip
    dumped = check_no_secret(job, config, text)
    (job_config.parent / "pipeline.yaml").write_text(dumped, encoding="utf-8")
    submitted = ml_client.jobs.create_or_update(job, experiment_name=config.experiment_name)
    log.info("submitted %s (%s); secrets left as ${VAR}: %s", submitted.name,
             "prepare_data only" if args.test else "prepare_data, search", ", ".join(secret_vars) or "none")  # fmt: skip
    print(getattr(submitted, "studio_url", None) or submitted.name)  # the command's output
    return 0


if __name__ == "__main__":
    sys.exit(main())
