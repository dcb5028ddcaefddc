"""Long end-to-end scenarios (`@pytest.mark.scenario`): `make test` leaves them out, `make test-scenarios` runs them."""

from __future__ import annotations


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", "scenario: long end-to-end scenarios (make test-scenarios, not make test)")
