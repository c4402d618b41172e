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
# The quarter before a given quarter among those present ($(call previous,2025Q2) -> 2025Q1).
previous     = $(shell printf '%s\n' $(QUARTERS) | awk -v q="$(1)" '$$0 < q' | tail -n 1)
BASELINE    ?= $(call previous,$(QUARTER))
# What a report is made from: when none of these changed, `make report` does nothing.
SOURCES     := $(shell find src/study -name '*.py' -o -name '*.css' -o -name '*.j2' -o -name '*.tpl' -o -name '*.json' -o -name '*.po' 2>/dev/null)
# Language of the report: `make report LANG=zh` (or en, or en,zh for both from one analysis).
# LANG is also the locale variable every program reads, and make passes it on to the recipes: a
# LANG that names report languages is taken as REPORT_LANG and the recipes get C.UTF-8 instead, so
# Python, R and Chromium keep a valid locale. REPORT_LANG=zh works as well and leaves LANG alone.
comma       := ,
REPORT_LANGS := en zh en$(comma)zh zh$(comma)en
ifneq ($(filter $(REPORT_LANGS),$(LANG)),)
REPORT_LANG := $(LANG)
override LANG := C.UTF-8
endif
REPORT_LANG ?= en
REPORT_FILE  = $(if $(filter en,$(REPORT_LANG)),report.pdf,report.zh.pdf)
NOTEBOOKS   := $(wildcard notebooks/*.ipynb)

.PHONY: help setup data report lab lint test bench clean lock sample

help: ## List the targets (this text)
	@grep -hE '^[a-z]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z]+):.*## (.*)/  make \1\t\2/' | expand -t 20

# System packages the report needs: Chromium prints the PDF, Noto CJK renders Chinese labels (the PDF's text and
# pages are read back with pypdf). Installed with apt when the machine allows (root or password-less sudo);
# otherwise the command to run is printed.
SYSTEM_PACKAGES := chromium fonts-noto-cjk
SYSTEM_DONE     := $(VENV)/.system-done

$(SYSTEM_DONE):
	@missing=""; \
	command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || missing="$$missing chromium"; \
	fc-list 2>/dev/null | grep -qi "Noto Sans CJK" || missing="$$missing fonts-noto-cjk"; \
	if [ -n "$$missing" ]; then \
	  if command -v apt-get >/dev/null 2>&1 && { [ "$$(id -u)" = 0 ] || sudo -n true 2>/dev/null; }; then \
	    SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	    echo ">> installing system packages:$$missing"; \
	    $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "!! the report needs:$$missing; this machine does not let make install them."; \
	    echo "!! Install them (Debian/Ubuntu: sudo apt-get install$$missing); until then the report and its tests stop with that message."; \
	    exit 0; \
	  fi; \
	fi; \
	mkdir -p $(VENV) && touch $@

$(SETUP_DONE): requirements.lock pyproject.toml | $(SYSTEM_DONE)
	@echo ">> creating $(VENV) and installing pinned dependencies (requirements.lock)"
	$(PYTHON_BASE) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.in -c requirements.lock
	$(PY) -m pip install --quiet --no-deps -e .
	$(PY) -m ipykernel install --sys-prefix --name $(KERNEL) --display-name "Python (service-quality study)" > /dev/null
	@touch $@

setup: $(SETUP_DONE) ## Create .venv, install pinned dependencies and the study package, register the Jupyter kernel

data: $(foreach q,$(QUARTERS),$(DATA_DIR)/processed/$(q)/manifest.json) ## Validate and prepare every quarter in data/raw into data/processed

.SECONDEXPANSION:
# A quarter is prepared again only when one of its raw files or the study definition changed.
$(DATA_DIR)/processed/%/manifest.json: $$(wildcard $(DATA_DIR)/raw/$$*/*) $(STUDY) src/study/data/validate.py src/study/data/io.py | $(SETUP_DONE)
	$(PY) -m study prepare --quarter $* --data-dir $(DATA_DIR) --study $(STUDY)

report: reports/$(QUARTER)/$(REPORT_FILE) ## Render the report for QUARTER against BASELINE (default: the latest two quarters); LANG=zh or LANG=en,zh for Chinese

# One rule per quarter, so `make -j2 reports/2025Q1/report.pdf reports/2025Q2/report.pdf` renders both.
# Every quarter present is prepared first: the report tracks the whole history (issue 13).
reports/%/report.pdf: $(DATA_DIR)/processed/%/manifest.json $(foreach q,$(QUARTERS),$(DATA_DIR)/processed/$(q)/manifest.json) \
		$(STUDY) $(NOTEBOOKS) $(SOURCES) | $(SETUP_DONE)
	$(PY) -m study report --quarter $* --baseline "$(if $(filter $*,$(QUARTER)),$(BASELINE),$(call previous,$*))" --data-dir $(DATA_DIR) --study $(STUDY)

# The Chinese report (report.zh.html/.pdf); with REPORT_LANG=en,zh both languages come from one analysis.
reports/%/report.zh.pdf: $(DATA_DIR)/processed/%/manifest.json $(foreach q,$(QUARTERS),$(DATA_DIR)/processed/$(q)/manifest.json) \
		$(STUDY) $(NOTEBOOKS) $(SOURCES) | $(SETUP_DONE)
	$(PY) -m study report --quarter $* --baseline "$(if $(filter $*,$(QUARTER)),$(BASELINE),$(call previous,$*))" --data-dir $(DATA_DIR) --study $(STUDY) --lang $(if $(filter en zh,$(REPORT_LANG)),zh,$(REPORT_LANG))

# Optional extras (pyproject [project.optional-dependencies]), pinned by requirements.lock too.
$(VENV)/.extra-%: $(SETUP_DONE)
	$(PY) -m pip install --quiet -c requirements.lock -e '.[$*]'
	@touch $@

lab: $(VENV)/.extra-lab ## Open JupyterLab with the project kernel (installs the `lab` extra)
	$(VENV)/bin/jupyter lab notebooks/

lint: $(SETUP_DONE) ## Check the code with ruff (configured in pyproject.toml)
	$(VENV)/bin/ruff check src tests

test: $(SETUP_DONE) ## Run the test suite (two worker processes, a test module per worker: pytest-xdist)
	$(PY) -m pytest

bench: $(VENV)/.extra-bench ## Run the performance benchmarks (not part of the tests; installs the `bench` extra)
	$(PY) -m study bench

sample: $(SETUP_DONE) ## Regenerate the shipped sample study in data/raw (deterministic, seeded)
	$(PY) -m study sample --data-dir $(DATA_DIR)

lock: ## Re-resolve requirements.in into requirements.lock in a scratch environment
	rm -rf .lock-venv && $(PYTHON_BASE) -m venv .lock-venv
	.lock-venv/bin/pip install --quiet -r requirements.in -e '.[bench,lab]'
	{ head -2 requirements.lock; .lock-venv/bin/pip freeze --exclude-editable; } > requirements.lock.new
	mv requirements.lock.new requirements.lock && rm -rf .lock-venv

clean: ## Remove processed data and rendered reports (asks first); raw data is never touched
	@read -r -p "Delete $(DATA_DIR)/processed/* and reports/* (with temporary folders of killed runs)? [y/N] " ans; \
	if [[ "$$ans" == [yY] ]]; then rm -rf $(DATA_DIR)/processed/*/ reports/*/ $(DATA_DIR)/processed/.*tmp*/ $(DATA_DIR)/processed/.*old*/ reports/.*tmp*/; \
	echo removed; else echo kept; fi
