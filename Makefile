# Two commands on a fresh machine: `make run` and `make test`.
# Each creates .venv if missing and installs the project into it; the install is skipped when
# pyproject.toml has not changed since the last one (stamp file), so repeated runs start in seconds.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test test-scenarios bench install build-engine clean-venv

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# The local exchange's engine compiled by mypyc into build/engine/ (about 25 s; a no-op when the build
# matches the sources, which are checked by hash, not by timestamp). Without it the engine runs as plain
# Python, about half as fast.
build-engine: $(STAMP)
	$(BIN)/python -m localex.engine.build --quiet

run: build-engine
	$(BIN)/oms run

# `make test` is the fast suite (under 15 minutes); `make test-scenarios` the long fault and whole-platform
# scenarios (tests marked `scenario`, mostly under tests/scenarios/). CI (.ci/run) runs both.
# The fast suite runs on TEST_WORKERS processes (pytest-xdist), a test file per worker at a time: its tests wait on
# real servers about a third of the time, so two workers on two cores nearly halve it. Each worker starts its own
# session servers (nats-server, OpenBao, Prefect) on free ports. TEST_WORKERS=0 runs it in one process.
TEST_WORKERS ?= 2
test: build-engine
	$(BIN)/python -m pytest -q tests -m "not scenario" -n $(TEST_WORKERS) --dist loadfile --durations=15

test-scenarios: build-engine
	$(BIN)/python -m pytest -q tests -m scenario || [ $$? -eq 5 ]  # 5: none collected

# The benchmark-only extra (backtesting.py, vectorbt), re-installed when pyproject changes.
BENCH_STAMP := $(VENV)/.bench-installed
$(BENCH_STAMP): pyproject.toml | $(STAMP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test,bench]'
	touch $(BENCH_STAMP)

# nautilus_trader cannot share .venv (pandas < 3 against vectorbt's >= 3): its own .venv-nautilus, made from
# tests/bench/nautilus-requirements.txt (a no-op when its stamp matches), run by the backtest bench as a subprocess.
bench: build-engine $(BENCH_STAMP)
	$(BIN)/python tests/bench/nautilus_venv.py
	$(BIN)/python -m pytest -q -s tests/bench

clean-venv:
	rm -rf $(VENV) $(VENV)-nautilus
