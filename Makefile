# Atrium — every target does its own set-up.
#   make run    the whole system on the embedded PostgreSQL and Kafka
#   make test   unit, integration and end-to-end tests on their own PostgreSQL and Kafka
#   make lint   ruff and mypy --strict

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-unit lint format migrate up down status docs bench bench-tools clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/atrium-infra run

up: $(STAMP)
	$(BIN)/atrium-infra up

down: $(STAMP)
	$(BIN)/atrium-infra down

status: $(STAMP)
	$(BIN)/atrium-infra status

migrate: $(STAMP)
	$(BIN)/atrium-infra migrate

test: $(STAMP)
	$(BIN)/pytest -p no:cacheprovider $(PYTEST_ARGS)

test-unit: $(STAMP)
	$(BIN)/pytest -p no:cacheprovider tests/unit $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

docs: $(STAMP)
	$(BIN)/python -m infra.docs docs/generated

BENCHMARKS := outbox_latency identity_throughput gateway_latency billing_spend key_budget_spend edge_flood apikey_verification apikeys_usage apikey_revocation apikey_throughput apikey_usage_latency assets_listing metrics_overhead gateway_processes tracing_overhead access_propagation edge_throughput identity_reads

# The HTTP benchmarks load the system with wrk; where it is missing and this is a root
# shell on Debian or Ubuntu it is installed, else they fall back to a slower aiohttp load.
bench-tools:
	@command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
		&& { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; } } \
		|| echo "wrk not installed: the HTTP benchmarks use an aiohttp load instead"

bench: $(STAMP) bench-tools
	for benchmark in $(BENCHMARKS); do $(BIN)/python -m bench.$$benchmark || exit 1; done

clean:
	-if [ -x $(BIN)/atrium-infra ]; then $(BIN)/atrium-infra clean; fi
	rm -rf $(VENV) .atrium .mypy_cache .ruff_cache
