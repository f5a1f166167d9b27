# The two commands of the README. Each creates its own virtual environment in .venv.
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin

.PHONY: demo test lint bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

demo: $(BIN)/python
	$(BIN)/pip install --quiet -e ".[validation]"
	$(BIN)/python experiments/demo.py

test: $(BIN)/python
	$(BIN)/pip install --quiet -e ".[test]"
	$(BIN)/python -m pytest -n 2 --dist loadgroup

lint: $(BIN)/python
	$(BIN)/pip install --quiet -e ".[lint]"
	$(BIN)/ruff check .

bench: $(BIN)/python
	$(BIN)/pip install --quiet -e ".[bench]"
	for b in operators eit data train solver; do $(BIN)/python experiments/bench_$$b.py || exit 1; done
