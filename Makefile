# rtm: `make run` serves the dashboard with demo traffic; `make test` installs what the tests
# need (as root on Debian: apt packages, then the venv) and runs them.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
APT_PACKAGES := kamailio kamailio-sqlite-modules kamailio-extra-modules kamailio-postgres-modules \
	sip-tester sqlite3 prometheus curl openssl chromium postgresql redis-server haproxy
STAMP := $(VENV)/.installed
# Tests run in parallel; two workers fit these 2-core machines.
PYTEST_WORKERS ?= 2

.PHONY: run test check bench soak lab screenshots install apt clean

# pip's and setuptools' chatter goes to a log, shown only when the install fails.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	@echo "installing rtm into $(VENV) (log: $(VENV)/install.log)"
	@{ $(BIN)/pip install -q --upgrade pip && $(BIN)/pip install -q -e '.[test]'; } \
		> $(VENV)/install.log 2>&1 || { cat $(VENV)/install.log; exit 1; }
	@touch $(STAMP)

install: $(STAMP)

# Installs the Debian packages the tests drive (Kamailio, sipp, Chromium) when one is missing.
apt:
	@missing=""; for p in $(APT_PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" \
			|| missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		if [ "$$(id -u)" != 0 ]; then echo "run as root to install:$$missing" >&2; exit 1; fi; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			--no-install-recommends $$missing >/dev/null; \
	fi

run: $(STAMP)
	RTM_DEMO=$${RTM_DEMO:-1} $(BIN)/rtm serve

test: apt $(STAMP)
	PYTHONASYNCIODEBUG=1 $(BIN)/pytest -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

check: $(STAMP)
	$(BIN)/ruff check server tests bench
	$(BIN)/ruff format --check server tests bench
	$(BIN)/mypy

bench: apt $(STAMP)
	$(BIN)/python -m bench

# Weeks of an open tab in SOAK_MINUTES (default 60): figures printed, chart in var/soak.png.
soak: apt $(STAMP)
	SOAK_MINUTES=$${SOAK_MINUTES:-60} $(BIN)/python -m bench.soak

# CLUSTER=1: two Kamailio nodes on PostgreSQL, Redis, two rtm instances behind HAProxy.
lab: apt $(STAMP)
	bash lab/$(if $(CLUSTER),cluster,run).sh

screenshots: apt $(STAMP)
	$(BIN)/python -m tests.browser.screenshots

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
