# Two commands do all the setup: `make run` and `make test`. Everything else is optional.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home
export RETAIL_SOURCE ?= synthetic
export RETAIL_WAREHOUSE ?= $(CURDIR)/data/warehouse/retail.duckdb

.PHONY: run test ui ui-check install bench lint clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

$(DAGSTER_HOME)/dagster.yaml: dagster.yaml
	mkdir -p $(DAGSTER_HOME)
	cp dagster.yaml $(DAGSTER_HOME)/dagster.yaml

run: $(STAMP) $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/dagster job execute -m assets.definitions -j all_assets
	$(BIN)/python -m pipeline.warehouse.summary "$(RETAIL_WAREHOUSE)"

test: $(STAMP) $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/python -m pytest

ui: $(STAMP) $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/dagster dev -m assets.definitions -h 127.0.0.1 -p 3000

ui-check: $(STAMP)
	$(BIN)/python -m tests.ui.browser_check --url http://127.0.0.1:3000 --screenshot reports/ui_lineage.png

bench: $(STAMP)
	$(BIN)/python -m bench.run

lint: $(STAMP)
	$(BIN)/ruff check pipeline assets resources tests

clean:
	rm -rf $(VENV) .dagster_home data/warehouse .pytest_cache
