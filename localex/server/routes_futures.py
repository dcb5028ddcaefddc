"""USD-M Futures account and trading endpoints (``/fapi/v1``, ``/fapi/v2``, ``/fapi/v3``)."""

from __future__ import annotations

from decimal import Decimal

import orjson

from localex.engine.errors import ExchangeError
from localex.engine.futures import initial_margin, maint_margin
from localex.engine.markets import fmt_amount
from localex.engine.types import OrderResult
from localex.server import errors, wire
from localex.server.errors import BinanceError
from localex.server.http import SIGNED, USER_STREAM, Call, Endpoint
from localex.server.order_params import futures_order_request
from localex.server.params import CLIENT_ID_RE, Params
from localex.server.routes_algo import is_pending_algo
from localex.server.routes_spot import ns, order_ref

USDM = "usdm"
PERM = "FUTURES"
MARGIN_TYPES = frozenset(("ISOLATED", "CROSSED"))
RESP_TYPES = frozenset(("ACK", "RESULT"))
SUCCESS = {"code": 200, "msg": "success"}


def _resp_type(params: Params) -> str:
    """USD-M ``newOrderRespType``: ACK (the default) or RESULT."""
    return (
        params.opt_enum("newOrderRespType", RESP_TYPES, BinanceError(-1136, "Invalid newOrderRespType.", 400)) or "ACK"
    )


def _order_body(call: Call, result: OrderResult, resp_type: str) -> dict[str, object]:
    """A new order's response: RESULT is the order after matching; ACK is the order as accepted (NEW, nothing
    executed yet), which is what Binance answers by default, before the matching engine reports fills."""
    spec = call.state.exchange.spec(USDM, result.order.symbol)
    body = wire.futures_order(result.order, spec, with_time=False)
    if resp_type == "ACK":
        body.update(
            {
                "status": "NEW",
                "avgPrice": spec.fmt_avg_price(0, 0),
                "executedQty": spec.fmt_qty(0),
                "cumQty": spec.fmt_qty(0),
                "cumQuote": spec.fmt_amount(0),
                "updateTime": wire.ms(result.order.time_ns),
            }
        )
    return body


def place(call: Call, params: Params, account_id: str) -> dict[str, object]:
    """Place a futures order (shared with the WebSocket API)."""
    req = futures_order_request(params)
    resp_type = _resp_type(params)
    result = call.state.exchange.place_order(account_id, req)
    return _order_body(call, result, resp_type)


async def new_order(call: Call) -> object:
    """POST /fapi/v1/order."""
    assert call.account_id is not None
    return place(call, call.params, call.account_id)


async def test_order(call: Call) -> object:
    """POST /fapi/v1/order/test."""
    assert call.account_id is not None
    call.state.exchange.test_order(call.account_id, futures_order_request(call.params))
    _resp_type(call.params)
    return {}


def _refuse_pending_algo(call: Call, account_id: str, symbol: str, order_id: int | None, client_id: str | None) -> None:
    """-2011 for an algo order still waiting for its trigger: it is not an order of the matching engine yet
    (``DELETE /fapi/v1/algoOrder`` cancels it)."""
    try:
        order = call.state.exchange.get_order(account_id, USDM, symbol, order_id=order_id, client_order_id=client_id)
    except ExchangeError:
        return  # unknown: the cancel itself answers
    if is_pending_algo(order):
        raise errors.cancel_rejected()


def cancel(call: Call, params: Params, account_id: str) -> dict[str, object]:
    """Cancel one futures order (shared with the WebSocket API)."""
    symbol = params.symbol()
    order_id, client_id = order_ref(params)
    _refuse_pending_algo(call, account_id, symbol, order_id, client_id)
    order = call.state.exchange.cancel_order(account_id, USDM, symbol, order_id=order_id, client_order_id=client_id)
    return wire.futures_order(order, call.state.exchange.spec(USDM, symbol), with_time=False)


async def cancel_order(call: Call) -> object:
    """DELETE /fapi/v1/order."""
    assert call.account_id is not None
    return cancel(call, call.params, call.account_id)


def query(call: Call, params: Params, account_id: str) -> dict[str, object]:
    """Query one futures order (shared with the WebSocket API)."""
    symbol = params.symbol()
    order_id, client_id = order_ref(params)
    order = call.state.exchange.get_order(account_id, USDM, symbol, order_id=order_id, client_order_id=client_id)
    if is_pending_algo(order):  # waiting for its trigger: only GET /fapi/v1/algoOrder knows it
        raise errors.no_such_order()
    return wire.futures_order(order, call.state.exchange.spec(USDM, symbol))


async def query_order(call: Call) -> object:
    """GET /fapi/v1/order."""
    assert call.account_id is not None
    return query(call, call.params, call.account_id)


async def open_order(call: Call) -> object:
    """GET /fapi/v1/openOrder: one open order, -2013 if it is not open."""
    assert call.account_id is not None
    body = query(call, call.params, call.account_id)
    if body["status"] not in ("NEW", "PARTIALLY_FILLED"):
        raise errors.no_such_order()
    return body


async def modify_order(call: Call) -> object:
    """PUT /fapi/v1/order."""
    assert call.account_id is not None
    p = call.params
    symbol = p.symbol()
    order_id, client_id = order_ref(p)
    order = call.state.exchange.modify_order(
        call.account_id,
        USDM,
        symbol,
        order_id=order_id,
        client_order_id=client_id,
        side=p.str("side"),
        quantity=str(p.decimal("quantity")),
        price=str(p.decimal("price")),
    )
    return wire.futures_order(order, call.state.exchange.spec(USDM, symbol), with_time=False)


async def open_orders(call: Call) -> object:
    """GET /fapi/v1/openOrders."""
    assert call.account_id is not None
    symbol = call.params.opt_symbol()
    ex = call.state.exchange
    if symbol is not None:
        ex.spec(USDM, symbol)
    return [
        wire.futures_order(o, ex.spec(USDM, o.symbol))
        for o in ex.open_orders(call.account_id, USDM, symbol)
        if not is_pending_algo(o)
    ]


async def cancel_all(call: Call) -> object:
    """DELETE /fapi/v1/allOpenOrders (algo orders waiting for their trigger stay: ``DELETE
    /fapi/v1/algoOpenOrders`` cancels those)."""
    assert call.account_id is not None
    symbol = call.params.symbol()
    ex = call.state.exchange
    ex.spec(USDM, symbol)
    open_now = ex.open_orders(call.account_id, USDM, symbol)
    if not any(is_pending_algo(o) for o in open_now):
        ex.cancel_all(call.account_id, USDM, symbol)
    else:
        for o in open_now:
            if not is_pending_algo(o):
                ex.cancel_order(call.account_id, USDM, symbol, order_id=o.order_id)
    return {"code": 200, "msg": "The operation of cancel all open order is done."}


async def batch_orders(call: Call) -> object:
    """POST /fapi/v1/batchOrders (at most 5; each result an order or an error object)."""
    assert call.account_id is not None
    items = call.params.opt_json_list("batchOrders")
    if items is None:
        raise errors.mandatory("batchOrders")
    if not 1 <= len(items) <= 5:
        raise BinanceError(-1130, "Data sent for parameter 'batchOrders' is not valid.", 400)
    ex = call.state.exchange
    reqs = []
    resp_types: list[str] = []
    out: list[object] = []
    bad: dict[int, dict[str, object]] = {}
    for i, item in enumerate(items):
        try:
            item_params = Params({k: _str(v) for k, v in item.items()})
            reqs.append(futures_order_request(item_params))
            resp_types.append(_resp_type(item_params))
        except BinanceError as exc:
            bad[i] = exc.body()
            reqs.append(None)
            resp_types.append("ACK")
    valid = [r for r in reqs if r is not None]
    call.state.limiter.charge_order(call.account_id, USDM, call.now_ms, max(0, len(valid) - 1))
    results = iter(ex.batch_orders(call.account_id, valid) if valid else [])
    for i, req in enumerate(reqs):
        if req is None:
            out.append(bad[i])
            continue
        res = next(results)
        out.append(res.to_wire() if isinstance(res, Exception) else _order_body(call, res, resp_types[i]))
    return out


def _str(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


async def cancel_batch(call: Call) -> object:
    """DELETE /fapi/v1/batchOrders (orderIdList or origClientOrderIdList)."""
    assert call.account_id is not None
    p = call.params
    symbol = p.symbol()
    ids = _order_ids(p.opt_str("orderIdList"))
    client_ids = _client_ids(p.opt_str("origClientOrderIdList"))
    if not ids and not client_ids:
        raise BinanceError(
            -1102, "Param 'origClientOrderIdList' or 'orderIdList' must be sent, but both were empty/null!", 400
        )
    ex = call.state.exchange
    spec = ex.spec(USDM, symbol)
    out: list[object] = []
    refs: list[tuple[int | None, str | None]] = [(i, None) for i in ids]
    refs += [(None, c) for c in client_ids]
    for order_id, client_id in refs:
        try:
            _refuse_pending_algo(call, call.account_id, symbol, order_id, client_id)
            order = ex.cancel_order(call.account_id, USDM, symbol, order_id=order_id, client_order_id=client_id)
            out.append(wire.futures_order(order, spec, with_time=False))
        except BinanceError as exc:
            out.append(exc.body())
        except ExchangeError as exc:
            out.append(exc.to_wire())
    return out


def _json_list(raw: str | None, name: str) -> list[object]:
    """A JSON list of at most 10 items; -1130 for the parameter otherwise."""
    if raw is None:
        return []
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise errors.bad_param(name) from exc
    if not isinstance(parsed, list) or len(parsed) > 10:
        raise errors.bad_param(name)
    return parsed


def _order_ids(raw: str | None) -> list[int]:
    """``orderIdList``: positive integers, checked whole before any order is touched.

    ``[null]``, ``["a"]``, ``[true]`` or ``[1.5]`` is -1130 for the list and cancels nothing (``true`` is not
    order 1, as Python's ``int(True)`` would have it).
    """
    items = _json_list(raw, "orderIdList")
    ids = [i for i in items if type(i) is int and 0 < i < 2**63]
    if len(ids) < len(items):
        raise errors.bad_param("orderIdList")
    return ids


def _client_ids(raw: str | None) -> list[str]:
    """``origClientOrderIdList``: client order ids in Binance's legal range, checked whole."""
    items = _json_list(raw, "origClientOrderIdList")
    ids = [c for c in items if isinstance(c, str) and CLIENT_ID_RE.match(c)]
    if len(ids) < len(items):
        raise errors.bad_param("origClientOrderIdList")
    return ids


async def all_orders(call: Call) -> object:
    """GET /fapi/v1/allOrders."""
    assert call.account_id is not None
    p = call.params
    symbol = p.symbol()
    spec = call.state.exchange.spec(USDM, symbol)
    orders = call.state.exchange.all_orders(
        call.account_id,
        USDM,
        symbol,
        order_id=p.opt_int("orderId", 0),
        start_ns=ns(p.opt_int("startTime", 0)),
        end_ns=ns(p.opt_int("endTime", 0)),
        limit=p.opt_int("limit", 1, 1000) or 500,
    )
    return [wire.futures_order(o, spec) for o in orders if not is_pending_algo(o)]


async def user_trades(call: Call) -> object:
    """GET /fapi/v1/userTrades."""
    assert call.account_id is not None
    p = call.params
    symbol = p.symbol()
    spec = call.state.exchange.spec(USDM, symbol)
    fills = call.state.exchange.my_trades(
        call.account_id,
        USDM,
        symbol,
        order_id=p.opt_int("orderId", 0),
        from_id=p.opt_int("fromId", 0),
        start_ns=ns(p.opt_int("startTime", 0)),
        end_ns=ns(p.opt_int("endTime", 0)),
        limit=p.opt_int("limit", 1, 1000) or 500,
    )
    return [wire.futures_user_trade(f, spec) for f in fills]


def _signed_qty(spec, lots: int) -> str:
    amt = spec.fmt_qty(abs(lots))
    return amt if lots >= 0 else "-" + amt


def _position_margins(call: Call, r) -> tuple[str, str]:
    """``(initialMargin, maintMargin)`` of one position row, by its leverage and the symbol's brackets."""
    spec = call.state.exchange.spec(USDM, r.symbol)
    notional = abs(r.notional)
    return fmt_amount(initial_margin(notional, max(1, r.leverage))), fmt_amount(max(0, maint_margin(spec, notional)))


def _position_row_v2(call: Call, r) -> dict[str, object]:
    """GET /fapi/v2/positionRisk row: Binance's documented 16 fields (USDⓈ-M "Position Information V2")."""
    spec = call.state.exchange.spec(USDM, r.symbol)
    return {
        "symbol": r.symbol,
        "positionAmt": _signed_qty(spec, r.position_amt),
        "entryPrice": wire.dec_str(r.entry_price, 8),
        "breakEvenPrice": wire.dec_str(r.entry_price, 8),
        "markPrice": wire.dec_str(spec.price_of(r.mark_price), 8),
        "unRealizedProfit": wire.fmt_signed(r.unrealized_pnl),
        "liquidationPrice": wire.dec_str(r.liquidation_price, 8),
        "leverage": str(r.leverage),
        "maxNotionalValue": fmt_amount(r.max_notional).rstrip("0").rstrip("."),
        "marginType": "isolated" if r.margin_type.upper() == "ISOLATED" else "cross",
        "isolatedMargin": fmt_amount(r.isolated_margin),
        "isAutoAddMargin": "false",
        "positionSide": r.position_side,
        "notional": wire.fmt_signed(r.notional),
        "isolatedWallet": fmt_amount(r.isolated_wallet),
        "updateTime": wire.ms(r.update_ns),
    }


def _position_row_v3(call: Call, r) -> dict[str, object]:
    """GET /fapi/v3/positionRisk row: the documented 20 fields (no leverage, marginType, maxNotionalValue)."""
    spec = call.state.exchange.spec(USDM, r.symbol)
    initial, maint = _position_margins(call, r)
    return {
        "symbol": r.symbol,
        "positionSide": r.position_side,
        "positionAmt": _signed_qty(spec, r.position_amt),
        "entryPrice": wire.dec_str(r.entry_price, 8),
        "breakEvenPrice": wire.dec_str(r.entry_price, 8),
        "markPrice": wire.dec_str(spec.price_of(r.mark_price), 8),
        "unRealizedProfit": wire.fmt_signed(r.unrealized_pnl),
        "liquidationPrice": wire.dec_str(r.liquidation_price, 8),
        "isolatedMargin": fmt_amount(r.isolated_margin),
        "notional": wire.fmt_signed(r.notional),
        "marginAsset": spec.margin_asset,
        "isolatedWallet": fmt_amount(r.isolated_wallet),
        "initialMargin": initial,
        "maintMargin": maint,
        "positionInitialMargin": initial,
        "openOrderInitialMargin": "0",
        "adl": 0,
        "bidNotional": "0",
        "askNotional": "0",
        "updateTime": wire.ms(r.update_ns),
    }


async def adl_quantile(call: Call) -> object:
    """GET /fapi/v1/adlQuantile: each open position's auto-deleveraging quantile, 0 (none) to 4 (first in line).

    Binance ranks the positions on one side of a symbol by PnL ratio x effective leverage (profitable ones) or
    PnL ratio / leverage (losing ones) and reports the quintile. Here the ranking is over every account of this
    exchange holding that side of the symbol: quantile ``1 + 4k // n`` for a position with ``k`` of ``n`` ranked
    below it (so the most exposed one is 4 once it has at least four peers below it), 0 without a position. The
    row's keys are Binance's: one-way mode reports ``BOTH`` (``LONG``/``SHORT`` 0), hedge mode ``LONG`` and
    ``SHORT`` (``BOTH`` 0); the cross-margin hedge variant's ``HEDGE`` key is not produced."""
    assert call.account_id is not None
    ex = call.state.exchange
    symbol = call.params.opt_symbol()
    mine = [r for r in _risk_rows(call, call.account_id, symbol, False) if r.position_amt]
    out: list[object] = []
    for sym in dict.fromkeys(r.symbol for r in mine):
        peers = [p for a in ex.accounts() for p in ex.position_risk(a.account_id, sym) if p.position_amt]
        quantiles = {"LONG": 0, "SHORT": 0, "BOTH": 0}
        for r in (r for r in mine if r.symbol == sym):
            same = [p for p in peers if (p.position_amt > 0) == (r.position_amt > 0)]
            mine_score = _adl_score(r)
            below = sum(1 for p in same if _adl_score(p) < mine_score)
            quantiles[r.position_side] = min(4, 1 + 4 * below // max(1, len(same)))
        out.append({"symbol": sym, "adlQuantile": quantiles})
    return out


async def symbol_config(call: Call) -> object:
    """GET /fapi/v1/symbolConfig: each symbol's leverage and margin type (what positionRisk v3 dropped)."""
    assert call.account_id is not None
    rows = {r.symbol: r for r in _risk_rows(call, call.account_id, call.params.opt_symbol(), False)}
    return [
        {
            "symbol": r.symbol,
            "marginType": "ISOLATED" if r.margin_type.upper() == "ISOLATED" else "CROSSED",
            "isAutoAddMargin": "false",
            "leverage": r.leverage,
            "maxNotionalValue": fmt_amount(r.max_notional).rstrip("0").rstrip("."),
        }  # fmt: skip
        for r in rows.values()
    ]


def _adl_score(r) -> Decimal:
    notional = abs(Decimal(r.notional))
    if not notional:
        return Decimal(0)
    ratio = Decimal(r.unrealized_pnl) / notional
    lev = Decimal(max(1, r.leverage))
    return ratio * lev if ratio > 0 else ratio / lev


def _risk_rows(call: Call, account_id: str, symbol: str | None, active_only: bool) -> list[object]:
    """Engine positionRisk rows; v3 keeps only those with a position or open orders (as Binance documents).

    An unknown ``symbol`` is -1121 before anything is read.
    """
    ex = call.state.exchange
    if symbol is not None:
        ex.spec(USDM, symbol)
    rows = ex.position_risk(account_id, symbol)
    if not active_only:
        return list(rows)
    working = {(o.symbol, o.position_side) for o in ex.open_orders(account_id, USDM, symbol)}
    return [r for r in rows if r.position_amt or (r.symbol, r.position_side) in working]


async def position_risk(call: Call) -> object:
    """GET /fapi/v2/positionRisk."""
    assert call.account_id is not None
    return [_position_row_v2(call, r) for r in _risk_rows(call, call.account_id, call.params.opt_symbol(), False)]


async def position_risk_v3(call: Call) -> object:
    """GET /fapi/v3/positionRisk."""
    assert call.account_id is not None
    return [_position_row_v3(call, r) for r in _risk_rows(call, call.account_id, call.params.opt_symbol(), True)]


def _asset_rows(call: Call, account_id: str) -> list[object]:
    info = call.state.exchange.futures_account(account_id)
    rows = info if isinstance(info, list) else getattr(info, "assets", [info])
    return list(rows)


def _asset_json(a, version: int = 2) -> dict[str, object]:
    row: dict[str, object] = {
        "asset": a.asset,
        "walletBalance": wire.fmt_signed(a.wallet_balance),
        "unrealizedProfit": wire.fmt_signed(a.unrealized_pnl),
        "marginBalance": wire.fmt_signed(a.margin_balance),
        "maintMargin": fmt_amount(a.maint_margin),
        "initialMargin": fmt_amount(a.position_initial_margin + a.open_order_initial_margin),
        "positionInitialMargin": fmt_amount(a.position_initial_margin),
        "openOrderInitialMargin": fmt_amount(a.open_order_initial_margin),
        "crossWalletBalance": wire.fmt_signed(a.cross_wallet_balance),
        "crossUnPnl": wire.fmt_signed(a.cross_unrealized_pnl),
        "availableBalance": wire.fmt_signed(a.available_balance),
        "maxWithdrawAmount": fmt_amount(max(0, a.max_withdraw)),
    }
    if version == 2:  # v3 dropped marginAvailable from its asset rows (Binance changelog 2025-08)
        row["marginAvailable"] = True
    row["updateTime"] = wire.ms(a.update_ns)
    return row


def _account_position_v2(call: Call, r) -> dict[str, object]:
    """``positions`` row of GET /fapi/v2/account (documented: every symbol, ``isolated`` as a boolean)."""
    spec = call.state.exchange.spec(USDM, r.symbol)
    initial, maint = _position_margins(call, r)
    return {
        "symbol": r.symbol,
        "initialMargin": initial,
        "maintMargin": maint,
        "unrealizedProfit": wire.fmt_signed(r.unrealized_pnl),
        "positionInitialMargin": initial,
        "openOrderInitialMargin": "0",
        "leverage": str(r.leverage),
        "isolated": r.margin_type.upper() == "ISOLATED",
        "entryPrice": wire.dec_str(r.entry_price, 8),
        "breakEvenPrice": wire.dec_str(r.entry_price, 8),
        "maxNotional": fmt_amount(r.max_notional).rstrip("0").rstrip("."),
        "bidNotional": "0",
        "askNotional": "0",
        "positionSide": r.position_side,
        "positionAmt": _signed_qty(spec, r.position_amt),
        "updateTime": wire.ms(r.update_ns),
    }


def _account_position_v3(call: Call, r) -> dict[str, object]:
    """``positions`` row of GET /fapi/v3/account (documented: only symbols with a position or open orders)."""
    spec = call.state.exchange.spec(USDM, r.symbol)
    initial, maint = _position_margins(call, r)
    return {
        "symbol": r.symbol,
        "positionSide": r.position_side,
        "positionAmt": _signed_qty(spec, r.position_amt),
        "unrealizedProfit": wire.fmt_signed(r.unrealized_pnl),
        "isolatedMargin": fmt_amount(r.isolated_margin),
        "notional": wire.fmt_signed(r.notional),
        "isolatedWallet": fmt_amount(r.isolated_wallet),
        "initialMargin": initial,
        "maintMargin": maint,
        "updateTime": wire.ms(r.update_ns),
    }


def _sum(rows: list[dict[str, object]], key: str) -> str:
    return wire.dec_str(sum((Decimal(str(r[key])) for r in rows), Decimal(0)))


def account_body(call: Call, account_id: str, version: int = 2) -> dict[str, object]:
    """GET /fapi/v2/account (``version=2``) or /fapi/v3/account body (also the WebSocket API's account.status)."""
    assets = [_asset_json(a, version) for a in _asset_rows(call, account_id)]
    total = {
        "totalInitialMargin": _sum(assets, "initialMargin"),
        "totalMaintMargin": _sum(assets, "maintMargin"),
        "totalWalletBalance": _sum(assets, "walletBalance"),
        "totalUnrealizedProfit": _sum(assets, "unrealizedProfit"),
        "totalMarginBalance": _sum(assets, "marginBalance"),
        "totalPositionInitialMargin": _sum(assets, "positionInitialMargin"),
        "totalOpenOrderInitialMargin": _sum(assets, "openOrderInitialMargin"),
        "totalCrossWalletBalance": _sum(assets, "crossWalletBalance"),
        "totalCrossUnPnl": _sum(assets, "crossUnPnl"),
        "availableBalance": _sum(assets, "availableBalance"),
        "maxWithdrawAmount": _sum(assets, "maxWithdrawAmount"),
    }
    if version == 3:
        positions = [_account_position_v3(call, r) for r in _risk_rows(call, account_id, None, True)]
        return {**total, "assets": assets, "positions": positions}
    positions = [_account_position_v2(call, r) for r in _risk_rows(call, account_id, None, False)]
    return {
        "feeTier": 0,
        "feeBurn": False,
        "canTrade": True,
        "canDeposit": True,
        "canWithdraw": True,
        "updateTime": 0,
        "multiAssetsMargin": False,
        "tradeGroupId": -1,
        **total,
        "assets": assets,
        "positions": positions,
    }


async def account(call: Call) -> object:
    """GET /fapi/v2/account."""
    assert call.account_id is not None
    return account_body(call, call.account_id)


async def account_v3(call: Call) -> object:
    """GET /fapi/v3/account."""
    assert call.account_id is not None
    return account_body(call, call.account_id, 3)


def balance_body(call: Call, account_id: str) -> list[dict[str, object]]:
    """GET /fapi/v2|v3/balance body."""
    out = []
    for a in _asset_rows(call, account_id):
        out.append(
            {
                "accountAlias": "SgsR",
                "asset": a.asset,
                "balance": wire.fmt_signed(a.wallet_balance),
                "crossWalletBalance": wire.fmt_signed(a.cross_wallet_balance),
                "crossUnPnl": wire.fmt_signed(a.cross_unrealized_pnl),
                "availableBalance": wire.fmt_signed(a.available_balance),
                "maxWithdrawAmount": fmt_amount(max(0, a.max_withdraw)),
                "marginAvailable": True,
                "updateTime": wire.ms(a.update_ns),
            }
        )
    return out


async def balance(call: Call) -> object:
    """GET /fapi/v2/balance, /fapi/v3/balance."""
    assert call.account_id is not None
    return balance_body(call, call.account_id)


async def leverage(call: Call) -> object:
    """POST /fapi/v1/leverage."""
    assert call.account_id is not None
    symbol = call.params.symbol()
    lev, max_notional = call.state.exchange.set_leverage(call.account_id, symbol, call.params.int("leverage", 1, 125))
    return {"leverage": lev, "maxNotionalValue": fmt_amount(max_notional).rstrip("0").rstrip("."), "symbol": symbol}


async def margin_type(call: Call) -> object:
    """POST /fapi/v1/marginType."""
    assert call.account_id is not None
    symbol = call.params.symbol()
    mt = call.params.str("marginType").upper()
    if mt == "CROSS":
        mt = "CROSSED"
    if mt not in MARGIN_TYPES:
        raise errors.bad_param("marginType")
    call.state.exchange.set_margin_type(call.account_id, symbol, mt)
    return SUCCESS


async def set_position_side(call: Call) -> object:
    """POST /fapi/v1/positionSide/dual."""
    assert call.account_id is not None
    dual = call.params.opt_bool("dualSidePosition")
    if dual is None:
        raise errors.mandatory("dualSidePosition")
    call.state.exchange.set_position_mode(call.account_id, dual)
    return SUCCESS


async def get_position_side(call: Call) -> object:
    """GET /fapi/v1/positionSide/dual."""
    assert call.account_id is not None
    return {"dualSidePosition": bool(call.state.exchange.position_mode(call.account_id))}


async def leverage_bracket(call: Call) -> object:
    """GET /fapi/v1/leverageBracket."""
    symbol = call.params.opt_symbol()
    ex = call.state.exchange
    specs = [ex.spec(USDM, symbol)] if symbol else list(ex.specs(USDM))
    out = []
    for s in specs:
        out.append(
            {
                "symbol": s.symbol,
                "notionalCoef": 1.0,
                "brackets": [
                    {
                        "bracket": b.bracket,
                        "initialLeverage": b.initial_leverage,
                        "notionalCap": int(b.notional_cap // 10**8),
                        "notionalFloor": int(b.notional_floor // 10**8),
                        "maintMarginRatio": float(b.maint_margin_ratio),
                        "cum": float(b.cum),
                    }
                    for b in s.brackets
                ],
            }
        )
    return out[0] if symbol else out


async def commission_rate(call: Call) -> object:
    """GET /fapi/v1/commissionRate."""
    symbol = call.params.symbol()
    call.state.exchange.spec(USDM, symbol)
    return {"symbol": symbol, "makerCommissionRate": "0.000200", "takerCommissionRate": "0.000500"}


INCOME_TYPES = frozenset(
    (
        "TRANSFER",
        "WELCOME_BONUS",
        "REALIZED_PNL",
        "FUNDING_FEE",
        "COMMISSION",
        "INSURANCE_CLEAR",
        "REFERRAL_KICKBACK",
        "COMMISSION_REBATE",
        "API_REBATE",
        "CONTEST_REWARD",
        "CROSS_COLLATERAL_TRANSFER",
        "OPTIONS_PREMIUM_FEE",
        "OPTIONS_SETTLE_PROFIT",
        "INTERNAL_TRANSFER",
        "AUTO_EXCHANGE",
        "DELIVERED_SETTELMENT",
        "COIN_SWAP_DEPOSIT",
        "COIN_SWAP_WITHDRAW",
        "POSITION_LIMIT_INCREASE_FEE",
        "STRATEGY_UMFUTURES_TRANSFER",
        "FEE_RETURN",
        "BFUSD_REWARD",
    )
)  # Binance's documented incomeType values; the engine produces TRANSFER, REALIZED_PNL, FUNDING_FEE, COMMISSION
INCOME_DEFAULT_WINDOW_MS = 7 * 86_400_000


async def income(call: Call) -> object:
    """GET /fapi/v1/income: the account's income history, oldest first.

    Times are inclusive. Neither startTime nor endTime: the last 7 days. ``page`` (from 1) pages through the
    rows oldest first, ``limit`` rows each (default 100, max 1000); without ``page`` the first ``limit`` rows
    from startTime, or, without startTime, the newest ``limit`` rows.
    """
    assert call.account_id is not None
    p = call.params
    ex = call.state.exchange
    symbol = p.opt_symbol()
    if symbol is not None:
        ex.spec(USDM, symbol)
    income_type = p.opt_enum("incomeType", INCOME_TYPES)
    start, end = p.opt_int("startTime", 0), p.opt_int("endTime", 0)
    page = p.opt_int("page", 1)
    limit = p.opt_int("limit", 1, 1000) or 100
    if start is not None and end is not None and start > end:
        raise BinanceError(-1128, "Combination of optional parameters invalid.", 400)
    if start is None and end is None:
        start = ex.now_ns() // 1_000_000 - INCOME_DEFAULT_WINDOW_MS
    rows = ex.income(call.account_id, symbol, income_type, ns(start), None if end is None else ns(end) + 999_999)
    if page is not None:
        rows = rows[(page - 1) * limit : page * limit]
    elif p.opt_str("startTime") is not None:
        rows = rows[:limit]
    else:
        rows = rows[-limit:]
    return [
        {
            "symbol": r.symbol,
            "incomeType": r.income_type,
            "income": wire.fmt_signed(r.amount),
            "asset": r.asset,
            "info": r.info,
            "time": wire.ms(r.time_ns),
            "tranId": r.tran_id,
            "tradeId": str(r.trade_id) if r.trade_id >= 0 else "",
        }
        for r in rows
    ]


async def listen_key_start(call: Call) -> object:
    """POST /fapi/v1/listenKey."""
    assert call.account_id is not None
    return {"listenKey": call.state.listen_keys.start(call.account_id, call.now_ms)}


async def listen_key_keepalive(call: Call) -> object:
    """PUT /fapi/v1/listenKey."""
    assert call.account_id is not None
    key = call.state.listen_keys.keepalive(call.account_id, call.now_ms)
    if key is None:
        raise BinanceError(-1125, "This listenKey does not exist.", 400)
    return {"listenKey": key}


async def listen_key_close(call: Call) -> object:
    """DELETE /fapi/v1/listenKey."""
    assert call.account_id is not None
    key = call.state.listen_keys.close(call.account_id)
    if key is not None:
        call.state.hub.close_listen_key(key)
    return {}


ENDPOINTS: list[Endpoint] = [
    Endpoint("POST", "/fapi/v1/order", USDM, new_order, 0, SIGNED, PERM, order=True),
    Endpoint("POST", "/fapi/v1/order/test", USDM, test_order, 0, SIGNED, PERM),
    Endpoint("PUT", "/fapi/v1/order", USDM, modify_order, 1, SIGNED, PERM, order=True),
    Endpoint("DELETE", "/fapi/v1/order", USDM, cancel_order, 1, SIGNED, PERM),
    Endpoint("GET", "/fapi/v1/order", USDM, query_order, 1, SIGNED, PERM),
    Endpoint("GET", "/fapi/v1/openOrder", USDM, open_order, 1, SIGNED, PERM),
    Endpoint("GET", "/fapi/v1/openOrders", USDM, open_orders, lambda p: 1 if p.opt_str("symbol") else 40, SIGNED, PERM),
    Endpoint("DELETE", "/fapi/v1/allOpenOrders", USDM, cancel_all, 1, SIGNED, PERM),
    Endpoint("POST", "/fapi/v1/batchOrders", USDM, batch_orders, 5, SIGNED, PERM, order=True),
    Endpoint("DELETE", "/fapi/v1/batchOrders", USDM, cancel_batch, 1, SIGNED, PERM),
    Endpoint("GET", "/fapi/v1/allOrders", USDM, all_orders, 5, SIGNED, PERM),
    Endpoint("GET", "/fapi/v1/userTrades", USDM, user_trades, 5, SIGNED, PERM),
    Endpoint("GET", "/fapi/v2/account", USDM, account, 5, SIGNED, PERM),
    Endpoint("GET", "/fapi/v3/account", USDM, account_v3, 5, SIGNED, PERM),
    Endpoint("GET", "/fapi/v2/balance", USDM, balance, 5, SIGNED, PERM),
    Endpoint("GET", "/fapi/v3/balance", USDM, balance, 5, SIGNED, PERM),
    Endpoint("GET", "/fapi/v2/positionRisk", USDM, position_risk, 5, SIGNED, PERM),
    Endpoint("GET", "/fapi/v3/positionRisk", USDM, position_risk_v3, 5, SIGNED, PERM),
    Endpoint("POST", "/fapi/v1/leverage", USDM, leverage, 1, SIGNED, PERM),
    Endpoint("POST", "/fapi/v1/marginType", USDM, margin_type, 1, SIGNED, PERM),
    Endpoint("POST", "/fapi/v1/positionSide/dual", USDM, set_position_side, 1, SIGNED, PERM),
    Endpoint("GET", "/fapi/v1/positionSide/dual", USDM, get_position_side, 30, SIGNED, PERM),
    Endpoint("GET", "/fapi/v1/leverageBracket", USDM, leverage_bracket, 1, SIGNED, PERM),
    Endpoint("GET", "/fapi/v1/adlQuantile", USDM, adl_quantile, 5, SIGNED, PERM),
    Endpoint("GET", "/fapi/v1/symbolConfig", USDM, symbol_config, 5, SIGNED, PERM),
    Endpoint("GET", "/fapi/v1/commissionRate", USDM, commission_rate, 20, SIGNED, PERM),
    Endpoint("GET", "/fapi/v1/income", USDM, income, 30, SIGNED, PERM),
    Endpoint("POST", "/fapi/v1/listenKey", USDM, listen_key_start, 1, USER_STREAM, PERM),
    Endpoint("PUT", "/fapi/v1/listenKey", USDM, listen_key_keepalive, 1, USER_STREAM, PERM),
    Endpoint("DELETE", "/fapi/v1/listenKey", USDM, listen_key_close, 1, USER_STREAM, PERM),
]
