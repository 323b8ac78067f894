# Everything installs into .venv; Kubernetes binaries are built once into ~/.cache/feast-lineage.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
export NO_PROXY := 127.0.0.1,localhost

.PHONY: install test chaos heavy example lint binaries crds chart dev-up dev-down clean

$(BIN)/.installed: pyproject.toml
	@echo "==> environment: $(VENV) with this package, Feast and MLflow (about 2 minutes the first time)"
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

install: $(BIN)/.installed

## Run every test: unit tests, then the ones against a real control plane, node and MLflow.
test: install
	$(BIN)/pytest

## Tests that take minutes each (a thousand audit records against an MLflow that is down).
heavy: install
	$(BIN)/pytest -m heavy

## The chaos suite (short: 8 operations; CHAOS_OPERATIONS=100 for the long run, CHAOS_SEED to replay).
chaos: install
	$(BIN)/pytest -m chaos tests/chaos

## Run the driver-stats example on a local cluster (started if it is not running).
example: install
	bash examples/driver-stats/run.sh

lint: install
	$(BIN)/ruff check operator tests examples benchmarks
	$(BIN)/ruff format --check operator tests examples benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/feast-lineage crds --check --output crds
	$(BIN)/feast-lineage chart --check

## Build (or find cached) etcd, kube-apiserver, kube-controller-manager, kubectl and helm.
binaries: install
	$(BIN)/feast-lineage dev-cluster build

crds: install
	$(BIN)/feast-lineage crds --output crds
	$(BIN)/feast-lineage chart

## Regenerate the chart's CRDs and RBAC rules, and the plain install manifest rendered from it (needs helm).
chart: install
	$(BIN)/feast-lineage chart --manifest deploy/feast-lineage-operator.yaml

dev-up: install
	$(BIN)/feast-lineage dev-cluster up

dev-down: install
	$(BIN)/feast-lineage dev-cluster down

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
