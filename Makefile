# Two commands do everything on a fresh machine with Python 3.11:
#   make run    set up .venv if needed, then run the whole pipeline on the built-in MLP
#   make test   set up .venv if needed, then lint, type-check and run the everyday test suite
#   make zoo    the real-model zoo (third-party models, pytest marker `zoo`); .ci/run runs it after make test
#   make kill   runs killed by SIGKILL mid-commit and at random moments (pytest marker `kill`); .ci/run runs it too
#   make big    a real 3.2 GB model through run and verify (pytest marker `big`); .ci/run runs it too
#   make runtimes        install every runtime's toolchain (apt as root, npm, C++ builds into the user's cache)
#   make test-runtimes   the runtimes outside Python (pytest marker `runtimes`); .ci/run runs both
# Both are idempotent: the venv is rebuilt only when pyproject.toml or constraints.txt change.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.modelport-installed

.PHONY: run test lint typecheck pytest zoo kill big runtimes test-runtimes bench bench-big clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev,zoo]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/modelport run

lint: $(STAMP)
	$(BIN)/ruff check modelport tests benchmarks
	$(BIN)/ruff format --check modelport tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/python -m pytest -m "not zoo and not kill and not runtimes and not big"

zoo: $(STAMP)
	$(BIN)/python -m pytest -m zoo

kill: $(STAMP)
	$(BIN)/python -m pytest -m kill

big: $(STAMP)
	$(BIN)/python -m pytest -m big

bench-big: $(STAMP)
	$(BIN)/python benchmarks/bench_big.py

runtimes: $(STAMP)
	$(BIN)/python -m modelport.runtimes.install

test-runtimes: $(STAMP)
	$(BIN)/python -m pytest -m runtimes

test: lint typecheck pytest

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[bench]'
	$(BIN)/python benchmarks/bench_pipeline.py
	$(BIN)/python benchmarks/bench_seed.py
	$(BIN)/python benchmarks/bench_formats.py
	$(BIN)/python benchmarks/bench_checkpoint.py
	$(BIN)/python benchmarks/bench_localize.py
	$(BIN)/python benchmarks/bench_float64.py
	$(BIN)/python benchmarks/bench_runtimes.py
	$(BIN)/python benchmarks/bench_startup.py
	$(BIN)/python benchmarks/bench_verify.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
