# Relia: `make run` starts the product with the demo organisation; `make test` runs the whole suite.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
VENDOR := src/relia/web/static/vendor
export RELIA_DATA_DIR ?= .relia

.PHONY: run test test-unit test-browser install vendor lint format bench clean

# Migrates, applies the demo organisation in examples/, gives it a sign-in and SLO history, and starts the
# API, web UI and worker (with live demo traffic), all from one `relia up` process.
run: $(VENV)/.installed $(VENDOR)/.stamp
	exec $(BIN)/relia up --migrate --apply examples/ --demo

test: $(VENV)/.installed-test $(VENDOR)/.stamp
	$(BIN)/python -m pytest -m "not browser" -n 2 --dist loadfile --durations=15
	$(BIN)/python -m pytest -m browser -p no:randomly

test-unit: $(VENV)/.installed-test $(VENDOR)/.stamp
	$(BIN)/python -m pytest -m "not browser" -n 2 --dist loadfile --durations=15

test-browser: $(VENV)/.installed-test $(VENDOR)/.stamp
	$(BIN)/python -m pytest -m browser

install: $(VENV)/.installed

vendor: $(VENDOR)/.stamp

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test,browser]'
	touch $@

# Front-end files come from npm (pinned in package-lock.json) and are served from static/vendor; nothing is built.
$(VENDOR)/.stamp: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	mkdir -p $(VENDOR)
	cp node_modules/htmx.org/dist/htmx.min.js node_modules/@picocss/pico/css/pico.min.css \
	   node_modules/uplot/dist/uPlot.iife.min.js node_modules/uplot/dist/uPlot.min.css $(VENDOR)/
	touch $@

lint: $(VENV)/.installed-test
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

format: $(VENV)/.installed-test
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

bench: $(VENV)/.installed-test $(VENDOR)/.stamp
	$(BIN)/python bench/api_throughput.py
	$(BIN)/python bench/make_run_startup.py
	$(BIN)/python bench/slo_evaluation.py
	$(BIN)/python bench/slo_vs_prometheus.py
	$(BIN)/python bench/slo_ingest.py
	$(BIN)/python bench/oncall_who.py
	$(BIN)/python bench/alert_intake.py
	$(BIN)/python bench/paging_latency.py
	$(BIN)/python bench/policy_gate.py
	$(BIN)/python bench/nginx_switch.py

clean:
	rm -rf $(VENV) node_modules $(VENDOR) .pytest_cache
