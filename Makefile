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

.PHONY: run test ui ui-check install bench lint clean check

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,scale]'
	touch $(STAMP)

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
	rm -rf $(VENV) .dagster_home data/warehouse .pytest_cache
