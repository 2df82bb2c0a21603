# `make demo` and `make test` set up .venv by themselves on a fresh machine.
# If the python3 on PATH already has torch, the venv sees it (--system-site-packages)
# and keeps it; otherwise it gets $(TORCH), which on this project's machines is a local CPU build.
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
BIN := $(VENV)/bin

.PHONY: demo test docs lint format clean

$(VENV)/.installed: pyproject.toml
	@if $(PYTHON) -c "import torch" 2>/dev/null; then \
		echo "Using the torch already installed for $(PYTHON)"; \
		$(PYTHON) -m venv --system-site-packages $(VENV); \
	else \
		$(PYTHON) -m venv $(VENV) && $(BIN)/pip install -q "$(TORCH)"; \
	fi
	$(BIN)/pip install -q -e ".[dev,anndata,onnx,tensorboard,docs]"
	touch $@

demo: $(VENV)/.installed
	$(BIN)/vaekit demo

# One test process per core (pytest-xdist), each file's tests in one process, one thread each:
# threads of two processes contending for two cores slow both down many times over.
test: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q -n auto --dist loadfile --durations=15

# The documentation site (mkdocs.yml), built into site/: open site/index.html.
docs: $(VENV)/.installed
	$(BIN)/mkdocs build --strict --site-dir site

lint: $(VENV)/.installed
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

format: $(VENV)/.installed
	$(BIN)/ruff format . && $(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) build site *.egg-info src/*.egg-info .pytest_cache .ruff_cache
