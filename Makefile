# dispatchflow — developer entry points. Every target creates or reuses the virtualenv in .venv.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SHARED ?= ../shared
# Debian's Chromium, for the ops console's browser test (Playwright drives it; no browser download).
CHROMIUM := /usr/bin/chromium
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

.PHONY: help venv browser kafka demo test lint unit integration fuzz chaos chaos-short chaos-overload bench bench-ingest bench-eta bench-dispatch bench-rank bench-live bench-scaleout clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | column -t -s $$'\t'

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP) ## create or update the virtualenv in .venv

$(CHROMIUM):
	$(SUDO) apt-get update -qq
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium

browser: $(CHROMIUM) ## install Debian's Chromium for the browser test, if it is missing

kafka: $(STAMP) ## resolve the pinned Apache Kafka broker (tools/kafka/pom.xml) into its cache; needs Java 17+ and Maven, runs Maven once
	$(BIN)/python -m streams.kafka_dist

demo: $(STAMP) ## run the main job on the embedded broker
	$(BIN)/dispatchflow demo

# `make test` fetches what the integration tests need (Debian's Chromium, the Kafka jars) in the
# background while lint and unit tests run, then runs the integration tests on Apache Kafka.
PREP_LOG := $(VENV)/test-prep.log
PREP_DONE := $(VENV)/test-prep.status

test: $(STAMP) ## lint, type-check, unit tests, then integration tests on Apache Kafka (browser test included)
	@rm -f $(PREP_DONE); ( { $(MAKE) --no-print-directory $(CHROMIUM) kafka; } > $(PREP_LOG) 2>&1; echo $$? > $(PREP_DONE) ) &
	$(MAKE) --no-print-directory lint
	$(BIN)/python -m pytest -m "not integration"
	@until test -f $(PREP_DONE); do sleep 1; done; if [ "$$(cat $(PREP_DONE))" != 0 ]; then cat $(PREP_LOG); echo "error: installing Chromium or the Kafka jars failed (log above)"; exit 1; fi
	$(BIN)/python -m pytest -m "integration and not chaos" --durations=25

lint: $(STAMP) ## ruff and mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .

unit: $(STAMP) ## unit tests only
	$(BIN)/python -m pytest -m "not integration"

integration: $(STAMP) $(CHROMIUM) ## integration tests only (real broker; the ops console's in Chromium)
	$(BIN)/python -m pytest -m "integration and not chaos" --durations=25

fuzz: $(STAMP) ## the worker-core fuzz test with 50,000 generated records per topic
	DISPATCHFLOW_FUZZ_EXAMPLES=$${DISPATCHFLOW_FUZZ_EXAMPLES:-50000} $(BIN)/python -m pytest -q tests/unit/dispatch/live/test_worker_fuzz.py

# The full fault run of one seed (`make chaos SEED=2`); `make chaos-short` runs the short one.
SEED ?= 1

chaos: $(STAMP) ## lunch rush on 3 Kafka nodes: 20 worker kills, 3 broker kills, 100k hostile records; exits 1 on any failure
	$(BIN)/dispatchflow chaos --seed $(SEED) --worker-kills 20 --broker-kills 3 --fuzz 100000 --json chaos-results/chaos-seed$(SEED).json

chaos-short: $(STAMP) ## the short fault run (small town, 3 worker kills, 1 broker kill, 1 zombie, 5k hostile records)
	$(BIN)/python -m pytest -m chaos

chaos-overload: $(STAMP) ## 10x the order rate for 5 simulated minutes on 3 Kafka nodes; lag and ticks in chaos-results/
	$(BIN)/dispatchflow chaos --overload --seed $(SEED) --json chaos-results/overload-seed$(SEED).json

bench: bench-ingest bench-eta bench-dispatch bench-rank bench-live bench-scaleout ## every benchmark; figures land in bench-results/

bench-ingest: $(STAMP) ## ping ingest: our worker vs a plain aiokafka + rocksdict + changelog loop
	$(BIN)/dispatchflow bench ingest --json bench-results/ingest.json

bench-eta: $(STAMP) ## ETA models on the shared DoorDash and NYC files, plus inference speed
	$(BIN)/dispatchflow bench eta --shared $(SHARED) --out bench-results

bench-dispatch: $(STAMP) ## decide() tick latency on synthetic shards
	$(BIN)/dispatchflow bench dispatch --json bench-results/dispatch.json

bench-rank: $(STAMP) ## POST /rank under open-loop load on one worker, and the stream side meanwhile
	$(BIN)/dispatchflow bench rank --json bench-results/rank.json --plot bench-results/rank.png

# Evaluated city seeds and the seeds whose simulated days the models are trained on (disjoint).
LIVE_SEEDS ?= 1-5
LIVE_TRAIN_SEEDS ?= 101-108

bench-live: $(STAMP) ## the loop: fixed, merchant and learned dispatch on city days no model was trained on (table, JSON, plot)
	$(BIN)/dispatchflow bench live --seeds $(LIVE_SEEDS) --train-seeds $(LIVE_TRAIN_SEEDS) --json bench-results/live.json

bench-scaleout: $(STAMP) ## ping ingest on Apache Kafka with 1, 2 and 3 workers: CPU per million pings, throughput, rebalance pause
	$(BIN)/dispatchflow bench scaleout --json bench-results/scaleout.json

clean: ## remove build and test leftovers (keeps .venv)
	rm -rf build dist *.egg-info .mypy_cache .ruff_cache .pytest_cache bench-results demo-output chaos-results
