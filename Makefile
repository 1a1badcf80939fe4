# The two commands: `make demo` runs one export against the Xero sandbox; `make test` runs the tests.
# Each creates .venv/ and installs requirements.txt first (once, again when it changes).

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed

export PYTHONPATH := $(CURDIR)/plugins:$(CURDIR)
export GX_ANALYTICS_ENABLED := false

.PHONY: install demo test bench clean

install: $(INSTALLED)

$(INSTALLED): requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $(INSTALLED)

demo: $(INSTALLED)
	$(PY) -m devtools.demo

test: $(INSTALLED)
	$(PY) -m pytest -q

clean:
	rm -rf .airflow .pgdata .pytest_cache

bench: $(INSTALLED)
	$(PY) -m devtools.bench
