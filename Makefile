# Two commands do all set-up on a fresh machine with Python 3.11: `make demo`, `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
PLUGINS := $(wildcard plugins/*/pyproject.toml)
PLUGIN_DIRS := $(patsubst %/pyproject.toml,%,$(PLUGINS))
export TALKINGHEAD_HOME ?= $(CURDIR)/.talkinghead

.PHONY: install install-test demo test clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml $(PLUGINS)
	$(BIN)/pip install -q -e . $(foreach p,$(PLUGIN_DIRS),-e $(p))
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/pip install -q -e '.[test]' -e 'plugins/inferencesh[fake]' -e 'plugins/kling[fake]' -e 'plugins/fal[fake]'
	touch $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

demo: install
	@mkdir -p out
	$(BIN)/talkinghead generate --provider mock --image examples/face.jpg \
		--audio examples/hello.mp3 --output out/demo.mp4
	@echo "wrote out/demo.mp4"

test: install-test
	@$(BIN)/python -m pytest -q; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi; exit $$rc

clean:
	rm -rf $(VENV) out .talkinghead
