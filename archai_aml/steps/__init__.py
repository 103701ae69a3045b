"""Reusable pipeline steps of the symbol-detection pipeline (see docs/pipeline-steps.md).

Each step is a module with a CLI (``python -m archai_aml.steps.<step> --help``) and a pydantic settings model
read from its arguments, then the environment: :mod:`~archai_aml.steps.data_loader` (once, before the
pipeline), then :mod:`~archai_aml.steps.aggregate`, :mod:`~archai_aml.steps.split`,
:mod:`~archai_aml.steps.register_data`, :mod:`~archai_aml.steps.train`, :mod:`~archai_aml.steps.register_model`,
:mod:`~archai_aml.steps.tag_model`, and :mod:`~archai_aml.steps.deploy` (the best model behind an endpoint:
here a Starlette server, on Azure ML a managed online endpoint). :mod:`~archai_aml.steps.components` wraps
them as ``azure-ai-ml`` command components; :mod:`~archai_aml.steps.schedule` publishes the pipeline on a
schedule (or runs it once here); :mod:`~archai_aml.steps.launch` resolves the local defaults at launch.
"""

STEPS = ("aggregate", "split", "register_data", "train", "register_model", "tag_model")

__all__ = ["STEPS"]
