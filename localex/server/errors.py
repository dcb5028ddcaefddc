"""Binance's error model: one exception carrying Binance's code, message and HTTP status.

Every handler raises :class:`BinanceError`; the app's middleware turns it into Binance's JSON shape
``{"code": -1121, "msg": "Invalid symbol."}`` with the matching HTTP status. Messages are Binance's own
wording so clients that match on text (ccxt's ``exceptions`` table does) map them the same way.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class BinanceError(Exception):
    """An error answered to the client exactly as Binance answers it."""

    code: int
    msg: str
    status: int = 400
    retry_after: int | None = None
    data: dict[str, object] | None = None

    def __str__(self) -> str:
        return f"{self.code}: {self.msg}"

    def body(self) -> dict[str, object]:
        """The JSON body Binance sends for this error (``data`` only where Binance adds one, e.g. -2021/-2022)."""
        if self.data is not None:
            return {"code": self.code, "msg": self.msg, "data": self.data}
        return {"code": self.code, "msg": self.msg}


def unknown(detail: str = "An unknown error occurred while processing the request.") -> BinanceError:
    """-1000 UNKNOWN."""
    return BinanceError(-1000, detail, 400)


def disconnected() -> BinanceError:
    """-1001 DISCONNECTED."""
    return BinanceError(-1001, "Internal error; unable to process your request. Please try again.", 400)


def too_many_requests(limit: int, ip: str, interval: str = "1 MINUTE", retry_after: int = 60) -> BinanceError:
    """-1003 with HTTP 429: request weight exceeded."""
    return BinanceError(
        -1003,
        f"Too many requests; current limit of IP({ip}) request weight is {limit} per {interval}. "
        "Please use WebSocket Streams for live updates to avoid polling the API.",
        429,
        retry_after,
    )


def banned(ip: str, until_ms: int, retry_after: int) -> BinanceError:
    """-1003 with HTTP 418: the IP is banned after repeated 429s."""
    return BinanceError(
        -1003,
        f"Way too many requests; IP({ip}) banned until {until_ms}. "
        "Please use the websocket for live updates to avoid bans.",
        418,
        retry_after,
    )


def too_many_connection_attempts(limit: int, retry_after: int) -> BinanceError:
    """-1034 with HTTP 429: too many WebSocket connection attempts from one IP in 5 minutes."""
    return BinanceError(
        -1034,
        f"Too many connection attempts from IP; current limit is {limit} per '5 MINUTE'.",
        429,
        retry_after=retry_after,
    )


def too_many_concurrent_connections(limit: int) -> BinanceError:
    """-1034 with HTTP 429: the server holds as many WebSocket connections as it is configured to."""
    return BinanceError(-1034, f"Too many concurrent connections; current limit is '{limit}'.", 429)


def too_many_orders(limit: int, interval: str, retry_after: int) -> BinanceError:
    """-1015 with HTTP 429: order rate exceeded."""
    return BinanceError(
        -1015, f"Too many new orders; current limit is {limit} orders per {interval}.", 429, retry_after
    )


def unsupported() -> BinanceError:
    """-1020 UNSUPPORTED_OPERATION."""
    return BinanceError(-1020, "This operation is not supported.", 400)


def timestamp_outside(ahead: bool) -> BinanceError:
    """-1021 INVALID_TIMESTAMP."""
    if ahead:
        return BinanceError(-1021, "Timestamp for this request was 1000ms ahead of the server's time.", 400)
    return BinanceError(-1021, "Timestamp for this request is outside of the recvWindow.", 400)


def bad_signature() -> BinanceError:
    """-1022 INVALID_SIGNATURE."""
    return BinanceError(-1022, "Signature for this request is not valid.", 400)


def illegal_chars(name: str, legal: str) -> BinanceError:
    """-1100 ILLEGAL_CHARS."""
    return BinanceError(-1100, f"Illegal characters found in parameter '{name}'; legal range is '{legal}'.", 400)


def too_many_parameters() -> BinanceError:
    """-1101 TOO_MANY_PARAMETERS."""
    return BinanceError(-1101, "Too many parameters sent for this endpoint.", 400)


def request_too_large(what: str, status: int) -> BinanceError:
    """-1101 for a request over the server's size limits (``what``: "body", "URL"; HTTP 413 / 414).

    Binance's front end refuses such requests before any endpoint reads them; the closest of its own
    codes is -1101 (ccxt maps it to BadRequest: retrying the same request cannot help).
    """
    return BinanceError(-1101, f"Too many parameters sent for this endpoint; the request {what} is too large.", status)


def duplicate_params() -> BinanceError:
    """-1101 for a parameter sent twice in the query string (or twice in the body)."""
    return BinanceError(-1101, "Duplicate values for a parameter detected.", 400)


def too_many_parameters_expected(expected: int, received: int) -> BinanceError:
    """-1101 TOO_MANY_PARAMETERS with the endpoint's parameter count."""
    return BinanceError(-1101, f"Too many parameters; expected '{expected}' and received '{received}'.", 400)


def mandatory(name: str) -> BinanceError:
    """-1102 MANDATORY_PARAM_EMPTY_OR_MALFORMED."""
    return BinanceError(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.", 400)


def unknown_param(name: str) -> BinanceError:
    """-1103 UNKNOWN_PARAM."""
    return BinanceError(-1103, f"An unknown parameter was sent: '{name}'.", 400)


def unread_params(read: int, sent: int) -> BinanceError:
    """-1104 UNREAD_PARAMETERS."""
    return BinanceError(
        -1104, f"Not all sent parameters were read; read '{read}' parameter(s) but was sent '{sent}'.", 400
    )


def param_empty(name: str) -> BinanceError:
    """-1105 PARAM_EMPTY."""
    return BinanceError(-1105, f"Parameter '{name}' was empty.", 400)


def param_not_required(name: str) -> BinanceError:
    """-1106 PARAM_NOT_REQUIRED."""
    return BinanceError(-1106, f"Parameter '{name}' sent when not required.", 400)


def bad_precision(name: str = "quantity") -> BinanceError:
    """-1111 BAD_PRECISION."""
    return BinanceError(-1111, f"Parameter '{name}' has too much precision.", 400)


def invalid_tif() -> BinanceError:
    """-1115 INVALID_TIF."""
    return BinanceError(-1115, "Invalid timeInForce.", 400)


def invalid_order_type() -> BinanceError:
    """-1116 INVALID_ORDER_TYPE."""
    return BinanceError(-1116, "Invalid orderType.", 400)


def invalid_side() -> BinanceError:
    """-1117 INVALID_SIDE."""
    return BinanceError(-1117, "Invalid side.", 400)


def invalid_interval() -> BinanceError:
    """-1120 BAD_INTERVAL."""
    return BinanceError(-1120, "Invalid interval.", 400)


def invalid_symbol() -> BinanceError:
    """-1121 BAD_SYMBOL."""
    return BinanceError(-1121, "Invalid symbol.", 400)


def invalid_listen_key() -> BinanceError:
    """-1125 INVALID_LISTEN_KEY."""
    return BinanceError(-1125, "This listenKey does not exist.", 400)


def bad_param(name: str) -> BinanceError:
    """-1130 INVALID_PARAMETER."""
    return BinanceError(-1130, f"Data sent for parameter '{name}' is not valid.", 400)


def bad_recv_window() -> BinanceError:
    """-1131 BAD_RECV_WINDOW."""
    return BinanceError(-1131, "recvWindow must be less than 60000", 400)


def invalid_json() -> BinanceError:
    """-1100-style rejection of a malformed request frame (WebSocket API: -1002? Binance uses -1000)."""
    return BinanceError(-1000, "Invalid JSON: message could not be parsed.", 400)


def filter_failure(name: str) -> BinanceError:
    """-1013 filter failure (PRICE_FILTER, LOT_SIZE, NOTIONAL, MIN_NOTIONAL, MARKET_LOT_SIZE ...)."""
    return BinanceError(-1013, f"Filter failure: {name}", 400)


def new_order_rejected(msg: str = "Account has insufficient balance for requested action.") -> BinanceError:
    """-2010 NEW_ORDER_REJECTED."""
    return BinanceError(-2010, msg, 400)


def cancel_rejected() -> BinanceError:
    """-2011 CANCEL_REJECTED."""
    return BinanceError(-2011, "Unknown order sent.", 400)


def no_such_order() -> BinanceError:
    """-2013 NO_SUCH_ORDER."""
    return BinanceError(-2013, "Order does not exist.", 400)


def bad_api_key_format() -> BinanceError:
    """-2014 BAD_API_KEY_FMT."""
    return BinanceError(-2014, "API-key format invalid.", 401)


def rejected_mbx_key() -> BinanceError:
    """-2015 REJECTED_MBX_KEY."""
    return BinanceError(-2015, "Invalid API-key, IP, or permissions for action.", 401)


def not_found() -> BinanceError:
    """An unknown path: Binance answers 404 with an HTML page; we answer its closest JSON shape."""
    return BinanceError(-1000, "Not Found: unknown endpoint.", 404)


def switch_to_algo() -> BinanceError:
    """``POST /fapi/v1/order`` (``order.place``, ``batchOrders``) with a conditional type: Binance moved those to
    the Algo Order API (``POST /fapi/v1/algoOrder``)."""
    return BinanceError(
        -4120, "Order type not supported for this endpoint. Please use the Algo Order API endpoints instead.", 400
    )
