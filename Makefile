# The two set-up commands of the README are `make demo` (main job) and `make test` (test suite).
# Both create .venv on first use; nothing but Python 3.11 (or 3.12) and pip is needed beforehand.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# Prefer wheels everywhere: pythia8mc and friends otherwise compile for a long time.
PIP_INSTALL := $(PIP) install --prefer-binary --constraint constraints.txt
DEMO_RUN ?= runs/quick
# pytest-xdist workers for `make test` (the suite is mostly single-threaded Python and small TF ops).
TEST_WORKERS ?= 2
# TensorFlow's C++ start-up chatter hides the output that matters.
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: install install-distributed install-fpnd demo test lint

# What the demo and a laptop need; Horovod (install-distributed) is only for multi-process training.
install: $(VENV)/.installed

# For cluster users and the test suite: Horovod for `horovodrun`/`srun` data-parallel training.
install-distributed: $(VENV)/.horovod

$(VENV)/.installed: setup.cfg constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP_INSTALL) --upgrade pip setuptools wheel
	# torch first, pinned by constraints.txt to the CPU build, so jetnet cannot pull a CUDA torch.
	$(PIP_INSTALL) torch
	$(PIP_INSTALL) -e '.[test]'
	# The wasserstein wheel (jetnet -> energyflow -> wasserstein) is built against numpy 1 and fails to
	# import under numpy 2, which TensorFlow 2.21 needs; rebuild it from source against numpy 2.
	$(PIP) install --no-deps --no-binary wasserstein --no-build-isolation --force-reinstall wasserstein==1.1.0
	$(PY) -c "import tensorflow, keras, jetnet, pythia8mc, fastjet; print('gsgm environment ready')"
	touch $@

# Horovod has no wheel that works with TF 2.21: scripts/install_horovod.sh builds it
# (about 5 minutes on 2 cores; needs cmake and a C++ compiler). HOROVOD_BUILD=gpu for NCCL + MPI.
$(VENV)/.horovod: $(VENV)/.installed scripts/install_horovod.sh
	PYTHON=$(PY) scripts/install_horovod.sh
	touch $@

# Optional: the real torch-cluster for FPND (no wheel for torch 2.13; compiles for about 6.5 minutes,
# 2.3 GB peak). Not needed: without it FPND uses gsgm.evaluation.knn_fallback, which gives the same
# values (tests/data/fpnd_reference.json, recorded with torch-cluster by benchmarks/record_fpnd_reference.py).
install-fpnd: install
	MAX_JOBS=2 $(PIP_INSTALL) --no-cache-dir --no-deps --no-build-isolation torch-cluster==1.6.3

demo: install
	@echo "== 1/5 the shipped Pythia 8 + FastJet sample"
	$(PY) scripts/inspect_data.py builtin --particles 30
	@echo "== 2/5 train configs/quick.json (a fresh run: the previous demo run is removed)"
	rm -rf $(DEMO_RUN)
	$(PY) scripts/train.py --config configs/quick.json --data builtin --particles 30 --out $(DEMO_RUN)
	@echo "== 3/5 sample 1000 jets per class"
	$(PY) scripts/sample.py --run $(DEMO_RUN) --jets-per-class 1000 --out $(DEMO_RUN)/samples --no-progress
	@echo "== 4/5 the generated jets, to compare with table 1/5"
	$(PY) scripts/inspect_data.py $(DEMO_RUN)/samples
	@echo "== 5/5 metrics with the truth-vs-truth floor, and plots"
	$(PY) scripts/evaluate.py --truth builtin --truth-split all --gen $(DEMO_RUN)/samples --label quick --jets-per-class 1000 --out $(DEMO_RUN)/evaluation
	$(PY) plots/plot_jets.py --truth builtin --truth-split all --gen $(DEMO_RUN)/samples --label quick --jets-per-class 1000 --out $(DEMO_RUN)/plots
	$(PY) plots/plot_training.py --run $(DEMO_RUN) --out $(DEMO_RUN)/plots
	$(PY) plots/plot_timing.py --results $(DEMO_RUN)/samples/timing.json --out $(DEMO_RUN)/plots
	@echo "metrics: $(DEMO_RUN)/evaluation/metrics.md   plots: $(DEMO_RUN)/plots/"

test: install install-distributed
	$(VENV)/bin/ruff check gsgm scripts tests benchmarks plots
	# The import direction of the layers (contracts in setup.cfg [importlinter]).
	$(VENV)/bin/lint-imports
	# --dist loadgroup: the horovodrun tests (xdist_group "horovod") run one at a time on one worker.
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadgroup --durations=20

lint: install
	$(VENV)/bin/ruff check gsgm scripts tests benchmarks plots
	$(VENV)/bin/lint-imports
