# Every target creates .venv on first use, so a fresh clone needs nothing but python3 (>= 3.11).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

WHEEL_VENV := .wheel-venv

# The lowest supported Airflow (2.11) in a virtualenv of its own, pinned by its own constraints file.
MIN_VENV := .venv-airflow-min
MIN_BIN := $(MIN_VENV)/bin
MIN_STAMP := $(MIN_VENV)/.installed
MIN_CONSTRAINTS := constraints-airflow-2.11.txt

.PHONY: test test-airflow-min lint typecheck pytest docs dist wheel-smoke demo emulator bench clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev,docs]'
	touch $(STAMP)

test: $(STAMP) lint typecheck docs wheel-smoke pytest

$(MIN_STAMP): pyproject.toml $(MIN_CONSTRAINTS)
	test -x $(MIN_BIN)/python || $(PYTHON) -m venv $(MIN_VENV)
	$(MIN_BIN)/python -m pip install --quiet --upgrade pip
	$(MIN_BIN)/python -m pip install --quiet -c $(MIN_CONSTRAINTS) -e '.[dev]'
	touch $(MIN_STAMP)

# The whole suite on Airflow 2.11 (tests marked airflow3_only are reported as skipped, with their reason).
test-airflow-min: $(MIN_STAMP)
	$(MIN_BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check --no-cache enlivy_provider tests dags benchmarks scripts
	$(BIN)/ruff format --no-cache --check enlivy_provider tests dags benchmarks scripts

typecheck: $(STAMP)
	$(BIN)/mypy enlivy_provider

pytest: $(STAMP)
	$(BIN)/pytest

# The documentation site (mkdocs.yml): warnings, broken links and bad docstring references fail the build.
docs: $(STAMP)
	$(BIN)/mkdocs build --strict --site-dir site > .mkdocs.log 2>&1; status=$$?; grep -v "^INFO" .mkdocs.log; test $$status -eq 0
	@if grep -E -q "WARNING|ERROR|Aborted" .mkdocs.log; then echo "docs: warnings are errors"; exit 1; fi

# Build the sdist and the wheel with a standard builder, then check their metadata renders on PyPI.
dist: $(STAMP)
	rm -rf dist
	$(BIN)/python -m build --sdist --wheel --outdir dist .
	$(BIN)/twine check --strict dist/*

# Install the built wheel (not the checkout) into a clean virtualenv and smoke-test what a user gets.
wheel-smoke: dist
	rm -rf $(WHEEL_VENV)
	$(PYTHON) -m venv $(WHEEL_VENV)
	$(WHEEL_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(WHEEL_VENV)/bin/python -m pip install --quiet -c constraints.txt dist/*.whl
	$(WHEEL_VENV)/bin/python scripts/wheel_smoke.py dags

emulator: $(STAMP)
	$(BIN)/python -m enlivy_provider.emulator --seed demo

demo: $(STAMP)
	$(BIN)/python scripts/demo.py

bench: $(STAMP)
	@for script in benchmarks/bench_*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) $(WHEEL_VENV) $(MIN_VENV) .mypy_cache .ruff_cache dist site
