"""The emulated intents of a backtest: TWAP and POV parents and managed exits, worked as the daemon works them live.

A strategy writes them like any intent (``strategies.api``: ``TWAP``, ``POV``; ``STOP_LOSS``, ``TRAILING_STOP``,
``MAX_HOLD``, ``TAKE_PROFIT``). The compiled loop (``backtest.matching.add_intents``) parks each in the order
table (``O_ACTIVE = PENDING``) and returns before its next event; ``Emulator.take`` picks them up, and while any
parent works or any exit rule is set, ``backtest.run`` steps the loop one event at a time and calls ``after(k)``
once event ``k`` is done. Its children are ordinary orders (``add_intents_called``: the same matching, fees and
risk of cash) decided at ``k``'s time, so, like a strategy's own intents, they trade from the next event on.

* **TWAP** (``stream.emulation.parents``'s twap): ``kernels.execution.split_twap`` plans the slices from the
  decision time over ``duration_s``; a slice goes out when its time has come and no child is open, for what the
  slices due so far planned less what filled (an unfilled remainder joins the next slice), as an IOC limit at the
  parent's price (0: a market child); one below the instrument's minimum waits for the next slice. When the
  schedule ends with quantity left the parent expires. Its children carry the parent's tag (``on_fill`` sees them).
* **POV** (the daemon's pov): the market's volume of the instrument's events after the decision (a bar's volume:
  the backtest's own fills are not in it, as the daemon leaves its own fills out), times the participation, is
  what it may have bought; the next child (none open) takes that less what filled, in whole lots, and the rest
  of the parent with it when what would be left is below the venue's minimum; when the duration is over with
  quantity left it expires.
* **Managed exits** (``stream.emulation.exits``): the exit rows of one event make (account, instrument)'s rule
  (``oms.config.exits.ExitRule``'s fields, in ppm). Fills that are not exits build the managed position (signed
  size, volume-weighted entry, opening size, best price since); its exits are market orders, reduce-only, tagged
  ``EXIT_TAG``: all of it when the close is ``STOP_LOSS`` against the entry, ``TRAILING_STOP`` back from the best,
  or ``MAX_HOLD`` seconds after the opening; each ``TAKE_PROFIT`` level, once, its share of the opening size.
  One exit at a time. The comparisons are exact (integers), like the daemon's decimals.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from backtest.book import RT_HI, RT_NFILLS, RT_PENDING
from backtest.codes import (
    O_ACCOUNT,
    O_ACTIVE,
    O_ARRIVE,
    O_FLAGS,
    O_INST,
    O_PRICE,
    O_QTY,
    O_RESTING,
    O_SIDE,
    O_TAG,
    O_TYPE,
)
from backtest.matching import PENDING, add_intents_called
from kernels import execution as X
from strategies import api

EXIT_TAG = api.EXIT_TAG
_SLICES_MASK = (1 << api.TWAP_SLICES_BITS) - 1
_PPM = 1_000_000


class EmulationError(ValueError):
    """An emulated intent that cannot be worked (its parameters): the run stops with this reason."""


@dataclass
class Parent:
    account: int
    inst: int
    side: int
    total: int
    price: int
    tag: int
    start_ns: int
    plan: list[tuple[int, int]]
    min_qty: int
    filled: int = 0
    next_slice: int = 0
    children: int = 0
    status: str = "working"  # working | done | expired
    algo: str = "twap"
    rate_ppm: int = 0  # pov: participation
    end_ns: int = 0  # pov: when its duration is over
    decided: int = -1  # pov: the event it was decided on (the volume counts from the next one)
    volume: int = 0  # pov: the market's volume since


@dataclass
class Rule:
    stop_loss_ppm: int = 0
    trailing_ppm: int = 0
    max_hold_ns: int = 0
    take_profit: list[tuple[int, int]] = field(default_factory=list)  # (at ppm in favour, fraction ppm)


@dataclass
class Position:
    qty: int = 0  # signed quantity units
    notional: int = 0  # sum of entry price x qty (entry = notional / |qty| at the opening fills)
    entry_qty: int = 0
    opened_size: int = 0
    opened_ns: int = 0
    best: int = 0
    levels_done: int = 0
    stopped: str = ""
    exits: int = 0  # exit orders sent


class Emulator:
    def __init__(self, tape, cfg, n_accounts: int):
        self.tape = tape
        self.inst = tape.inst
        self.cfg = cfg
        self.parents: list[Parent] = []
        self.rules: dict[tuple[int, int], Rule] = {}
        self.positions: dict[tuple[int, int], Position] = {}
        self.scanned = 0  # fills folded so far
        self.out = np.zeros((api.MAX_INTENTS, api.IN_FIELDS), dtype=np.int64)
        self.exits_sent: list[tuple[int, int, int, str]] = []  # (event, account, inst, trigger)

    @property
    def active(self) -> bool:
        return bool(self.rules) or any(p.status == "working" for p in self.parents)

    # ------------------------------------------------------------------ intents in
    def take(self, orders: np.ndarray, rt: np.ndarray) -> None:
        """The emulated intents the loop parked in ``orders``, in the order they were written."""
        rows = [s for s in range(int(rt[RT_HI])) if orders[s, O_ACTIVE] == PENDING]
        rows.sort(key=lambda s: (int(orders[s, O_RESTING]), int(orders[s, O_ARRIVE]), s))
        rules: dict[tuple[int, int, int], Rule] = {}
        for s in rows:
            row = [int(x) for x in orders[s]]
            orders[s, O_ACTIVE] = 0
            a, i, t = row[O_ACCOUNT], row[O_INST], row[O_TYPE]
            if t == api.TWAP:
                self._twap(row)
            elif t == api.POV:
                self._pov(row)
            else:
                rule = rules.setdefault((row[O_RESTING], a, i), Rule())
                self._rule_part(rule, t, row[O_PRICE], row[O_QTY])
        for (_, a, i), rule in rules.items():
            self.rules[a, i] = rule
        hi = int(rt[RT_HI])
        while hi > 0 and orders[hi - 1, O_ACTIVE] == 0:
            hi -= 1
        rt[RT_HI] = hi
        rt[RT_PENDING] = 0

    def _twap(self, row: list[int]) -> None:
        a, i, qty, price = row[O_ACCOUNT], row[O_INST], row[O_QTY], row[O_PRICE]
        slices, duration_s = row[O_FLAGS] & _SLICES_MASK, row[O_FLAGS] >> api.TWAP_SLICES_BITS
        ins = self.tape.instruments[i]
        if row[O_SIDE] not in (1, -1):
            raise EmulationError(f"twap side {row[O_SIDE]} is not BUY or SELL")
        if slices <= 0 or duration_s < 0:
            raise EmulationError(f"twap needs slices > 0 and a duration >= 0 (got {slices}, {duration_s} s)")
        if price < 0 or (price and price % ins.tick):
            raise EmulationError(f"twap price {price} is not on the tick grid of {ins.symbol}")
        least = self._min_child(i, price or int(self.tape.columns[api.EV_CLOSE, row[O_RESTING]]))
        start = row[O_ARRIVE]
        try:
            times, qtys = X.split_twap(qty, slices, start, start + duration_s * 1_000_000_000, ins.lot, least)
        except ValueError as exc:  # a quantity that is not whole lots
            raise EmulationError(f"twap of {qty} units on {ins.symbol}: {exc}") from None
        plan = [(int(t), int(q)) for t, q in zip(times, qtys, strict=True)]
        self.parents.append(Parent(a, i, row[O_SIDE], qty, price, row[O_TAG], start, plan, least))

    def _pov(self, row: list[int]) -> None:
        a, i, qty, price = row[O_ACCOUNT], row[O_INST], row[O_QTY], row[O_PRICE]
        rate, duration_s = row[O_FLAGS] & ((1 << api.POV_PPM_BITS) - 1), row[O_FLAGS] >> api.POV_PPM_BITS
        ins = self.tape.instruments[i]
        if row[O_SIDE] not in (1, -1):
            raise EmulationError(f"pov side {row[O_SIDE]} is not BUY or SELL")
        if not 0 < rate <= _PPM or duration_s <= 0:
            why = f"pov needs a participation in (0, 1e6] ppm and a duration (got {rate}, {duration_s} s)"
            raise EmulationError(why)
        if qty <= 0 or qty % ins.lot or price < 0 or (price and price % ins.tick):
            raise EmulationError(f"pov of {qty} units at {price} is not whole lots and ticks of {ins.symbol}")
        least = self._min_child(i, price or int(self.tape.columns[api.EV_CLOSE, row[O_RESTING]]))
        start = row[O_ARRIVE]
        self.parents.append(Parent(a, i, row[O_SIDE], qty, price, row[O_TAG], start, [], least, algo="pov",
                                   rate_ppm=rate, end_ns=start + duration_s * 1_000_000_000,
                                   decided=row[O_RESTING]))  # fmt: skip

    @staticmethod
    def _rule_part(rule: Rule, t: int, value: int, qty: int) -> None:
        if value <= 0:
            raise EmulationError(f"exit intent {t}: its value must be positive (got {value})")
        if t == api.STOP_LOSS:
            rule.stop_loss_ppm = value
        elif t == api.TRAILING_STOP:
            rule.trailing_ppm = value
        elif t == api.MAX_HOLD:
            rule.max_hold_ns = value * 1_000_000_000
        else:
            if not 0 < qty <= _PPM:
                raise EmulationError(f"take-profit fraction {qty} ppm must be above 0 and at most 1e6")
            if rule.take_profit and value <= rule.take_profit[-1][0]:
                raise EmulationError("take-profit levels must rise strictly")
            if sum(f for _, f in rule.take_profit) + qty > _PPM:
                raise EmulationError("take-profit fractions add up to more than the whole position")
            rule.take_profit.append((value, qty))

    def _min_child(self, i: int, ref: int) -> int:
        """The smallest child the venue takes (``stream.emulation.plans.min_child``): its minimum quantity, or its
        minimum notional at ``ref``, in whole lots."""
        ins = self.tape.instruments[i]
        q = max(ins.min_qty, ins.lot)
        if ins.min_notional and ref > 0:
            q = max(q, -(-ins.min_notional // (ref * ins.mult)))
        return -(-q // ins.lot) * ins.lot

    # ------------------------------------------------------------------ after each event
    def after(self, k: int, fills, orders, acc, pos, log, rt, counters, err) -> bool:
        """Event ``k`` is done: fold its fills, then send what the parents and exits decide; False when the loop's
        ``err`` was set (the run stops, as on any intent)."""
        self._fold(fills, int(rt[RT_NFILLS]))
        events = self.tape.columns
        i, ts, price = int(events[api.EV_INST, k]), int(events[api.EV_TS, k]), int(events[api.EV_CLOSE, k])
        n = 0
        for p in self.parents:
            if p.status != "working" or p.inst != i:
                continue
            if p.algo == "pov":
                if k > p.decided:
                    p.volume += int(events[api.EV_VOLUME, k])
                n = self._participate(p, ts, price, orders, rt, n)
            else:
                n = self._slice(p, ts, orders, rt, n)
        for (a, j), rule in self.rules.items():
            m = self.positions.get((a, j))
            if j == i and m is not None and m.qty != 0:
                n = self._exit(k, a, j, rule, m, price, ts, orders, rt, n)
        if n == 0:
            return True
        return bool(add_intents_called(self.out, n, k, ts, self.inst, self.cfg, orders, acc, pos, fills, log, rt,
                                       counters, err))  # fmt: skip

    def _fold(self, fills, nfills: int) -> None:
        for f in range(self.scanned, nfills):
            row = fills[f]
            if row[api.F_FLAGS] & api.REJECTED or row[api.F_QTY] == 0:
                continue
            a, i, tag = int(row[api.F_ACCOUNT]), int(row[api.F_INST]), int(row[api.F_TAG])
            qty = int(row[api.F_QTY]) * int(row[api.F_SIDE])
            for p in self.parents:
                if p.status == "working" and p.tag == tag and p.account == a and p.inst == i:
                    p.filled += abs(qty)
                    if p.filled >= p.total:
                        p.status = "done"
                    break
            if (a, i) in self.rules:
                self._position(a, i, tag, qty, int(row[api.F_PRICE]), int(row[api.F_TS]))
        self.scanned = nfills

    def _position(self, a: int, i: int, tag: int, qty: int, price: int, ts: int) -> None:
        m = self.positions.setdefault((a, i), Position())
        if tag == EXIT_TAG or (m.qty and (m.qty > 0) != (qty > 0)):  # an exit, or any order of the other side
            new = m.qty + qty
            m.qty = new if new * m.qty > 0 else 0
            if m.qty == 0:
                self.positions[a, i] = Position()
            return
        if m.qty == 0:
            self.positions[a, i] = m = Position(opened_ns=ts, best=price)
        m.qty += qty
        m.notional += price * abs(qty)
        m.entry_qty += abs(qty)
        if not m.levels_done:
            m.opened_size = abs(m.qty)

    def _open_children(self, a: int, i: int, tag: int, orders, rt) -> bool:
        for s in range(int(rt[RT_HI])):
            o = orders[s]
            if o[O_ACTIVE] == 1 and o[O_TAG] == tag and o[O_ACCOUNT] == a and o[O_INST] == i:
                return True
        return False

    def _emit(self, n: int, a: int, i: int, side: int, otype: int, price: int, qty: int, flags: int, tag: int) -> int:
        if n >= self.out.shape[0]:
            return n
        self.out[n] = (a, i, side, otype, price, qty, flags, tag)
        return n + 1

    def _slice(self, p: Parent, ts: int, orders, rt, n: int) -> int:
        """``stream.emulation.parents.ParentEngine._slices``: the next slice when it is due and none is open."""
        if self._open_children(p.account, p.inst, p.tag, orders, rt):
            return n
        left = p.total - p.filled
        if p.next_slice >= len(p.plan):
            p.status = "expired" if left > 0 else "done"
            return n
        if p.plan[p.next_slice][0] > ts:
            return n
        due = p.next_slice
        while due + 1 < len(p.plan) and p.plan[due + 1][0] <= ts:
            due += 1
        qty = min(left, sum(q for _, q in p.plan[: due + 1]) - p.filled)
        p.next_slice = due + 1
        if qty < p.min_qty and p.next_slice < len(p.plan):
            return n  # below the venue's minimum: it joins the next slice
        if qty <= 0:
            return n
        p.children += 1
        if p.price:
            return self._emit(n, p.account, p.inst, p.side, api.LIMIT, p.price, qty, api.IOC, p.tag)
        return self._emit(n, p.account, p.inst, p.side, api.MARKET, 0, qty, 0, p.tag)

    def _participate(self, p: Parent, ts: int, price: int, orders, rt, n: int) -> int:
        """``ParentEngine._flow``'s pov: the next child when the volume allows one and none is open."""
        if self._open_children(p.account, p.inst, p.tag, orders, rt):
            return n
        left = p.total - p.filled
        if ts >= p.end_ns:
            p.status = "expired"
            return n
        lot = self.tape.instruments[p.inst].lot
        target = p.volume * p.rate_ppm // _PPM
        qty = min(left, (target - p.filled) - (target - p.filled) % lot)
        least = self._min_child(p.inst, p.price or price)
        if qty > 0 and left - qty < least:
            qty = left  # never leave a remainder the venue would refuse
        if not (qty >= least or (qty == left and target >= p.total)) or qty <= 0:
            return n
        p.children += 1
        if p.price:
            return self._emit(n, p.account, p.inst, p.side, api.LIMIT, p.price, qty, api.IOC, p.tag)
        return self._emit(n, p.account, p.inst, p.side, api.MARKET, 0, qty, 0, p.tag)

    def _exit(self, k: int, a: int, i: int, rule: Rule, m: Position, price: int, ts: int, orders, rt, n: int) -> int:
        """``stream.emulation.exits.ExitManager._check`` and ``_step`` on the close ``price``."""
        long = m.qty > 0
        sign = 1 if long else -1
        if (long and price > m.best) or (not long and price < m.best):
            m.best = price
        if self._open_children(a, i, EXIT_TAG, orders, rt):
            return n
        if not m.stopped:
            # percent in our favour vs the entry (notional / entry_qty), exactly: sign * (price - entry) * 1e6 / entry
            favour = sign * (price * m.entry_qty - m.notional) * _PPM
            if rule.stop_loss_ppm and -favour >= rule.stop_loss_ppm * m.notional:
                m.stopped = "stop_loss"
            elif rule.trailing_ppm and sign * (m.best - price) * _PPM >= rule.trailing_ppm * m.best:
                m.stopped = "trailing_stop"
            elif rule.max_hold_ns and ts - m.opened_ns >= rule.max_hold_ns:
                m.stopped = "max_hold"
        side = -sign
        lot = self.tape.instruments[i].lot
        if m.stopped:
            m.exits += 1
            self.exits_sent.append((k, a, i, m.stopped))
            return self._emit(n, a, i, side, api.MARKET, 0, abs(m.qty), api.REDUCE_ONLY, EXIT_TAG)
        levels = rule.take_profit
        if m.levels_done < len(levels):
            at, fraction = levels[m.levels_done]
            if sign * (price * m.entry_qty - m.notional) * _PPM >= at * m.notional:
                m.levels_done += 1
                part = min(abs(m.qty), m.opened_size * fraction // _PPM // lot * lot)
                if part > 0:
                    m.exits += 1
                    self.exits_sent.append((k, a, i, f"take_profit_{m.levels_done}"))
                    return self._emit(n, a, i, side, api.MARKET, 0, part, api.REDUCE_ONLY, EXIT_TAG)
        return n

    def summary(self) -> dict:
        return {
            "parents": [
                {
                    "tag": p.tag,
                    "status": p.status,
                    "filled": p.filled,
                    "total": p.total,
                    "children": p.children,
                    "plan": list(p.plan),
                }
                for p in self.parents
            ],  # fmt: skip
            "exits": list(self.exits_sent),
        }
