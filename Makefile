# The two commands: `make demo` runs one export against the Xero sandbox; `make test` runs the tests.
# Each creates .venv/ and installs requirements.txt and then this project (editable: the provider package
# astute-xero-provider, from src/) first (once, again when either file changes).

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed

export PYTHONPATH := $(CURDIR)
export GX_ANALYTICS_ENABLED := false

.PHONY: install demo test test-cluster bench clean chromium

install: $(INSTALLED)

$(INSTALLED): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps --editable .
	touch $(INSTALLED)

demo: $(INSTALLED)
	$(PY) -m devtools.demo

test: $(INSTALLED) chromium
	$(PY) -m pytest -q

# A real CeleryExecutor cluster on loopback (PostgreSQL and Redis: the machine's, else started here), two
# workers, one SIGKILLed mid-chunk. CI runs it after `make test`.
test-cluster: $(INSTALLED) chromium
	$(PY) -m pytest -q -s -m cluster tests/cluster

# The report's page is checked in a real headless browser: Debian's chromium, installed once.
chromium:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || { \
	  echo "Installing Debian's chromium (for the report's browser test) ..."; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

clean:
	rm -rf .airflow .pgdata .pytest_cache

bench: $(INSTALLED)
	$(PY) -m devtools.bench
