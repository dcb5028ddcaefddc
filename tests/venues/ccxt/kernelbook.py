"""Feed the connector's BookSnapshot/DepthDiff messages into the book kernel, as the daemon does."""

from __future__ import annotations

import numpy as np

from kernels import book as kb
from oms.model import BookSnapshot, DepthDiff, Instrument


class KernelBook:
    """One book in the kernel's arrays, fed by model messages; results of every diff are kept."""

    def __init__(self, inst: Instrument, depth: int = 64) -> None:
        self.inst = inst
        self.lv, self.meta = kb.new_books(1, depth)
        self.results: list[int] = []
        self.snapshots = 0

    def apply(self, msg: BookSnapshot | DepthDiff) -> int:
        inst = self.inst
        if isinstance(msg, BookSnapshot):
            bp = np.array([inst.price(p) for p, _ in msg.bids], dtype=np.int64)
            bq = np.array([inst.qty(q) for _, q in msg.bids], dtype=np.int64)
            ap = np.array([inst.price(p) for p, _ in msg.asks], dtype=np.int64)
            aq = np.array([inst.qty(q) for _, q in msg.asks], dtype=np.int64)
            kb.apply_snapshot(self.lv, self.meta, 0, bp, bq, ap, aq, msg.last_update_id)
            self.snapshots += 1
            return kb.APPLIED
        sides = [kb.BID] * len(msg.bids) + [kb.ASK] * len(msg.asks)
        rows = list(msg.bids) + list(msg.asks)
        r = kb.apply_diff(
            self.lv,
            self.meta,
            0,
            msg.first_update_id,
            msg.last_update_id,
            -1 if msg.prev_update_id is None else msg.prev_update_id,
            np.array(sides, dtype=np.int64),
            np.array([inst.price(p) for p, _ in rows], dtype=np.int64),
            np.array([inst.qty(q) for _, q in rows], dtype=np.int64),
        )
        self.results.append(int(r))
        return int(r)

    @property
    def last_update_id(self) -> int:
        return int(self.meta[0, kb.M_LAST_ID])

    def top(self, n: int) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        """The best ``n`` levels per side as decimal strings, best first."""
        out = []
        for side in (kb.BID, kb.ASK):
            px, qt = kb.levels(self.lv, self.meta, 0, side)
            out.append(
                [(self.inst.price_str(int(p)), self.inst.qty_str(int(q))) for p, q in zip(px[:n], qt[:n], strict=True)]
            )
        return out[0], out[1]
