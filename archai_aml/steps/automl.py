"""The AutoML image object-detection job of the train step (``azure.ai.ml.automl.image_object_detection``).

Auto mode (``AUTO_MODE=true``, the default) sets only the limits: AutoML picks models and hyperparameters
itself. With auto mode off, the search space comes from a YAML file (``TRAINING_SEARCH_SPACE_FILE``)::

    sampling_algorithm: random            # random | grid | bayesian
    early_termination:                    # optional: bandit | median_stopping | truncation_selection
      type: bandit
      evaluation_interval: 2
      slack_factor: 0.2
      delay_evaluation: 6
    search_space:                         # one entry per model family
      - model_name: {type: choice, values: [yolov5]}
        learning_rate: {type: uniform, min_value: 0.0001, max_value: 0.01}
        model_size: {type: choice, values: [small, medium]}

Parameter types: ``choice`` (``values``), ``uniform`` / ``loguniform`` (``min_value``, ``max_value``),
``quniform`` (+ ``q``), ``randint`` (``upper``). Every ``model_name`` must be one of the model choices
(``TRAINING_MODEL_CHOICES``): a typo fails here, not an hour into the sweep.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from archai_aml.errors import ConfigError

__all__ = ["DEFAULT_MODEL_CHOICES", "PRIMARY_METRIC", "build_automl_job", "load_search_space"]

PRIMARY_METRIC = "mean_average_precision"

#: The object-detection models of Azure ML AutoML for images.
DEFAULT_MODEL_CHOICES = (
    "yolov5",
    "fasterrcnn_resnet18_fpn",
    "fasterrcnn_resnet34_fpn",
    "fasterrcnn_resnet50_fpn",
    "fasterrcnn_resnet101_fpn",
    "fasterrcnn_resnet152_fpn",
    "retinanet_resnet50_fpn",
)

_SAMPLING = {"random": "Random", "grid": "Grid", "bayesian": "Bayesian"}


def _parameter(where: str, spec: Any) -> Any:
    from azure.ai.ml.sweep import Choice, LogUniform, QUniform, Randint, Uniform

    if not isinstance(spec, Mapping) or "type" not in spec:
        raise ConfigError(f"{where}: write {{type: choice, values: [...]}} or another distribution")
    kind = str(spec["type"]).lower()
    args = {k: v for k, v in spec.items() if k != "type"}
    builders: dict[str, Any] = {
        "choice": Choice,
        "uniform": Uniform,
        "loguniform": LogUniform,
        "quniform": QUniform,
        "randint": Randint,
    }
    if kind not in builders:
        raise ConfigError(f"{where}: unknown distribution {kind!r}; use one of {sorted(builders)}")
    try:
        return builders[kind](**args)
    except TypeError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def load_search_space(path: Path, model_choices: Sequence[str]) -> tuple[list[Any], str, Any]:
    """(SearchSpace list, sampling algorithm, early termination policy or None) from the YAML file."""
    from azure.ai.ml.automl import SearchSpace
    from azure.ai.ml.sweep import BanditPolicy, MedianStoppingPolicy, TruncationSelectionPolicy

    try:
        spec = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise ConfigError(f"search space file {path} does not exist (AUTO_MODE=false needs one)") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"search space file {path} is not valid YAML: {exc}") from None
    entries = spec.get("search_space") if isinstance(spec, Mapping) else None
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{path}: 'search_space' must be a non-empty list of parameter mappings")
    spaces = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, Mapping):
            raise ConfigError(f"{path}: search_space[{i}] is not a mapping")
        params = {
            name: _parameter(f"{path}: search_space[{i}].{name}", value) for name, value in entry.items()
        }
        model = entry.get("model_name")
        names = model.get("values", []) if isinstance(model, Mapping) else []
        unknown = [n for n in names if n not in model_choices]
        if model is None or unknown:
            raise ConfigError(
                f"{path}: search_space[{i}].model_name must choose among {list(model_choices)}"
                + (f"; unknown: {unknown}" if unknown else "")
            )
        spaces.append(SearchSpace(**params))
    sampling = str(spec.get("sampling_algorithm", "random")).lower()
    if sampling not in _SAMPLING:
        raise ConfigError(f"{path}: sampling_algorithm {sampling!r}: use one of {sorted(_SAMPLING)}")
    policy = None
    early = spec.get("early_termination")
    if early:
        policies = {
            "bandit": BanditPolicy,
            "median_stopping": MedianStoppingPolicy,
            "truncation_selection": TruncationSelectionPolicy,
        }
        kind = str(early.get("type", "")).lower()
        if kind not in policies:
            raise ConfigError(f"{path}: early_termination.type {kind!r}: use one of {sorted(policies)}")
        try:
            policy = policies[kind](**{k: v for k, v in early.items() if k != "type"})
        except TypeError as exc:
            raise ConfigError(f"{path}: early_termination: {exc}") from None
    return spaces, _SAMPLING[sampling], policy


def build_automl_job(
    *,
    training_data: Any,
    validation_data: Any,
    compute: str,
    experiment_name: str,
    target_column_name: str,
    validation_data_size: float,
    max_trials: int,
    concurrent_trials: int,
    timeout_minutes: int,
    auto_mode: bool,
    search_space_file: Path | None,
    model_choices: Sequence[str],
    name: str | None = None,
    tags: Mapping[str, str] | None = None,
    outputs: Mapping[str, Any] | None = None,
) -> Any:
    """An ``ImageObjectDetectionJob`` (not submitted); ``training_data`` an ``Input`` or a pipeline binding."""
    from azure.ai.ml import automl

    job = automl.image_object_detection(
        compute=compute,
        experiment_name=experiment_name,
        training_data=training_data,
        validation_data=validation_data,
        validation_data_size=None if validation_data is not None else validation_data_size,
        target_column_name=target_column_name,
        primary_metric=PRIMARY_METRIC,
        tags=dict(tags or {}),
        **({"name": name} if name else {}),
        **({"outputs": dict(outputs)} if outputs else {}),
    )
    job.set_limits(
        timeout_minutes=timeout_minutes, max_trials=max_trials, max_concurrent_trials=concurrent_trials
    )
    if not auto_mode:
        if search_space_file is None:
            raise ConfigError("AUTO_MODE=false needs a search space file (TRAINING_SEARCH_SPACE_FILE)")
        spaces, sampling, policy = load_search_space(search_space_file, model_choices)
        job.extend_search_space(spaces)
        job.set_sweep(sampling_algorithm=sampling, early_termination=policy)
    return job
