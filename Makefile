# Two commands on a fresh machine: `make demo` and `make test` (each creates .venv on first use).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

$(BIN)/injectwise: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev,spark]'
	touch $@

.PHONY: demo demo-text test lint bench
demo: $(BIN)/injectwise   # the engine on the demo patients, then the clinic web app (prints URL and password)
	$(BIN)/injectwise demo
	$(BIN)/injectwise demo --web

demo-text: $(BIN)/injectwise
	$(BIN)/injectwise demo

test: $(BIN)/injectwise
	$(BIN)/ruff check src tests bench
	$(BIN)/pytest

bench: $(BIN)/injectwise
	$(BIN)/python bench/bench_engine.py
