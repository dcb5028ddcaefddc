"""Typed venue errors. Each names the operation, the order (if any) and the account, and why:

    failed to cancel order oms-7f3k... for binance/sub_mm: venue rejected (-2011): Unknown order sent.

The classes say what a caller may do next:

* ``Rejected``: the venue answered and refused (``code`` and ``venue_message`` are the venue's own, e.g.
  Binance ``-2010``). Nothing happened; retrying the same request gets the same answer.
* ``UnknownOutcome``: the request was sent and its answer never came (socket dropped, timeout after
  sending). The order may or may not exist: resolve it by ``ExecutionClient.query_order`` on its client
  order id; never re-send it blindly.
* ``RateLimited``: the venue said 429 (slow down) or 418 (IP banned); ``retry_after_s`` is the venue's
  ``Retry-After``, and the limiter has already made every account on that IP back off. ``status`` 0: the
  account's own budget would have had to wait longer than its ``max_wait_s``.
* ``AuthError``: bad or revoked key, missing permission, bad signature (Binance -2014, -2015, -1022, 401).
* ``NetworkError``: the request certainly did not reach the venue (connect refused, DNS, TLS, socket closed
  before sending): safe to retry, also for non-idempotent calls.
* ``ClockSkew``: the venue refused the timestamp (Binance -1021). The connector resyncs its server-time
  offset and retries idempotent calls itself; this reaches a caller only for the others.
* ``OrderNotFound``: a query or cancel found no such order (Binance -2013, -2011 "Unknown order").
* ``Unsupported``: the venue cannot do this (``Capabilities`` says so); the daemon emulates or refuses.
"""

from __future__ import annotations


class VenueError(Exception):
    """Base of every venue error; ``str()`` is the full sentence, the fields are for code."""

    action = "call"

    def __init__(
        self,
        reason: str,
        *,
        account: str = "",
        action: str | None = None,
        order: str | None = None,
        code: int | None = None,
        venue_message: str = "",
    ):
        self.reason = reason
        self.account = account
        self.action = action or type(self).action
        self.order = order
        self.code = code
        self.venue_message = venue_message
        super().__init__(self._sentence())

    def _sentence(self) -> str:
        what = f"{self.action} order {self.order}" if self.order else self.action
        where = f" for {self.account}" if self.account else ""
        return f"failed to {what}{where}: {self.reason}"


class Rejected(VenueError):
    """The venue refused the request with its own code and message."""

    def __init__(self, code: int | None, venue_message: str, **kw):
        reason = f"venue rejected ({code}): {venue_message}" if code is not None else f"venue rejected: {venue_message}"
        super().__init__(reason, code=code, venue_message=venue_message, **kw)


class OrderNotFound(Rejected):
    """The venue has no order with this id (query or cancel)."""


class ClockSkew(Rejected):
    """The request's timestamp was outside the venue's window (Binance -1021)."""


class AuthError(VenueError):
    """The key was refused: invalid, revoked, lacking a permission, or the signature was wrong."""


class RateLimited(VenueError):
    """The venue answered 429 or 418; wait ``retry_after_s`` seconds (the venue's Retry-After)."""

    def __init__(self, reason: str, *, retry_after_s: float, status: int = 429, **kw):
        self.retry_after_s = float(retry_after_s)
        self.status = status
        http = f"HTTP {status}, " if status else ""  # 0: our own budget refused to wait that long
        super().__init__(f"{reason} ({http}retry after {self.retry_after_s:g} s)", **kw)


class UnknownOutcome(VenueError):
    """Sent, but the answer never came: resolve by client order id, never re-send."""


class NetworkError(VenueError):
    """The request did not reach the venue (safe to retry)."""


class Unsupported(VenueError):
    """The venue does not offer this operation (see ``Capabilities``)."""
