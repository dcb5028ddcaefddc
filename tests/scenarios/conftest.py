"""Fixtures the scenarios share with the flow tests (the local exchange with its gate, a funded desk)."""

from tests.flows.conftest import clean_runs, venue  # noqa: F401
from tests.flows.test_rebalance_flow import desk  # noqa: F401
