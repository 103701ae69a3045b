"""Configuration: YAML + ${ENV} substitution, load-time errors that name the field, secrets never shown."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from archai_aml.config import ArchaiAmlConfig, StoreConfig, dump_config, load_config, substitute_env
from archai_aml.errors import ConfigError
from archai_aml.store import job_environment, store_config_from_env

SECRET_KEY = "c2VjcmV0LWtleS1kby1ub3Qtc2hvdw=="
SECRET_CS = (
    "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey="
    + SECRET_KEY
    + ";EndpointSuffix=core.windows.net"
)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults() -> None:
    config = load_config(None)
    assert isinstance(config, ArchaiAmlConfig)
    assert config.store.backend == "embedded"
    assert config.store.table_name == "status" and config.store.container_name == "models"
    assert config.aml is None
    assert config.experiment_name == "archai-aml"


def test_env_substitution_with_and_without_defaults(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
experiment_name: ${EXP}
store:
  backend: azure
  connection_string: ${MODEL_STORAGE_CONNECTION_STRING}
  table_name: ${TABLE:-statusTable}
  max_concurrency: ${CONC:-4}
training:
  command: python train.py --data ${{inputs.data}} --out ${{outputs.output}} --id {model_id}
  environment_variables:
    MIXED: prefix-${EXP}-suffix
aml:
  workspace:
    subscription_id: ${AZURE_SUBSCRIPTION_ID}
    resource_group: rg-${EXP}
    workspace_name: ws
""",
    )
    env = {"EXP": "face1", "MODEL_STORAGE_CONNECTION_STRING": SECRET_CS, "AZURE_SUBSCRIPTION_ID": "sub-123"}
    config = load_config(path, env=env)
    assert config.experiment_name == "face1"
    assert config.store.backend == "azure"
    assert config.store.connection_string is not None
    assert config.store.connection_string.get_secret_value() == SECRET_CS
    assert config.store.table_name == "statusTable"  # the default
    assert config.store.max_concurrency == 4 and isinstance(config.store.max_concurrency, int)
    assert config.training.command.startswith(
        "python train.py --data ${{inputs.data}} --out ${{outputs.output}}"
    )
    assert config.training.environment_variables == {"MIXED": "prefix-face1-suffix"}
    assert config.aml is not None
    assert config.aml.workspace.subscription_id == "sub-123"
    assert config.aml.workspace.resource_group == "rg-face1"
    # a set variable wins over the default
    config = load_config(path, env={**env, "TABLE": "other", "CONC": "16"})
    assert config.store.table_name == "other" and config.store.max_concurrency == 16


def test_os_environ_is_the_default_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("H1_EXPERIMENT", "fromenv")
    config = load_config(write(tmp_path, "experiment_name: ${H1_EXPERIMENT}\n"))
    assert config.experiment_name == "fromenv"


def test_missing_variable_names_variable_and_field(tmp_path: Path) -> None:
    path = write(tmp_path, "store:\n  backend: azure\n  connection_string: ${NOT_SET_ANYWHERE}\n")
    with pytest.raises(ConfigError) as err:
        load_config(path, env={})
    message = str(err.value)
    assert "NOT_SET_ANYWHERE" in message and "store.connection_string" in message


def test_wrong_and_unknown_fields_are_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, "store:\n  backend: s3\n"))
    assert "store.backend" in str(err.value) and str(tmp_path / "config.yaml") in str(err.value)
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, "store:\n  pathh: /tmp/x\n"))
    assert "store.pathh" in str(err.value)
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, "training:\n  epochs: -1\n"))
    assert "training.epochs" in str(err.value)
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, "store:\n  max_concurrency: lots\n"))
    assert "store.max_concurrency" in str(err.value)
    with pytest.raises(ConfigError) as err:
        load_config({"aml": {"workspace": {"subscription_id": "s"}}})
    assert "aml.workspace.resource_group" in str(err.value)
    with pytest.raises(ConfigError) as err:
        load_config(
            {
                "aml": {
                    "workspace": {"subscription_id": "s", "resource_group": "r", "workspace_name": "w"},
                    "training_cluster": {"name": "gpu", "min_instances": 5, "max_instances": 2},
                }
            }
        )
    assert "aml.training_cluster" in str(err.value) and "min_instances" in str(err.value)


def test_azure_store_needs_credentials() -> None:
    with pytest.raises(ConfigError) as err:
        load_config({"store": {"backend": "azure"}})
    assert "store" in str(err.value) and "connection_string" in str(err.value)
    assert load_config({"store": {"backend": "azure", "account_name": "acct"}}).store.resolved_urls() == (
        "https://acct.table.core.windows.net",
        "https://acct.blob.core.windows.net",
    )


def test_bad_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(write(tmp_path, "store: [unclosed\n"))
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_config(write(tmp_path, "- a\n- b\n"))


def test_secrets_are_never_printed_or_dumped(tmp_path: Path) -> None:
    config = load_config(
        {"store": {"backend": "azure", "connection_string": SECRET_CS, "sas_token": "sv=2024&sig=SIGSECRET"}}
    )
    shown = [
        repr(config),
        str(config),
        repr(config.store),
        config.model_dump_json(),
        str(config.model_dump()),
        dump_config(config),
    ]
    for text in shown:
        assert SECRET_KEY not in text and "SIGSECRET" not in text, text
    dumped = yaml.safe_load(dump_config(config))
    assert dumped["store"]["connection_string"] == "**********"
    assert dumped["store"]["sas_token"] == "**********"
    # and a failing configuration does not echo the secret in its error
    with pytest.raises(ConfigError) as err:
        load_config({"store": {"backend": "nope", "connection_string": SECRET_CS}})
    assert SECRET_KEY not in str(err.value)


def test_substitute_env_recurses_and_leaves_bindings() -> None:
    value = {"a": ["${X}", {"b": "${Y:-why}"}], "c": 3, "d": "${{inputs.x}}"}
    assert substitute_env(value, {"X": "ex"}) == {"a": ["ex", {"b": "why"}], "c": 3, "d": "${{inputs.x}}"}
    with pytest.raises(ConfigError, match=r"a\[0\].*X"):
        substitute_env(value, {})


def test_store_config_from_env() -> None:
    assert store_config_from_env({}) is None
    folder = store_config_from_env({"ARCHAI_AML_STORE": "/tmp/some/store", "ARCHAI_AML_STORE_TABLE": "tbl1"})
    assert folder is not None and folder.backend == "embedded"
    assert folder.path == Path("/tmp/some/store") and folder.table_name == "tbl1"
    anchor = store_config_from_env({"MODEL_STORAGE_CONNECTION_STRING": SECRET_CS})
    assert anchor is not None and anchor.backend == "azure"
    assert anchor.connection_string is not None and anchor.connection_string.get_secret_value() == SECRET_CS
    assert SECRET_KEY not in repr(anchor)
    identity = store_config_from_env(
        {
            "ARCHAI_AML_STORE_TABLE_URL": "https://a.table.core.windows.net",
            "ARCHAI_AML_STORE_BLOB_URL": "https://a.blob.core.windows.net",
            "ARCHAI_AML_STORE_CLIENT_ID": "client-1",
        }
    )
    assert identity is not None and identity.backend == "azure" and identity.connection_string is None
    assert identity.managed_identity_client_id == "client-1"


def test_job_environment_carries_no_secret_unless_asked(tmp_path: Path) -> None:
    azure = StoreConfig(backend="azure", connection_string=SECRET_CS, account_name="acct")  # type: ignore[arg-type]
    env = job_environment(azure)
    assert all(SECRET_KEY not in v for v in env.values())
    assert env["ARCHAI_AML_STORE_TABLE_URL"] == "https://acct.table.core.windows.net"
    assert "ARCHAI_AML_STORE" not in env
    assert job_environment(azure, include_secrets=True)["ARCHAI_AML_STORE"] == SECRET_CS
    embedded = job_environment(StoreConfig(path=tmp_path / "s"))
    assert embedded["ARCHAI_AML_STORE"] == str((tmp_path / "s").resolve())
    # the environment a job gets opens the same store
    again = store_config_from_env(embedded)
    assert again is not None and again.path == (tmp_path / "s").resolve()


def test_commands_resolve_the_store_by_one_rule(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--config's store wins, else the environment, else the embedded default."""
    from archai_aml.store import resolve_store_config

    monkeypatch.delenv("MODEL_STORAGE_CONNECTION_STRING", raising=False)
    monkeypatch.delenv("ARCHAI_AML_STORE", raising=False)
    _, default = resolve_store_config(None)
    assert default.backend == "embedded" and default.path == StoreConfig().path
    monkeypatch.setenv("ARCHAI_AML_STORE", str(tmp_path / "from_env"))
    _, from_env = resolve_store_config(None)
    assert from_env.path == tmp_path / "from_env"
    path = tmp_path / "c.yaml"
    path.write_text(f"experiment_name: e1\nstore:\n  path: {tmp_path / 'from_file'}\n", encoding="utf-8")
    config, from_file = resolve_store_config(path)
    assert config.experiment_name == "e1" and from_file.path == tmp_path / "from_file"


def test_job_environment_carries_the_job_identity_unless_the_store_names_one() -> None:
    from archai_aml.store import ENV_CLIENT_ID, job_environment

    urls = {
        "backend": "azure",
        "table_url": "https://a.table.core.windows.net",
        "blob_url": "https://a.blob.core.windows.net",
    }
    assert job_environment(StoreConfig(**urls), identity_client_id="job-id")[ENV_CLIENT_ID] == "job-id"
    own = StoreConfig(**urls, managed_identity_client_id="store-id")
    assert job_environment(own, identity_client_id="job-id")[ENV_CLIENT_ID] == "store-id"
    assert ENV_CLIENT_ID not in job_environment(StoreConfig(**urls))


# --------------------------------------------------------------------------------------------- issue 8
REAL_SHAPED_KEY = "Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MEFCQ0RFRkdISUpLTE1OT1BRUlNUVVZXWFlaYWJjZGVmZ2hpamtsbW5vcA=="


def secret_pieces(secret: str, size: int = 12) -> list[str]:
    """Every piece of ``size`` characters of ``secret``: none may appear in what is shown."""
    return [secret[i : i + size] for i in range(0, len(secret) - size + 1)]


@pytest.mark.parametrize(
    "text",
    [
        # an unterminated quote: PyYAML quotes the line (the key's tail) in its snippet
        'store:\n  backend: azure\n  connection_string: "DefaultEndpointsProtocol=https;AccountName=acct;'
        f"AccountKey={REAL_SHAPED_KEY};EndpointSuffix=core.windows.net\n  other: [\n",
        # a tab where YAML wants spaces, right after the key
        f"store:\n  backend: azure\n  connection_string: AccountName=a;AccountKey={REAL_SHAPED_KEY}\n\tbad: 1\n",
        # a bad indentation next to a bare key value
        f"store:\n  account_key_here: {REAL_SHAPED_KEY}\n    nested: [1\n",
    ],
)
def test_yaml_errors_never_show_a_secret(tmp_path: Path, text: str) -> None:
    with pytest.raises(ConfigError, match="not valid YAML") as info:
        load_config(write(tmp_path, text))
    message = str(info.value)
    assert "**********" in message or REAL_SHAPED_KEY[:12] not in message
    leaked = [piece for piece in secret_pieces(REAL_SHAPED_KEY) if piece in message]
    assert leaked == [], message
    assert info.value.__cause__ is None and info.value.__suppress_context__  # no unredacted chained error


def test_sas_signatures_are_redacted_from_config_errors(tmp_path: Path) -> None:
    signature = "AbCdEf0123456789%2BAbCdEf0123456789%3D"
    # the snippet shows the signature's tail without its "sig=": the URL-encoded base64 shape is redacted
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, f"store:\n  sas_token: sv=2024&sig={signature}: x\n"))
    assert "mapping values are not allowed" in str(info.value)
    assert [p for p in secret_pieces(signature, 10) if p in str(info.value)] == [], str(info.value)
    # and a message holding the whole token masks the value after sig=
    with pytest.raises(ConfigError) as info:
        load_config({"store": {"backend": "azure", "sas_token": f"sv=2024&sig={signature}", "oops": 1}})
    assert signature not in str(info.value)
    error = ConfigError(f"bad token sv=2024&sig={signature}&se=2030")
    assert str(error) == "bad token sv=2024&sig=**********&se=2030"


def test_quoted_numbers_and_booleans_are_not_coerced(tmp_path: Path) -> None:
    cases = {
        "training:\n  epochs: '60'\n": ("training.epochs", "'60'"),
        "store:\n  max_concurrency: true\n": ("store.max_concurrency", "True"),
        "training:\n  timeout_seconds: 'soon'\n": ("training.timeout_seconds", "'soon'"),
        "target:\n  input_shape: [1, 3, '256', 256]\n": ("target.input_shape.2", "'256'"),
        "runner:\n  lease_ttl_s: false\n": ("runner.lease_ttl_s", "False"),
    }
    for text, (field, shown) in cases.items():
        with pytest.raises(ConfigError) as info:
            load_config(write(tmp_path, text))
        assert field in str(info.value) and shown in str(info.value), str(info.value)
    # numbers as numbers, an int where a float goes, and values from ${VAR} (text by nature) still load
    config = load_config(
        write(
            tmp_path,
            "training:\n  epochs: 2\n  max_parallel: ${PAR}\n  timeout_seconds: ${T:-90.5}\n"
            "target:\n  input_shape: [1, 3, '${H}', 256]\nstore:\n  progress: ${P}\n",
        ),
        env={"PAR": "3", "H": "128", "P": "false"},
    )
    assert config.training.epochs == 2.0 and isinstance(config.training.epochs, float)
    assert config.training.max_parallel == 3 and config.training.timeout_seconds == 90.5
    assert config.target.input_shape == [1, 3, 128, 256] and config.store.progress is False
    with pytest.raises(ConfigError, match="training.max_parallel"):
        load_config(write(tmp_path, "training:\n  max_parallel: ${PAR}\n"), env={"PAR": "three"})


def test_duplicate_yaml_keys_are_refused_naming_both_lines(tmp_path: Path) -> None:
    text = "experiment_name: first\nstore:\n  backend: embedded\n  path: a\n  path: b\n"
    with pytest.raises(ConfigError, match="'path' appears twice in one mapping: lines 4 and 5"):
        load_config(write(tmp_path, text))
    with pytest.raises(ConfigError, match="'experiment_name' appears twice in one mapping: lines 1 and 6"):
        load_config(
            write(tmp_path, "experiment_name: first\nstore: {}\nx: 1\ny: 2\nz: 3\nexperiment_name: b\n")
        )
    # a merge key may still be overridden, and equal keys in different mappings are fine
    ok = "base: &b {epochs: 1.0}\ntraining:\n  <<: *b\n  epochs: 2.0\n"
    assert yaml.safe_load(ok)["training"]["epochs"] == 2.0
    from archai_aml.config import load_yaml

    assert load_yaml(ok)["training"] == {"epochs": 2.0}
    assert load_yaml("a: {x: 1}\nb: {x: 2}\n") == {"a": {"x": 1}, "b": {"x": 2}}


def test_dump_config_masks_any_value_holding_a_known_secret() -> None:
    config = load_config(
        {
            "store": {"backend": "azure", "connection_string": SECRET_CS},
            "training": {
                "environment_variables": {
                    "MODEL_STORAGE_CONNECTION_STRING": SECRET_CS,
                    "ONLY_THE_KEY": SECRET_KEY,
                    "IN_A_COMMAND": f"--key {SECRET_KEY} --other",
                    "SAS_URL": "https://a.blob.core.windows.net/c?sv=2024&sig=SIGNATURE0123456789",
                    "HARMLESS": "value",
                }
            },
        }
    )
    dumped = dump_config(config)
    assert SECRET_KEY not in dumped and "SIGNATURE0123456789" not in dumped
    env = yaml.safe_load(dumped)["training"]["environment_variables"]
    assert env["MODEL_STORAGE_CONNECTION_STRING"] == "**********"
    assert env["ONLY_THE_KEY"] == "**********" and env["IN_A_COMMAND"] == "**********"
    assert env["SAS_URL"] == "https://a.blob.core.windows.net/c?sv=2024&sig=**********"
    assert env["HARMLESS"] == "value"


def test_bad_table_or_container_from_the_environment_names_the_variable() -> None:
    with pytest.raises(ConfigError, match=r"ARCHAI_AML_STORE_TABLE='bad name!'") as info:
        store_config_from_env({"ARCHAI_AML_STORE": "/tmp/s", "ARCHAI_AML_STORE_TABLE": "bad name!"})
    assert "invalid store settings in the environment" in str(info.value)
    with pytest.raises(ConfigError, match=r"ARCHAI_AML_STORE_CONTAINER='UPPER_case'"):
        store_config_from_env({"ARCHAI_AML_STORE": "/tmp/s", "ARCHAI_AML_STORE_CONTAINER": "UPPER_case"})
    with pytest.raises(ConfigError, match=r"ARCHAI_AML_STORE_TABLE='x'"):  # also without a store variable
        store_config_from_env({"ARCHAI_AML_STORE_TABLE": "x"})
    assert store_config_from_env({"ARCHAI_AML_STORE_TABLE": "fine"}) is None  # names alone: no store
