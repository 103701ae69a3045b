"""``archai-aml runner`` (work the status table's queue, or submit runners to Azure ML) and
``archai-aml usage`` (device utilization per day)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archai_aml.errors import ConfigError
from archai_aml.store import resolve_store_config
from archai_aml.targets import get_target, target_from_config, target_settings
from archai_aml.targets.base import Target

if TYPE_CHECKING:
    from archai_aml.config import TargetConfig

log = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("runner", help="process the benchmark queue of the status table (a runner)")
    p.add_argument(
        "--target",
        required=False,
        help="a registered target (cpu, qnn, snpe, aihub, fixed, or one a package registers), optionally "
        "with options of its settings: NAME[:KEY=VALUE,...] (e.g. fixed:cost=0.5); default from config",
    )
    p.add_argument(
        "--target-option", action="append", default=[], metavar="KEY=VALUE",
        help="a setting of the target over the config's target: section (qnn.workers=2, sdk_root=DIR, ...); "
        "repeatable",
    )  # fmt: skip
    p.add_argument("--experiment", help="experiment (partition of the status table); default from config")
    p.add_argument("--device", help="serial of the attached device; device work needs one on device targets")
    p.add_argument("--sdk-root", type=Path, help="snpe: the SNPE SDK folder (default: $SNPE_ROOT)")
    p.add_argument("--hub-device", help="aihub: the AI Hub device name (default from config)")
    p.add_argument("--benchmark-only", action="store_true", help="only convert and benchmark (no F1 runs)")
    p.add_argument("--max-benchmark-runs", type=int, default=None, help="latency runs per model (default 5)")
    p.add_argument("--subset", help="comma separated model ids to work on, ignoring all others")
    p.add_argument("--no-quantization", action="store_true", help="never convert or quantize on this runner")
    p.add_argument(
        "--no-device-work", action="store_true", help="only conversion, quantization and f1_onnx (CPU nodes)"
    )
    p.add_argument("--once", action="store_true", help="exit when there is nothing left to do")
    p.add_argument(
        "--once-give-up", type=float, default=60.0, metavar="S",
        help="with --once: exit 2 after S seconds of store faults (unreachable, disk full; default 60)",
    )  # fmt: skip
    p.add_argument("--working", type=Path, help="working folder for downloads and artifacts")
    p.add_argument("--lock-dir", type=Path, help="folder of the per-host quantization lock (default: temp)")
    p.add_argument("--lease-ttl", type=float, help="lease length in seconds (default 60)")
    p.add_argument("--poll-interval", type=float, help="seconds between polls when idle (default 10)")
    p.add_argument("--f1-sizes", help="test images for f1_onnx,f1_1k,f1_10k (e.g. 10000,1000,10000)")
    p.add_argument("--benchmark-iterations", type=int, help="inferences per benchmark run (default 50)")
    p.add_argument(
        "--qnn-option", action="append", default=[], metavar="KEY=VALUE",
        help="a qnn target option over the config's target.qnn (activation_type=uint16, "
        "htp_performance_mode=burst, embed_context=true, workers=2, toolchain=olive, ...); repeatable",
    )  # fmt: skip
    p.add_argument("--stats", type=Path, help="write a JSON summary (items, store requests) here at exit")
    p.add_argument(
        "--submit", type=int, metavar="N", help="submit N runner instances as an Azure ML command job instead"
    )
    p.add_argument("--metrics-port", type=int, help="serve /metrics, /queue, /healthz on this port (0: any)")
    p.add_argument(
        "--metrics-host",
        default="127.0.0.1",
        help="address of the metrics server (default 127.0.0.1; in a pod: its address, $(POD_IP))",
    )
    p.add_argument("--metrics-only", action="store_true", help="only serve the queue metrics, do no work")
    p.set_defaults(func=_runner)

    u = subparsers.add_parser("usage", help="device utilization per device and UTC day")
    u.add_argument("--device", help="only this device")
    u.add_argument("--json", action="store_true", help="print JSON instead of a table")
    u.set_defaults(func=_usage)


def parse_target_spec(spec: str) -> tuple[str, dict[str, str]]:
    """``name`` or ``name:key=value,key=value`` (``fixed:cost=0.5,quantize=2``): the target's name and
    options over its ``target:`` settings."""
    name, _, rest = spec.partition(":")
    options = dict(
        _key_value(part, f"--target {spec}") for part in filter(None, (p.strip() for p in rest.split(",")))
    )
    return name.strip(), options


def runner_target_settings(config: Any, args: argparse.Namespace) -> TargetConfig:
    """The settings of the runner's target: the ``target:`` section as the backend that ``--target`` names
    (default: the section's own), with the spec's, ``--target-option``'s and the backend flags' options."""
    name, options = parse_target_spec(args.target or config.target.name)
    options.update(_key_value(o, "--target-option") for o in getattr(args, "target_option", None) or [])
    options.update((f"qnn.{k}", v) for k, v in (_key_value(o, "--qnn-option") for o in args.qnn_option or []))
    for flag, field in (("sdk_root", "sdk_root"), ("hub_device", "hub_device")):
        value = getattr(args, flag, None)
        if value is not None:
            options[field] = str(value)
    return target_settings(config.target, name, options)


def make_target(spec: str, **kwargs: Any) -> Target:
    """A target from a command-line spec, ``name`` or ``name:key=value,...`` (options of its settings), or
    built with ``kwargs`` when given (``get_target(name, **kwargs)``)."""
    name, options = parse_target_spec(spec)
    if kwargs:
        return get_target(name, **kwargs)
    from archai_aml.config import TargetConfig

    return target_from_config(target_settings(TargetConfig(), name, options))


def _runner(args: argparse.Namespace) -> int:
    from archai_aml.runner.queue import subset_from_arg

    config, store_config = resolve_store_config(getattr(args, "config", None))
    if args.submit:
        from archai_aml.runner.azureml import submit_runner_job

        job = submit_runner_job(config, instances=args.submit, target=args.target or "cpu")
        log.warning("submitted Azure ML job %s", getattr(job, "name", job))
        return 0
    from archai_aml.runner.worker import Runner, RunnerSettings
    from archai_aml.store import open_store
    from archai_aml.store.counting import CountingStore

    f1: tuple[int | None, ...] = (None, None, None)
    if args.f1_sizes:
        try:
            f1 = tuple(int(x) for x in args.f1_sizes.split(","))  # type: ignore[assignment]
        except ValueError:
            raise ConfigError("--f1-sizes takes three integers, e.g. 10000,1000,10000") from None
        if len(f1) != 3:
            raise ConfigError("--f1-sizes takes three integers, e.g. 10000,1000,10000")
    settings = RunnerSettings.from_config(
        config,
        experiment=args.experiment or None,
        device=args.device or None,
        benchmark_only=args.benchmark_only,
        max_benchmark_runs=args.max_benchmark_runs or None,
        subset=subset_from_arg(args.subset),
        no_quantization=args.no_quantization,
        no_device_work=args.no_device_work,
        working=args.working or None,
        lock_dir=args.lock_dir or None,
        lease_ttl=args.lease_ttl or None,
        poll_interval=args.poll_interval or None,
        benchmark_iterations=args.benchmark_iterations or None,
        f1_onnx_images=f1[0],
        f1_1k_images=f1[1],
        f1_10k_images=f1[2],
    )
    # resolved once, here: steps compare paths under it with resolved ones (a relative --working failed them)
    settings = dataclasses.replace(settings, working=Path(settings.working).expanduser().resolve())
    target = target_from_config(runner_target_settings(config, args), device=settings.device)
    http = store_config.http_counter()  # the backend's HTTP request counter, where it has one
    store = CountingStore(open_store(store_config, **({"http_counter": http} if http else {})))
    runner = Runner(store, target, settings)
    runner.outage.once_limit_s = args.once_give_up
    runner.install_signal_handlers()
    count = 0
    server = None
    if args.metrics_port is not None or args.metrics_only:
        from archai_aml.runner.metrics import serve_for_runner

        port = 9100 if args.metrics_port is None else args.metrics_port
        server = serve_for_runner(
            store, runner, host=args.metrics_host, port=port, metrics_only=args.metrics_only
        )
    try:
        while args.metrics_only and not runner.stopping:
            time.sleep(0.2)
        count = 0 if args.metrics_only else runner.run(once=args.once)
    finally:
        if server is not None:
            server.stop()
        target.close()
        if args.stats:
            args.stats.write_text(
                json.dumps(
                    {
                        "owner": runner.owner,
                        "items": count,
                        "done": runner.done,
                        "kinds": dict(runner.kinds),
                        "requests": store.total,
                        "requests_by_method": dict(store.counts),
                        "http_requests": http.total if http else None,
                        "http_by_method": dict(http.counts) if http else None,
                    }
                ),
                encoding="utf-8",
            )
        store.close()
    return 0


def _key_value(text: str, option: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"{option} takes KEY=VALUE, got {text!r}")
    return key.strip(), value.strip()


def _usage(args: argparse.Namespace) -> int:
    from archai_aml.runner.usage import format_usage, usage_store, utilization
    from archai_aml.store import open_store

    _, store_config = resolve_store_config(getattr(args, "config", None))
    with open_store(store_config) as store:
        rows = utilization(usage_store(store), device=args.device)
    if args.json:
        out = [
            {
                "device": r.device,
                "day": r.day.isoformat() if r.day else "window",
                "items": r.items,
                "busy_s": r.busy_s,
                "utilization": r.utilization,
            }
            for r in rows
        ]
        print(json.dumps(out))  # noqa: T201 - the command's output
    else:
        print(format_usage(rows) if rows else "no device usage recorded")  # noqa: T201
    return 0
