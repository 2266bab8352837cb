# The two commands: `make run` and `make test`. Everything installs into .venv on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
BUF := node_modules/.bin/buf

.PHONY: install run test lint gen bench soak clean

install: $(STAMP)

# Reinstall when a dependency list changes; one pip call resolves the local `plansmith`
# client distribution instead of looking for it on an index.
$(STAMP): pyproject.toml clients/python/pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e 'clients/python[cli]' -e '.[dev]'
	touch $(STAMP)

$(BUF): package.json
	npm install --no-audit --no-fund --silent
	touch $(BUF)

run: install
	$(VENV)/bin/plansmith-server

test: install
	$(PY) -m pytest

lint: install $(BUF)
	$(BUF) lint
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" scripts/gen_protos.sh --check
	$(VENV)/bin/ruff check .

gen: install
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" scripts/gen_protos.sh

# The load benchmark against a bare grpc.aio echo server (about 2 minutes). h2load
# comes from Debian's nghttp2-client.
bench: install
	command -v h2load >/dev/null || (apt-get update -qq && apt-get install -y -qq nghttp2-client)
	$(PY) bench/load.py

# Twice the sustainable write load for 4 minutes: p99 of accepted calls and memory.
soak: install
	command -v h2load >/dev/null || (apt-get update -qq && apt-get install -y -qq nghttp2-client)
	$(PY) bench/soak.py

clean:
	rm -rf $(VENV) node_modules
