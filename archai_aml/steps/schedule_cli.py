"""``archai-aml schedule publish FILE [--dry-run]`` and ``archai-aml schedule run FILE`` (see
:mod:`archai_aml.steps.schedule`)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def _publish(args: argparse.Namespace) -> int:
    from archai_aml.steps.schedule import load_definition, publish

    result = publish(load_definition(args.file), dry_run=args.dry_run)
    sys.stdout.write(result["yaml"] if args.dry_run else json.dumps(result) + "\n")
    return 0


def _run(args: argparse.Namespace) -> int:
    from archai_aml.steps.schedule import load_definition, run_once

    result = run_once(load_definition(args.file), jobs_root=args.jobs_root)
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("schedule", help="publish the pipeline on a schedule, or run it once here")
    sub = p.add_subparsers(dest="schedule_command", required=True)
    pub = sub.add_parser("publish", help="register the pipeline component and create the JobSchedule")
    pub.add_argument("file", help="schedule definition YAML")
    pub.add_argument("--dry-run", action="store_true", help="print what would be created")
    pub.set_defaults(func=_publish)
    run = sub.add_parser("run", help="run the schedule's pipeline once, here, now")
    run.add_argument("file", help="schedule definition YAML")
    run.add_argument("--jobs-root", default=".archai_aml/jobs", help="where the pipeline's folders go")
    run.set_defaults(func=_run)
