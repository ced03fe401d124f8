# unnparse — developer and user entry points.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: install test lint demo bench clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q -c constraints.txt torch==2.13.0
	$(PIP) install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check unnparse tests bench
	$(VENV)/bin/ruff format --check unnparse tests bench

test: lint
	$(VENV)/bin/pytest -q -p no:cacheprovider

demo: $(STAMP)
	$(PY) -m unnparse.demo

bench: $(STAMP)
	$(PY) bench/structures.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
