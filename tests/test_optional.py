"""A missing optional dependency names the feature and the extra to install."""

from __future__ import annotations

import pytest

from archai_aml._optional import MissingDependencyError, require
from archai_aml.errors import ArchaiAmlError


def test_present_module_is_returned() -> None:
    assert require("azure.ai.ml", feature="x").__name__ == "azure.ai.ml"


def test_missing_module_says_what_to_install() -> None:
    with pytest.raises(
        MissingDependencyError, match=r"pipelines needs .*azure\.nope.*pip install 'archai-aml\[azure\]'"
    ):
        require("azure.nope", feature="pipelines")
    assert issubclass(MissingDependencyError, ArchaiAmlError) and issubclass(
        MissingDependencyError, ImportError
    )
