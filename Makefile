# csam-activation: the two commands of the README's Quick start, and their helpers.
SHELL := /bin/bash
.DEFAULT_GOAL := help

export UV_PYTHON_DOWNLOADS := never
export PATH := $(HOME)/.local/bin:$(PATH)
PY := .venv/bin/python
MANAGE_DEV := DEBUG=true $(PY) manage.py
PG_URL ?= postgres://postgres@127.0.0.1:5432/csam_activation

.PHONY: help uv python install browser nginx demo test test-postgres screenshots lint format audit bench \
	stack stack-status stack-stop clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

# `command -v uv` is not enough: a pyenv shim named uv (uv installed for another Python version)
# is found but fails with "pyenv: uv: command not found". So uv must actually run; otherwise it is
# installed with pip into ~/.local/bin, which comes first on PATH above.
uv: ## install uv when it is missing or does not run (e.g. a pyenv shim)
	@if ! uv --version >/dev/null 2>&1; then \
		echo "uv $$(command -v uv >/dev/null 2>&1 && echo 'does not run here' || echo 'is missing'): installing it with pip"; \
		python3 -m pip install --user --quiet uv; \
		hash -r; \
		uv --version >/dev/null 2>&1 || { echo "uv still does not run after pip install --user uv (is $(HOME)/.local/bin its script directory?)"; exit 1; }; \
	fi

python: uv ## make sure a Python 3.12 interpreter is there (pyenv provides it on these machines)
	@uv python find 3.12 >/dev/null 2>&1 || { command -v pyenv >/dev/null && pyenv install --skip-existing 3.12; }

install: python ## install the locked dependencies into .venv and compile the translations
	uv sync --locked
	$(MANAGE_DEV) compilemessages --ignore .venv --verbosity 0

browser: ## install Debian's Chromium for the browser tests where possible
	@if [ -x /usr/bin/chromium ]; then \
		echo "Chromium: /usr/bin/chromium"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "Installing Debian's chromium"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else \
		echo "No /usr/bin/chromium and no root apt: browser tests use Playwright's own browser if present"; \
	fi

nginx: ## install Debian's nginx for make stack and the system test where possible
	@deploy/stack.sh install-nginx || true

demo: install ## migrate SQLite, create a demo activation, serve :8000 and the demo service on :8010
	$(MANAGE_DEV) migrate --verbosity 0
	$(MANAGE_DEV) demo_setup
	@echo ""
	@echo "Serving on http://127.0.0.1:8000/  (Ctrl+C to stop; e-mails and SMS appear below)"
	@echo "Demo government service on http://127.0.0.1:8010/ (demo_service/, signs in through :8000)"
	@$(PY) demo_service/app.py & demo_pid=$$!; trap 'kill $$demo_pid 2>/dev/null' EXIT INT TERM; \
	$(MANAGE_DEV) runserver 127.0.0.1:8000

test: install browser nginx ## run the whole test suite (SQLite; PostgreSQL too when DATABASE_URL says so)
	@$(PY) -m pytest; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; exit 0; fi; exit $$rc

test-postgres: install browser nginx ## run the whole suite against the local PostgreSQL
	@createdb -h 127.0.0.1 -U postgres csam_activation 2>/dev/null || true
	@DATABASE_URL=$(PG_URL) $(PY) -m pytest; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; exit 0; fi; exit $$rc

screenshots: install browser ## refresh the README's screenshots in docs/screenshots
	SCREENSHOT_DIR=$(CURDIR)/docs/screenshots $(PY) -m pytest -q tests/browser/test_screenshots.py

lint: install ## ruff, formatting, migrations and lock file in agreement
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	$(MANAGE_DEV) makemigrations --check --dry-run
	uv lock --check

format: install ## apply ruff's fixes and formatting
	.venv/bin/ruff check --fix .
	.venv/bin/ruff format .

audit: install ## audit the locked dependencies with pip-audit; fails loudly if any is not audited
	@mkdir -p var
	uv export --locked --no-dev --format requirements-txt --no-emit-project -o var/requirements-audit.txt
	@rm -f var/audit.json
	.venv/bin/pip-audit --strict --disable-pip --no-deps -r var/requirements-audit.txt \
		--format json -o var/audit.json || { echo "AUDIT FAILED: pip-audit could not audit every package"; exit 1; }
	$(PY) tools/check_audit.py var/requirements-audit.txt var/audit.json

# The product beside its floor (benchmarks/floor/), gunicorn with 2 workers, SQLite and PostgreSQL
# (BENCH_PG_URL, default the local server; databases csam_bench_product and csam_bench_floor are
# dropped and made again). BENCH_ARGS: --citizens, --rounds, --databases sqlite, --json, ...
bench: install ## activations and sign-ins through gunicorn, product vs floor, SQLite and PostgreSQL
	$(PY) benchmarks/bench.py $(BENCH_ARGS)

stack: install ## nginx (HTTPS :8443), two gunicorn instances and the worker on PostgreSQL, Redis
	@deploy/stack.sh start

stack-status: ## the processes of make stack, their pids and whether each answers
	@deploy/stack.sh status

stack-stop: ## stop the processes of make stack by their pid files and wait for them to exit
	@deploy/stack.sh stop

clean: ## remove the virtualenv, the demo database and caches (stopping make stack first)
	@[ ! -d var/run ] || deploy/stack.sh stop
	rm -rf .venv var staticfiles .pytest_cache .ruff_cache
