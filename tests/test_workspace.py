"""Workspace setup on a real MLClient whose operations are autospecs of the real operation classes answering like
the service (archai_aml.testing.mlclient: ResourceNotFoundError for unknown names, real LROPollers)."""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import Any

import pytest
import yaml
from azure.core.exceptions import HttpResponseError
from pydantic import SecretStr

from archai_aml import cli
from archai_aml.config import (
    ArchaiAmlConfig,
    AzureMLConfig,
    ClusterConfig,
    DatastoresConfig,
    EnvironmentConfig,
    StoreConfig,
    WorkspaceConfig,
)
from archai_aml.errors import ConfigError, WorkspaceError
from archai_aml.testing.mlclient import FakeWorkspace as Workspace
from archai_aml.workspace import cli as workspace_cli
from archai_aml.workspace import setup_workspace, storage_account, upload_dataset

ACCOUNT_KEY = "S3CR3TKEYc2VjcmV0a2V5MTIzNDU2Nzg5MA=="
SAS = "sv=2022-11-02&ss=bt&sig=SASSIGNATURE0123456789"
UAI = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/archai"


def write_conda(tmp_path: Path) -> Path:
    path = tmp_path / "conda.yaml"
    path.write_text("name: t\ndependencies:\n  - python=3.11\n  - pip:\n      - archai==1.0.0\n")
    return path


def make_config(tmp_path: Path, store: StoreConfig | None = None, **aml: Any) -> ArchaiAmlConfig:
    fields: dict[str, Any] = {
        "workspace": WorkspaceConfig(subscription_id="sub", resource_group="rg", workspace_name="ws"),
        "training_cluster": ClusterConfig(
            name="gpu-a100", size="Standard_NC24ads_A100_v4", min_instances=0, max_instances=6,
            idle_time_before_scale_down=900, tier="low_priority",
        ),
        "cpu_cluster": ClusterConfig(name="cpu-d4", size="Standard_D4s_v3", max_instances=2),
        "environment": EnvironmentConfig(name="archai-env", version="3", image="img:1", conda_file=write_conda(tmp_path)),
        "datastores": DatastoresConfig(models="archaimodels", data="archaidata", data_container="faces"),
        "identity_client_id": "11111111-2222-3333-4444-555555555555",
        "identity_resource_id": UAI,
    }  # fmt: skip
    fields.update(aml)
    return ArchaiAmlConfig(
        experiment_name="exp",
        store=store
        or StoreConfig(
            backend="azure",
            container_name="models-c",
            connection_string=SecretStr(
                f"DefaultEndpointsProtocol=https;AccountName=acct1;AccountKey={ACCOUNT_KEY};"
                "EndpointSuffix=core.windows.net"
            ),
        ),
        aml=AzureMLConfig(**fields),
    )


def dump(entity: Any) -> str:
    text = io.StringIO()
    entity.dump(text)
    return text.getvalue() + repr(entity._to_dict())


def test_first_setup_creates_what_the_config_says(tmp_path: Path) -> None:
    ws = Workspace()
    res = setup_workspace(ws.client, make_config(tmp_path), progress=False, poll_interval_s=0.001)
    gpu, cpu = ws.compute.created
    assert (gpu.name, gpu.size, gpu.min_instances, gpu.max_instances) == (
        "gpu-a100",
        "Standard_NC24ads_A100_v4",
        0,
        6,
    )
    assert (gpu.idle_time_before_scale_down, gpu.tier) == (900, "low_priority")
    assert (cpu.name, cpu.size, cpu.max_instances, cpu.tier) == ("cpu-d4", "Standard_D4s_v3", 2, "dedicated")
    assert gpu.identity.type == "user_assigned"
    assert [i.resource_id for i in gpu.identity.user_assigned_identities] == [UAI]
    assert [p.result() for p in ws.compute.pollers] == [
        ws.compute.items["gpu-a100"],
        ws.compute.items["cpu-d4"],
    ]
    assert all(p.done() for p in ws.compute.pollers)  # waited until done
    (env,) = ws.environments.created
    assert (env.name, env.version, env.image) == ("archai-env", "3", "img:1")
    assert env.conda_file["dependencies"][1]["pip"] == ["archai==1.0.0"]
    models, data = ws.datastores.created
    for store, container in ((models, "models-c"), (data, "faces")):
        assert type(store.credentials).__name__ == "NoneCredentialConfiguration"
        assert (store.account_name, store.container_name, store.endpoint) == (
            "acct1",
            container,
            "core.windows.net",
        )
    assert (models.name, data.name) == ("archaimodels", "archaidata")
    assert res.environment == "archai-env:3" and res.training_cluster == "gpu-a100"
    assert res.models_uri("exp") == "azureml://datastores/archaimodels/paths/exp"
    assert res.created == [
        "compute:gpu-a100", "compute:cpu-d4", "environment:archai-env",
        "datastore:archaimodels", "datastore:archaidata",
    ]  # fmt: skip


def test_second_run_creates_nothing(tmp_path: Path) -> None:
    ws = Workspace()
    config = make_config(tmp_path)
    setup_workspace(ws.client, config, progress=False, poll_interval_s=0.001)
    first = len(ws.creates())
    again = setup_workspace(ws.client, config, progress=False)
    assert first == 5 and len(ws.creates()) == 5 and again.created == []
    assert [p.action for p in again.plan] == ["exists"] * 5
    assert again.environment == "archai-env:3"


@pytest.mark.parametrize(
    "store",
    [
        None,  # connection string with account key
        StoreConfig(backend="azure", account_name="acct1", container_name="models-c", sas_token=SecretStr(SAS)),
        StoreConfig(
            backend="azure", blob_url="https://acct1.blob.core.windows.net", table_url="https://t",
            container_name="models-c", sas_token=SecretStr("?" + SAS),
        ),
    ],
)  # fmt: skip
def test_no_secret_reaches_azure_ml_or_logs(
    tmp_path: Path, store: StoreConfig | None, caplog: pytest.LogCaptureFixture
) -> None:
    ws = Workspace()
    caplog.set_level(logging.DEBUG)
    setup_workspace(ws.client, make_config(tmp_path, store), progress=False, poll_interval_s=0.001)
    assert len(ws.creates()) == 5
    texts = [dump(e) for e in ws.creates()] + [caplog.text]
    for text in texts:
        for secret in (ACCOUNT_KEY, "AccountKey", "sig=", "SASSIGNATURE", "sv=2022"):
            assert secret not in text
    assert "account_key" not in "".join(texts).lower() and "sas_token" not in "".join(texts).lower()
    assert all(d.account_name == "acct1" for d in ws.datastores.created)
    assert "Storage Blob Data Contributor" in caplog.text and "Storage Table Data Contributor" in caplog.text


def test_existing_cluster_of_another_size_is_reported_not_recreated(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from azure.ai.ml.entities import AmlCompute

    old = AmlCompute(name="gpu-a100", size="Standard_NC6s_v3", max_instances=6)
    ws = Workspace(compute={"gpu-a100": old})
    res = setup_workspace(ws.client, make_config(tmp_path), progress=False, poll_interval_s=0.001)
    assert [c.name for c in ws.compute.created] == ["cpu-d4"]
    assert ws.compute.items["gpu-a100"] is old
    gpu = res.plan[0]
    assert gpu.action == "differs" and "Standard_NC6s_v3" in gpu.detail and "identity" in gpu.detail
    assert "gpu-a100 exists with other settings" in caplog.text


def test_dry_run_creates_nothing_and_says_what_it_would(tmp_path: Path) -> None:
    ws = Workspace()
    res = setup_workspace(ws.client, make_config(tmp_path), dry_run=True)
    assert ws.creates() == [] and res.created == [] and res.dry_run
    assert [p.action for p in res.plan] == ["create"] * 5
    assert [kind for kind, _ in ws.compute.calls] == ["get", "get"]


def test_conflicting_or_unknown_datastore_account_stops_before_any_create(tmp_path: Path) -> None:
    from azure.ai.ml.entities import AzureBlobDatastore

    elsewhere = AzureBlobDatastore(name="archaimodels", account_name="other", container_name="models-c")
    ws = Workspace(datastores={"archaimodels": elsewhere})
    with pytest.raises(WorkspaceError, match="archaimodels: models: points at other/models-c"):
        setup_workspace(ws.client, make_config(tmp_path), progress=False)
    assert ws.creates() == []
    ws = Workspace()
    with pytest.raises(WorkspaceError, match="no Azure storage account"):
        setup_workspace(ws.client, make_config(tmp_path, StoreConfig(path=tmp_path / "s")), progress=False)
    assert ws.creates() == []


def test_existing_key_based_datastore_is_flagged(tmp_path: Path) -> None:
    from azure.ai.ml.entities import AccountKeyConfiguration, AzureBlobDatastore

    keyed = AzureBlobDatastore(
        name="archaimodels", account_name="acct1", container_name="models-c",
        credentials=AccountKeyConfiguration(account_key="ZZZZ"),
    )  # fmt: skip
    ws = Workspace(datastores={"archaimodels": keyed})
    res = setup_workspace(ws.client, make_config(tmp_path), progress=False, poll_interval_s=0.001)
    models = res.plan[3]
    assert models.action == "differs" and "AccountKeyConfiguration" in models.detail
    assert [d.name for d in ws.datastores.created] == ["archaidata"]


def test_pinned_environment_that_differs_is_left_alone(tmp_path: Path) -> None:
    from azure.ai.ml.entities import Environment

    existing = Environment(name="archai-env", version="4", image="img:1")
    other = EnvironmentConfig(name="archai-env", version="4", image="img:2")
    ws = Workspace(environments={"archai-env:4": existing})
    res = setup_workspace(
        ws.client, make_config(tmp_path, environment=other), progress=False, poll_interval_s=0
    )
    assert res.plan[2].action == "differs" and "img:2" in res.plan[2].detail and ws.environments.created == []
    assert res.environment == "archai-env:4"


def test_missing_conda_file_and_refused_create_are_typed_errors(tmp_path: Path) -> None:
    missing = EnvironmentConfig(name="e", version="1", conda_file=tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="nope.yaml does not exist"):
        setup_workspace(Workspace().client, make_config(tmp_path, environment=missing), dry_run=True)
    ws = Workspace()
    ws.compute.fail_create = HttpResponseError("QuotaExceeded: not enough cores")
    with pytest.raises(WorkspaceError, match="could not create compute 'gpu-a100': QuotaExceeded"):
        setup_workspace(ws.client, make_config(tmp_path), progress=False)


def test_storage_account_reads_only_public_parts() -> None:
    assert storage_account(StoreConfig(backend="azure", account_name="a1")) == ("a1", "core.windows.net")
    cn = StoreConfig(backend="azure", blob_url="https://a2.blob.core.chinacloudapi.cn", table_url="https://t")
    assert storage_account(cn) == ("a2", "core.chinacloudapi.cn")
    gov = "AccountName=a3;AccountKey=k;EndpointSuffix=core.usgovcloudapi.net"
    assert storage_account(StoreConfig(backend="azure", connection_string=SecretStr(gov))) == (
        "a3",
        "core.usgovcloudapi.net",
    )
    dev = StoreConfig(backend="azure", connection_string=SecretStr("UseDevelopmentStorage=true"))
    assert storage_account(dev) is None and storage_account(StoreConfig()) is None


def test_upload_dataset_registers_a_uri_folder_once(tmp_path: Path) -> None:
    folder = tmp_path / "faces"
    folder.mkdir()
    (folder / "000000.png").write_bytes(b"png")
    ws = Workspace()
    assert upload_dataset(ws.client, folder, "faces", "2") == "azureml:faces:2"
    (asset,) = ws.data.created
    assert (asset.name, asset.version, asset.type, Path(asset.path)) == (
        "faces",
        "2",
        "uri_folder",
        folder.resolve(),
    )
    assert upload_dataset(ws.client, folder, "faces", "2") == "azureml:faces:2"
    assert len(ws.data.created) == 1
    with pytest.raises(WorkspaceError, match="does not exist"):
        upload_dataset(ws.client, tmp_path / "none", "faces", "3")


def test_cli_dry_run_setup_and_show(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    ws = Workspace()
    seen: list[AzureMLConfig] = []

    def make_ml_client(aml: AzureMLConfig) -> Any:
        seen.append(aml)
        return ws.client

    monkeypatch.setattr(workspace_cli, "make_ml_client", make_ml_client)
    config = make_config(tmp_path)
    data = config.model_dump(mode="json", exclude_none=True)
    data["store"]["connection_string"] = f"AccountName=acct1;AccountKey={ACCOUNT_KEY}"  # dumps mask it
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    assert cli.main(["--config", str(path), "workspace", "setup", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.count("would create") == 5 and ws.creates() == []
    assert "archai-env:3" in out and "azureml://datastores/archaimodels/paths/exp" in out
    assert seen[0].workspace.workspace_name == "ws"
    assert cli.main(["--config", str(path), "workspace", "setup", "--no-progress"]) == 0
    assert len(ws.creates()) == 5 and ACCOUNT_KEY not in capsys.readouterr().out
    assert cli.main(["--config", str(path), "workspace", "show"]) == 0
    shown = capsys.readouterr().out
    assert shown.count("exists") == 5 and "gpu-a100" in shown
    folder = tmp_path / "d"
    folder.mkdir()
    assert (
        cli.main(
            ["--config", str(path), "workspace", "upload-data", str(folder), "--name", "f", "--version", "1"]
        )
        == 0
    )
    assert "azureml:f:1" in capsys.readouterr().out and len(ws.data.created) == 1
    bare = tmp_path / "bare.yaml"
    bare.write_text("experiment_name: x\n")
    assert cli.main(["--config", str(bare), "workspace", "show"]) == 2
    assert "no aml: section" in capsys.readouterr().err


# ------------------------------------------------------------------------ VM sizes, roles (issue 22)
REPO = Path(__file__).resolve().parents[1]


def test_default_gpu_size_exists_today_and_retired_sizes_are_known() -> None:
    from archai_aml.workspace.vm_sizes import retirement

    default = ClusterConfig(name="gpu").size
    assert default == "Standard_NC24ads_A100_v4" and retirement(default) is None
    ncv3 = retirement("standard_nc6s_v3")  # Azure compares size names without case
    assert ncv3 is not None and ncv3.date.isoformat() == "2025-09-30"
    assert ncv3.source.startswith("https://learn.microsoft.com/") and ncv3.replacement == default
    assert retirement("Standard_NC4as_T4_v3") is None and retirement("Standard_D4s_v3") is None


def test_dry_run_warns_about_a_retired_size_with_its_date_and_notice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    old = ClusterConfig(name="gpu-a100", size="Standard_NC6s_v3")
    ws = Workspace()
    res = setup_workspace(ws.client, make_config(tmp_path, training_cluster=old), dry_run=True)
    (warning,) = res.plan[0].warnings
    assert "Standard_NC6s_v3, retired by Microsoft on 2025-09-30" in warning
    assert "ncv3-nc6s-nc12s-nc24s-retirement" in warning and "Standard_NC24ads_A100_v4" in warning
    assert warning in caplog.text and res.plan[1].warnings == [] and ws.creates() == []
    monkeypatch.setattr(workspace_cli, "make_ml_client", lambda aml: Workspace().client)
    data = make_config(tmp_path, training_cluster=old).model_dump(mode="json", exclude_none=True)
    data["store"]["connection_string"] = f"AccountName=acct1;AccountKey={ACCOUNT_KEY}"
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    assert cli.main(["--config", str(path), "workspace", "setup", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert f"WARNING: {warning}" in out
    # an existing cluster of a retired size is reported too (it is left alone)
    from azure.ai.ml.entities import AmlCompute

    ws = Workspace(
        compute={"gpu-a100": AmlCompute(name="gpu-a100", size="Standard_NC24s_v3", max_instances=6)}
    )
    res = setup_workspace(ws.client, make_config(tmp_path), dry_run=True)
    assert res.plan[0].action == "differs" and "the existing compute gpu-a100" in res.plan[0].warnings[0]


def test_refused_compute_create_names_the_roles_that_may_create_compute(tmp_path: Path) -> None:
    ws = Workspace()
    ws.compute.fail_create = HttpResponseError("AuthorizationFailed: no computes/write")
    with pytest.raises(WorkspaceError) as caught:
        setup_workspace(ws.client, make_config(tmp_path), progress=False)
    text = str(caught.value)
    assert "Owner, Contributor or AzureML Compute Operator" in text
    assert "AzureML Data Scientist cannot create compute" in text and "VM quota" in text
    ws = Workspace()
    ws.environments.fail_create = HttpResponseError("AuthorizationFailed: environments/write")
    with pytest.raises(WorkspaceError, match="could not create environment 'archai-env'") as caught:
        setup_workspace(ws.client, make_config(tmp_path), progress=False, poll_interval_s=0.001)
    assert "Owner, Contributor or AzureML Data Scientist" in str(caught.value)
    assert "VM quota" not in str(caught.value) and len(ws.compute.created) == 2


def test_cluster_creation_waits_on_the_real_poller() -> None:
    from archai_aml.testing.mlclient import _value_poller
    from archai_aml.workspace.setup import _wait

    poller = _value_poller("cluster", 0.2)
    assert not poller.done()
    assert _wait(poller, "compute c", progress=False, poll_interval_s=0.01) == "cluster" and poller.done()


def _doc_yaml(page: str, needle: str) -> dict[str, Any]:
    """The YAML block of ``page`` holding ``needle``, with its ``${VAR}`` references as plain words."""
    import re

    text = (REPO / page).read_text(encoding="utf-8")
    blocks = [b.split("```", 1)[0] for b in text.split("```yaml\n")[1:]]
    (block,) = [b for b in blocks if needle in b]
    loaded: dict[str, Any] = yaml.safe_load(re.sub(r"\$\{(\w[^}]*)\}", r"\1", block))
    return loaded


@pytest.mark.parametrize("page", ["README.md", "docs/azure.md", "docs/workspace.md"])
def test_documented_gpu_sizes_are_current(page: str) -> None:
    from archai_aml.workspace.vm_sizes import retirement

    aml = _doc_yaml(page, "training_cluster")["aml"]
    for cluster in ("training_cluster", "cpu_cluster"):
        if cluster in aml:
            assert retirement(aml[cluster]["size"]) is None, (page, aml[cluster])


def test_dry_run_of_the_example_config_names_a_current_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """docs/azure.md's configuration (section 3), as written, through ``workspace setup --dry-run``."""
    from archai_aml.workspace.vm_sizes import retirement

    monkeypatch.chdir(REPO)  # its conda_file is relative to the checkout
    monkeypatch.setenv("AZURE_SUBSCRIPTION_ID", "00000000-0000-0000-0000-000000000000")
    monkeypatch.setenv("AML_IDENTITY_CLIENT_ID", "11111111-2222-3333-4444-555555555555")
    monkeypatch.setenv("AML_IDENTITY_RESOURCE_ID", UAI)
    block = (REPO / "docs" / "azure.md").read_text(encoding="utf-8").split("```yaml\n")[1].split("```")[0]
    path = tmp_path / "facesyn.yaml"
    path.write_text(block)
    ws = Workspace()
    monkeypatch.setattr(workspace_cli, "make_ml_client", lambda aml: ws.client)
    assert cli.main(["--config", str(path), "workspace", "setup", "--dry-run"]) == 0
    out = capsys.readouterr().out
    size = _doc_yaml("docs/azure.md", "nasstore123")["aml"]["training_cluster"]["size"]
    gpu = next(line for line in out.splitlines() if line.startswith("compute") and "gpu-cluster" in line)
    assert "would create" in gpu and f"would create  {size}, 0-8 nodes" in gpu
    assert retirement(size) is None and "WARNING" not in out and ws.creates() == []


def test_role_commands_name_a_new_identity_by_object_id(tmp_path: Path) -> None:
    from archai_aml.workspace import role_instructions

    config = make_config(tmp_path)
    assert config.aml is not None
    text = role_instructions(config.aml, config.store)
    assert f"--assignee-object-id $(az identity show --ids {UAI} --query principalId -o tsv)" in text
    assert text.count("--assignee-principal-type ServicePrincipal") == 2 and "--assignee 1111" not in text
    bare = config.aml.model_copy(update={"identity_resource_id": None})
    assert "--assignee 11111111-2222-3333-4444-555555555555 --role" in role_instructions(bare, config.store)


def test_documented_az_commands_carry_what_the_cli_needs() -> None:
    """The Azure CLI cannot run here: the snippets are checked for the arguments its documentation requires."""
    import re

    workspace = (REPO / "docs" / "workspace.md").read_text(encoding="utf-8")
    updates = re.findall(r"az ml compute update[^`]*", workspace)
    assert updates and all(
        all(f" {flag} " in " ".join(u.split()) + " " for flag in ("-n", "-g", "-w")) for u in updates
    )
    for page in ("docs/azure.md", "docs/workspace.md"):
        blocks = (REPO / page).read_text(encoding="utf-8").split("```bash\n")[1:]
        text = "\n".join(b.split("```", 1)[0] for b in blocks)
        assert "--assignee $CLIENT_ID" not in text and "--assignee <identity client id" not in text, page
        assert "--assignee-object-id $PRINCIPAL_ID --assignee-principal-type ServicePrincipal" in text, page
