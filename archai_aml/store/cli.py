"""Store verbs of the ``archai-aml`` console script: status, upload, download, list, delete, reset, unlock.

The store comes from ``--config`` (its ``store`` section), else from ``ARCHAI_AML_STORE`` /
``MODEL_STORAGE_CONNECTION_STRING`` (see :func:`archai_aml.store.store_config_from_env`), else the embedded
default. The partition is the experiment name: ``--experiment``, else the config's ``experiment_name``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from archai_aml.errors import ConcurrencyError, InvalidNameError, StoreError
from archai_aml.status_row import HIDDEN_COLUMNS, status_columns
from archai_aml.store import LeaseManager, Store, open_store, resolve_store_config
from archai_aml.store.leases import lease_state
from archai_aml.store.rules import key_problem, user_columns

log = logging.getLogger(__name__)

#: Columns that ``reset`` keeps (besides the --except ones); everything else is a result and is cleared.
KEPT_BY_RESET = ("status", "priority", "model_date")
#: Columns ``status`` hides unless asked for with --columns.
HIDDEN = HIDDEN_COLUMNS


# ------------------------------------------------------------------------------------------- plumbing
def check_name(value: str, flag: str) -> str:
    """``value`` when it can be a partition or model id, else :class:`InvalidNameError` naming ``flag``."""
    problem = key_problem(value)
    if problem is not None:
        raise InvalidNameError(f"{flag} {value!r} cannot name a row: {problem}")
    return value


def _check_args(args: argparse.Namespace) -> None:
    """Every model id the command was given, checked before the store is opened, naming its flag."""
    if getattr(args, "experiment", None):
        check_name(args.experiment, "--experiment")
    name = getattr(args, "name", None)
    flag = "--name" if getattr(args, "command", None) in ("status", "upload") else "NAME"
    for value in [name] if isinstance(name, str) else _split(name):
        check_name(value, flag)


def _open(args: argparse.Namespace) -> tuple[Store, str]:
    """The store and the experiment (partition) the command works on."""
    _check_args(args)
    config, store_config = resolve_store_config(getattr(args, "config", None))
    experiment = args.experiment or config.experiment_name
    log.info("store %s, experiment %s", store_config.backend, experiment)
    return open_store(store_config), experiment


def _out(text: str = "") -> None:
    sys.stdout.write(text + "\n")


def _split(values: Sequence[str] | None) -> list[str]:
    """Repeated and comma-separated option values, flattened."""
    out: list[str] = []
    for value in values or ():
        out.extend(v.strip() for v in value.split(",") if v.strip())
    return out


def format_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    return str(value)


def sort_key(value: Any) -> tuple[int, Any]:
    """Missing values last; numbers before datetimes before strings (mixed columns still sort)."""
    if value is None:
        return (3, 0)
    if isinstance(value, (bool, int, float)):
        return (0, float(value))
    if isinstance(value, datetime):
        return (1, value.timestamp())
    return (2, str(value))


def format_table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    cells = [[format_value(r.get(c)) for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines.extend("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in cells)
    return "\n".join(lines)


def table_columns(rows: Iterable[dict[str, Any]], wanted: Sequence[str] | None = None) -> list[str]:
    """``wanted``, or name, status, then the status row's known columns in its order, then the others in
    first-seen order (internal ones hidden): :func:`archai_aml.status_row.status_columns`."""
    return status_columns(rows, wanted)


# -------------------------------------------------------------------------------------------- verbs
def cmd_status(args: argparse.Namespace) -> int:
    store, experiment = _open(args)
    with store:
        names = _split(args.name) or None
        rows = store.query(experiment, status=_split(args.status) or None, names=names)
    if args.sort:
        rows.sort(key=lambda r: sort_key(r.get(args.sort)), reverse=args.desc)
    columns = table_columns(rows, _split(args.columns) or None)
    _out(format_table(rows, columns))
    _out(f"{len(rows)} row(s) in experiment {experiment!r} of table {store.table_name!r}")
    return 0


def _check_onnx(path: Path) -> None:
    import onnx

    try:
        onnx.load_model(str(path), load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError and friends
        raise StoreError(f"{path} is not a readable ONNX model ({exc}): nothing uploaded") from exc


def cmd_upload(args: argparse.Namespace) -> int:
    model = Path(args.model)
    if not model.is_file():
        raise StoreError(f"{model} does not exist: nothing uploaded")
    _check_onnx(model)
    if args.name is None and key_problem(model.stem) is not None:
        raise InvalidNameError(
            f"the file name {model.stem!r} cannot be a model id ({key_problem(model.stem)}): pass --name"
        )
    name = args.name or model.stem
    store, experiment = _open(args)
    with store:
        existing = store.get(experiment, name)
        if existing is not None and not args.reset:
            raise StoreError(
                f"{experiment}/{name} already exists: pass --reset to replace it, or --name for another id"
            )
        owner, live = lease_state(existing)
        if live:
            raise StoreError(
                f"{name} is leased by {owner}: run `archai-aml unlock {name}` first if that owner is gone"
            )
        # the blob first, so a runner never sees a new row without its model
        store.upload(experiment, name, model, blob_name="model.onnx", overwrite=True)
        values: dict[str, Any] = {"status": "new", "model_date": datetime.now(timezone.utc)}
        if args.priority is not None:
            values["priority"] = args.priority
        if existing is None:
            entity = store.create(experiment, name, values)
        else:
            entity = store.replace(experiment, name, values, expected_version=existing["_version"])
    _out(f"uploaded {model} as {experiment}/{name}/model.onnx (status new, version {entity['_version']})")
    return 0


def cmd_download(args: argparse.Namespace) -> int:
    store, experiment = _open(args)
    with store:
        folder = Path(args.folder) if args.folder else Path(args.name)
        paths = store.download(experiment, args.name, folder, pattern=args.file)
    for path in paths:
        _out(str(path))
    if not paths:
        sys.stderr.write(f"no blobs of {experiment}/{args.name} matched\n")
        return 1
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    store, experiment = _open(args)
    with store:
        names = store.list_blobs(experiment, args.name, pattern=args.pattern)
    for name in names:
        _out(name)
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    store, experiment = _open(args)
    with store:
        blobs = 0 if args.row_only else store.delete_blobs(experiment, args.name)
        row = False if args.blobs_only else store.delete(experiment, args.name)
    _out(f"deleted {experiment}/{args.name}: row {'yes' if row else 'no'}, {blobs} blob(s)")
    return 0 if (row or blobs) else 1


def reset_values(entity: dict[str, Any], keep: Iterable[str]) -> dict[str, Any]:
    """The columns a reset row keeps (status back to ``new``)."""
    kept = set(KEPT_BY_RESET) | set(keep)
    values = {k: v for k, v in user_columns(entity).items() if k in kept}
    values["status"] = "new"
    return values


def reset_entity(store: Store, experiment: str, name: str, keep: Iterable[str], *, force: bool) -> str:
    """Reset one row by compare-and-swap (re-read and re-decide on a conflict). Returns what happened."""
    keep = list(keep)
    for _ in range(10):
        entity = store.get(experiment, name)
        if entity is None:
            return "missing"
        owner, live = lease_state(entity)
        if live and not force:
            return f"skipped (leased by {owner}; unlock it or pass --force)"
        values = reset_values(entity, keep)
        try:
            store.replace(experiment, name, values, expected_version=entity["_version"])
        except ConcurrencyError:
            continue
        return "reset"
    raise StoreError(f"{experiment}/{name} kept changing while being reset: try again")


def cmd_reset(args: argparse.Namespace) -> int:
    if bool(args.name) == bool(args.all):
        raise StoreError("reset: give one NAME or --all")
    keep = _split(args.except_)
    store, experiment = _open(args)
    with store:
        names = [args.name] if args.name else [e["name"] for e in store.query(experiment)]
        outcome = {name: reset_entity(store, experiment, name, keep, force=args.force) for name in names}
    for name, what in outcome.items():
        _out(f"{name}: {what}")
    return 0 if any(what == "reset" for what in outcome.values()) or not names else 1


def cmd_unlock(args: argparse.Namespace) -> int:
    if not args.name and not args.owner:
        raise StoreError("unlock: give a NAME, or --owner OWNER (or both: NAME only if OWNER holds it)")
    store, experiment = _open(args)
    with store:
        leases = LeaseManager(store, experiment)
        if args.name:
            names = [args.name]
        else:
            names = [e["name"] for e in store.query(experiment, where={"lease_owner": args.owner})]
        unlocked = [n for n in names if leases.break_lease(n, owner=args.owner)]
    for name in unlocked:
        _out(f"unlocked {experiment}/{name}")
    _out(f"{len(unlocked)} lease(s) broken")
    return 0 if unlocked else 1


# ----------------------------------------------------------------------------------------- register
def register(subparsers: Any) -> None:
    """Add the store verbs to the ``archai-aml`` parser."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--experiment", "-e", help="experiment (the partition); default: the config's experiment_name"
    )

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        return subparsers.add_parser(name, parents=[common], help=help_text, description=help_text)  # type: ignore[no-any-return]

    p = add("status", "print the status table of an experiment")
    p.add_argument("--status", "-s", action="append", help="only rows with this status (repeat or a,b)")
    p.add_argument("--name", "-n", action="append", help="only these model names (repeat or a,b)")
    p.add_argument("--sort", help="sort by this column (missing values last)")
    p.add_argument("--desc", action="store_true", help="sort in descending order")
    p.add_argument("--columns", action="append", help="show these columns, in this order (a,b,c)")
    p.set_defaults(func=cmd_status)

    p = add("upload", "upload an ONNX model as a new row (status new) with its model.onnx blob")
    p.add_argument("model", help="the .onnx file")
    p.add_argument("--name", help="model id (default: the file name without .onnx)")
    p.add_argument("--priority", type=int, help="priority of the row (runners take lower numbers first)")
    p.add_argument("--reset", action="store_true", help="replace an existing row of that name")
    p.set_defaults(func=cmd_upload)

    p = add("download", "download a model's blobs")
    p.add_argument("name", help="model id")
    p.add_argument("--folder", "-o", help="target folder (default: ./NAME)")
    p.add_argument("--file", "-f", help="only blobs whose name matches this regex (re.search)")
    p.set_defaults(func=cmd_download)

    p = add("list", "list the blobs of a model (or of the whole experiment)")
    p.add_argument("name", nargs="?", help="model id (default: every model)")
    p.add_argument("--pattern", help="only blob names matching this regex (re.search)")
    p.set_defaults(func=cmd_list)

    p = add("delete", "delete a model's row and blobs")
    p.add_argument("name", help="model id")
    only = p.add_mutually_exclusive_group()
    only.add_argument("--blobs-only", action="store_true", help="keep the row")
    only.add_argument("--row-only", action="store_true", help="keep the blobs")
    p.set_defaults(func=cmd_delete)

    p = add("reset", "clear the result columns of a row (keeps name, status, priority, model_date)")
    p.add_argument("name", nargs="?", help="model id")
    p.add_argument("--all", action="store_true", help="every row of the experiment")
    p.add_argument("--except", dest="except_", action="append", help="also keep these columns (a,b)")
    p.add_argument("--force", action="store_true", help="also reset rows whose lease is live")
    p.set_defaults(func=cmd_reset)

    p = add("unlock", "break the lease on one row, or on every row of one owner")
    p.add_argument("name", nargs="?", help="model id")
    p.add_argument("--owner", help="every row leased by this owner")
    p.set_defaults(func=cmd_unlock)


__all__ = [
    "format_table",
    "format_value",
    "register",
    "reset_entity",
    "reset_values",
    "sort_key",
    "table_columns",
]
