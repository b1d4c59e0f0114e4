# Two commands do all the setup: `make run` and `make test`. Everything else is optional.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The code location's settings (RETAIL_SOURCE, RETAIL_WAREHOUSE...) come from the shell or from .env, which
# Dagster and dg load themselves (see .env.example); the code has the defaults. Only where `make run` prints
# the row counts from is needed here.
WAREHOUSE := $(or $(RETAIL_WAREHOUSE),$(CURDIR)/data/warehouse/retail.duckdb)
# DAGSTER_HOME must be an absolute path (Dagster refuses a relative one), so it is set here.
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home
# dg runs the project's own environment.
export VIRTUAL_ENV := $(CURDIR)/$(VENV)

.PHONY: run test ui ui-check install lock bench lint clean check

# Installs come from uv.lock (every package pinned, with hashes): `uv sync --frozen` installs exactly the locked
# versions, the project itself editable. uv lives in a bootstrap venv of its own (.uv/), because `uv sync`
# removes from .venv whatever the lock does not list. After editing dependencies in pyproject.toml, run
# `make lock` and commit uv.lock.
UV_VERSION := 0.13.9
UV := .uv/bin/uv

$(UV):
	$(PYTHON) -m venv .uv
	.uv/bin/python -m pip install --quiet uv==$(UV_VERSION)

$(STAMP): pyproject.toml uv.lock | $(UV)
	UV_PROJECT_ENVIRONMENT=$(VENV) $(UV) sync --frozen --extra dev --extra scale --python $(PYTHON)
	touch $(STAMP)

lock: $(UV)
	$(UV) lock

install: $(STAMP)

$(DAGSTER_HOME)/dagster.yaml: dagster.yaml
	mkdir -p $(DAGSTER_HOME)
	cp dagster.yaml $(DAGSTER_HOME)/dagster.yaml

run: $(STAMP) $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/dg launch --job all_assets
	$(BIN)/python -m pipeline.warehouse.summary "$(WAREHOUSE)"

test: $(STAMP) $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/dg check defs
	$(BIN)/python -m pytest

ui: $(STAMP) $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/dg dev --host 127.0.0.1 --port 3000

ui-check: $(STAMP)
	$(BIN)/python -m tests.ui.browser_check --url http://127.0.0.1:3000 --screenshot reports/ui_lineage.png

bench: $(STAMP)
	$(BIN)/python -m bench.run

lint: $(STAMP)
	$(BIN)/ruff check pipeline assets resources tests

clean:
	rm -rf $(VENV) .uv .dagster_home data/warehouse .pytest_cache
