# Every target creates .venv on first use, so a fresh clone needs nothing but python3 (>= 3.10).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test lint typecheck pytest demo emulator bench clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

test: $(STAMP) lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check --no-cache enlivy_provider tests dags benchmarks scripts
	$(BIN)/ruff format --no-cache --check enlivy_provider tests dags benchmarks scripts

typecheck: $(STAMP)
	$(BIN)/mypy enlivy_provider

pytest: $(STAMP)
	$(BIN)/pytest

emulator: $(STAMP)
	$(BIN)/python -m enlivy_provider.emulator --seed demo

demo: $(STAMP)
	$(BIN)/python scripts/demo.py

bench: $(STAMP)
	@for script in benchmarks/bench_*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache
