"""The order status machine: what each event does to each status, and what it may not do.

Events are what the platform learns about an order, from the venue (an execution report, a REST answer,
a query) or from itself (it sent a cancel; a request's answer never came). ``next_status(status, event,
filled=...)`` returns the new status or raises ``IllegalTransition`` naming both. ``filled`` says whether the
order has any fill so far: it decides where a refused cancel returns to (``new`` or ``partially_filled``).

The real world is in the table, not around it:

* a fill after a cancel was sent: a partial fill keeps ``pending_cancel``; the last fill wins the race
  (``filled``), and a cancel answer arriving after that is stale (``canceled`` on ``filled`` is illegal,
  ``cancel_rejected`` on ``filled`` changes nothing);
* FILLED before NEW (the user stream and the REST answer race): a fill moves ``pending_new`` straight on,
  and the late ``accepted`` changes nothing;
* duplicate events (a reconnect replays, REST and stream both report) leave the status as it is;
* a late partial fill after ``canceled``/``expired`` (an IOC's fills, a fill reported by REST after the
  stream's cancel) keeps the terminal status: the fill still counts for positions;
* an unknown outcome (``outcome_unknown``): the request was sent, the answer never came. The order is
  ``unknown`` until a query by client order id answers: any venue status resolves it, and ``not_found``
  means it never reached the book (``rejected``);
* ``not_found`` after a cancel was sent ends the order as ``canceled``: it is not on the book and has no
  fills (Binance keeps orders with fills), whether the cancel worked or the order never arrived;
* ``not_found`` on a ``canceled`` or ``expired`` order is normal: Binance forgets those without fills after a
  while.

Everything else raises: a terminal status never becomes another terminal status or a live one.
"""

from __future__ import annotations

from enum import StrEnum

from oms.model.enums import OrderStatus


class OrderEventKind(StrEnum):
    """What happened to an order (the ``kind`` of an ``OrderEvent``)."""

    ACCEPTED = "accepted"  # the venue has it on the book (Binance NEW)
    REJECTED = "rejected"  # the venue refused the order
    PARTIAL_FILL = "partial_fill"  # a fill that leaves quantity open
    FILL = "fill"  # the fill that completes the order
    CANCEL_SENT = "cancel_sent"  # we sent a cancel
    CANCEL_REJECTED = "cancel_rejected"  # the venue refused the cancel (the order stays live)
    CANCELED = "canceled"  # the venue cancelled it (ours, or its own: STP, reduce-only, ...)
    EXPIRED = "expired"  # time in force ran out (IOC/FOK remainder, GTD), or the venue expired it
    AMENDED = "amended"  # price or quantity changed in place
    AMEND_REJECTED = "amend_rejected"  # the venue refused the amend (the order is unchanged)
    OUTCOME_UNKNOWN = "outcome_unknown"  # a request was sent and its answer never came
    NOT_FOUND = "not_found"  # a query by client order id: the venue has no such order


class IllegalTransition(ValueError):
    """An event that cannot happen to an order in its current status (the state is out of sync)."""

    def __init__(self, status: OrderStatus, event: OrderEventKind, order: str = ""):
        self.status = status
        self.event = event
        self.order = order
        what = f"order {order}" if order else "an order"
        super().__init__(f"illegal transition: {event.value!r} cannot happen to {what} in status {status.value!r}")


class _Live:
    """Target of a refused cancel: back to ``new``, or ``partially_filled`` if the order has fills."""

    def __repr__(self) -> str:
        return "LIVE"


LIVE = _Live()

S = OrderStatus
E = OrderEventKind
_SAME = None  # the status does not change

# (status, event) -> new status; None keeps the status; LIVE resolves by ``filled``. Missing pairs raise.
_VENUE_ANSWERS = {
    E.ACCEPTED: S.NEW,
    E.REJECTED: S.REJECTED,
    E.PARTIAL_FILL: S.PARTIALLY_FILLED,
    E.FILL: S.FILLED,
    E.CANCELED: S.CANCELED,
    E.EXPIRED: S.EXPIRED,
}
_STALE = {
    e: _SAME
    for e in (
        E.ACCEPTED,
        E.PARTIAL_FILL,
        E.CANCEL_SENT,
        E.CANCEL_REJECTED,
        E.AMENDED,
        E.AMEND_REJECTED,
        E.OUTCOME_UNKNOWN,
    )
}
TRANSITIONS: dict[OrderStatus, dict[OrderEventKind, OrderStatus | _Live | None]] = {
    S.PENDING_NEW: {
        **_VENUE_ANSWERS,
        E.CANCEL_SENT: S.PENDING_CANCEL,
        E.OUTCOME_UNKNOWN: S.UNKNOWN,
        E.NOT_FOUND: S.REJECTED,
    },
    S.UNKNOWN: {
        **_VENUE_ANSWERS,
        E.CANCEL_SENT: S.PENDING_CANCEL,
        E.OUTCOME_UNKNOWN: _SAME,
        E.NOT_FOUND: S.REJECTED,
    },
    S.NEW: {
        E.ACCEPTED: _SAME,
        E.PARTIAL_FILL: S.PARTIALLY_FILLED,
        E.FILL: S.FILLED,
        E.CANCEL_SENT: S.PENDING_CANCEL,
        E.CANCEL_REJECTED: _SAME,
        E.CANCELED: S.CANCELED,
        E.EXPIRED: S.EXPIRED,
        E.AMENDED: _SAME,
        E.AMEND_REJECTED: _SAME,
        E.OUTCOME_UNKNOWN: _SAME,  # an amend whose answer never came: the order is still live
    },
    S.PARTIALLY_FILLED: {
        E.ACCEPTED: _SAME,
        E.PARTIAL_FILL: _SAME,
        E.FILL: S.FILLED,
        E.CANCEL_SENT: S.PENDING_CANCEL,
        E.CANCEL_REJECTED: _SAME,
        E.CANCELED: S.CANCELED,
        E.EXPIRED: S.EXPIRED,
        E.AMENDED: _SAME,
        E.AMEND_REJECTED: _SAME,
        E.OUTCOME_UNKNOWN: _SAME,
    },
    S.PENDING_CANCEL: {
        E.ACCEPTED: _SAME,
        E.PARTIAL_FILL: _SAME,
        E.FILL: S.FILLED,
        E.CANCEL_SENT: _SAME,
        E.CANCEL_REJECTED: LIVE,
        E.CANCELED: S.CANCELED,
        E.EXPIRED: S.EXPIRED,
        E.AMENDED: _SAME,
        E.AMEND_REJECTED: _SAME,
        E.OUTCOME_UNKNOWN: _SAME,
        E.NOT_FOUND: S.CANCELED,  # gone without fills: cancelled (and forgotten), or never placed
    },
    # Terminal statuses absorb what arrives late about them (stale answers, replays, our own cancel that
    # crossed the fill), and refuse what would revive or re-close them.
    S.FILLED: {**_STALE, E.FILL: _SAME},
    S.CANCELED: {**_STALE, E.CANCELED: _SAME, E.NOT_FOUND: _SAME},
    S.EXPIRED: {**_STALE, E.EXPIRED: _SAME, E.NOT_FOUND: _SAME},
    S.REJECTED: {E.REJECTED: _SAME, E.NOT_FOUND: _SAME, E.CANCEL_SENT: _SAME, E.OUTCOME_UNKNOWN: _SAME},
}


def next_status(status: OrderStatus, event: OrderEventKind, *, filled: bool = False, order: str = "") -> OrderStatus:
    """The status after ``event``; raises ``IllegalTransition`` (naming ``order``) when it cannot happen."""
    row = TRANSITIONS[status]
    if event not in row:
        raise IllegalTransition(status, event, order)
    target = row[event]
    if target is None:
        return status
    if target is LIVE:
        return S.PARTIALLY_FILLED if filled else S.NEW
    return target  # type: ignore[return-value]


def is_legal(status: OrderStatus, event: OrderEventKind) -> bool:
    return event in TRANSITIONS[status]
