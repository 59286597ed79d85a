# The two commands a new machine needs:  make run  (set up, then run the whole job)  and  make test.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt | cksum | cut -d' ' -f1)

.PHONY: setup browser run lint test test-fast benchmark forecast-benchmark clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=25" "uv==0.13.9"
	# torch first, pinned, and by pip, which finds the CPU build on the machine; an unpinned torch (and
	# uv, which looks only at the registry) pulls a multi-GB CUDA build.
	$(BIN)/python -m pip install --quiet torch==2.13.0
	# The rest by uv, to the same pins: seconds where pip takes minutes.  It keeps the torch above, and
	# compiles the bytecode now, as pip does, not in the first commands that import each module.
	$(BIN)/uv pip install --python $(BIN)/python --quiet --compile-bytecode -c constraints.txt -e ".[test]"
	rm -f $(VENV)/.installed-*
	touch $@

run: setup
	$(BIN)/replenish run

# Two workers, a test file each at a time: most of a slow test is a command starting up or a server
# answering, which a second core overlaps (module-scoped servers stay with their file).  A third worker
# made the suite slower on a clean clone of the 2-core machine: 11.5 min against 10.6.  The slowest
# tests are listed at the end, so a log shows where the time went.
test: setup browser lint
	$(BIN)/python -m pytest -q -n 2 --dist loadfile --durations=15

# Lint, format and import order (ruff), and types on the pure layers (mypy): configured in pyproject.toml.
lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# The edit-test loop: everything but the tests that train, run whole flows or drive a browser.
test-fast: setup
	$(BIN)/python -m pytest -q -n 2 --dist loadfile -m "not slow and not browser"

# Headless Chromium for the browser test of the MLflow UI (tests/system/test_browser_mlflow_ui.py): installed when
# missing where apt-get runs as root (CI); elsewhere that test skips and says why.
browser:
	@command -v chromium >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1 || [ "$$(id -u)" != 0 ] || { \
		echo "installing chromium for the browser tests"; log=$$(mktemp); \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
			apt-get install -y -qq --no-install-recommends chromium) >$$log 2>&1 || { cat $$log; rm -f $$log; exit 1; }; \
		rm -f $$log; }

benchmark: setup
	$(BIN)/python benchmarks/pipeline.py --out output/benchmark_pipeline.json

# The forecast backtest protocol on real data (m5_tiny beside the project, when present).
FORECAST_DATA ?= ../shared/data/m5_tiny
FORECAST_FORMAT ?= m5
forecast-benchmark: setup
	$(BIN)/python benchmarks/forecast_accuracy.py --data $(FORECAST_DATA) --format $(FORECAST_FORMAT) \
		--out output/forecast_accuracy.json

clean:
	rm -rf $(VENV) .replenish output
