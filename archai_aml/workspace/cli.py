"""``archai-aml workspace``: set up (``setup [--dry-run]``), inspect (``show``) and upload data
(``upload-data``) for the Azure ML workspace of the configuration's ``aml:`` section."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from archai_aml.config import ArchaiAmlConfig, AzureMLConfig, load_config
from archai_aml.errors import ConfigError
from archai_aml.workspace.setup import (
    ResourcePlan,
    plan_workspace,
    role_instructions,
    setup_workspace,
    upload_dataset,
)

_WORDS = {
    "exists": "exists",
    "create": "create",
    "differs": "differs (left as is)",
    "conflict": "CONFLICT",
    "blocked": "BLOCKED",
}


def make_ml_client(aml: AzureMLConfig) -> Any:
    """The ``MLClient`` of the workspace, with the same credential logic as the pipelines' job runner."""
    from archai_aml.azure_auth import ml_client

    return ml_client(aml)


def _out(text: str = "") -> None:
    sys.stdout.write(text + "\n")


def _config(args: argparse.Namespace) -> tuple[ArchaiAmlConfig, AzureMLConfig]:
    if not args.config:
        raise ConfigError("workspace commands need --config with an aml: section (workspace, clusters)")
    config = load_config(args.config)
    if config.aml is None:
        raise ConfigError(f"{args.config} has no aml: section (workspace, clusters, environment)")
    return config, config.aml


def format_plan(plan: list[ResourcePlan], *, created: bool = False, dry_run: bool = False) -> str:
    rows = []
    for item in plan:
        word = _WORDS[item.action]
        if item.action == "create":
            word = "would create" if dry_run else ("created" if created else "missing")
        rows.append((item.kind, item.name, word, item.detail))
    header = ("KIND", "NAME", "STATE", "DETAIL")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(3)]
    lines = []
    for row in [header, *rows]:
        lines.append(
            "  ".join(cell.ljust(w) for cell, w in zip(row[:3], widths, strict=True)) + "  " + row[3]
        )
    return "\n".join(lines)


def _warnings(plan: list[ResourcePlan]) -> None:
    for item in plan:
        for warning in item.warnings:
            _out(f"WARNING: {warning}")


def _setup(args: argparse.Namespace) -> int:
    config, aml = _config(args)
    client = make_ml_client(aml)
    resources = setup_workspace(client, config, dry_run=args.dry_run, progress=not args.no_progress)
    _out(format_plan(resources.plan, created=not args.dry_run, dry_run=args.dry_run))
    _warnings(resources.plan)
    _out()
    _out(f"environment: {resources.environment}")
    for item in resources.plan:
        build = getattr(getattr(item, "entity", None), "build", None)
        if args.dry_run and item.kind == "environment" and build is not None:
            context = Path(build.path)
            _out(f"  build context {context}: " + ", ".join(sorted(p.name for p in context.iterdir())))
            for line in (context / "Dockerfile").read_text(encoding="utf-8").splitlines():
                _out(f"    {line}")
    _out(f"models:      {resources.models_uri(config.experiment_name)}")
    if args.dry_run or not any(c.startswith("datastore:") for c in resources.created):
        _out()  # (setup logs the same text as a warning when it creates a datastore)
        _out(role_instructions(aml, config.store))
    blocked = [p for p in resources.plan if p.action in ("conflict", "blocked")]
    return 1 if blocked else 0


def _show(args: argparse.Namespace) -> int:
    config, aml = _config(args)
    plan = plan_workspace(make_ml_client(aml), aml, config.store)
    _out(format_plan(plan))
    _warnings(plan)
    return 0


def _upload(args: argparse.Namespace) -> int:
    _, aml = _config(args)
    reference = upload_dataset(
        make_ml_client(aml), args.folder, args.name, args.version, description=args.description
    )
    _out(f"{reference}  (set training.data to this)")
    return 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("workspace", help="set up the Azure ML workspace", description=__doc__)
    sub = parser.add_subparsers(dest="workspace_command", required=True, metavar="VERB")
    p = sub.add_parser("setup", help="create the missing clusters, environment and datastores")
    p.add_argument("--dry-run", action="store_true", help="list what would be created; create nothing")
    p.add_argument("--no-progress", action="store_true", help="no progress bar while clusters are created")
    p.set_defaults(func=_setup)
    p = sub.add_parser("show", help="what exists, what is missing, what differs from the configuration")
    p.set_defaults(func=_show)
    p = sub.add_parser("upload-data", help="register a local folder as a uri_folder data asset")
    p.add_argument("folder", help="local folder (e.g. a FaceSynthetics folder)")
    p.add_argument("--name", required=True, help="data asset name")
    p.add_argument("--version", required=True, help="data asset version (versions are immutable)")
    p.add_argument("--description", default=None)
    p.set_defaults(func=_upload)
