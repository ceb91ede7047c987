# Everything a fresh machine needs, from a checkout:
#   make run    - set up .venv and start JupyterLab on examples/
#   make test   - set up .venv, then tests + ruff + mypy (strict) on livestack_nb/
#   make bench  - the side-by-side benchmarks in bench/, then SQLite vault vs memory vault
#   make bench-redis - Redis worker throughput and scale-out (needs redis-server)
#   make faults - the long fault suite: hundreds of seeded rounds of killed and stalled workers (needs redis-server)
#   make faults-sqlite - SIGKILL a SQLite writer at random moments, 300 seeded rounds (SEED=n to replay)
#   make examples - run every notebook in examples/ in a fresh kernel and save it with its outputs

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

# The front end is built by `pip install -e .` (hatch-jupyter-builder runs npm);
# after that, edits under labextension/ are rebuilt here and copied into the
# venv, so a reload of the browser page picks them up. A copy, not the symlink
# `jupyter labextension develop` makes: Voila refuses files reached through a
# link out of its static root (HTTP 403 "is not in root static directory").
FRONT  := $(VENV)/.frontend
JS_SRC := labextension/package.json $(wildcard labextension/src/*.ts) $(wildcard labextension/style/*)
EXT    := $(VENV)/share/jupyter/labextensions/livestack-nb

.PHONY: run test lint typecheck pytest bench bench-redis faults faults-sqlite examples clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e ".[test,bench]"
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (livestack-nb)" >/dev/null
	touch $(STAMP)

$(FRONT): $(STAMP) $(JS_SRC)
	cd labextension && PATH="$(abspath $(BIN)):$$PATH" npm run build
	rm -rf $(EXT) && mkdir -p $(EXT)
	cp -R livestack_nb/labextension/. install.json $(EXT)/
	touch $(FRONT)

run: $(STAMP) $(FRONT)
	$(BIN)/jupyter lab --notebook-dir=examples $(if $(filter 0,$(shell id -u)),--allow-root)

pytest: $(STAMP) $(FRONT)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check livestack_nb tests bench
	$(BIN)/ruff format --check livestack_nb

typecheck: $(STAMP)
	$(BIN)/mypy

test: pytest lint typecheck

bench: $(STAMP) $(FRONT)
	$(BIN)/python bench/throughput.py
	$(BIN)/python bench/batch.py
	$(BIN)/python bench/memory.py
	$(BIN)/python bench/import_time.py
	$(BIN)/python bench/scale.py
	$(BIN)/python bench/vault.py
	$(BIN)/python bench/widgets.py
	$(BIN)/python bench/windows.py

bench-redis: $(STAMP)
	$(BIN)/python bench/redis_workers.py

# FAULTS_ROUNDS rounds from a random seed, or FAULTS_SEED=S to replay from S; workers
# killed and stalled, and the redis-server (append-only file) restarted
FAULTS_ROUNDS ?= 300
faults: $(STAMP)
	$(BIN)/python tests/faults/run.py --restarts --rounds $(FAULTS_ROUNDS) $(if $(FAULTS_SEED),--seed $(FAULTS_SEED))

ROUNDS ?= 300
faults-sqlite: $(STAMP)
	$(BIN)/python tests/sqlite_faults.py --rounds $(ROUNDS) $(if $(SEED),--seed $(SEED))

examples: $(STAMP) $(FRONT)
	$(BIN)/python tests/examples_support.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache labextension/node_modules labextension/lib livestack_nb/labextension
