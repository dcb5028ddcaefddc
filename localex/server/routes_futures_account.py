"""USD-M Futures account endpoints (``/fapi/v1``, ``/fapi/v2``, ``/fapi/v3``): positions and their risk, the account
and its balances, leverage, margin type, position mode, brackets, commission and income history."""

from __future__ import annotations

from decimal import Decimal

from localex.engine.futures import initial_margin, maint_margin
from localex.engine.markets import fmt_amount
from localex.server import errors, wire
from localex.server.errors import BinanceError
from localex.server.http import SIGNED, Call, Endpoint
from localex.server.routes_futures import PERM, USDM
from localex.server.routes_spot import ns

MARGIN_TYPES = frozenset(("ISOLATED", "CROSSED"))
SUCCESS = {"code": 200, "msg": "success"}


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


ENDPOINTS: list[Endpoint] = [
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
]
