"""An account's free balances between a Spot fill and the venue's balance update that follows it.

Binance sends a fill's ``executionReport`` before the ``outboundAccountPosition`` with the new balances; a
strategy acting on the fill in between (a CLOSE selling what it just bought) must see the asset it received.
"""

from __future__ import annotations

from decimal import Decimal

from oms.model import AccountId, Balance, Fill, Market, Side
from stream.accounts import AccountSession

ACCT = "binance/probe"


def session() -> AccountSession:
    return AccountSession(AccountId("binance", "probe"), 0, (Market.SPOT,))


def bal(asset: str, free: str, locked: str = "0") -> Balance:
    return Balance(account=ACCT, market=Market.SPOT, asset=asset, free=free, locked=locked)


def fill(side: Side, qty: str, price: str, trade: str, fee: str = "0", fee_asset: str = "") -> Fill:
    return Fill(account=ACCT, symbol="BTC/USDT", client_order_id="c1", venue_order_id="1", trade_id=trade,
                side=side, price=price, qty=qty, commission=fee, commission_asset=fee_asset, event_ns=1)  # fmt: skip


def test_a_buy_is_free_to_sell_before_its_balance_update_and_the_update_settles_it():
    s = session()
    s.set_balances(Market.SPOT, [bal("USDT", "1000")])
    assert s.free(Market.SPOT, "BTC") is None  # never reported, nothing bought
    s.book_fill(Market.SPOT, fill(Side.BUY, "0.002", "50000", "t1", "0.000002", "BTC"))
    assert s.free(Market.SPOT, "BTC") == Decimal("0.001998")  # what came in, less the fee paid in it
    assert s.free(Market.SPOT, "USDT") == Decimal("900")  # what it spent
    s.book_fill(Market.SPOT, fill(Side.BUY, "0.002", "50000", "t1", "0.000002", "BTC"))  # the same trade again
    assert s.free(Market.SPOT, "BTC") == Decimal("0.001998")
    s.set_balances(Market.SPOT, [bal("BTC", "0.001998"), bal("USDT", "900")])  # the venue's update
    assert s.free(Market.SPOT, "BTC") == Decimal("0.001998") and not s.unsettled


def test_a_sell_errs_low_on_what_a_resting_order_had_locked_and_a_full_list_replaces_everything():
    s = session()
    s.set_balances(Market.SPOT, [bal("BTC", "0.5", locked="0.5"), bal("USDT", "0")])
    s.book_fill(Market.SPOT, fill(Side.SELL, "0.5", "50000", "t2", "2.5", "USDT"))
    assert s.free(Market.SPOT, "USDT") == Decimal("24997.5")
    assert s.free(Market.SPOT, "BTC") == Decimal("0")  # the locked half left: low, never high
    s.set_balances(Market.SPOT, [bal("BTC", "0.5"), bal("USDT", "24997.5")], replace=True)
    assert s.free(Market.SPOT, "BTC") == Decimal("0.5") and not s.unsettled


def test_futures_fills_do_not_move_asset_balances():
    s = session()
    s.book_fill(Market.USDM, fill(Side.BUY, "1", "50000", "t3"))
    assert s.free(Market.USDM, "BTC") is None and not s.unsettled
