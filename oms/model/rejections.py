"""The one table of order rejections: a stable code and a readable reason for every way an order is refused,
shared by live trading and the backtest so that the same refused order reads the same in both.

Codes are ``origin:NAME``:

* ``risk:NAME``: the pre-trade risk check (the names of ``kernels.codes``' reason codes; ``kernels.codes.REASONS``
  takes its messages from here). The backtest applies the same rule under the same code where it has one
  (a reduce-only order that would not reduce).
* ``venue:NAME``: the exchange refused the order. ``venue_rejection(code, message)`` classifies Binance's answers
  (its error code and message, as the connectors raise them in ``oms.venues.errors.Rejected``); the backtest's
  simulated venue reports its refusals under the same codes.
* ``backtest:NAME``: limits of the simulation itself, with no live counterpart.
* the daemon's own refusals of a command before any check (``unknown_symbol``, ``bad_number``, ...) and the
  portfolio guards' (``guard:correlation``, ``guard:volatility``), under the codes its replies have always used.

A venue answer the table does not know keeps the daemon's generic ``venue:<code>``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Rejection:
    code: str  # e.g. "risk:MAX_ORDER_NOTIONAL", "venue:INSUFFICIENT_BALANCE"
    reason: str  # one readable sentence

    @property
    def name(self) -> str:
        return self.code.rsplit(":", 1)[-1]


# the risk kernel's reasons, by the names of kernels.codes (its int codes live there)
RISK_REASONS: dict[str, str] = {
    "OK": "accepted",
    "UNKNOWN_ACCOUNT": "unknown account index",
    "UNKNOWN_INSTRUMENT": "unknown instrument index",
    "BAD_SIDE": "side must be BUY (1) or SELL (-1)",
    "BAD_ORDER_TYPE": "unknown order type",
    "BAD_POSITION_SIDE": (
        "position side does not match the account's position mode (BOTH in netting mode, LONG or SHORT in hedge mode)"
    ),
    "GLOBAL_HALTED": "trading is halted for all accounts (global kill switch)",
    "ACCOUNT_HALTED": "trading is halted for this account",
    "INSTRUMENT_NOT_TRADING": "the instrument is not trading",
    "QTY_NOT_POSITIVE": "quantity must be positive",
    "QTY_STEP": "quantity is not a multiple of the lot step (LOT_SIZE filter)",
    "QTY_BELOW_MIN": "quantity is below the exchange minimum (LOT_SIZE filter)",
    "QTY_ABOVE_MAX": "quantity is above the exchange maximum (LOT_SIZE filter)",
    "PRICE_NOT_POSITIVE": "price must be positive",
    "PRICE_TICK": "price is not a multiple of the tick size (PRICE_FILTER)",
    "PRICE_OUT_OF_RANGE": "price is outside the exchange's min/max price (PRICE_FILTER)",
    "NO_MARK_PRICE": "no mark price for the instrument yet",
    "PRICE_BAND": "limit price is outside the price band around the mark",
    "NOTIONAL_BELOW_MIN": "order notional is below the exchange minimum (NOTIONAL filter)",
    "NOTIONAL_ABOVE_MAX": "order notional is above the exchange maximum (NOTIONAL filter)",
    "REDUCE_ONLY_REJECTED": "reduce-only order would increase or flip the position",
    "GLOBAL_REDUCE_ONLY": "all accounts are reduce-only and the order would increase or flip the position",
    "ACCOUNT_REDUCE_ONLY": "the account is reduce-only and the order would increase or flip the position",
    "MAX_ORDER_NOTIONAL": "order notional is above the account's max_order_notional_usdt",
    "MAX_POSITION": "position, with open orders on the same side, would exceed max_position_notional_usdt",
    "MAX_ACCOUNT_EXPOSURE": "the account's gross exposure would exceed max_gross_exposure_usdt",
    "MAX_GLOBAL_EXPOSURE": "gross exposure across all accounts would exceed the global max_gross_exposure_usdt",
    "MAX_LEVERAGE": "gross exposure would exceed max_leverage times the account's equity",
    "DAILY_LOSS": "the account's loss since the start of the day exceeds max_daily_loss_usdt",
    "GLOBAL_DAILY_LOSS": (
        "the loss across all accounts since the start of the day exceeds the global max_daily_loss_usdt"
    ),
    "MAX_DRAWDOWN": "the account's drawdown from its equity peak exceeds max_drawdown_pct",
    "MAX_OPEN_ORDERS": "the account already has max_open_orders open orders",
    "RATE_LIMIT": "order rate limit reached (orders_per_second / order_burst token bucket)",
    "HEDGE_OVERCLOSE": "fill would close more than the hedge-mode position side holds (state out of sync: reconcile)",
    "NO_QUOTE_RATE": "the instrument is quoted in another asset and no rate into the limits' USDT is known yet",
    "UNPRICED_EXPOSURE": (
        "the account holds a position quoted in an asset with no USDT rate yet: its exposure and loss are unknown"
    ),
    "GLOBAL_UNPRICED_EXPOSURE": (
        "an account holds a position quoted in an asset with no USDT rate yet: the global limits cannot be checked"
    ),
}

VENUE_REASONS: dict[str, str] = {
    "INSUFFICIENT_BALANCE": "insufficient balance: the cash for a buy's notional and fee, or the asset to sell",
    "INSUFFICIENT_MARGIN": "insufficient margin: the order's initial margin exceeds the available balance",
    "POST_ONLY_WOULD_TAKE": "post-only order would take liquidity",
    "REDUCE_ONLY_REJECTED": "reduce-only order would not reduce the position",
    "CANCELED_BY_LIQUIDATION": "cancelled by the account's liquidation",
}

BACKTEST_REASONS: dict[str, str] = {
    "ORDER_TABLE_FULL": "the simulation's order table is full",
    "BUDGET_BELOW_LOT": "a quote-quantity budget buys less than one lot at the fill price",
}

# the order gateway's, amend's and command router's own codes (stream.gateway, stream.amend, stream.commands)
DAEMON_REASONS: dict[str, str] = {
    "unknown_account": "the account is not one of this daemon's",
    "unknown_symbol": "the symbol is not an instrument of this daemon on the account's exchange",
    "unknown_market": "the account does not trade that market on this daemon",
    "unknown_order": "no such order of this account is known to this daemon",
    "unsupported": "the command is not served by this daemon or the venue",
    "unsupported_order_type": "the order type is not gated by the risk check yet",
    "bad_number": "a price or quantity is not a valid number for the instrument (tick, lot, decimals)",
    "bad_amend": "the amend is not valid for the order",
    "not_open": "the order is not open: nothing to amend",
    "not_amendable": "the order cannot be amended now (an amend or cancel is in flight)",
    "guard:correlation": "the entry is correlated above max_correlation with an open position of the account",
    "guard:volatility": "the volatility-scaled size is below the instrument's minimum quantity",
    "venue:rate_limited": "the venue's rate limit: the request waits or is refused until the limit allows it",
    "venue:outcome_unknown": "the venue's answer to the amend never came: the order is kept as it was",
    "shutting_down": "the daemon is shutting down and takes no commands",
    "cash_asset_mismatch": (
        "the account's cash is a coin (cash_assets: [BTC]) and the pair is quoted in another asset: it trades pairs "
        "quoted in its coin only"
    ),
}

REJECTIONS: dict[str, Rejection] = {
    f"{origin}:{name}": Rejection(f"{origin}:{name}", reason)
    for origin, table in (("risk", RISK_REASONS), ("venue", VENUE_REASONS), ("backtest", BACKTEST_REASONS))
    for name, reason in table.items()
} | {code: Rejection(code, reason) for code, reason in DAEMON_REASONS.items()}


def rejection(code: str) -> Rejection:
    """The table's entry for a code (``KeyError`` naming it when there is none)."""
    try:
        return REJECTIONS[code]
    except KeyError:
        raise KeyError(f"no rejection {code!r} in oms.model.rejections") from None


def risk(name: str) -> Rejection:
    return rejection(f"risk:{name}")


# Binance's refusals of an order (error code, message as Binance words it) -> the table's name. -2010 and -2022
# carry several meanings, told apart by the message; Spot and USD-M word the same refusal differently.
_BINANCE: dict[tuple[int, str], str] = {
    (-2010, "account has insufficient balance for requested action."): "INSUFFICIENT_BALANCE",
    (-2018, "balance is insufficient."): "INSUFFICIENT_BALANCE",
    (-2019, "margin is insufficient."): "INSUFFICIENT_MARGIN",
    (-2010, "order would immediately match and take."): "POST_ONLY_WOULD_TAKE",
    (
        -5022,
        "due to the order could not be executed as maker, the post only order will be rejected. the order will not "
        "be recorded in the order history",
    ): "POST_ONLY_WOULD_TAKE",
    (-2022, "reduceonly order is rejected."): "REDUCE_ONLY_REJECTED",
}
_BINANCE_PREFIX = {(code, text.split(".")[0]): name for (code, text), name in _BINANCE.items()}


def venue_rejection(code: int | str | None, message: str) -> Rejection | None:
    """The table's entry for a venue's refusal (Binance's error code and message), or None when unknown."""
    try:
        n = int(code)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    text = (message or "").strip().lower()
    name = _BINANCE.get((n, text)) or _BINANCE_PREFIX.get((n, text.split(".")[0]))
    return REJECTIONS[f"venue:{name}"] if name else None
