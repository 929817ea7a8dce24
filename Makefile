# Two commands do all set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed

.PHONY: install run test test-slow lint bench browser clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q torch==2.14.1 torchvision==0.29.1
	$(PIP) install -q -e '.[dev]'
	touch $(STAMP)

run: install
	$(VENV)/bin/proxns serve

# Debian's chromium + chromedriver for the dashboard tests (installed when missing and we are root).
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  { [ "$$(id -u)" = 0 ] && (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null) || echo "warning: could not install chromium"; }

# Every test but those marked slow (long real trainings and fault drills: about 9 minutes more), within 20 minutes on
# 2 cores; `make test-slow` runs the slow ones, and CI (.ci/run) runs both.
test: install browser
	node --test frontend/tests/*.test.js
	$(PY) -m pytest -q -m "not slow" --durations=15

test-slow: install browser
	$(PY) -m pytest -q -m slow --durations=15

# The dashboard's JS linter and formatter, Biome, pinned in package-lock.json (`npm ci` again when the lock changes).
NODE_STAMP := node_modules/.installed
$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $(NODE_STAMP)

lint: $(NODE_STAMP)
lint: install
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .
	npx biome check frontend

bench: install
	$(PY) benchmarks/bench_prox_step.py
	$(PY) benchmarks/bench_slim_latency.py
	$(PY) benchmarks/reproduce_digits.py

clean:
	rm -rf $(VENV) var .pytest_cache node_modules
