# Two entry points for a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
AZURITE_DIR ?= .azurite
AZURITE_VERSION ?= 3.37.0
# CPU machines get the CPU build of torch first, so that the range in pyproject installs no CUDA wheels.
TORCH_CPU ?= torch==2.13.0
HAS_GPU := $(shell command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1 && echo 1)

.PHONY: demo test install install-dev azurite lint typecheck pytest bench clean

$(VENV)/.base:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
ifneq ($(HAS_GPU),1)
	$(PIP) install -q $(TORCH_CPU)
endif
	touch $@

# the main job builds real azure-ai-ml pipeline objects even when it runs them locally: the azure extra
$(VENV)/.installed: $(VENV)/.base pyproject.toml
	$(PIP) install -q -e '.[azure]'
	touch $@

$(VENV)/.installed-dev: $(VENV)/.base pyproject.toml
	$(PIP) install -q -e '.[dev]'
	touch $(VENV)/.installed $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

$(AZURITE_DIR)/node_modules/.bin/azurite:
	npm install --silent --no-audit --no-fund --prefix $(AZURITE_DIR) azurite@$(AZURITE_VERSION)

azurite: $(AZURITE_DIR)/node_modules/.bin/azurite

demo: $(VENV)/.installed
	$(PY) examples/face_segmentation/search.py --config examples/face_segmentation/demo.yaml --output demo_output

lint: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check archai_aml tests bench examples
	$(VENV)/bin/ruff format --check archai_aml tests bench examples

typecheck: $(VENV)/.installed-dev
	$(VENV)/bin/mypy

pytest: $(VENV)/.installed-dev azurite
	AZURITE_BIN=$(abspath $(AZURITE_DIR))/node_modules/.bin/azurite $(PY) -m pytest -q -ra $(PYTEST_ARGS)

test: lint typecheck pytest

bench: $(VENV)/.installed-dev azurite
	for b in bench/*.py; do AZURITE_BIN=$(abspath $(AZURITE_DIR))/node_modules/.bin/azurite $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) $(AZURITE_DIR) demo_output .mypy_cache .ruff_cache .pytest_cache
