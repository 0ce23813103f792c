# One place for the commands a newcomer needs. `make help` lists them.
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin

.DEFAULT_GOAL := help
.PHONY: help install tools run test lint typecheck unit integration bench bench-decide bench-enforce bench-store faults broker-up broker-down clean

help: ## list the commands
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-14s %s\n", $$1, $$2}'

$(BIN)/gateway: pyproject.toml gateway/_guardscan.c
	test -x $(PY) || python3 -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

install: $(BIN)/gateway ## create .venv and install the gateway with its test tools

tools: ## promtool and prometheus for the ops tests (Debian's package, only if missing)
	scripts/ensure-prometheus.sh

run: install ## the gateway on a real local Kafka broker, with demo keys and synthetic traffic
	$(BIN)/gateway demo

test: install tools lint typecheck ## every check: ruff, mypy, unit, integration (real broker), ops (promtool), coverage gate
	$(BIN)/pytest -q -p no:cacheprovider --cov=gateway --cov-branch --cov-report=term:skip-covered --cov-fail-under=95

lint: install ## ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install ## mypy --strict on gateway/, topologies/ and devtools/
	$(BIN)/mypy

unit: install ## the tests that need no broker (unit, topologies, devtools)
	$(BIN)/pytest -q tests/unit tests/topologies tests/devtools

integration: install ## the integration tests (starts or reuses the local broker)
	$(BIN)/pytest -q -m integration

bench: install ## the end-to-end benchmark against honest yardsticks (aiokafka batch API, per-record, librdkafka, the broker's ceiling), ~15 min; BENCH_ARGS=--quick for a smoke run
	$(PY) -m benchmarks.e2e $(BENCH_ARGS)

bench-decide: install ## decisions per second of the pure core
	$(PY) benchmarks/bench_decide.py

bench-enforce: install ## the worker's hot path in one process (enforcer, real batches, no network) beside the batch passthrough's per-record work
	$(PY) -m benchmarks.bench_enforce

bench-store: install ## the consent table's stores (memory, rocksdb) at 1M and 10M subjects: RSS, lookups, cold start, warm restart
	$(PY) -m benchmarks.store $(STORE_ARGS)

faults: install ## the fault and attack suite on the local broker: kill -9, two workers, wiped state, consent burst, all together; report in faults-report/
	$(PY) -m tests.faults $(FAULTS_ARGS)

broker-up: install ## start (or reuse) the local Kafka broker
	$(BIN)/gateway local up

broker-down: install ## stop the local Kafka broker
	$(BIN)/gateway local down

clean: ## remove the virtualenv and caches (the Kafka jar cache in ~/.cache is kept)
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
