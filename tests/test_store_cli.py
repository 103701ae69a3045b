"""The store verbs of ``archai-aml``, run in-process and as the installed console script, on real stores."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
import warnings
from pathlib import Path

import pytest
import torch

from archai_aml.cli import main
from archai_aml.config import StoreConfig
from archai_aml.store import LeaseManager, open_store
from archai_aml.store.embedded import EmbeddedStore

E = "cli-exp"


class TinyNet(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.head = torch.nn.Conv2d(4, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.conv(x)))


@pytest.fixture(scope="module")
def onnx_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("models") / "tiny.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter is fast and quiet
        torch.onnx.export(
            TinyNet().eval(), (torch.randn(1, 3, 16, 16),), str(path), dynamo=False, input_names=["input"]
        )
    return path


@pytest.fixture
def store_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An embedded store named by ARCHAI_AML_STORE, as a user would set it."""
    path = tmp_path / "store"
    monkeypatch.setenv("ARCHAI_AML_STORE", str(path))
    monkeypatch.delenv("MODEL_STORAGE_CONNECTION_STRING", raising=False)
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def table_rows(out: str) -> list[list[str]]:
    """The data lines of a status table, split on runs of spaces (header and rule dropped)."""
    lines = out.strip().splitlines()
    return [line.split() for line in lines[2:-1]]


def test_upload_status_and_blobs(
    capsys: pytest.CaptureFixture[str], store_dir: Path, onnx_model: Path, tmp_path: Path
) -> None:
    code, out, _ = run(capsys, "upload", str(onnx_model), "-e", E, "--priority", "3")
    assert code == 0 and f"{E}/tiny/model.onnx" in out
    code, _, _ = run(capsys, "upload", str(onnx_model), "-e", E, "--name", "m2", "--priority", "1")
    assert code == 0
    code, _, err = run(capsys, "upload", str(onnx_model), "-e", E, "--name", "m2")
    assert code == 2 and "already exists" in err and "--reset" in err

    store = EmbeddedStore(store_dir)
    rows = {r["name"]: r for r in store.query(E)}
    assert set(rows) == {"tiny", "m2"}
    assert rows["tiny"]["status"] == "new" and rows["tiny"]["priority"] == 3
    assert rows["m2"]["priority"] == 1
    assert store.download_bytes(E, "tiny", "model.onnx") == onnx_model.read_bytes()

    code, out, _ = run(capsys, "status", "-e", E, "--sort", "priority")
    assert code == 0
    header = out.splitlines()[0].split()
    assert header[:2] == ["name", "status"] and "priority" in header and "lease_token" not in header
    assert [r[0] for r in table_rows(out)] == ["m2", "tiny"]
    assert out.strip().endswith(f"2 row(s) in experiment '{E}' of table 'status'")
    code, out, _ = run(capsys, "status", "-e", E, "--sort", "priority", "--desc")
    assert [r[0] for r in table_rows(out)] == ["tiny", "m2"]

    store.merge(E, "m2", {"status": "complete", "val_iou": 0.8125})
    code, out, _ = run(capsys, "status", "-e", E, "--status", "complete", "--columns", "name,val_iou")
    assert out.splitlines()[0].split() == ["name", "val_iou"]
    assert table_rows(out) == [["m2", "0.8125"]]
    code, out, _ = run(capsys, "status", "-e", E, "--name", "tiny", "--columns", "name,status")
    assert table_rows(out) == [["tiny", "new"]]

    code, out, _ = run(capsys, "list", "-e", E)
    assert out.split() == ["m2/model.onnx", "tiny/model.onnx"]
    code, out, _ = run(capsys, "list", "tiny", "-e", E)
    assert out.split() == ["model.onnx"]

    target = tmp_path / "dl"
    code, out, _ = run(capsys, "download", "tiny", "-e", E, "--folder", str(target), "--file", r"\.onnx$")
    assert code == 0
    assert (target / "model.onnx").read_bytes() == onnx_model.read_bytes()
    code, _, err = run(capsys, "download", "tiny", "-e", E, "--folder", str(target), "--file", "nomatch")
    assert code == 1 and "no blobs" in err

    # --reset replaces the row, clearing the old results
    code, _, _ = run(capsys, "upload", str(onnx_model), "-e", E, "--name", "m2", "--reset")
    assert code == 0
    m2 = store.get(E, "m2")
    assert m2 is not None and m2["status"] == "new" and "val_iou" not in m2 and "priority" not in m2


def test_upload_rejects_a_file_that_is_not_onnx(
    capsys: pytest.CaptureFixture[str], store_dir: Path, tmp_path: Path
) -> None:
    bogus = tmp_path / "bogus.onnx"
    bogus.write_bytes(b"this is not a protobuf \xff\xfe")
    code, _, err = run(capsys, "upload", str(bogus), "-e", E)
    assert code == 2 and "not a readable ONNX model" in err
    assert EmbeddedStore(store_dir).query(E) == []
    assert EmbeddedStore(store_dir).list_blobs(E) == []


def test_delete_reset_unlock(capsys: pytest.CaptureFixture[str], store_dir: Path) -> None:
    store = EmbeddedStore(store_dir)
    for name in ("a", "b", "c"):
        store.create(
            E, name, {"status": "complete", "priority": 1, "val_iou": 0.5, "latency": 2.0, "shape": "[1,3]"}
        )
        store.upload_bytes(E, name, "model.onnx", b"onnx")
        store.upload_bytes(E, name, "log.txt", b"log")

    # delete: row and blobs, only blobs, only the row
    code, out, _ = run(capsys, "delete", "a", "-e", E)
    assert code == 0 and "row yes, 2 blob(s)" in out
    assert store.get(E, "a") is None and store.list_blobs(E, "a") == []
    code, out, _ = run(capsys, "delete", "b", "-e", E, "--blobs-only")
    assert "row no, 2 blob(s)" in out and store.get(E, "b") is not None and store.list_blobs(E, "b") == []
    code, out, _ = run(capsys, "delete", "c", "-e", E, "--row-only")
    assert "row yes, 0 blob(s)" in out and store.get(E, "c") is None and len(store.list_blobs(E, "c")) == 2
    code, _, _ = run(capsys, "delete", "nothing", "-e", E)
    assert code == 1

    # reset: clears results, keeps name/status/priority/model_date and --except columns
    store.create(E, "d", {"status": "complete", "priority": 4, "val_iou": 0.9, "shape": "[1,3]", "err": "x"})
    code, out, _ = run(capsys, "reset", "b", "-e", E)
    assert code == 0 and "b: reset" in out
    b = store.get(E, "b")
    assert b is not None
    assert {k: v for k, v in b.items() if not k.startswith("_") and k not in ("partition", "name")} == {
        "status": "new",
        "priority": 1,
    }
    code, out, _ = run(capsys, "reset", "--all", "-e", E, "--except", "shape")
    d = store.get(E, "d")
    assert d is not None and d["status"] == "new" and d["shape"] == "[1,3]" and d["priority"] == 4
    assert "val_iou" not in d and "err" not in d
    code, _, err = run(capsys, "reset", "-e", E)
    assert code == 2 and "NAME or --all" in err

    # a live lease: reset skips it, unlock --owner breaks it, then reset works
    leases = LeaseManager(store, E)
    assert leases.acquire("d", "runner-7", ttl=600) is not None
    store.merge(E, "d", {"val_iou": 0.1})
    code, out, _ = run(capsys, "reset", "d", "-e", E)
    assert code == 1 and "leased by runner-7" in out
    assert store.get(E, "d")["val_iou"] == 0.1  # type: ignore[index]
    code, out, _ = run(capsys, "unlock", "--owner", "someone-else", "-e", E)
    assert code == 1 and "0 lease(s) broken" in out
    code, out, _ = run(capsys, "unlock", "--owner", "runner-7", "-e", E)
    assert code == 0 and f"unlocked {E}/d" in out
    assert "lease_owner" not in store.get(E, "d")  # type: ignore[operator]
    assert leases.acquire("b", "runner-8", ttl=600) is not None
    code, out, _ = run(capsys, "unlock", "b", "-e", E)
    assert code == 0 and "lease_owner" not in store.get(E, "b")  # type: ignore[operator]
    code, out, _ = run(capsys, "reset", "d", "-e", E)
    assert code == 0 and "val_iou" not in store.get(E, "d")  # type: ignore[operator]


def test_config_file_names_the_store_and_experiment(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ARCHAI_AML_STORE", raising=False)
    monkeypatch.delenv("MODEL_STORAGE_CONNECTION_STRING", raising=False)
    monkeypatch.setenv("H1_STORE_DIR", str(tmp_path / "from-config"))
    config = tmp_path / "config.yaml"
    config.write_text(
        "experiment_name: fromconfig\nstore:\n  path: ${H1_STORE_DIR}\n  table_name: cfgtable\n",
        encoding="utf-8",
    )
    store = EmbeddedStore(tmp_path / "from-config", table_name="cfgtable")
    store.create("fromconfig", "m1", {"status": "new"})
    code, out, _ = run(capsys, "--config", str(config), "status")
    assert code == 0
    assert table_rows(out) == [["m1", "new"]]
    assert "table 'cfgtable'" in out


def _console_script() -> str:
    script = Path(sys.executable).parent / "archai-aml"
    found = str(script) if script.exists() else shutil.which("archai-aml")
    assert found, "the archai-aml console script is not installed (pip install -e .)"
    return found


def test_installed_console_script(store_dir: Path, onnx_model: Path) -> None:
    script = _console_script()
    env = dict(os.environ)
    upload = subprocess.run(
        [script, "upload", str(onnx_model), "--experiment", E, "--priority", "5"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert upload.returncode == 0, upload.stderr
    status = subprocess.run(
        [script, "status", "--experiment", E], env=env, capture_output=True, text=True, timeout=120
    )
    assert status.returncode == 0, status.stderr
    rows = table_rows(status.stdout)
    assert len(rows) == 1 and rows[0][:2] == ["tiny", "new"] and "5" in rows[0]
    missing = subprocess.run(
        [script, "upload", str(store_dir / "nope.onnx"), "--experiment", E],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    assert EmbeddedStore(store_dir).get(E, "tiny")["priority"] == 5  # type: ignore[index]


@pytest.mark.azure
def test_status_and_upload_on_azurite(
    capsys: pytest.CaptureFixture[str], azurite, onnx_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    table = "t" + uuid.uuid4().hex[:16]
    container = "c" + uuid.uuid4().hex[:16]
    monkeypatch.delenv("ARCHAI_AML_STORE", raising=False)
    monkeypatch.setenv("MODEL_STORAGE_CONNECTION_STRING", azurite.connection_string)
    monkeypatch.setenv("ARCHAI_AML_STORE_TABLE", table)
    monkeypatch.setenv("ARCHAI_AML_STORE_CONTAINER", container)
    code, out, err = run(capsys, "upload", str(onnx_model), "-e", E, "--priority", "2")
    assert code == 0, err
    code, out, err = run(capsys, "status", "-e", E)
    assert code == 0, err
    assert table_rows(out)[0][:2] == ["tiny", "new"]
    assert f"table '{table}'" in out
    assert azurite.account_key not in out + err  # the secret never shows
    config: StoreConfig = azurite.store_config(table_name=table, container_name=container)
    with open_store(config) as store:
        row = store.get(E, "tiny")
        assert row is not None and row["priority"] == 2 and row["status"] == "new"
        assert store.download_bytes(E, "tiny", "model.onnx") == onnx_model.read_bytes()


def test_quickstart_example_runs(tmp_path: Path) -> None:
    """The store quick-start (examples/quickstart_store.py) exits 0 and leaves a consistent store."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("ARCHAI_AML_STORE", "MODEL_STORAGE_CONNECTION_STRING")
    }
    example = Path(__file__).resolve().parents[1] / "examples" / "quickstart_store.py"
    done = subprocess.run(
        [sys.executable, str(example), "--output", str(tmp_path / "demo")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "blobs verified" in done.stdout
    store = EmbeddedStore(tmp_path / "demo" / "store")
    rows = {r["name"]: r for r in store.query("quickstart")}
    assert sorted(rows) == ["tiny_w16", "tiny_w4", "tiny_w8"]
    assert rows["tiny_w4"]["status"] == "complete" and rows["tiny_w4"]["cpu_latency_ms"] > 0
    assert rows["tiny_w8"]["status"] == "new" and rows["tiny_w16"]["priority"] == 2
    assert (tmp_path / "demo" / "downloaded" / "tiny_w8" / "model.onnx").is_file()


# --------------------------------------------------------------------- one-line errors (issue 8)
def single_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_bad_names_name_their_flag(
    store_dir: Path, onnx_model: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    cases = [
        (["upload", str(onnx_model), "--name", ".."], "archai-aml upload: --name '..'"),
        (["status", "--name", "a/b"], "archai-aml status: --name 'a/b'"),
        (["download", "..", "-o", str(tmp_path / "out")], "archai-aml download: NAME '..'"),
        (["delete", "x#y"], "archai-aml delete: NAME 'x#y'"),
        (["status", "--experiment", "."], "archai-aml status: --experiment '.'"),
    ]
    for argv, start in cases:
        code, out, err = run(capsys, *argv)
        assert code == 2, (argv, err)
        assert single_error_line(err).startswith(start), err
    odd = tmp_path / "odd#name.onnx"
    shutil.copy(onnx_model, odd)
    code, _, err = run(capsys, "upload", str(odd))
    assert code == 2 and "pass --name" in single_error_line(err)
    with EmbeddedStore(store_dir) as store:
        assert store.partitions() == []
    assert not (tmp_path / "out").exists()


def test_bad_environment_values_name_the_variable(
    store_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ARCHAI_AML_STORE_TABLE", "no spaces allowed")
    code, _, err = run(capsys, "status")
    assert code == 2
    line = single_error_line(err)
    assert "ARCHAI_AML_STORE_TABLE='no spaces allowed'" in line
    monkeypatch.delenv("ARCHAI_AML_STORE_TABLE")
    monkeypatch.setenv("ARCHAI_AML_STORE_CONTAINER", "Bad_Container")
    code, _, err = run(capsys, "status")
    assert code == 2 and "ARCHAI_AML_STORE_CONTAINER='Bad_Container'" in single_error_line(err)


def test_os_errors_and_bad_patterns_end_in_one_line(
    store_dir: Path, onnx_model: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert run(capsys, "upload", str(onnx_model), "--name", "m1")[0] == 0
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    code, _, err = run(capsys, "download", "m1", "-o", str(blocker / "sub"))
    assert code == 2
    line = single_error_line(err)
    assert line.startswith("archai-aml download:") and "a-file" in line
    code, _, err = run(capsys, "list", "m1", "--pattern", "(unclosed")
    assert code == 2 and single_error_line(err).startswith("archai-aml list: error: missing )")


def test_archai_log_goes_under_the_commands_folder(
    store_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from archai.common import ordered_dict_logger_utils
    from archai.common.ordered_dict_logger_utils import get_logger

    monkeypatch.setattr(ordered_dict_logger_utils, "LOG_FILE", "archai.log")  # restored after the test
    monkeypatch.chdir(tmp_path)
    archai_logger = get_logger("archai.test.cli")  # made before the command: its handler points at the cwd
    try:
        assert run(capsys, "status")[0] == 0
        archai_logger.info("a record archai writes")
        for handler in archai_logger.handlers:
            handler.flush()
        assert not (tmp_path / "archai.log").exists()
        assert "a record archai writes" in (tmp_path / ".archai_aml" / "archai.log").read_text()
        later = get_logger("archai.test.cli.later")  # made after: LOG_FILE points there too
        later.info("later record")
        assert "later record" in (tmp_path / ".archai_aml" / "archai.log").read_text()
    finally:
        for logger in (archai_logger, get_logger("archai.test.cli.later")):
            for handler in list(logger.handlers):
                handler.close()
                logger.removeHandler(handler)
