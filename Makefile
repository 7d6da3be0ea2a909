# Two commands for a fresh machine (see README): `make serve` and `make test`.
# Both create .venv, install mingyan with pinned engine and model packages, then run.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install serve test bench lint

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit("mingyan needs Python >= 3.11" if sys.version_info < (3, 11) else 0)'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	@echo "Installing mingyan (the first time builds llama.cpp from source: about 10 minutes)..."
	$(BIN)/pip install --quiet -e ".[test,ray]"
	touch $@

install: $(STAMP)

serve: install
	$(BIN)/mingyan serve $(ARGS)

test: install
	@bash tests/system_parts.sh
	$(BIN)/python -m pytest $(ARGS)

# Lint, import order, formatting and types (configured in pyproject.toml).
lint: install
	$(BIN)/ruff check mingyan tests bench
	$(BIN)/ruff format --check mingyan tests bench
	$(BIN)/mypy

# Benchmarks (docs/benchmarks.md has the commands and the latest results).
bench: install
	$(BIN)/pip install --quiet -e ".[test,bench]"
	bench/build_llama_server.sh
	$(BIN)/python bench/decode_http_vs_raw.py $(ARGS)
