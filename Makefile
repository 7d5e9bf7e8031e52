# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The CPU build of PyTorch is installed first and pinned here (an unpinned `torch` pulls several GB
# of CUDA packages); pyproject.toml only asks for torch>=2.2, which this satisfies.
TORCH_PIN ?= torch==2.13.0

.PHONY: demo test lint bench clean

$(BIN)/hepflows: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH_PIN)
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $(BIN)/hepflows

demo: $(BIN)/hepflows
	$(BIN)/hepflows demo calo --out demo

test: $(BIN)/hepflows
	$(BIN)/python -m pytest -q

lint: $(BIN)/hepflows
	$(BIN)/ruff check src tests bench

bench: $(BIN)/hepflows
	$(BIN)/python -m pip install -q -e ".[dev,bench]"
	$(BIN)/python bench/flows.py
	$(BIN)/python bench/fused_splines.py
	$(BIN)/python bench/calo_sim.py
	$(BIN)/python bench/metrics.py
	$(BIN)/python bench/nis.py

clean:
	rm -rf $(VENV) demo build *.egg-info src/*.egg-info
