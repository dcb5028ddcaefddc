"""One valid instance of every model message type (shared by the codec and schema tests)."""

from __future__ import annotations

from oms.model import (
    AccountSettings,
    AmendOrder,
    Balance,
    BalanceEvent,
    BookSnapshot,
    CancelAll,
    CancelOrder,
    DepthDiff,
    Fill,
    Kline,
    MarkPrice,
    Order,
    OrderEvent,
    OrderEventKind,
    OrderStatus,
    PlaceOrder,
    Position,
    PositionEvent,
    Quote,
    Trade,
    Transfer,
    TransferEvent,
    TransferStatus,
)
from oms.model.parents import ParentEvent, PlaceParent
from oms.model.settings import SetLeverage, SetMarginType, SetPositionMode

T = 1_764_547_200_000_000_000
ACC = "binance/sub_mm"
PERP = "BTC/USDT:USDT"
FILL = Fill(
    account=ACC, symbol=PERP, client_order_id="oms-a", venue_order_id="42", trade_id="7", side="buy",
    price="64250.1", qty="0.002", commission="0.05", commission_asset="USDT", realized_pnl="0", event_ns=T,
)  # fmt: skip
BAL = Balance(account=ACC, market="usdm", asset="USDT", free="1000.5", locked="0", event_ns=T)
POS = Position(account=ACC, symbol=PERP, qty="-0.002", entry_price="64250.1", leverage=5, margin_type="cross")
XFER = Transfer(transfer_id="t1", from_account="binance/main", to_account=ACC, asset="USDT", amount="100")

SAMPLES = [
    PlaceOrder(account=ACC, symbol=PERP, side="buy", order_type="limit", qty="0.002", price="64250.1",
               time_in_force="gtc", intent="1").with_client_order_id(),
    AmendOrder(account=ACC, symbol=PERP, client_order_id="oms-a", side="buy", price="64250.2"),
    CancelOrder(account=ACC, symbol=PERP, client_order_id="oms-a"),
    CancelAll(account=ACC, symbol=PERP),
    Order(account=ACC, symbol=PERP, client_order_id="oms-a", side="sell", order_type="market", qty="1",
          status=OrderStatus.NEW),
    OrderEvent(account=ACC, symbol=PERP, client_order_id="oms-a", venue_order_id="42", kind=OrderEventKind.FILL,
               status=OrderStatus.FILLED, filled_qty="0.002", avg_price="64250.1", fill=FILL, event_ns=T),
    FILL,
    BAL,
    BalanceEvent(account=ACC, market="usdm", balances=(BAL,), reason="ORDER", event_ns=T),
    POS,
    PositionEvent(account=ACC, positions=(POS,), reason="ORDER", event_ns=T),
    XFER,
    TransferEvent(transfer=XFER, status=TransferStatus.DONE, venue_transfer_id="99", event_ns=T),
    AccountSettings(account=ACC, symbol=PERP, leverage=5, margin_type="isolated", position_mode="hedge"),
    Trade(exchange="binance", symbol="BTC/USDT", trade_id="1", price="1.5", qty="2", taker_side="sell", event_ns=T),
    Quote(exchange="binance", symbol="BTC/USDT", bid_price="1", bid_qty="2", ask_price="1.1", ask_qty="3"),
    DepthDiff(exchange="binance", symbol=PERP, first_update_id=10, last_update_id=12, prev_update_id=9,
              bids=(("1.0", "0"),), asks=(("1.1", "5"),), event_ns=T),
    BookSnapshot(exchange="binance", symbol=PERP, last_update_id=9, bids=(("1.0", "1"),)),
    Kline(exchange="binance", symbol="BTC/USDT", interval="1m", open_ns=T, close_ns=T + 59_999_000_000, open="1",
          high="2", low="0.5", close="1.5", volume="10", trades=3, closed=True),
    MarkPrice(exchange="binance", symbol=PERP, mark_price="64250.12345678", funding_rate="0.0001", event_ns=T),
    PlaceParent(account=ACC, symbol=PERP, side="buy", qty="0.01", algo="twap", slices=5, duration_s=60.0,
                max_slippage_bps=20, intent="p1").with_parent_id(),
    ParentEvent(account=ACC, symbol=PERP, parent_id="par-a", algo="twap", kind="child_filled", status="working",
                side="buy", qty="0.01", filled_qty="0.002", avg_price="64250.1", child_client_order_id="oms-a",
                child_qty="0.002", seq=3, event_ns=T),
    SetLeverage(account=ACC, symbol=PERP, leverage=5),
    SetMarginType(account=ACC, symbol=PERP, margin_type="isolated"),
    SetPositionMode(account=ACC, position_mode="hedge"),
]  # fmt: skip
