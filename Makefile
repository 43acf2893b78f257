# Two commands do all the set-up: `make up` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: up test unit bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

## up: embedded broker (unless PINGSTREAM_BROKER is set), WORKERS workers (default 1) and the API, in the foreground
WORKERS ?= 1
up: $(STAMP)
	$(BIN)/python -m pingstream.cli up --workers $(WORKERS)

## test: the whole suite against a real broker (embedded Tansu, or KAFKA_BOOTSTRAP)
test: $(STAMP)
	$(BIN)/python -m pytest -p no:cacheprovider -rfE $(PYTEST_ARGS)

## unit: only the fast pure-logic tests
unit: $(STAMP)
	$(BIN)/python -m pytest -p no:cacheprovider tests/unit

## bench: ingest throughput (and end to end with 1 and 2 workers), probe checks and one probe's schedule over
## 10,000 monitors, against baselines in the same run
BENCH_ARGS ?= --workers 2
bench: $(STAMP)
	$(BIN)/python -m bench.run $(BENCH_ARGS)
	$(BIN)/python -m bench.probe_checks $(PROBE_CHECKS_ARGS)
	$(BIN)/python -m bench.probe_schedule $(PROBE_SCHEDULE_ARGS)

clean:
	rm -rf $(VENV) .pingstream
