# make demo: set up .venv if needed, then run the transfer suite on the built-in data.
# make test: set up .venv if needed, then run the tests (slow ones: make test-all).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
READY := $(VENV)/.ready

.PHONY: env demo test test-all clean

env: $(READY)

$(READY): setup.py requirements/constraints.txt tools/setup_env.sh tools/install_detectron2.py
	@PYTHON=$(PYTHON) VENV=$(VENV) bash tools/setup_env.sh

demo: env
	$(PY) transfer/run_suite.py --task all

test: env
	$(PY) -m pytest -q tests

test-all: env
	$(PY) -m pytest -q -m "" tests

clean:
	rm -rf $(VENV) .install.log output .cache
