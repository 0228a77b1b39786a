# Two commands for a fresh clone: `make run` and `make test` (see README.md).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
ADDR ?= 127.0.0.1:8000
# A developer's install: generated secret key, static files from the finders. Deployments
# (docker-compose) set DJANGO_DEBUG=0 and their own DJANGO_SECRET_KEY.
export DJANGO_DEBUG ?= 1
# Re-install only when a requirements file changes.
RUNTIME_STAMP := $(VENV)/.runtime-$(shell cat requirements.txt | cksum | cut -d' ' -f1)
DEV_STAMP := $(VENV)/.dev-$(shell cat requirements.txt requirements-dev.txt | cksum | cut -d' ' -f1)
# The `distillery` command: the client package installed editable (its code is the checkout's).
CLIENT_STAMP := $(VENV)/.client-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: run test lint install install-dev clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Distillery needs Python 3.11 or newer"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(RUNTIME_STAMP): requirements.txt | $(BIN)/python
	$(BIN)/pip install -q -r requirements.txt
	@touch $@

$(DEV_STAMP): requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install -q -r requirements-dev.txt
	@touch $@ $(RUNTIME_STAMP)

$(CLIENT_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q --no-deps -e .
	@touch $@

install: $(RUNTIME_STAMP) $(CLIENT_STAMP)
install-dev: $(DEV_STAMP) $(CLIENT_STAMP)

run: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py demo_setup
	$(BIN)/python manage.py runall --addr $(ADDR)

# Tests get their own var/ (SQLite file, filesystem broker, artifacts) beside the dev one, one
# folder, database and queue prefix per xdist process (tests/xdist_worker_env.py, a -p plugin: it
# must run before pytest-django reads the settings, and -p needs `python -m`). Two processes
# fit CI's 2 cores; worksteal lets an idle one take tests queued behind a long one (single tests
# run up to a few minutes). A quick local pass: make test PYTEST_ARGS='-m "not slow"'.
PYTEST_WORKERS ?= 2
test: install-dev
	DISTILLERY_VAR_DIR=$(CURDIR)/var/test $(BIN)/python -m pytest -p tests.xdist_worker_env -n $(PYTEST_WORKERS) --dist worksteal --max-worker-restart=0 --durations=25 \
		$(PYTEST_ARGS)

lint: install-dev
	$(BIN)/ruff check .

clean:
	rm -rf var
