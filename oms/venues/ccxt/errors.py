"""ccxt's exception hierarchy, sorted into what a caller can do about it.

ccxt raises one tree of classes for every exchange (``ccxt.base.errors``). The connector needs a coarser,
actionable split, decided here once:

* ``UNKNOWN``: a state-changing request was sent and no answer came (timeout, connection dropped after the
  request left, an unparsable or 5xx answer). It is never "failed" and never blindly re-sent: it is
  resolved by querying the order's client order id.
* ``NETWORK``: the request never reached the venue (connect refused, DNS) or a read failed; safe to retry.
* ``RATE_LIMITED``: 429/418 (``RateLimitExceeded``, ``DDoSProtection``): back off for ``Retry-After``.
* ``CLOCK``: the venue rejected our timestamp (``InvalidNonce``, Binance -1021): resync the offset, retry
  idempotent calls.
* ``AUTH``: bad or revoked key, missing permission.
* ``NOT_FOUND``: the order does not exist (``OrderNotFound``).
* ``NOT_SUPPORTED``: the venue or ccxt cannot do it (``NotSupported``).
* ``REJECTED``: every other answer of the venue (invalid order, insufficient funds, bad symbol, ...), with
  the venue's own code and message when its answer carried them.

The venue's code and message are read from the JSON body ccxt puts in the exception text (ccxt's convention
for every exchange: ``"<id> <body>"``), whatever the key names (``code``/``msg`` on Binance, ``retCode``/
``retMsg`` on Bybit, ``sCode``/``sMsg`` on OKX, ...).
"""

from __future__ import annotations

import ast
import asyncio
import enum
import json
from dataclasses import dataclass

import aiohttp
import ccxt

from oms.venues import errors


class Kind(enum.Enum):
    UNKNOWN = "unknown"
    NETWORK = "network"
    RATE_LIMITED = "rate_limited"
    CLOCK = "clock"
    AUTH = "auth"
    NOT_FOUND = "not_found"
    NOT_SUPPORTED = "not_supported"
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class Classified:
    kind: Kind
    code: str | None  # the venue's error code, as text, when its answer had one
    message: str  # the venue's message, or ccxt's text


_CODE_KEYS = ("code", "retCode", "sCode", "error_code", "errorCode", "status")
_MSG_KEYS = ("msg", "retMsg", "sMsg", "message", "error_message", "errorMessage", "error")


def _code_msg(body: object) -> tuple[object, object]:
    if not isinstance(body, dict):
        return None, None
    data = body.get("data")
    if isinstance(data, list) and data and isinstance(data[0], dict):  # OKX puts sCode in data[0]
        body = {**body, **data[0]}
    code = next((body[k] for k in _CODE_KEYS if k in body and body[k] not in (None, "", 0, "0")), None)
    msg = next((body[k] for k in _MSG_KEYS if k in body and body[k]), None)
    return code, msg


def venue_code_and_message(exc: BaseException, answer: object = None) -> tuple[str | None, str]:
    """The venue's error code and message: from ccxt's exception text (``"<exchange id> <JSON body>"``), or
    from the venue's decoded answer (``answer``: ccxt's ``last_json_response``, read as the exception is
    caught) when ccxt put only the message in the text and that message is the answer's."""
    text = str(exc)
    start = text.find("{")
    if start >= 0:
        try:
            code, msg = _code_msg(json.loads(text[start:]))
        except ValueError:
            try:  # ccxt formats some answers as a Python dict
                code, msg = _code_msg(ast.literal_eval(text[start:]))
            except (ValueError, SyntaxError):
                code, msg = None, None
        if code is not None or msg is not None:
            return (None if code is None else str(code)), str(msg if msg is not None else text)
    code, msg = _code_msg(answer)
    if code is not None and msg is not None and str(msg) in text:
        return str(code), str(msg)
    return None, text


def _not_sent(exc: BaseException) -> bool:
    """True when the transport failed before the request left (connect refused, DNS): nothing happened."""
    cause = exc.__cause__
    if isinstance(cause, aiohttp.ClientConnectorError):  # connecting failed (a ClientOSError, but before sending)
        return True
    return isinstance(cause, OSError) and not isinstance(cause, aiohttp.ClientOSError | aiohttp.ServerDisconnectedError)


_TRANSPORT = (ccxt.NetworkError, ccxt.BadResponse, asyncio.TimeoutError, ConnectionError)


def classify(exc: BaseException, *, state_changing: bool, answer: object = None) -> Classified:
    """Sort a ccxt (or transport) exception; ``state_changing`` marks place/amend/cancel/transfer requests."""
    code, message = venue_code_and_message(exc, answer)
    if isinstance(exc, ccxt.RateLimitExceeded | ccxt.DDoSProtection):
        kind = Kind.RATE_LIMITED
    elif isinstance(exc, ccxt.InvalidNonce):
        kind = Kind.CLOCK
    elif isinstance(exc, ccxt.AuthenticationError):
        kind = Kind.AUTH
    elif isinstance(exc, ccxt.OrderNotFound):
        kind = Kind.NOT_FOUND
    elif isinstance(exc, ccxt.NotSupported):
        kind = Kind.NOT_SUPPORTED
    elif isinstance(exc, _TRANSPORT):
        # RequestTimeout, ExchangeNotAvailable (dropped connection or a 5xx), bare NetworkError, a garbled answer
        if isinstance(exc, ccxt.ExchangeNotAvailable) and _not_sent(exc):
            kind = Kind.NETWORK
        else:
            kind = Kind.UNKNOWN if state_changing else Kind.NETWORK
    elif isinstance(exc, ccxt.ExchangeError):
        transport = exc.__cause__ is not None and isinstance(exc.__cause__, aiohttp.ClientError)
        kind = (Kind.UNKNOWN if state_changing else Kind.NETWORK) if transport else Kind.REJECTED
    elif isinstance(exc, ccxt.BaseError):
        kind = Kind.REJECTED
    else:  # a transport exception ccxt did not wrap
        kind = Kind.UNKNOWN if state_changing else Kind.NETWORK
    return Classified(kind, code, message)


def _int_code(code: str | None) -> int | None:
    try:
        return None if code is None else int(code)
    except ValueError:
        return None


def to_venue_error(
    exc: BaseException,
    *,
    state_changing: bool,
    action: str,
    account: str,
    order: str | None = None,
    headers: dict[str, str] | None = None,
    answer: object = None,
) -> errors.VenueError:
    """The interface's typed error for a ccxt exception, naming the action, the order and the account."""
    c = classify(exc, state_changing=state_changing, answer=answer)
    kw: dict[str, object] = {"account": account, "action": action, "order": order}
    code = _int_code(c.code)
    if c.kind is Kind.UNKNOWN:
        return errors.UnknownOutcome(f"sent, but no answer came ({type(exc).__name__}: {c.message})", **kw)
    if c.kind is Kind.NETWORK:
        return errors.NetworkError(f"not sent ({type(exc).__name__}: {c.message})", **kw)
    if c.kind is Kind.RATE_LIMITED:
        h = {k.lower(): v for k, v in (headers or {}).items()}
        retry = h.get("retry-after")
        status = 418 if "418" in c.message or "banned" in c.message.lower() else 429
        return errors.RateLimited(c.message, retry_after_s=float(retry) if retry else 60.0, status=status, **kw)
    if c.kind is Kind.CLOCK:
        return errors.ClockSkew(code, c.message, **kw)
    if c.kind is Kind.AUTH:
        return errors.AuthError(f"key refused ({c.code}): {c.message}" if c.code else f"key refused: {c.message}", **kw)
    if c.kind is Kind.NOT_FOUND:
        return errors.OrderNotFound(code, c.message, **kw)
    if c.kind is Kind.NOT_SUPPORTED:
        return errors.Unsupported(c.message, **kw)
    return errors.Rejected(code, c.message, **kw)
