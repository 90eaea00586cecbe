# Two commands on a fresh clone (Python 3.11 + make + bash):
#   make demo   set up, materialize the whole asset graph on the bundled sample, open the Dagster UI
#   make test   set up and run the full test suite (needs PostgreSQL on 127.0.0.1:5432, mdbtools)
SHELL := /bin/bash
UV_VERSION := 0.13.9
UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
export DO_NOT_TRACK := 1
export DAGSTER_DISABLE_TELEMETRY := 1

.PHONY: setup demo test lint bench clean

.tools/bin/uv:
	python3 -m venv .tools
	.tools/bin/pip install --quiet "uv==$(UV_VERSION)"

.venv/.synced: pyproject.toml uv.lock | $(if $(filter .tools/bin/uv,$(UV)),.tools/bin/uv)
	# bytecode compiled at install (as pip does): imports never compile the libraries again,
	# also where PYTHONDONTWRITEBYTECODE is set (each run and dbt process would otherwise)
	UV_PROJECT_ENVIRONMENT=.venv $(UV) sync --frozen --python 3.11 --compile-bytecode
	touch $@

dbt_project/target/manifest.json: .venv/.synced $(shell find dbt_project/models dbt_project/macros dbt_project/tests dbt_project/snapshots -type f 2>/dev/null) dbt_project/dbt_project.yml
	.venv/bin/ntsb prepare

setup: .venv/.synced dbt_project/target/manifest.json

demo: setup
	.venv/bin/ntsb demo

# Two pytest runs side by side, one per core: the end-to-end tests on real data (tests/e2e)
# after the two slowest integration modules (TEST_SIDE), and the rest. With tests/e2e alone
# beside the rest, on a 2-core machine without AVX-512, tests/e2e finished after 36 minutes
# and the rest then ran on one core for more than 40 minutes. Each side's output is kept in
# a file and shown after. The target fails if either run fails, no tests collected (exit
# code 5) included.
TEST_SIDE := tests/integration/test_operations.py tests/integration/test_transform.py tests/e2e

test: setup
	@side_log=$$(mktemp); \
	echo "$(TEST_SIDE) run beside the other tests; their output follows"; \
	.venv/bin/python -m pytest -q $(TEST_SIDE) > "$$side_log" 2>&1 & side=$$!; \
	.venv/bin/python -m pytest -q tests $(addprefix --ignore=,$(TEST_SIDE)); rest=$$?; \
	wait $$side; side_rc=$$?; \
	echo; echo "===== $(TEST_SIDE) (exit code $$side_rc) ====="; cat "$$side_log"; rm -f "$$side_log"; \
	echo "the other tests: exit code $$rest; $(TEST_SIDE): exit code $$side_rc"; \
	test $$rest -eq 0 && test $$side_rc -eq 0

PY_SOURCES := ntsb_assets ntsb_api ntsb_dashboard tests benchmarks

# every linter the project holds itself to; CI runs it before the tests
lint: setup
	.venv/bin/ruff check $(PY_SOURCES)
	.venv/bin/ruff format --check $(PY_SOURCES)
	.venv/bin/lint-imports
	.venv/bin/mypy
	# the dbt models as dbt compiles them (dbt_project/.sqlfluff), against an empty warehouse
	cd dbt_project && NTSB_DBT_TARGET=duckdb NTSB_DBT_DUCKDB_PATH="$$(mktemp -d)/lint.duckdb" \
		../.venv/bin/sqlfluff lint --disable-progress-bar models snapshots

bench: setup
	.venv/bin/python benchmarks/ingest_throughput.py
	.venv/bin/python benchmarks/synth_scale.py --events 100000 --big 0
	.venv/bin/python benchmarks/dbt_build.py --events 100000
	.venv/bin/python benchmarks/query_paths.py --events 100000
	.venv/bin/python benchmarks/model.py --events 100000
	.venv/bin/python benchmarks/api.py --events 100000   # needs wrk (apt-get install wrk)

clean:
	rm -rf var .venv .tools
