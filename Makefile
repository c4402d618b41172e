# Service-quality study toolkit. `make` lists the targets.
# On a fresh clone, `make report` and `make test` are the only two commands needed:
# both create the virtual environment (.venv) and the Jupyter kernel first when missing.

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON_BASE ?= python3
VENV        := .venv
PY          := $(VENV)/bin/python
SETUP_DONE  := $(VENV)/.setup-done
KERNEL      := service-quality-study
DATA_DIR    ?= data
STUDY       ?= study.yml
# Quarters present in data/raw (folders named like 2025Q1), oldest first.
QUARTERS    := $(sort $(notdir $(patsubst %/,%,$(wildcard $(DATA_DIR)/raw/[0-9][0-9][0-9][0-9]Q[1-4]/))))
QUARTER     ?= $(lastword $(QUARTERS))
# The quarter before QUARTER among those present.
BASELINE    ?= $(shell printf '%s\n' $(QUARTERS) | awk -v q="$(QUARTER)" '$$0 < q' | tail -n 1)

.PHONY: help setup data report lab test bench clean lock sample

help: ## List the targets (this text)
	@grep -hE '^[a-z]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z]+):.*## (.*)/  make \1\t\2/' | expand -t 20

$(SETUP_DONE): requirements.lock pyproject.toml
	@echo ">> creating $(VENV) and installing pinned dependencies (requirements.lock)"
	$(PYTHON_BASE) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.in -c requirements.lock
	$(PY) -m pip install --quiet --no-deps -e .
	$(PY) -m ipykernel install --sys-prefix --name $(KERNEL) --display-name "Python (service-quality study)" > /dev/null
	@touch $@

setup: $(SETUP_DONE) ## Create .venv, install pinned dependencies and the study package, register the Jupyter kernel

data: $(SETUP_DONE) ## Validate and prepare every quarter in data/raw into data/processed
	@for q in $(QUARTERS); do $(PY) -m study prepare --quarter $$q --data-dir $(DATA_DIR) --study $(STUDY) || exit $$?; done

report: $(SETUP_DONE) ## Render the improvement report for QUARTER against BASELINE (default: the latest two quarters)
	$(PY) -m study report --quarter $(QUARTER) --baseline $(BASELINE) --data-dir $(DATA_DIR) --study $(STUDY)

lab: $(SETUP_DONE) ## Open JupyterLab with the project kernel
	$(VENV)/bin/jupyter lab notebooks/

test: $(SETUP_DONE) ## Run the test suite
	$(PY) -m pytest

bench: $(SETUP_DONE) ## Run the performance benchmarks (not part of the tests) and print the figures
	$(PY) -m study bench

sample: $(SETUP_DONE) ## Regenerate the shipped sample study in data/raw (deterministic, seeded)
	$(PY) -m study sample --data-dir $(DATA_DIR)

lock: ## Re-resolve requirements.in into requirements.lock in a scratch environment
	rm -rf .lock-venv && $(PYTHON_BASE) -m venv .lock-venv
	.lock-venv/bin/pip install --quiet -r requirements.in
	{ head -2 requirements.lock; .lock-venv/bin/pip freeze --exclude-editable; } > requirements.lock.new
	mv requirements.lock.new requirements.lock && rm -rf .lock-venv

clean: ## Remove processed data and rendered reports (asks first); raw data is never touched
	@read -r -p "Delete $(DATA_DIR)/processed/* and reports/*? [y/N] " ans; \
	if [[ "$$ans" == [yY] ]]; then rm -rf $(DATA_DIR)/processed/*/ reports/*/; echo removed; else echo kept; fi
