"""A hyperparameter sweep of a project script: the ``sweep.yaml`` of ``archai-aml run SCRIPT --sweep``, built
for Azure ML (:func:`azure_sweep_job`, over :func:`~archai_aml.executor.jobs.sweep_job`) or run here
(:mod:`archai_aml.executor.sweep_local`), and its best trial (:func:`best_trial`)::

    search_space:
      lr: {type: choice, values: [0.1, 0.01, 0.001]}
      momentum: {type: uniform, min_value: 0.5, max_value: 0.99}
    sampling: random            # grid (choice only), random; bayesian on Azure ML only
    primary_metric: val_accuracy
    goal: maximize
    max_total_trials: 6
    max_concurrent_trials: 2
    early_termination: {type: bandit, slack_factor: 0.2, evaluation_interval: 1, delay_evaluation: 2}

Each trial runs ``python SCRIPT <args> --<param> <value> ...``; the script logs ``primary_metric`` with
``mlflow.log_metric(name, value, step=...)`` (on Azure ML the job's MLflow tracking, here the sweep's own store).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from archai_aml.errors import ConfigError, JobError

__all__ = [
    "EarlyTermination",
    "Param",
    "SweepConfig",
    "TrialResult",
    "azure_sweep_job",
    "best_trial",
    "load_sweep",
]

RESULT_FILE = "sweep.json"


class Param(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["choice", "uniform", "loguniform", "randint"]
    values: list[Any] | None = None
    min_value: float | None = None
    max_value: float | None = None
    upper: int | None = None

    @model_validator(mode="after")
    def _fields(self) -> Param:
        need = {"choice": ("values",), "uniform": ("min_value", "max_value"), "loguniform": ("min_value", "max_value"),
                "randint": ("upper",)}[self.type]  # fmt: skip
        missing = [f for f in need if getattr(self, f) is None]
        if missing:
            raise ValueError(f"a {self.type} parameter needs {missing}")
        if self.type == "choice" and not self.values:
            raise ValueError("a choice needs at least one value")
        return self

    def azure(self) -> Any:
        from azure.ai.ml.sweep import Choice, LogUniform, Randint, Uniform

        if self.type == "choice":
            return Choice(values=list(self.values or []))
        if self.type == "uniform":
            return Uniform(min_value=self.min_value, max_value=self.max_value)
        if self.type == "loguniform":  # Azure's LogUniform bounds are exponents (e^min .. e^max)
            return LogUniform(min_value=self.min_value, max_value=self.max_value)
        return Randint(upper=self.upper)


class EarlyTermination(BaseModel):
    """Azure ML's policies: ``bandit`` (``slack_factor`` or ``slack_amount``), ``median``, ``truncation``
    (``truncation_percentage``), evaluated every ``evaluation_interval`` steps after ``delay_evaluation``."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["bandit", "median", "truncation"]
    evaluation_interval: int = Field(1, ge=1)
    delay_evaluation: int = Field(0, ge=0)
    slack_factor: float | None = Field(None, gt=0)
    slack_amount: float | None = Field(None, gt=0)
    truncation_percentage: int = Field(10, ge=1, le=99)

    @model_validator(mode="after")
    def _bandit(self) -> EarlyTermination:
        if self.type == "bandit" and (self.slack_factor is None) == (self.slack_amount is None):
            raise ValueError("a bandit policy needs slack_factor or slack_amount (one of them)")
        return self

    def azure(self) -> Any:
        from archai_aml.executor.jobs import early_termination

        common = {"evaluation_interval": self.evaluation_interval, "delay_evaluation": self.delay_evaluation}
        if self.type == "bandit":
            slack = (
                {"slack_factor": self.slack_factor}
                if self.slack_factor
                else {"slack_amount": self.slack_amount}
            )
            return early_termination("bandit", **common, **slack)
        if self.type == "truncation":
            return early_termination("truncation", **common, truncation_percentage=self.truncation_percentage)
        return early_termination("median", **common)


class SweepConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    search_space: dict[str, Param]
    sampling: Literal["grid", "random", "bayesian"] = "random"
    primary_metric: str
    goal: Literal["maximize", "minimize"]
    max_total_trials: int = Field(ge=1)
    max_concurrent_trials: int = Field(1, ge=1)
    timeout_s: int | None = Field(None, ge=1)
    early_termination: EarlyTermination | None = None
    seed: int = 0

    @model_validator(mode="after")
    def _check(self) -> SweepConfig:
        if not self.search_space:
            raise ValueError("the search space is empty")
        if self.sampling == "grid" and any(p.type != "choice" for p in self.search_space.values()):
            raise ValueError("grid sampling needs choice parameters only")
        if self.max_concurrent_trials > self.max_total_trials:
            raise ValueError("max_concurrent_trials is larger than max_total_trials")
        return self

    def better(self, a: float, b: float) -> bool:
        return a > b if self.goal == "maximize" else a < b


def load_sweep(path: str | Path) -> SweepConfig:
    import yaml

    from archai_aml.config import substitute_env

    file = Path(path)
    try:
        data = substitute_env(yaml.safe_load(file.read_text(encoding="utf-8")) or {})
    except FileNotFoundError:
        raise ConfigError(f"--sweep: {file} does not exist") from None
    try:
        return SweepConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ConfigError(
            f"{file}: {'.'.join(str(p) for p in first['loc']) or 'sweep'}: {first['msg']}"
        ) from None


def trial_args(config: SweepConfig) -> tuple[list[str], dict[str, Any]]:
    """The arguments binding each parameter (``--lr ${{inputs.lr}}``) and the inputs they bind (placeholders
    the sweep replaces by each trial's value)."""
    args: list[str] = []
    inputs: dict[str, Any] = {}
    for name, param in config.search_space.items():
        args += [f"--{name}", f"${{{{inputs.{name}}}}}"]
        inputs[name] = (param.values or [0])[0] if param.type == "choice" else (param.min_value or 0)
    return args, inputs


def azure_sweep_job(config: SweepConfig, base: Any) -> Any:
    """The ``SweepJob`` over the command job ``base`` (built by ``script_job`` with :func:`trial_args`)."""
    from archai_aml.executor.jobs import sweep_job

    return sweep_job(
        base, {k: p.azure() for k, p in config.search_space.items()}, primary_metric=config.primary_metric,
        goal=config.goal, sampling=config.sampling, max_total_trials=config.max_total_trials,
        max_concurrent_trials=config.max_concurrent_trials,
        policy=config.early_termination.azure() if config.early_termination else None, timeout_s=config.timeout_s,
    )  # fmt: skip


class TrialResult(BaseModel):
    trial: str
    params: dict[str, Any]
    status: str
    metric: float | None = None
    steps: int = 0
    outputs: str | None = None


def best_of(trials: list[TrialResult], goal: str) -> TrialResult:
    scored = [t for t in trials if t.metric is not None and t.status in ("Completed", "Stopped")]
    if not scored:
        raise JobError("no trial of the sweep logged its primary metric")
    pick = max if goal == "maximize" else min
    return pick(scored, key=lambda t: t.metric)  # type: ignore[arg-type,return-value]


def best_trial(job: str, *, outputs_root: str | Path = "outputs", ml_client: Any = None,
               tracking_uri: str | None = None) -> dict[str, Any]:  # fmt: skip
    """The best trial of sweep ``job``: ``{trial, params, metric, outputs, primary_metric, goal}``.

    Here: ``<outputs_root>/<job>/sweep.json`` (written by the local sweep). On Azure ML (``ml_client``): the
    trials are the sweep's child jobs (``jobs.list(parent_job_name=job)``, as the SDK's maintainers answer in
    https://github.com/Azure/azure-sdk-for-python/issues/26922), their parameters their inputs, their metric
    the MLflow run of the same name (an Azure ML job's name is its MLflow run id) in ``tracking_uri``.
    """
    if ml_client is None:
        file = Path(outputs_root) / job / RESULT_FILE
        try:
            data = json.loads(file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise JobError(
                f"{file} does not exist: is {job} a local sweep (archai-aml run --local --sweep)?"
            ) from None
        trials = [TrialResult.model_validate(t) for t in data["trials"]]
        best = best_of(trials, data["goal"])
        return {**best.model_dump(), "primary_metric": data["primary_metric"], "goal": data["goal"]}
    from mlflow import MlflowClient

    sweep = ml_client.jobs.get(job)
    metric, goal = sweep.objective.primary_metric, sweep.objective.goal.lower()
    client = MlflowClient(tracking_uri=tracking_uri)
    trials = []
    for child in ml_client.jobs.list(parent_job_name=job):
        history = client.get_metric_history(child.name, metric)
        values = [m.value for m in history]
        value = (max(values) if goal == "maximize" else min(values)) if values else None
        params = {
            k: getattr(v, "value", v) for k, v in (child.inputs or {}).items() if k in sweep.search_space
        }
        trials.append(TrialResult(trial=child.name, params=params, status=str(child.status), metric=value,
                                  steps=len(values), outputs=f"azureml://jobs/{child.name}/outputs/artifacts/paths/outputs"))  # fmt: skip
    best = best_of(trials, goal)
    return {**best.model_dump(), "primary_metric": metric, "goal": goal}
