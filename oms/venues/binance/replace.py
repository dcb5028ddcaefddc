"""Binance Spot cancel-replace and USD-M funding payments, for ``BinanceExecution`` (which delegates here).

* ``cancel_replace(ex, old, cmd)``: ``order.cancelReplace`` / ``POST /api/v3/order/cancelReplace`` with
  ``cancelReplaceMode`` STOP_ON_FAILURE: the venue cancels ``old`` and, only if that worked, places ``cmd``
  (a new order with its own client order id). What a trader calls "amend the price" on Binance Spot, where
  ``order.amend.keepPriority`` only lowers the quantity. The answer is the two orders' events (the old one
  ``canceled``, its filled quantity as the venue had it when it cancelled; the new one ``accepted``). Binance's
  own error codes tell the halves apart: -2022 means nothing happened (the cancel failed: the old order was
  already filled or gone, and no new order was attempted), -2021 that the old order was cancelled and the new
  one refused; both raise ``Rejected`` with that code. An answer that never came raises ``UnknownOutcome``
  with the new order marked unknown and resolved by its client order id in the background (never re-sent).
* ``funding_payments(ex, since_ns)``: the USD-M funding fees of the account from ``GET /fapi/v1/income``
  (``incomeType=FUNDING_FEE``), as the archive's ``Funding`` records, one per symbol and funding time, with
  Binance's ``tranId`` as ``venue_id``. The user stream's ``ACCOUNT_UPDATE`` (reason ``FUNDING_FEE``) says a
  payment happened, but for cross positions names no symbol: the income history does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from oms.archive.records import Funding
from oms.model import Market, OrderEvent, OrderEventKind, OrderStatus, PlaceOrder
from oms.venues.binance.orders import OrderNotExpressible, place_params
from oms.venues.errors import Rejected, UnknownOutcome, Unsupported

if TYPE_CHECKING:  # execution.py imports this module
    from oms.venues.binance.execution import BinanceExecution

MS = 1_000_000
NOTHING_DONE = -2022  # "Order cancel-replace failed.": the cancel failed, no new order was attempted
NEW_REFUSED = -2021  # "Order cancel-replace partially failed.": the old order is cancelled, the new one refused
INCOME_PAGE = 1000


async def cancel_replace(ex: BinanceExecution, old: str, cmd: PlaceOrder) -> tuple[OrderEvent, OrderEvent]:
    if ex.market is not Market.SPOT:
        raise Unsupported("cancel-replace is a Spot request (USD-M amends in place)", account=ex.account,
                          action="cancel-replace", order=old)  # fmt: skip
    s = await ex._ready()
    new = cmd.client_order_id
    if new is None:
        raise ValueError("cancel-replace: the new order has no client order id")
    try:
        params = place_params(cmd, Market.SPOT, s.symbol_table, ex.settings.recv_window_ms)
    except (OrderNotExpressible, KeyError, ValueError) as exc:
        raise Unsupported(str(exc), account=ex.account, action="cancel-replace", order=old) from None
    params["cancelReplaceMode"] = "STOP_ON_FAILURE"
    params["cancelOrigClientOrderId"] = old
    t = s.tracker.get(old)
    if t is not None and t.status.is_open:
        s.tracker.mark(old, OrderEventKind.CANCEL_SENT)
    s.tracker.expect(new, cmd.symbol)
    try:
        body = await s.request("cancel_replace", params, action=f"cancel-replace of {old}", coid=new)
    except UnknownOutcome:
        ex._own(cmd, OrderEventKind.OUTCOME_UNKNOWN, reason=f"cancel-replace of {old} sent, no answer")
        ex._start_resolve(cmd.symbol, new)
        raise
    except Rejected as exc:
        if exc.code != NEW_REFUSED:  # the old order was not cancelled (-2022, or the request refused whole)
            _cancel_not_done(ex, old)
        ex._own(cmd, OrderEventKind.REJECTED, exc.code, exc.venue_message)
        raise
    except Exception:
        s.tracker.orders.pop(new, None)  # not sent (rate limit, auth, socket down before sending): forget it
        _cancel_not_done(ex, old)
        raise
    cancelled = ex._answer(ex._order(_cancel_row(body["cancelResponse"], old)))
    placed = ex._answer(ex._order(body["newOrderResponse"], cmd.strategy))
    return cancelled, placed


def _cancel_not_done(ex: BinanceExecution, old: str) -> None:
    t = ex.session.tracker.get(old)
    if t is not None and t.status is OrderStatus.PENDING_CANCEL:
        ex.session.tracker.mark(old, OrderEventKind.CANCEL_REJECTED)


def _cancel_row(row: dict[str, Any], old: str) -> dict[str, Any]:
    """A cancel answer names the order by ``origClientOrderId``; its ``clientOrderId`` is the cancel's own."""
    out = dict(row)
    out["clientOrderId"] = row.get("origClientOrderId") or old
    out.pop("origClientOrderId", None)
    return out


async def funding_payments(ex: BinanceExecution, since_ns: int, until_ns: int | None = None) -> list[Funding]:
    """Funding fees at or after ``since_ns`` (and up to ``until_ns``), oldest first; symbols the account does not
    trade here are left out."""
    if ex.market is not Market.USDM:
        return []
    s = await ex._ready()
    table = s.symbol_table
    params: dict[str, Any] = {"incomeType": "FUNDING_FEE", "startTime": max(0, since_ns // MS), "limit": INCOME_PAGE}
    if until_ns is not None:
        params["endTime"] = until_ns // MS
    out: list[Funding] = []
    page = 1
    while True:
        rows = await s.request("income", {**params, "page": page}, action="read funding payments")
        rows = rows if isinstance(rows, list) else []
        for r in rows:
            unified = table.to_unified.get(str(r.get("symbol", "")))
            if unified is None or str(r.get("incomeType")) != "FUNDING_FEE":
                continue
            out.append(
                Funding(
                    account=ex.account,
                    symbol=unified,
                    asset=str(r.get("asset") or "USDT"),
                    amount=str(r["income"]),
                    venue_id=str(r.get("tranId", "")),
                    event_ns=int(r["time"]) * MS,
                )
            )
        if len(rows) < INCOME_PAGE:
            break
        page += 1
    out.sort(key=lambda f: (f.event_ns, f.symbol))
    return out
