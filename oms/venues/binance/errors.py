"""Binance failures -> the interface's typed errors, each naming the account, the action and the order.

``failed to cancel order oms-7f3k for binance/sub_mm: venue rejected (-2011): Unknown order sent.``
"""

from __future__ import annotations

from oms.venues.binance.transport import NotSent, SentNoAnswer, VenueAnswer
from oms.venues.errors import (
    AuthError,
    ClockSkew,
    NetworkError,
    OrderNotFound,
    RateLimited,
    Rejected,
    UnknownOutcome,
    VenueError,
)

AUTH_CODES = frozenset({-1002, -1022, -2014, -2015, -2008})
NOT_FOUND_CODES = frozenset({-2013, -2011})
RATE_CODES = frozenset({-1003, -1015, -1034})
CLOCK_SKEW = -1021


def to_venue_error(exc: Exception, *, account: str, action: str, order: str | None = None) -> VenueError:
    """The typed error for a transport failure (``VenueAnswer``, ``SentNoAnswer``, ``NotSent``)."""
    kw = {"account": account, "action": action, "order": order}
    if isinstance(exc, VenueAnswer):
        if exc.status in (418, 429) or exc.code in RATE_CODES:
            status = exc.status if exc.status in (418, 429) else 429
            return RateLimited(
                f"venue said ({exc.code}): {exc.msg}",
                retry_after_s=exc.retry_after_s if exc.retry_after_s is not None else 1.0,
                status=status,
                code=exc.code,
                venue_message=exc.msg,
                **kw,
            )
        if exc.code == CLOCK_SKEW:
            return ClockSkew(exc.code, exc.msg, **kw)
        if exc.code in AUTH_CODES or exc.status == 401:
            return AuthError(f"key refused ({exc.code}): {exc.msg}", code=exc.code, venue_message=exc.msg, **kw)
        if exc.code in NOT_FOUND_CODES:
            return OrderNotFound(exc.code, exc.msg, **kw)
        return Rejected(exc.code, exc.msg, **kw)
    if isinstance(exc, SentNoAnswer):
        return UnknownOutcome(f"sent over {exc.path}, no answer ({exc.cause}); resolve by client order id", **kw)
    if isinstance(exc, NotSent):
        return NetworkError(f"not sent: {exc}", **kw)
    return VenueError(f"{type(exc).__name__}: {exc}", **kw)
