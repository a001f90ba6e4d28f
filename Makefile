# The two commands of the README:
#   make demo   - the example site at http://127.0.0.1:8000 (SQLite, in-memory layer, demo users)
#   make test   - the whole test suite (tox: every Python x Django, SQLite and PostgreSQL,
#                 in-memory and Redis layers, the browser test, lint, docs, benchmark smoke run,
#                 mypy --strict, the client's tsc check, the wheel/sdist/npm package checks)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

# Pythons installed with pyenv but not on PATH (3.12, 3.13) are made visible to tox.
PYENV_ROOT := $(shell pyenv root 2>/dev/null)
PYENV_BINS := $(subst $(eval) ,:,$(wildcard $(PYENV_ROOT)/versions/3.1[123]*/bin))
export PATH := $(if $(PYENV_BINS),$(PYENV_BINS):,)$(PATH)
# Never let uv download an interpreter: use the ones installed here.
export UV_PYTHON_DOWNLOADS := never
# On CI a missing interpreter is a failure, not a skip.
ifdef CI
export TOX_SKIP_MISSING_INTERPRETERS := false
endif

.PHONY: demo test bench lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.demo-installed: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install -q -e ".[redis]" "daphne>=4.1"
	touch $@

$(VENV)/.tox-installed: $(BIN)/python
	$(BIN)/python -m pip install -q "tox>=4.20" "tox-uv>=1.11" uv
	touch $@

demo: $(VENV)/.demo-installed
	$(BIN)/python example_site/manage.py demo

test: $(VENV)/.tox-installed
	$(BIN)/tox run

bench: $(VENV)/.tox-installed
	$(BIN)/python benchmarks/run.py

lint: $(VENV)/.tox-installed
	$(BIN)/tox run -e lint

clean:
	rm -rf .tox $(VENV) build dist node_modules
