# Everything a fresh machine needs, from a checkout:
#   make run    - set up .venv and start JupyterLab on examples/
#   make test   - set up .venv, then tests + ruff + mypy (strict) on livestack_nb/
#   make bench  - the side-by-side benchmarks in bench/
#   make bench-redis - Redis worker throughput and scale-out (needs redis-server)

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint typecheck pytest bench bench-redis clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e ".[test,bench]"
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (livestack-nb)" >/dev/null
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/jupyter lab --notebook-dir=examples

pytest: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check livestack_nb tests bench
	$(BIN)/ruff format --check livestack_nb

typecheck: $(STAMP)
	$(BIN)/mypy

test: pytest lint typecheck

bench: $(STAMP)
	$(BIN)/python bench/throughput.py

bench-redis: $(STAMP)
	$(BIN)/python bench/redis_workers.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
