# Two commands a newcomer needs: `make serve` and `make test` (README, first lines).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PORT   ?= 8080

.PHONY: serve test lint typecheck unit bench clean

# System tools the suite uses: pdftoppm/pdftotext (poppler-utils) render the PDF report in
# tests. PostgreSQL 15 comes with the machine; the suite starts its own throwaway server.
SYSTEM_STAMP := $(VENV)/.system

$(SYSTEM_STAMP):
	@mkdir -p $(VENV)
	@if ! command -v pdftoppm >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq poppler-utils; \
	  else \
	    echo "pdftoppm is missing: install Debian's poppler-utils (sudo apt-get install poppler-utils)" >&2; exit 1; \
	  fi; \
	fi
	touch $(SYSTEM_STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[server,test]"
	touch $(STAMP)

serve: $(STAMP)
	$(BIN)/trailseal serve --port $(PORT)

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP) $(SYSTEM_STAMP)
	$(BIN)/pytest

test: lint typecheck unit

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_core.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .hypothesis
