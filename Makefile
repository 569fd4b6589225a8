# Two commands do all the set-up: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: demo test lint typecheck unit bench bench-series bench-preset clean

# The stamp is newer than pyproject.toml once its dependencies are installed,
# so a changed pyproject.toml re-installs and an unchanged one costs nothing.
$(BIN)/python:
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "cmscan needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(VENV)/.installed $@

demo: $(VENV)/.installed
	$(BIN)/cmscan demo

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy

unit: $(VENV)/.installed-dev
	$(BIN)/pytest -q

test: lint typecheck unit

# Benchmarks (bench/README.md): `make bench` compares cmscan with pywinrm, paramiko and
# Ansible on 1,000 simulated hosts; bench-series sweeps 100 to 10,000 hosts; bench-preset is
# the daemon's 5,000-host benchmark. Ansible lives in its own environment, never in .venv.
BENCH_ANSIBLE := bench/.venv-ansible

$(VENV)/.installed-bench: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	touch $(VENV)/.installed $@

$(BENCH_ANSIBLE)/bin/ansible:
	$(PYTHON) -m venv $(BENCH_ANSIBLE)
	$(BENCH_ANSIBLE)/bin/python -m pip install --quiet 'ansible-core>=2.16,<2.20' 'pypsrp>=0.8,<1'

bench: $(VENV)/.installed-bench $(BENCH_ANSIBLE)/bin/ansible
	$(BIN)/python bench/sweep.py compare

bench-series: $(VENV)/.installed-bench
	$(BIN)/python bench/sweep.py series

bench-preset: $(VENV)/.installed-bench
	$(BIN)/python bench/sweep.py preset

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .pytest_cache .ruff_cache
