# make demo: set up .venv if needed, then pretrain, convert and compare random init with the checkpoint
# on the built-in data (tools/demo.py; DEMO_SECONDS=N scales it to a budget).
# make test: set up .venv if needed, then run the tests (slow ones: make test-all).
# make bench [QUICK=1]: augmentation, training-step, COCO/VOC evaluation, kNN/SVM, linear-sweep, logreg, iNat18-list and comparison-bootstrap figures for this machine.
# make gpu-check [DRY=1]: pretraining and feature throughput on one GPU in <= 4 min (tools/gpu_check.py), with
# the interpreter at hand (.venv if there, else $(PYTHON)): it needs only torch, torchvision, timm, OpenCV, numpy.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
READY := $(VENV)/.ready

.PHONY: env demo test test-all bench gpu-check clean

env: $(READY)

$(READY): setup.py requirements/constraints.txt tools/setup_env.sh tools/install_detectron2.py
	@PYTHON=$(PYTHON) VENV=$(VENV) bash tools/setup_env.sh

demo: env
	$(PY) tools/demo.py $(if $(DEMO_SECONDS),--demo-seconds $(DEMO_SECONDS))

test: env
	$(PY) -m pytest -q tests

test-all: env
	$(PY) -m pytest -q -m "" tests

bench: env
	$(PY) tools/bench_pretrain.py $(if $(QUICK),--quick)
	$(PY) tools/bench_eval.py $(if $(QUICK),--quick)
	$(PY) tools/bench_classification.py $(if $(QUICK),--quick)
	$(PY) tools/bench_probes.py $(if $(QUICK),--quick)
	$(PY) tools/bench_inat.py $(if $(QUICK),--quick)
	$(PY) tools/bench_compare.py $(if $(QUICK),--quick)

gpu-check:
	$(if $(wildcard $(PY)),$(PY),$(PYTHON)) tools/gpu_check.py $(if $(DRY),--dry) $(if $(OUT_DIR),--out $(OUT_DIR))

clean:
	rm -rf $(VENV) .install.log output .cache
