# Upsell CRM. Two commands get you going: `make run` (the app with demo data) and `make test` (every test).
# Both build .venv from requirements.lock on first use, and again only when the lock file changes.

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.ONESHELL:
.DEFAULT_GOAL := help

PORT ?= 8000
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Extra arguments for pytest, e.g. `make test PYTEST_ARGS="-k healthz -x"`.
PYTEST_ARGS ?=
# Extra arguments for the benchmark, e.g. `make bench BENCH_ARGS="--accounts 5000"`.
BENCH_ARGS ?=

.PHONY: help run test lint audit migrations-check lock bench bench-metrics bench-insights bench-pages chromium clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

$(STAMP): requirements.lock
	@python="$$(PYTHON="$(PYTHON)" bin/find-python)"
	if [ -x $(PY) ] && ! $(PY) -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then
		echo "$(VENV) holds a Python older than 3.12 or a broken one; rebuilding it."
		rm -rf $(VENV)
	fi
	if [ ! -x $(PY) ]; then
		echo "Creating $(VENV) with $$("$$python" --version) ($$python)"
		"$$python" -m venv $(VENV)
	fi
	echo "Installing the locked dependencies from requirements.lock"
	$(PY) -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements.lock
	touch $(STAMP)

run: $(STAMP) ## Run the app with demo data at http://127.0.0.1:8000/ (SQLite, no Redis needed)
	@export DJANGO_DEBUG=1
	$(PY) manage.py migrate --no-input
	$(PY) manage.py seed_demo --if-empty
	echo
	echo "  Upsell CRM: http://127.0.0.1:$(PORT)/"
	echo "  Sign in as csm1, csm2, csm3, csm4, manager or admin; the password is: demo"
	echo
	exec $(PY) manage.py runserver 127.0.0.1:$(PORT)

# Tasks run inline during tests unless a test (the `worker` ones) turns that off to talk to a real worker:
# with CELERY_BROKER_URL pointing at Redis, settings would otherwise queue them for a worker nobody runs.
test: export CELERY_TASK_ALWAYS_EAGER ?= 1
test: $(STAMP) chromium ## Run every test, browser tests included (DATABASE_URL picks the database; default SQLite)
	@$(PY) -m pytest $(PYTEST_ARGS)

bench-metrics: $(STAMP) ## Time the revenue metrics against one SQL statement (PostgreSQL: BENCH_METRICS_DATABASE_URL)
	@$(PY) bench/metrics.py $(BENCH_ARGS)

bench-insights: $(STAMP) ## Time "what precedes upgrades" against one scan of the events (PostgreSQL: BENCH_INSIGHTS_DATABASE_URL)
	@$(PY) bench/insights.py $(BENCH_ARGS)

bench-pages: $(STAMP) ## Serve the queue and the account page with gunicorn against two bare baselines (PostgreSQL + Redis)
	@$(PY) bench/pages.py $(BENCH_ARGS)

chromium: # Browser tests drive Debian's Chromium; install it when we can
	@if [ -x /usr/bin/chromium ]; then exit 0; fi
	if [ "$$(id -u)" = 0 ]; then
		echo "Installing Chromium for the browser tests"
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq
		apt-get install -y -qq --no-install-recommends chromium >/dev/null
	else
		echo "warning: /usr/bin/chromium is missing and we are not root; browser tests will fail." >&2
		echo "         Install it with: sudo apt-get install --no-install-recommends chromium" >&2
	fi

lint: $(STAMP) ## ruff check and ruff format --check
	@$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# pip-audit asks PyPI's JSON API which advisories name each pinned version. Out of its reach (no network, or
# an index mirror without the per-version pages) it would skip every package and still print "No known
# vulnerabilities", so a probe asks first: exit 0 when the data is there, 3 when it is out of reach (then the
# lock is reported as not audited, failing the target only with AUDIT_OFFLINE=fail), anything else fails.
# Reached, `--strict` fails on any package pip-audit could not audit.
AUDIT_OFFLINE ?= skip
audit: $(STAMP) ## bandit over the app's code and pip-audit over requirements.lock; any finding fails
	@echo "bandit: accounts opportunities playbooks upsell_crm ([tool.bandit] in pyproject.toml)"
	$(VENV)/bin/bandit -q -r accounts opportunities playbooks upsell_crm -c pyproject.toml
	echo "bandit: no findings"
	probe=(
		'import re, sys, urllib.request'
		'version = re.search(r"^django==(\S+)", open("requirements.lock").read(), re.MULTILINE)[1]'
		'try:'
		'    with urllib.request.urlopen(f"https://pypi.org/pypi/django/{version}/json", timeout=15) as answer:'
		'        found = b"\"vulnerabilities\"" in answer.read()'
		'except OSError as error:'
		'    print(f"  https://pypi.org/pypi/django/{version}/json: {error}", file=sys.stderr)'
		'    sys.exit(3)'
		'sys.exit(0 if found else 3)'
	)
	status=0
	$(PY) -c "$$(printf '%s\n' "$${probe[@]}")" || status=$$?
	if [ "$$status" = 3 ]; then
		echo "pip-audit: NOT RUN. PyPI's vulnerability data is out of reach from this machine, so" \
			"requirements.lock was not audited. Run \`make audit\` where https://pypi.org answers."
		[ "$(AUDIT_OFFLINE)" != fail ]
		exit
	elif [ "$$status" != 0 ]; then
		exit "$$status"
	fi
	$(VENV)/bin/pip-audit -r requirements.lock --require-hashes --disable-pip --strict --progress-spinner off

migrations-check: $(STAMP) ## Fail when a model change has no migration
	@DATABASE_URL=sqlite:///:memory: $(PY) manage.py makemigrations --check --dry-run

lock: ## Regenerate requirements.lock from pyproject.toml (hash-pinned, for every platform, Python 3.12+)
	@if command -v uv >/dev/null 2>&1; then
		uv=uv
	elif [ -x $(VENV)/bin/uv ]; then
		uv=$(VENV)/bin/uv
	else
		tmp="$$(mktemp -d)"
		trap 'rm -rf "$$tmp"' EXIT
		python="$$(PYTHON="$(PYTHON)" bin/find-python)"
		"$$python" -m venv "$$tmp/venv"
		"$$tmp/venv/bin/pip" install --quiet --disable-pip-version-check uv
		uv="$$tmp/venv/bin/uv"
	fi
	"$$uv" pip compile pyproject.toml --extra dev --generate-hashes --python-version 3.12 --universal \
		-o requirements.lock

bench: $(STAMP) ## Time the indicator refresh against plain SQL (PostgreSQL: BENCH_DATABASE_URL)
	@$(PY) bench/refresh.py $(BENCH_ARGS)

# Extra arguments for the load test, e.g. `make load LOAD_ARGS="--users 60 --run-time 5m"` (`--smoke`: 30 s).
LOAD_ARGS ?=
.PHONY: load
load: $(STAMP) ## Load test: locust on gunicorn + PostgreSQL + Redis + Celery, 20,000 accounts, 40 users, 3 min
	@$(PY) load/run.py $(LOAD_ARGS)

clean: ## Remove the virtualenv, caches, collected static files and test artifacts (keeps db.sqlite3)
	@rm -rf $(VENV) .ruff_cache .pytest_cache staticfiles test-results
	find . -name __pycache__ -type d -prune -not -path './.git/*' -exec rm -rf {} +
