"""The order status machine, for every (status, event) pair, against a matrix written out here."""

from __future__ import annotations

import pytest

from oms.model import IllegalTransition, OrderEventKind, OrderStatus, next_status
from oms.model.status import TRANSITIONS

S, E = OrderStatus, OrderEventKind
EVENTS = [E.ACCEPTED, E.REJECTED, E.PARTIAL_FILL, E.FILL, E.CANCEL_SENT, E.CANCEL_REJECTED, E.CANCELED, E.EXPIRED,
          E.AMENDED, E.AMEND_REJECTED, E.OUTCOME_UNKNOWN, E.NOT_FOUND]  # fmt: skip
ABBREV = {"PN": S.PENDING_NEW, "NEW": S.NEW, "PF": S.PARTIALLY_FILLED, "FIL": S.FILLED, "PC": S.PENDING_CANCEL,
          "CXL": S.CANCELED, "REJ": S.REJECTED, "EXP": S.EXPIRED, "UNK": S.UNKNOWN}  # fmt: skip
# "=" keeps the status, "x" raises, "L" is new (no fills) or partially filled (fills).
#                 ACC   REJ  PFILL FILL  CSENT CREJ  CXL   EXP   AMD   AMREJ UNKN  NOTF
MATRIX = """
PN               NEW   REJ   PF    FIL   PC    x     CXL   EXP   x     x     UNK   REJ
UNK              NEW   REJ   PF    FIL   PC    x     CXL   EXP   x     x     =     REJ
NEW              =     x     PF    FIL   PC    =     CXL   EXP   =     =     =     x
PF               =     x     =     FIL   PC    =     CXL   EXP   =     =     =     x
PC               =     x     =     FIL   =     L     CXL   EXP   =     =     =     CXL
FIL              =     x     =     =     =     =     x     x     =     =     =     x
CXL              =     x     =     x     =     =     =     x     =     =     =     =
EXP              =     x     =     x     =     =     x     =     =     =     =     =
REJ              x     =     x     x     =     x     x     x     x     x     =     =
"""


def _expected():
    rows = {}
    for line in MATRIX.strip().splitlines():
        name, *cells = line.split()
        assert len(cells) == len(EVENTS), line
        rows[ABBREV[name]] = dict(zip(EVENTS, cells, strict=True))
    return rows


EXPECTED = _expected()
PAIRS = [(s, e) for s in OrderStatus for e in OrderEventKind]


def test_matrix_covers_every_status_and_event():
    assert set(EXPECTED) == set(OrderStatus)
    assert set(EVENTS) == set(OrderEventKind)
    assert set(TRANSITIONS) == set(OrderStatus)


@pytest.mark.parametrize("filled", [False, True])
@pytest.mark.parametrize(("status", "event"), PAIRS, ids=[f"{s.value}-{e.value}" for s, e in PAIRS])
def test_every_pair(status, event, filled):
    cell = EXPECTED[status][event]
    if cell == "x":
        with pytest.raises(IllegalTransition, match=f"{event.value!r} cannot happen to order X1 in status"):
            next_status(status, event, filled=filled, order="X1")
        return
    got = next_status(status, event, filled=filled, order="X1")
    if cell == "=":
        assert got is status
    elif cell == "L":
        assert got is (S.PARTIALLY_FILLED if filled else S.NEW)
    else:
        assert got is ABBREV[cell]


def test_real_world_sequences():
    def run(events, filled_after=()):
        status, filled = S.PENDING_NEW, False
        for i, ev in enumerate(events):
            status = next_status(status, ev, filled=filled)
            filled = filled or ev in (E.PARTIAL_FILL, E.FILL) or i in filled_after
        return status

    # a fill after the cancel was sent wins the race; the late cancel refusal changes nothing
    assert run([E.ACCEPTED, E.CANCEL_SENT, E.PARTIAL_FILL, E.FILL, E.CANCEL_REJECTED]) is S.FILLED
    # FILLED before NEW, then the late NEW and a duplicate fill
    assert run([E.FILL, E.ACCEPTED, E.FILL]) is S.FILLED
    # a refused cancel after a partial fill returns to partially filled
    assert run([E.ACCEPTED, E.PARTIAL_FILL, E.CANCEL_SENT, E.CANCEL_REJECTED]) is S.PARTIALLY_FILLED
    # unknown outcome resolved by a query: accepted, or never arrived
    assert run([E.OUTCOME_UNKNOWN, E.ACCEPTED]) is S.NEW
    assert run([E.OUTCOME_UNKNOWN, E.NOT_FOUND]) is S.REJECTED
    # duplicates
    assert run([E.ACCEPTED, E.ACCEPTED, E.CANCELED, E.CANCELED]) is S.CANCELED
    # a terminal status is never revived
    with pytest.raises(IllegalTransition, match="'fill' cannot happen to an order in status 'canceled'"):
        run([E.ACCEPTED, E.CANCELED, E.FILL])


def test_terminal_flags():
    assert {s for s in OrderStatus if s.is_terminal} == {S.FILLED, S.CANCELED, S.REJECTED, S.EXPIRED}
    assert S.UNKNOWN.is_open and S.PENDING_CANCEL.is_open
