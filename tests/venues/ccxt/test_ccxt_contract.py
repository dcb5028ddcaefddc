"""The venue contract for the ccxt connector, as ccxt's ``binance`` against the local exchange (the only wire
the local exchange speaks)."""

from __future__ import annotations

import time

import pytest

from oms.model import Market, Transfer
from oms.venues import Unsupported
from oms.venues.ccxt import CcxtConnector
from tests.venues.contract import ContractVenue, VenueContract


class TestCcxtBinance(VenueContract):
    OPTIONS = {"ccxt_id": "binance"}

    @pytest.fixture
    def connector(self) -> CcxtConnector:
        return CcxtConnector()

    async def test_sub_account_transfer(self, build, venue: ContractVenue, market: Market):
        """ccxt's unified API has no transfer between accounts (only between one account's wallets), so the
        capability is off and the call is refused as ``Unsupported``, naming the transfer and the account."""
        main_creds = venue.new_trader(Market.SPOT, self.EXCHANGE)
        sub_creds = venue.new_trader(market, self.EXCHANGE, parent=main_creds.account)
        main = await build(Market.SPOT, main_creds)
        assert main.execution.capabilities.sub_account_transfer is False
        t = Transfer(
            transfer_id=f"t{time.time_ns()}", from_account=main.account, to_account=f"binance/{sub_creds.account}",
            asset="USDT", amount="12.5", from_market=Market.SPOT, to_market=market,
        )  # fmt: skip
        with pytest.raises(Unsupported, match=f"failed to transfer {t.transfer_id} for {main.account}"):
            await main.execution.transfer(t)
