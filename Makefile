# Two commands set everything up on a fresh machine:
#   make run    the platform in embedded mode (no servers needed) with demo data
#   make test   the whole suite against PostgreSQL and Redis
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
# the role scripts/ensure-services.sh creates (a password, not the machine's trust rules)
TEST_DATABASE_URL ?= postgres://meridian:meridian-local@127.0.0.1:5432/trading
TEST_REDIS_URL ?= redis://127.0.0.1:6379/0
PYTEST_ARGS ?=

.PHONY: run test lint format stack deps frontend tools services chromium clean help bench-ledger bench-pricing bench-engine bench-settlement bench-runner bench-api restart migrations-lint

help:
	@echo "make run     start the platform in embedded mode at http://127.0.0.1:$(PORT)"
	@echo "make test    run the whole test suite against PostgreSQL + Redis"
	@echo "make lint    ruff (lint and format check) over the tree"
	@echo "make format  ruff's formatting and safe fixes, applied"
	@echo "make stack   run the full process stack (needs DATABASE_URL and REDIS_URL)"
	@echo "make restart replace every process of the running stack in turn, without downtime"
	@echo "make bench-ledger   ledger throughput vs a single hot system row (PostgreSQL)"
	@echo "make bench-pricing  option pricing and implied vols vs QuantLib"
	@echo "make bench-engine   matching engine commands/s vs a minimal dict+deque book"
	@echo "make bench-settlement  settlement back office vs one 4-task chain per order (PostgreSQL, Redis)"
	@echo "make bench-runner  spot engine runner orders/s with PostgreSQL vs one order per transaction"
	@echo "make bench-api     POST /api/v1/orders on gunicorn and daphne at 250 req/s and max rate vs a bare DRF insert"

tools:
	@bash scripts/ensure-tools.sh

$(BIN)/activate: | tools
	@echo "==> creating $(VENV)"
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: requirements.txt | $(BIN)/activate
	@echo "==> installing Python dependencies"
	$(BIN)/pip install --disable-pip-version-check -q -r requirements.txt
	@touch $@

node_modules/.installed: package.json package-lock.json | tools
	@echo "==> installing front-end dependencies (npm)"
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

static/build/.built: node_modules/.installed $(shell find frontend -type f 2>/dev/null)
	@echo "==> building front-end assets"
	npm run --silent build
	@touch $@

deps: $(VENV)/.installed
frontend: static/build/.built

run: deps frontend
	@mkdir -p var
	@echo "==> preparing the embedded database (SQLite, WAL)"
	$(BIN)/python manage.py migrate --no-input -v0
	$(BIN)/python manage.py collectstatic --no-input -v0
	$(BIN)/python manage.py seed_demo
	@echo
	@echo "==> Platform running at http://127.0.0.1:$(PORT)  (admin: http://127.0.0.1:$(PORT)/admin/, API docs: /api/docs/)"
	@echo "    Demo logins are listed above. Stop with Ctrl-C."
	$(BIN)/daphne -b 127.0.0.1 -p $(PORT) trading.asgi:application

services:
	@bash scripts/ensure-services.sh

chromium:
	@bash scripts/ensure-chromium.sh

lint: deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: deps
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# backward-incompatible migrations (drop/rename, NOT NULL without a database default) fail
# the build: docs/operations.md, "Migrations"
migrations-lint: deps services
	@export DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) DEBUG=0 HTTPS=0 DJANGO_SETTINGS_MODULE=tests.settings; \
	set -e; \
	$(BIN)/python scripts/ensure_database.py; \
	$(BIN)/python manage.py lint_migrations

test: deps frontend services chromium lint migrations-lint
	@mkdir -p var
	@echo "==> front-end unit tests (node --test)"
	npm run --silent test
	@echo "==> the suite (pytest)"
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) DEBUG=0 HTTPS=0 \
		$(BIN)/python -m pytest --durations=15 $(PYTEST_ARGS)

# Stack mode signs sessions and tokens with a key of its own: SECRET_KEY if set, else one
# made once for this checkout in var/secret_key.
STACK_SECRET = $${SECRET_KEY:-$$(mkdir -p var && { test -s var/secret_key || $(PYTHON) -c "import secrets; print(secrets.token_urlsafe(64))" > var/secret_key; } && cat var/secret_key)}

stack: deps frontend
	@test -n "$$DATABASE_URL" -a -n "$$REDIS_URL" || { echo "make stack needs DATABASE_URL and REDIS_URL (e.g. postgres://root@127.0.0.1:5432/trading, redis://127.0.0.1:6379/0)"; exit 2; }
	@export SECRET_KEY="$(STACK_SECRET)"; set -e; \
	$(BIN)/python scripts/ensure_database.py; \
	$(BIN)/python manage.py migrate --no-input -v0; \
	$(BIN)/python manage.py collectstatic --no-input -v0; \
	PORT=$(PORT) HTTPS=$${HTTPS:-0} $(BIN)/python scripts/supervise

# docs/operations.md, "Rolling restart": web drained one at a time, workers warm-shut, singletons handed over
restart:
	$(BIN)/python scripts/rolling-restart

BENCH_DATABASE_URL ?= postgres://meridian:meridian-local@127.0.0.1:5432/trading_bench
BENCH_ARGS ?=
bench-ledger: deps services
	DATABASE_URL=$(BENCH_DATABASE_URL) $(BIN)/python bench/ledger.py $(BENCH_ARGS)

bench-pricing: deps
	$(BIN)/python bench/pricing.py

bench-engine: deps
	$(BIN)/python bench/engine.py $(BENCH_ARGS)

bench-settlement: deps services
	$(BIN)/python bench/settlement.py $(BENCH_ARGS)

bench-runner: deps services
	$(BIN)/python bench/runner.py $(BENCH_ARGS)

bench-api: deps services
	$(BIN)/python bench/api.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) node_modules static/build var
