# Ideaboard: `make run` serves the demo, `make test` runs the whole suite.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
FLASK  := $(BIN)/flask --app wsgi
CATALOGS := $(wildcard ideaboard/translations/*/LC_MESSAGES/messages.po)
COMPILED := $(CATALOGS:.po=.mo)

.PHONY: install run test test-sqlite test-postgres test-a11y lint messages clean

install: $(STAMP) $(COMPILED)

# The environment, from the pinned lock file; rebuilt when the lock or pyproject changes.
# setuptools announces, as a warning, that an editable install of a flat layout uses an
# import finder: nothing to fix, so that one notice is hidden (tests/test_first_run.py
# builds the wheel and fails on any warning at all).
$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	PYTHONWARNINGS="ignore:Editable installation:UserWarning" \
		$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

%.mo: %.po $(STAMP)
	$(BIN)/pybabel compile --statistics --use-fuzzy -i $< -o $@ 2>&1 | tail -n 1

# Where `make run` listens: make run PORT=8000 HOST=0.0.0.0
PORT ?= 5000
HOST ?= 127.0.0.1

run: install
	$(FLASK) db upgrade
	$(FLASK) demo --if-empty
	@echo "Serving http://$(HOST):$(PORT)/ (another port: make run PORT=8000)"
	BASE_URL="$${BASE_URL:-http://$(HOST):$(PORT)}" $(FLASK) run --host $(HOST) --port $(PORT)

# SQLite first, then the same suite on PostgreSQL when TEST_DATABASE_URL is set. Each pass
# runs in TEST_JOBS pytest-xdist workers, a test file per worker at a time (each worker has
# its own database, Redis database and ports: tests/conftest.py); TEST_JOBS=0 runs in one
# process. Timings: docs/operations.md, "Running the tests".
TEST_JOBS ?= 2
XDIST := -n $(TEST_JOBS) --dist loadfile

test: install
	$(BIN)/python -m pytest -m "not postgres" $(XDIST) $(PYTEST_ARGS)
	@if [ -n "$$TEST_DATABASE_URL" ]; then \
		echo "== again on PostgreSQL ($$TEST_DATABASE_URL) =="; \
		IDEABOARD_TEST_BACKEND=postgres $(BIN)/python -m pytest $(XDIST) $(PYTEST_ARGS); \
	else \
		echo "TEST_DATABASE_URL is not set: skipped the PostgreSQL run."; \
	fi

# Accessibility alone: axe-core on every page of the route inventory for visitor, member and
# staff, in en and ru, at 1280 and 390 px, light and dark; then the keyboard tests (SQLite).
test-a11y: install
	$(BIN)/python -m pytest tests/browser/test_accessibility.py tests/browser/test_keyboard.py $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check ideaboard tests bench
	$(BIN)/ruff format --check ideaboard tests bench

# Re-extract strings and merge them into the catalogs (then translate and commit the .po).
messages: install
	$(BIN)/pybabel extract -F babel.cfg -k _l -k lazy_gettext -k lazy_pgettext:1c,2 --ignore-dirs ".*" -o ideaboard/translations/messages.pot .
	$(BIN)/pybabel update -i ideaboard/translations/messages.pot -d ideaboard/translations --no-fuzzy-matching

clean:
	rm -rf $(VENV) .pytest_cache

# Benchmark (bench/README.md): gunicorn with gunicorn.conf.py on 127.0.0.1, driven by wrk at
# 32 connections; seeds bench/instance (SQLite) first if needed. Never part of `make test`.
# BENCH_ARGS passes options, e.g. BENCH_ARGS="--only board_anon,vote --seconds 5".
BENCH_DATABASE_URL ?= postgresql://postgres@127.0.0.1/bench
.PHONY: bench bench-postgres bench-growth bench-seed

bench: install
	env -u DATABASE_URL $(BIN)/python bench/run.py $(BENCH_ARGS)

# The same on PostgreSQL: DATABASE_URL, else BENCH_DATABASE_URL (created if missing).
bench-postgres: install
	DATABASE_URL="$${DATABASE_URL:-$(BENCH_DATABASE_URL)}" $(BIN)/python bench/run.py $(BENCH_ARGS)

# The board, idea and roadmap pages at 10,000 and at 100,000 ideas (SQLite; for PostgreSQL:
# make bench-postgres BENCH_ARGS=--growth).
bench-growth: install
	env -u DATABASE_URL $(BIN)/python bench/run.py --growth \
		--only board_anon,idea_anon,roadmap_anon $(BENCH_ARGS)

# The benchmark's data in the app's own database (DATABASE_URL, else instance/), migrated
# first: 100,000 ideas by default; SEED_ARGS passes options, e.g.
# SEED_ARGS="--ideas 10000 --votes 100000 --comments 20000".
# `make bench` seeds its own database by itself; this is for trying the app at that size.
bench-seed: install
	$(FLASK) db upgrade
	$(BIN)/python bench/seed.py $(SEED_ARGS)

# Load and fault run (bench/loadtest.py): security.md part 4 as assertions (burst of votes,
# staff status changes, rate limits across workers, a worker killed during writes, integrity
# checked in the database). A few minutes; never part of `make test`. SQLite in
# bench/instance/loadtest; loadtest-postgres drops and recreates LOADTEST_DATABASE_URL.
LOADTEST_DATABASE_URL ?= postgresql://postgres@127.0.0.1/ideaboard_loadtest
.PHONY: loadtest loadtest-postgres

loadtest: install
	env -u DATABASE_URL $(BIN)/python bench/loadtest.py $(LOADTEST_ARGS)

loadtest-postgres: install
	env -u DATABASE_URL $(BIN)/python bench/loadtest.py \
		--database-url "$(LOADTEST_DATABASE_URL)" $(LOADTEST_ARGS)
