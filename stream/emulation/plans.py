"""Child quantities (and times) of a parent order, from the execution kernels (``kernels.execution``).

``plan(cmd, ins, total, start_ns, min_child)`` is the schedule of a twap, vwap, percent or iceberg parent:
``[(time_ns, qty_units), ...]`` summing exactly to ``total`` (an iceberg's clips all have time 0: the next
goes out when the one before has filled). It is a pure function of the command and its start time, so a
restarted daemon computes the same schedule. ``min_child`` is the smallest child the venue takes (its
minimum quantity, or its minimum notional at the reference price, whichever is larger, in whole lots).
``replan`` is the schedule after an amend: what was left then, over the slices still to come.
``parse_ppm`` reads a percentage string as parts per million, exactly or ``ValueError``.
"""

from __future__ import annotations

import hashlib
from decimal import Decimal, InvalidOperation

import numpy as np

from kernels import execution as X
from oms.model import Instrument
from oms.model.parents import ParentAlgo, PlaceParent

SCHEDULED = frozenset({ParentAlgo.TWAP, ParentAlgo.VWAP, ParentAlgo.PERCENT})


def parse_ppm(text: str | None, what: str, *, low: Decimal = Decimal(0), high: Decimal = Decimal(100)) -> int:
    """A percentage (``"0.5"`` = 0.5%) as parts per million of the whole."""
    if text is None:
        raise ValueError(f"{what} is required")
    try:
        d = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"{what} {text!r} is not a number") from None
    if not low < d <= high:
        raise ValueError(f"{what} {text} must be above {low} and at most {high} (percent)")
    units = d * 10_000
    if units != units.to_integral_value():
        raise ValueError(f"{what} {text} is finer than 0.0001%")
    return int(units)


def seed_of(parent_id: str) -> int:
    """A deterministic iceberg seed (0 <= seed < 2**63) from the parent id."""
    return int.from_bytes(hashlib.blake2b(parent_id.encode(), digest_size=8).digest(), "big") >> 1


def min_child(ins: Instrument, ref_price: int) -> int:
    """The smallest child quantity the venue accepts at ``ref_price`` (whole lots, at least one lot)."""
    q = max(ins.min_qty, ins.lot)
    if ins.min_notional and ref_price > 0:
        per_unit = ref_price * ins.mult  # money units of one quantity unit
        need = -(-ins.min_notional // per_unit)
        q = max(q, need)
    return -(-q // ins.lot) * ins.lot


def plan(cmd: PlaceParent, ins: Instrument, total: int, start_ns: int, min_qty: int) -> list[tuple[int, int]]:
    lot = ins.lot
    duration_ns = int(cmd.duration_s * 1e9)
    end_ns = start_ns + duration_ns
    if cmd.algo is ParentAlgo.TWAP:
        if cmd.slices <= 0:
            raise ValueError("twap needs slices > 0")
        times, qtys = X.split_twap(total, cmd.slices, start_ns, end_ns, lot, min_qty)
    elif cmd.algo is ParentAlgo.VWAP:
        if not cmd.profile or not any(cmd.profile):
            raise ValueError("vwap needs a profile with at least one positive weight")
        n = len(cmd.profile)
        buckets = np.array([start_ns + duration_ns * k // n for k in range(n)], dtype=np.int64)
        times, qtys = X.split_vwap(total, np.array(cmd.profile, dtype=np.int64), buckets, lot, min_qty)
    elif cmd.algo is ParentAlgo.PERCENT:
        pct = parse_ppm(cmd.chunk_pct, "chunk_pct")
        qtys = X.split_percent(total, pct, lot, min_qty)
        n = len(qtys)
        times = np.array([start_ns + duration_ns * k // max(n, 1) for k in range(n)], dtype=np.int64)
    elif cmd.algo is ParentAlgo.ICEBERG:
        if cmd.display_qty is None:
            raise ValueError("iceberg needs display_qty")
        display = ins.qty(cmd.display_qty, "display_qty")
        variance = parse_ppm(cmd.variance_pct, "variance_pct", high=Decimal(99)) if cmd.variance_pct else 0
        qtys = X.split_iceberg(total, display, variance, seed_of(cmd.parent_id or ""), lot, min_qty)
        times = np.zeros(len(qtys), dtype=np.int64)
    else:
        return []
    return [(int(t), int(q)) for t, q in zip(times, qtys, strict=True) if q > 0]


def replan(
    cmd: PlaceParent, ins: Instrument, total: int, start_ns: int, min_qty: int, from_ns: int, base: int
) -> list[tuple[int, int]]:
    """The schedule of a parent amended at ``from_ns`` with ``base`` units filled: ``total - base`` over the
    slices of the amended command's whole schedule (``plan``) that come after ``from_ns``, in proportion to their
    planned quantities (``kernels.execution.allocate``; one slice at ``from_ns`` when none is left to come);
    an iceberg's clips are split again from what is left. Sums exactly to ``total - base``; a pure function of
    its arguments, so a restart computes the same."""
    left = total - base
    if left <= 0:
        return []
    if cmd.algo is ParentAlgo.ICEBERG:
        return plan(cmd, ins, left, start_ns, min_qty)
    later = [(t, q) for t, q in plan(cmd, ins, total, start_ns, min_qty) if t > from_ns]
    if not later:
        return [(from_ns, left)]
    qtys = X.allocate(left, np.array([q for _, q in later], dtype=np.int64), ins.lot, min_qty)
    return [(t, int(q)) for (t, _), q in zip(later, qtys, strict=True) if q > 0]
