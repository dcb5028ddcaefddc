"""The one exception type of the exchange core, carrying Binance's error code and message.

The server turns it into Binance's wire error ``{"code": code, "msg": msg}`` with the HTTP status
Binance uses (400 for all of these). Messages follow Binance's texts exactly, so client libraries
that map messages to exception classes (ccxt) behave as against the real exchange.
"""

from __future__ import annotations

from typing import Final


class ExchangeError(Exception):
    """A rejected request: ``code`` is Binance's negative error code, ``msg`` its message text."""

    __slots__ = ("code", "msg")

    def __init__(self, code: int, msg: str) -> None:
        super().__init__(f"{code}: {msg}")
        self.code = code
        self.msg = msg

    def to_wire(self) -> dict[str, object]:
        """Binance's error body: ``{"code": -2010, "msg": "..."}``."""
        return {"code": self.code, "msg": self.msg}


# Codes and texts as Binance sends them (spot and USD-M futures share most of them).
UNKNOWN: Final = -1000
ILLEGAL_CHARS: Final = -1100
MANDATORY_PARAM: Final = -1102
BAD_PARAM: Final = -1130
INVALID_TIF: Final = -1115
INVALID_ORDER_TYPE: Final = -1116
INVALID_SIDE: Final = -1117
BAD_SYMBOL: Final = -1121
FILTER: Final = -1013
NEW_ORDER_REJECTED: Final = -2010
CANCEL_REJECTED: Final = -2011
NO_SUCH_ORDER: Final = -2013
BAD_API_KEY: Final = -2014
REJECTED_MBX_KEY: Final = -2015
MARGIN_INSUFFICIENT: Final = -2019
IMMEDIATE_TRIGGER: Final = -2021
REDUCE_ONLY_REJECT: Final = -2022
POST_ONLY_REJECT: Final = -5022
FOK_REJECT: Final = -5021
MIN_NOTIONAL_FUTURES: Final = -4164
MARGIN_TYPE_NO_CHANGE: Final = -4046
MARGIN_TYPE_OPEN_ORDERS: Final = -4047
MARGIN_TYPE_OPEN_POSITION: Final = -4048
POSITION_SIDE_NO_CHANGE: Final = -4059
POSITION_SIDE_MISMATCH: Final = -4061
POSITION_SIDE_OPEN_ORDERS: Final = -4067
POSITION_SIDE_OPEN_POSITION: Final = -4068
LEVERAGE_INVALID: Final = -4028
TRANSFER_FAILED: Final = -5002  # sapi: "Insufficient balance" style transfer failures
PERMISSION_DENIED: Final = -2015


def filter_failure(name: str) -> ExchangeError:
    """-1013 ``Filter failure: NAME`` (PRICE_FILTER, LOT_SIZE, MIN_NOTIONAL, NOTIONAL, MARKET_LOT_SIZE)."""
    return ExchangeError(FILTER, f"Filter failure: {name}")


def insufficient_balance() -> ExchangeError:
    """-2010 ``Account has insufficient balance for requested action.``"""
    return ExchangeError(NEW_ORDER_REJECTED, "Account has insufficient balance for requested action.")


def duplicate_order() -> ExchangeError:
    """-2010 ``Duplicate order sent.`` (clientOrderId already used by an open order)."""
    return ExchangeError(NEW_ORDER_REJECTED, "Duplicate order sent.")


def unknown_order_cancel() -> ExchangeError:
    """-2011 ``Unknown order sent.`` (cancel of an order that is not open or does not exist)."""
    return ExchangeError(CANCEL_REJECTED, "Unknown order sent.")


def no_such_order() -> ExchangeError:
    """-2013 ``Order does not exist.``"""
    return ExchangeError(NO_SUCH_ORDER, "Order does not exist.")


def invalid_symbol() -> ExchangeError:
    """-1121 ``Invalid symbol.``"""
    return ExchangeError(BAD_SYMBOL, "Invalid symbol.")


def margin_insufficient() -> ExchangeError:
    """-2019 ``Margin is insufficient.``"""
    return ExchangeError(MARGIN_INSUFFICIENT, "Margin is insufficient.")


def would_trigger_futures() -> ExchangeError:
    """-2021 ``Order would immediately trigger.`` (futures stop/take-profit)."""
    return ExchangeError(IMMEDIATE_TRIGGER, "Order would immediately trigger.")


def would_trigger_spot() -> ExchangeError:
    """-2010 ``Stop price would trigger immediately.`` (spot STOP_LOSS/TAKE_PROFIT family)."""
    return ExchangeError(NEW_ORDER_REJECTED, "Stop price would trigger immediately.")


def reduce_only_rejected() -> ExchangeError:
    """-2022 ``ReduceOnly Order is rejected.``"""
    return ExchangeError(REDUCE_ONLY_REJECT, "ReduceOnly Order is rejected.")


def post_only_futures() -> ExchangeError:
    """-5022 ``Due to the order could not be executed as maker, the Post Only order will be rejected...``"""
    return ExchangeError(
        POST_ONLY_REJECT,
        "Due to the order could not be executed as maker, the Post Only order will be rejected. "
        "The order will not be recorded in the order history",
    )


def post_only_spot() -> ExchangeError:
    """-2010 ``Order would immediately match and take.`` (spot LIMIT_MAKER)."""
    return ExchangeError(NEW_ORDER_REJECTED, "Order would immediately match and take.")


def min_notional_futures(min_notional: str) -> ExchangeError:
    """-4164 ``Order's notional must be no smaller than N (unless you choose reduce only).``"""
    return ExchangeError(
        MIN_NOTIONAL_FUTURES,
        f"Order's notional must be no smaller than {min_notional} (unless you choose reduce only).",
    )


def bad_param(name: str, value: object) -> ExchangeError:
    """-1130 ``Data sent for parameter 'NAME' is not valid.``"""
    return ExchangeError(BAD_PARAM, f"Data sent for parameter '{name}' is not valid.")


def max_open_orders(futures: bool) -> ExchangeError:
    """Spot -1013 ``Filter failure: MAX_NUM_ORDERS``; futures -2025 ``Reach max open order limit.``"""
    return ExchangeError(-2025, "Reach max open order limit.") if futures else filter_failure("MAX_NUM_ORDERS")


def max_algo_orders(futures: bool) -> ExchangeError:
    """Spot -1013 ``Filter failure: MAX_NUM_ALGO_ORDERS``; futures -4045 ``Reach max stop order limit.``"""
    return ExchangeError(-4045, "Reach max stop order limit.") if futures else filter_failure("MAX_NUM_ALGO_ORDERS")


def mandatory(name: str) -> ExchangeError:
    """-1102 ``Mandatory parameter 'NAME' was not sent, was empty/null, or malformed.``"""
    return ExchangeError(MANDATORY_PARAM, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")
