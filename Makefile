# Every target bootstraps .venv (uv, locked by uv.lock) and a project-local Airflow home.
#   make demo | make test | make bench | make lint | make airflow | make run DAG=<dag_id>
#   make cluster | make cluster-stop

SHELL := /bin/bash
.DEFAULT_GOAL := help

ROOT := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
VENV := $(ROOT)/.venv
BIN := $(VENV)/bin
# uv from PATH, else a private copy installed from PyPI into .uv/
UV := $(or $(shell command -v uv 2>/dev/null),$(ROOT)/.uv/bin/uv)

export UV_COMPILE_BYTECODE := 1
# uv picks any interpreter pyproject.toml allows (3.11 to 3.13) and downloads one only where
# none is installed and the network allows it.
export UV_PYTHON_DOWNLOADS ?= automatic
export UV_PROJECT_ENVIRONMENT := $(VENV)
export AIRFLOW_HOME ?= $(ROOT)/.airflow
export PATH := $(BIN):$(PATH)
# An Airflow command with the project's one Airflow configuration (scripts/airflow_settings.py:
# dags, plugins, Korean time, SQLite, LocalExecutor, the API on 127.0.0.1:$(PORT)), the same
# as make demo, the tests and the cluster use.
PORT ?= 8080
AIRFLOW_ENV = $(BIN)/python -m scripts.airflow_settings --port $(PORT)
# make cluster: every file of the local cluster (DB, registry, remote, keys, logs)
CLUSTER_DATA ?= $(ROOT)/.cluster

.PHONY: help setup browser demo test test-fast bench lint format run airflow rollback redeploy clean \
	cluster cluster-stop cluster-packages

help:
	@echo "make demo      run the whole job under Airflow's scheduler on the embedded default"
	@echo "make test      run every test (unit, DAG, integration, end-to-end, cluster)"
	@echo "make test-fast the tests without the end-to-end and cluster tiers (a few minutes)"
	@echo "make run DAG=<dag_id> [CONF='<json>'] [DATE=YYYY-MM-DD]   run one DAG once (airflow dags test)"
	@echo "make airflow [PORT=8080]   Airflow UI on http://127.0.0.1:8080, in Korean time"
	@echo "make cluster [WORKERS=N]   the cluster: PostgreSQL, Celery on Redis, N workers (2), S3, git server"
	@echo "make cluster-stop   stop every process make cluster started"
	@echo "make rollback VERSION=vX.Y.Z   assign prod to an earlier version, deploy it, tell Airflow"
	@echo "make redeploy  deploy the current prod version into output/serving, tell Airflow"
	@echo "make bench     performance figures as ratios"
	@echo "make lint      ruff check + ruff format --check"
	@echo "make format    ruff check --fix + ruff format"
	@echo "make setup     install the locked environment and initialise .airflow/"
	@echo "make browser   headless Chromium for the UI test (Debian packages, where missing)"
	@echo "make cluster-packages   PostgreSQL, Redis, sshd for the cluster (Debian, where missing)"
	@echo "make clean     remove .airflow/, output/ and the local DVC remote"

$(ROOT)/.uv/bin/uv:
	python3 -m venv $(ROOT)/.uv
	$(ROOT)/.uv/bin/pip install -q uv

$(BIN)/.synced: $(UV) $(ROOT)/pyproject.toml $(ROOT)/uv.lock
	$(UV) sync --frozen --quiet
	@touch $@

# The cluster's extra (Celery, PostgreSQL and Redis clients, dvc-s3, SeaweedFS) on top.
$(BIN)/.synced-cluster: $(BIN)/.synced
	$(UV) sync --frozen --extra cluster --quiet
	@touch $@

$(AIRFLOW_HOME)/.ready: $(BIN)/.synced
	@mkdir -p $(AIRFLOW_HOME)
	$(AIRFLOW_ENV) airflow db migrate > $(AIRFLOW_HOME)/db-migrate.log 2>&1 || (tail -20 $(AIRFLOW_HOME)/db-migrate.log; exit 1)
	cd $(ROOT)/dags && $(AIRFLOW_ENV) python -m batchserving_dags
	@touch $@

# Byte-compile the project's code: the DAG processor parses the DAG files every 30 s (they
# import the helpers and batchserving's names) and every task imports the package, and
# PYTHONDONTWRITEBYTECODE (set on some machines) would make each of them compile it again.
setup: $(AIRFLOW_HOME)/.ready
	@$(BIN)/python -m compileall -q $(ROOT)/dags $(ROOT)/batchserving $(ROOT)/stages

# The same model repo for every local command: MODEL_REPO if set, else .model-repo/ (made on
# first use); each target below names it at start.
WORKSPACE := $(BIN)/python -m batchserving.registry.workspace

# Scheduler, DAG processor and API server on .airflow/, the four DAGs triggered through the
# REST API, then stopped: `make airflow` shows the runs afterwards.
demo: setup
	$(BIN)/python -m scripts.demo

# Headless Chromium for the UI test (tests/e2e/test_ui.py): Debian packages, only where missing.
browser:
	@if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver; fi

# The cluster's servers (tests/cluster, make cluster): Debian packages, only where missing.
cluster-packages:
	@missing=""; \
	ls /usr/lib/postgresql/*/bin/postgres > /dev/null 2>&1 || missing="$$missing postgresql"; \
	command -v redis-server > /dev/null || missing="$$missing redis-server"; \
	test -x /usr/sbin/sshd || missing="$$missing openssh-server"; \
	if [ -n "$$missing" ]; then apt-get update -q && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; fi

test: $(BIN)/.synced-cluster browser cluster-packages
	$(BIN)/pytest

test-fast: $(BIN)/.synced
	$(BIN)/pytest -m "not e2e and not cluster"

bench: $(BIN)/.synced
	$(BIN)/python -m benchmarks

lint: $(BIN)/.synced
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(BIN)/.synced
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# CONF and DATE reach the shell through the environment: any JSON (quotes, spaces) stays
# one argument. DATE is the run's logical date, except for monitor_predictions, where it is
# the KST day to monitor: that run's logical date is the next day's 01:00 KST. Without
# deadline alerts: `airflow dags test` crashes on a DAG that has one
# (dags/batchserving_dags/deadlines.py).
RUN_LOGICAL_DATE = if [ "$(DAG)" = monitor_predictions ]; then \
	echo "$$(date -u -d "$$RUN_DATE + 1 day" +%Y-%m-%d)T01:00:00+09:00"; else echo "$$RUN_DATE"; fi
run: export RUN_CONF := $(CONF)
run: export RUN_DATE := $(DATE)
run: setup
	@test -n "$(DAG)" || (echo "usage: make run DAG=<dag_id> [CONF='<json>'] [DATE=YYYY-MM-DD]" >&2; exit 2)
	@[[ -z "$$RUN_DATE" || "$$RUN_DATE" =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}$$ ]] || (echo "DATE: use YYYY-MM-DD" >&2; exit 2)
	@$(WORKSPACE)
	BATCHSERVING_DEADLINES=off $(AIRFLOW_ENV) airflow dags test $(if $(CONF),-c "$$RUN_CONF") $(DAG) $(if $(DATE),"$$($(RUN_LOGICAL_DATE))")

# Assign prod to an earlier registered version and deploy it (a new prod tag, like a promotion);
# then an iris-model-prod event to Airflow at AIRFLOW_API_URL, if one answers (scripts/prod_event.py).
rollback: $(BIN)/.synced
	@test -n "$(VERSION)" || (echo "usage: make rollback VERSION=vX.Y.Z" >&2; exit 2)
	@$(WORKSPACE)
	cd $(ROOT) && $(BIN)/python -m batchserving.selection.promote rollback $(VERSION) && \
		$(BIN)/python -m scripts.prod_event

# Deploy the current prod version into output/serving/ from the registry (DVC cache or remote);
# then the same event as rollback.
redeploy: $(BIN)/.synced
	@$(WORKSPACE)
	cd $(ROOT) && $(BIN)/python -m batchserving.selection.promote redeploy && \
		$(BIN)/python -m scripts.prod_event

airflow: setup
	@$(WORKSPACE)
	$(AIRFLOW_ENV) airflow standalone

# Start the cluster in $(CLUSTER_DATA), or restart only its parts that are down; prints the
# UI and login. WORKERS=N: that many Celery workers (recorded; default: as many as it has).
cluster: $(BIN)/.synced-cluster cluster-packages
	$(BIN)/python -m scripts.cluster up --data $(CLUSTER_DATA) $(if $(WORKERS),--workers "$(WORKERS)")

# Stop every process make cluster started, by pid; its data stays for the next make cluster.
cluster-stop: $(BIN)/.synced-cluster
	$(BIN)/python -m scripts.cluster down --data $(CLUSTER_DATA)

clean:
	rm -rf $(AIRFLOW_HOME) $(ROOT)/output $(ROOT)/dvc-remote
