"""The venue contract for the ccxt connector, as ccxt's ``binance`` against the local exchange (the only wire
the local exchange speaks). Sub-account transfers are not in ccxt's unified API: the capability is off and
the contract expects ``Unsupported``."""

from __future__ import annotations

import pytest

from oms.venues.ccxt import CcxtConnector
from tests.venues.contract import VenueContract


class TestCcxtBinance(VenueContract):
    OPTIONS = {"ccxt_id": "binance"}

    @pytest.fixture
    def connector(self) -> CcxtConnector:
        return CcxtConnector()
