# keras-longctx: `make demo` and `make test` each set up .venv, install what they need, and run.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
export TF_CPP_MIN_LOG_LEVEL ?= 2
export HF_HUB_OFFLINE := 1
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: install system-deps demo demo-long-text play play-web test test-fast test-tf test-jax bench clean

$(STAMP): setup.py Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e '.[test]'
	$(PIP) install -q --no-deps bert4keras==0.11.5
	touch $(STAMP)

# Debian packages: fairy-stockfish (the Xiangqi engine), and for the web page's browser tests
# chromium, chromium-driver and a CJK font (the pieces' and the moves' Chinese characters).
SYSTEM_PACKAGES := fairy-stockfish chromium chromium-driver fonts-wqy-microhei
system-deps:
	@missing=""; \
	command -v fairy-stockfish >/dev/null 2>&1 || test -x /usr/games/fairy-stockfish || missing="$$missing fairy-stockfish"; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	command -v chromedriver >/dev/null 2>&1 || missing="$$missing chromium-driver"; \
	test -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc || missing="$$missing fonts-wqy-microhei"; \
	if [ -n "$$missing" ]; then \
	  echo "installing$$missing"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing) || \
	  (sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing); fi

install: $(STAMP) system-deps

# The bundled Xiangqi GPT plays two games against fairy-stockfish (depth 1).
demo: install
	$(PY) scripts/play_xiangqi.py --opponent engine --engine-depth 1 --games 2 --show-board

# The bundled Chinese BERT (128 positions) fills masks in a 2,000-character People's Daily article
# held out of its pretraining: one pass with hierarchical positions vs 128-token windows; then
# all-MiniLM-L6-v2 embeds a 2,000-token document in one pass.
demo-long-text: install
	$(PY) scripts/long_text_fill_masks.py
	$(PY) scripts/long_text_bert.py

play: install
	$(PY) scripts/play_xiangqi.py

# The Xiangqi GPT in a browser: prints the URL (http://127.0.0.1:8000/); Ctrl-C stops it.
play-web: install
	$(PY) scripts/serve_xiangqi.py $(if $(PORT),--port $(PORT))

test: install test-tf test-jax

# The tests run on the CPU (the same results on every machine); the scripts see every GPU.
test-tf test-jax test-fast: export CUDA_VISIBLE_DEVICES ?= -1

# Two pytest workers (pytest-xdist), a test file each at a time: the suite is half subprocess
# start-ups and single-threaded Python, so the two cores overlap them. TEST_WORKERS=0 runs in one.
TEST_WORKERS ?= 2
PYTEST := $(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile

test-tf:
	$(PYTEST) --durations=15 tests

# test_distribution.py is left out here: its device cases are JAX subprocesses whichever backend
# the test process has, so the TensorFlow pass has already run them.
test-jax:
	KERAS_BACKEND=jax $(PYTEST) --durations=15 tests/layers tests/models --ignore tests/models/test_distribution.py

# The inner loop: everything but the tests marked slow (oracles, subprocesses, training), TensorFlow.
test-fast: install
	$(PYTEST) -m "not slow" --durations=10 tests

# the benchmarks print their tables; --write also puts them into docs/benchmarks.md (and docs/bench_attention.*).
# Not here: scripts/bench_cpm.py --write (CPM-LM at full size: ~16 GB of disk, ~12 GiB of memory).
bench: install
	$(PY) scripts/bench_encoder.py --write
	$(PY) scripts/bench_generate.py --write
	$(PY) scripts/bench_attention.py --write
	$(PY) scripts/bench_long_bert.py --write
	$(PY) scripts/bench_pretrain.py --write

clean:
	rm -rf $(VENV) *.egg-info
