# Two commands do all set-up on a fresh machine with Python 3.11: `make demo`, `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
PLUGINS := $(wildcard plugins/*/pyproject.toml)
PLUGIN_DIRS := $(patsubst %/pyproject.toml,%,$(PLUGINS))
# Tests and benchmarks keep their journal in the checkout; the demo uses the default data dir
# (or your TALKINGHEAD_HOME), the one `talkinghead jobs list` reads, so its job shows up there.
test bench: export TALKINGHEAD_HOME ?= $(CURDIR)/.talkinghead

.PHONY: install install-test demo lint test clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml $(PLUGINS)
	$(BIN)/pip install -q -e '.[local]' $(foreach p,$(PLUGIN_DIRS),-e $(p))
	touch $@

# The example third-party plugin (examples/talkinghead-still) is installed for the tests too:
# tests/test_example_plugin.py runs it through providers, plugins, estimate and generate.
$(VENV)/.installed-test: $(VENV)/.installed examples/talkinghead-still/pyproject.toml
	$(BIN)/pip install -q -e '.[test,postgres,queue]' -e 'plugins/inferencesh[fake]' -e 'plugins/kling[fake]' \
		-e 'plugins/fal[fake]' -e examples/talkinghead-still
	touch $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

# Offline and free whatever credentials the environment holds: only the local renderer loads,
# and the router picks it with no --provider.
demo: install
	@mkdir -p out
	TALKINGHEAD_PLUGINS=local $(BIN)/talkinghead generate --image examples/face.jpg \
		--audio examples/hello.mp3 --output out/demo.mp4 --json
	TALKINGHEAD_PLUGINS=local $(BIN)/talkinghead preview out/demo.mp4 -o out/demo-sheet.png
	@echo "wrote out/demo.mp4 (and a contact sheet, out/demo-sheet.png); its job: $(BIN)/talkinghead jobs list"

# The PostgreSQL tests start a throwaway cluster from the server binaries (Debian's `postgresql`):
# installed here when missing and we are root, else one clear line and a failure, never a skip.
PG_BIN := $(firstword $(wildcard /usr/lib/postgresql/*/bin/initdb))
.PHONY: postgres-server
postgres-server:
ifeq ($(PG_BIN),)
	@if [ "$$(id -u)" = 0 ]; then apt-get install -y -q postgresql >/dev/null || \
		{ apt-get update -q >/dev/null && apt-get install -y -q postgresql >/dev/null; }; \
	else echo "make test: PostgreSQL server binaries missing: apt-get install postgresql (as root)" >&2; exit 1; fi
endif

# Lint and types (docs/testing.md): ruff's rules and mypy's settings live in pyproject.toml;
# mypy checks the core, every plugin under plugins/ and the example plugin as one program.
LINT_PATHS := src plugins tests bench cassettes examples
lint: install-test
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/mypy --config-file pyproject.toml

# `lint` first: a lint or type error fails the run before any test starts.
test: lint postgres-server
	@$(BIN)/python -m pytest -q; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi; exit $$rc

# Line and branch coverage of the whole suite, CLI subprocesses included ([tool.coverage]).
.PHONY: coverage
coverage: install-test postgres-server
	rm -f .coverage .coverage.*
	$(BIN)/coverage run -m pytest -q
	$(BIN)/coverage combine -q
	$(BIN)/coverage report

# Mutation testing of the money paths ([tool.mutmut] in pyproject.toml says which files and
# tests): slow (30 to 40 minutes on 2 cores), so not part of `make test`. It prints killed/total
# per module; read the survivors with `$(BIN)/mutmut results` and `$(BIN)/mutmut show NAME`.
MUTANTS ?= 'talkinghead.routing.*' 'talkinghead.ledger.*' 'talkinghead.lifecycle.*create__*' \
	'talkinghead.lifecycle.*settle__*' 'talkinghead.lifecycle.x_over_quote__*' 'talkinghead.lifecycle.x_next_step__*'
.PHONY: mutation
mutation: install-test postgres-server
	$(BIN)/pip install -q -e '.[mutation]'
	rm -rf mutants && mkdir mutants
	$(BIN)/mutmut run $(MUTANTS) > mutants/run.log 2>&1 || { tail -c 3000 mutants/run.log; exit 1; }
	@$(BIN)/mutmut results --all true | grep -v ': not checked$$' | awk -F': ' '{split($$1, p, "."); \
		gsub(/ /, "", p[1]); m = p[1] "." p[2]; n[m]++; c[m, $$2]++} END {for (m in n) printf \
		"%s: %d killed of %d (%d survived, %d no tests)\n", m, c[m, "killed"], n[m], c[m, "survived"], \
		c[m, "no tests"]}' | sort

clean:
	rm -rf $(VENV) out .talkinghead mutants

.PHONY: bench
bench: install-test
	$(BIN)/python bench/run_all.py
