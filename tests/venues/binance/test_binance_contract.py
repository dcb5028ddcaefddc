"""The Binance connector (python-binance) passes the venue contract (``tests/venues/contract.py``) on Spot and
USD-M against a real local exchange."""

from __future__ import annotations

import pytest

from oms.venues.binance import BinanceConnector
from tests.venues.contract import VenueContract


class TestBinanceContract(VenueContract):
    OPTIONS = {"ws_api_timeout_s": 2.0, "recv_window_ms": 5000}

    @pytest.fixture
    def connector(self) -> BinanceConnector:
        return BinanceConnector()
