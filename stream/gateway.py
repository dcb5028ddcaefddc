"""The order gateway: every command passes here, synchronously, between its arrival and the venue.

``OrderGateway`` turns commands into decisions and venue events into state, with no I/O and no awaits (the
daemon's asyncio edges do the sending and publishing):

* ``place(cmd)``: the client order id (derived from the command when it has none, so a retry or a restart
  yields the same id), idempotency (a known id is answered with its order's status and never sent again;
  a finished order is known for ``daemon.finished_order_retention_s`` and among the last
  ``finished_orders_max``, ``stream.orders``, as a restart knows only the orders still open),
  the account and instrument (unknown ones refused), exact decimal conversion to kernel units (an over-precise
  price or quantity refused), then the risk kernel. A rejection is an ``OrderEvent`` with the kernel's reason
  and changes nothing; an accepted order holds a reservation (an open-order slot and its quantity) and is
  handed back to be sent.
* ``cancel(cmd)`` / ``cancel_all(cmd)``: mark the open orders ``pending_cancel`` and hand the cancels back.
* ``amend(cmd)``: an open order's new quantity and/or price, through the risk kernel unless it only lowers
  the quantity (``stream.amend``), handed back to be sent; where the venue amends only a lower quantity in
  place (``amends_qty_only``: Binance Spot), anything else becomes a cancel-replace (``stream.replace``).
* ``on_order_event(ev)``: a venue event through the status machine; a new fill goes into the positions
  kernel (once, by trade id) and frees its share of the reservation; a finished order frees the rest. Events
  for unknown orders, illegal transitions and fills the kernel refuses are counted by reason and logged, and
  the gateway carries on.
* ``handle_request(data, account)``: a NATS ``CommandRequest`` in, its ``CommandReply`` out. Since the
  request's commands were decoded here, a derived client order id is written into the command itself
  (``place`` copies the caller's). A run of more than ``_SMALL_RUN`` placements goes through the risk kernel
  in one call, decided column-wise: its ids first, then the common case (new id, known route, priced limit
  order) inline and every other command through ``_prepare``; a shorter run (a quoting loop's two quotes) is
  placed one by one, which costs less than building the columns. The decisions are those of ``place`` one by
  one either way (tests/stream/test_gateway.py); the cost per order is about 4.6 us of CPU at 20 per request
  with the collector on (tests/bench/test_gateway_bench.py prints where it goes). The daemon's own NATS path
  (``stream.commands``) does not batch: each placement there is decided after the venue answered the one
  before it.

Risk rejections carry the kernel's reason code (positive: ``kernels.codes``) in ``OrderEvent.code``; venue
rejections carry the venue's code (Binance's are negative), so the two never collide.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import msgspec
import numpy as np

from kernels import codes as C
from kernels.positions import apply_fill
from kernels.risk import (
    O_ACCOUNT,
    O_FIELDS,
    O_INSTRUMENT,
    O_POS_SIDE,
    O_QTY,
    O_SIDE,
    RiskGate,
    check_orders,
)
from kernels.state import A_OPEN_ORDERS, P_OPEN_BUY, P_OPEN_SELL, AccountIndex, KernelState, slot_of
from oms.model import (
    AccountId,
    AmendOrder,
    CancelAll,
    CancelOrder,
    ClientOrderId,
    Fill,
    IllegalTransition,
    Instrument,
    Order,
    OrderEvent,
    OrderEventKind,
    OrderStatus,
    OrderType,
    PlaceOrder,
)
from oms.model.commands import CommandError, CommandReply, CommandResult, parse_request
from oms.model.units import round_to_units, to_decimal
from stream import amend, replace
from stream.instruments import InstrumentTable, UnknownInstrument
from stream.orders import NO_TRADES, OrderRecord, OrderTracker

log = logging.getLogger("stream.gateway")

_STOP_CODES = frozenset(C.ORDER_TYPE_CODES[t] for t in (OrderType.STOP_MARKET, OrderType.TAKE_PROFIT_MARKET))
_LIMIT_CODES = frozenset(
    C.ORDER_TYPE_CODES[t]
    for t in (OrderType.LIMIT, OrderType.LIMIT_MAKER, OrderType.STOP_LIMIT, OrderType.TAKE_PROFIT_LIMIT)
)
# Kernel codes of the gated order types (a StrEnum member hashes as its value: a command built in Python with
# plain strings finds its codes too).
_ORDER_TYPE = {t: c for t, c in C.ORDER_TYPE_CODES.items() if c <= C.MAX_ORDER_TYPE}
_SIDE = C.SIDE_CODES
_POS_SIDE = C.POSITION_SIDE_CODES
_PENDING_NEW = OrderStatus.PENDING_NEW
_READY = object()  # _prepare: the order goes on to the risk kernel
_replace = msgspec.structs.replace
_force_setattr = msgspec.structs.force_setattr
# What placing one command came to: (the reply's result, the command to send or None, the event or None).
_Outcome = tuple[CommandResult, PlaceOrder | None, OrderEvent | None]


def _decision(outcome: _Outcome) -> Decision:
    result, send, event = outcome
    return Decision(result, [] if event is None else [event], [] if send is None else [send])


def _cancellable(rec: OrderRecord) -> bool:
    """Whether a cancel of ``rec`` is to be sent: it is open and no cancel of it is pending."""
    return rec.is_open and rec.status is not OrderStatus.PENDING_CANCEL


_SMALL_RUN = 4  # up to this many orders are checked one call each (``_check``; each reserves, as the batch)


class _Refusal(Exception):
    def __init__(self, code: str, reason: str):
        self.code, self.reason = code, reason


@dataclass(slots=True)
class Decision:
    """The gateway's answer to one command: the reply, the events to publish, what to send to the venue."""

    result: CommandResult
    events: list[OrderEvent] = field(default_factory=list)
    send: list[PlaceOrder | CancelOrder | AmendOrder | replace.ReplaceOrder] = field(default_factory=list)


class OrderGateway:
    """Commands -> risk -> state machine, over one ``KernelState`` shared with the positions kernel."""

    def __init__(
        self,
        state: KernelState,
        accounts: AccountIndex,
        instruments: InstrumentTable,
        *,
        clock: Callable[[], int] = time.time_ns,
        id_prefix: str = "oms",
    ):
        self.state = state
        self.accounts = accounts
        self.instruments = instruments
        self.gate = RiskGate(state.blocks)
        self._blocks = tuple(state.blocks)
        self.clock = clock
        self.id_prefix = id_prefix
        self.orders = OrderTracker()
        self.rejections: Counter[str] = Counter()  # by code: metrics read it
        self.dropped: Counter[str] = Counter()  # venue events not applied, by reason
        self.accepted = 0
        # Portfolio guards (stream.risk.guards.PortfolioGuards.check): (a, i, side, pos_side, qty) ->
        # (qty to send, None) or (qty, (code, reason)); tables computed on a timer, read per order. None: off.
        self.guard: Callable[[int, int, int, int, int], tuple[int, tuple[str, str] | None]] | None = None
        # Every new fill of the daemon's orders, once (a, i, side, price, qty, fee in kernel units), whether or
        # not it moves the positions kernel: the circuit breaker's trade book (stream.risk.tradebook). None: off.
        self.on_fill: Callable[[int, int, int, int, int, int], None] | None = None
        # USDT limits of instruments quoted in another asset (stream.risk.quotes.QuoteLimits.check): (a, i, side,
        # otype, price, qty, reduce_only, pos_side) -> None or a refusal (code, reason), before the kernel.
        self.quote_check: Callable[[int, int, int, int, int, int, bool, int], tuple[str, str] | None] | None = None
        self.amends: dict[str, amend.PendingAmend] = {}  # client order id -> amend sent, not yet answered
        self.orders.forget_listeners.append(lambda coid, _rec: self.amends.pop(coid, None))  # (stream.orders)
        # (account, symbol) -> True where the venue amends only a lower quantity in place (Binance Spot): any
        # other amend there is a cancel-replace (stream.replace). None: every amend goes to the venue as it is.
        self.amends_qty_only: Callable[[str, str], bool] | None = None
        self._routes: dict[tuple[str, str], tuple[int, int]] = {}
        self._account_numbers: dict[str, int] = {}  # "binance/sub_mm" -> kernel account (they never change)
        self._derive = ClientOrderId.deriver(id_prefix, PlaceOrder)  # (the prefix is checked here, once)

    # ------------------------------------------------------------------ commands
    def place(self, cmd: PlaceOrder) -> Decision:
        return _decision(self._place_run((cmd,))[0])

    def place_batch(self, cmds: Sequence[PlaceOrder]) -> list[Decision]:
        """Several placements, in order, with one risk-kernel call (``check_orders``) for all of them.

        The same decisions as ``place`` one by one: the kernel checks the orders in sequence, each accepted
        one reserving before the next is checked, and a command whose id repeats one earlier in the batch is
        answered as that known order."""
        return [_decision(o) for o in self._place_run(cmds)]

    def _place_run(self, cmds: Sequence[PlaceOrder], owned: bool = False) -> list[_Outcome]:
        """The outcomes of placing ``cmds`` in order: everything before the kernel per command, then one kernel
        call for those still standing (split where an id repeats one pending in the same call).

        Column-wise: the ids of the whole run first, then one pass whose common case (a new id, a known route,
        a priced limit order, units in the instrument's caches) is inline, and anything else (a known order, an
        unknown account or symbol, another order type, a bad number) through ``_prepare``, in the same order.

        ``owned``: the commands were decoded here and nobody else holds them (``handle_request``), so a derived
        client order id is written into the command itself rather than into a copy."""
        if len(cmds) <= _SMALL_RUN:  # a few orders: one by one beats building the run's columns
            return [self._place_one(cmd, owned) for cmd in cmds]
        cmds, coids = self._ids(cmds, owned)
        n = len(cmds)
        out: list = [None] * n
        ks: list[int] = []  # where in ``cmds`` the orders in ``flat`` are
        flat: list[int] = []  # their kernel fields, O_FIELDS each
        notes: dict[int, str] = {}  # where a quantity was scaled: why
        ids: set[str] = set()
        now = self.clock()
        known = self.orders.get
        routes = self._routes
        table = self.instruments.instrument
        guard, quote_check = self.guard, self.quote_check
        units: dict[int, tuple] = {}  # this run's instruments: i -> (instrument, its qty and price caches' get)
        prepare = self._prepare
        for k in range(n):
            cmd, coid = cmds[k], coids[k]
            if coid in ids:  # the same id twice in one batch: decide the first ones before looking again
                self._check(ks, flat, notes, cmds, coids, out, now)
                ids.clear()
            route = routes.get((cmd.account, cmd.symbol))
            px = cmd.price
            otype = _ORDER_TYPE.get(cmd.order_type)
            if route is None or px is None or known(coid) is not None or otype not in _LIMIT_CODES:
                p = prepare(cmd, now, owned)  # the exceptions, one by one
                if p[0] is not _READY:
                    out[k] = p
                    continue
                _, cmds[k], _, _, _, _, _, _, note, kernel = p
                if note:
                    notes[k] = note
                flat += kernel
            else:
                a, i = route
                u = units.get(i)
                if u is None:
                    ins = table(i)[1]  # by number: filters updated later are seen
                    u = units[i] = (ins, ins._qcache.get, ins._pcache.get)
                ins, qget, pget = u
                cq = cmd.qty
                qty = qget(cq) if type(cq) is str else None
                price = pget(px) if type(px) is str else None
                if qty is None or price is None:
                    try:
                        qty, price = ins.qty(cq), ins.price(px)
                    except ValueError as exc:
                        out[k] = self._refuse(cmd, "bad_number", str(exc))
                        continue
                side, ps = _SIDE[cmd.side], _POS_SIDE[cmd.position_side]
                ro = cmd.reduce_only
                if guard is not None and not ro:  # portfolio guards: tables from a timer, read here
                    guarded, refusal = guard(a, i, side, ps, qty)
                    if refusal is not None:
                        out[k] = self._refuse(cmd, *refusal)
                        continue
                    if guarded != qty:
                        scaled = ins.qty_str(guarded)
                        notes[k] = f"qty scaled from {cq} to {scaled} by the volatility guard"
                        qty = guarded
                        cmd = cmds[k] = _replace(cmd, qty=scaled)
                if quote_check is not None and (refusal := quote_check(a, i, side, otype, price, qty, ro,
                                                                       ps)) is not None:  # fmt: skip
                    out[k] = self._refuse(cmd, *refusal)
                    continue
                flat += (a, i, side, otype, price, qty, 1 if ro else 0, ps, now)  # O_ACCOUNT ... O_TIME_NS
            ks.append(k)
            ids.add(coid)
        self._check(ks, flat, notes, cmds, coids, out, now)
        return out

    def _place_one(self, cmd: PlaceOrder, owned: bool) -> _Outcome:
        """A run of one: ``_prepare`` and the kernel's single-order check, without the run's columns."""
        now = self.clock()
        p = self._prepare(cmd, now, owned)
        if p[0] is not _READY:
            return p  # type: ignore[return-value]
        _, cmd, coid, a, i, side, ps, qty, note, kernel = p
        reason = self.gate.check(*kernel)
        if reason:
            return self._refuse(cmd, f"risk:{C.reason_name(reason)}", C.reason_message(reason), reason)
        self.orders.add(OrderRecord(cmd, a, i, side, ps, qty, _PENDING_NEW, 0, True, None, NO_TRADES, now), coid)
        self.accepted += 1
        result = (CommandResult(ok=True, client_order_id=coid, status=_PENDING_NEW, reason=note) if note
                  else CommandResult(ok=True, client_order_id=coid, status=_PENDING_NEW))  # fmt: skip
        return (result, cmd, None)

    def _ids(self, cmds: Sequence[PlaceOrder], owned: bool) -> tuple[list[PlaceOrder], list[str]]:
        """The run's commands, each with its client order id (derived where it has none: into the command itself
        when ``owned``, else into a copy), in a list of their own, and the ids."""
        derive = self._derive
        if not owned:
            cmds = [cmd if cmd.client_order_id is not None else _replace(cmd, client_order_id=derive(cmd))
                    for cmd in cmds]  # fmt: skip
            return cmds, [cmd.client_order_id for cmd in cmds]  # type: ignore[misc]
        coids = []
        for cmd in cmds:
            coid = cmd.client_order_id
            if coid is None:
                coid = derive(cmd)
                _force_setattr(cmd, "client_order_id", coid)
            coids.append(coid)
        return list(cmds), coids  # (a command the guard scales is replaced in this list by its scaled copy)

    def _prepare(self, cmd: PlaceOrder, now: int, owned: bool = False) -> tuple:
        """Everything before the risk kernel, for one order: the id, idempotency, route, order type, units and
        the portfolio guards. Returns an outcome (a refusal, or the answer for a known order), or ``(_READY, cmd,
        coid, a, i, side, pos_side, qty, note, kernel)`` with ``kernel`` the order's O_FIELDS kernel fields
        (``note``: why the quantity was scaled, or "")."""
        coid = cmd.client_order_id
        if coid is None:
            coid = self._derive(cmd)
            if owned:
                _force_setattr(cmd, "client_order_id", coid)
            else:
                cmd = _replace(cmd, client_order_id=coid)
        known = self.orders.get(coid)
        if known is not None:  # a retry or a replay: answer, never send twice
            return (CommandResult(ok=True, client_order_id=coid, status=known.status), None, None)
        route = self._routes.get((cmd.account, cmd.symbol))
        if route is None:
            try:
                route = self._route(cmd.account, cmd.symbol)
            except _Refusal as r:
                return self._refuse(cmd, r.code, r.reason)
        a, i = route
        ins = self.instruments.instrument(i)[1]  # by number: filters updated later are seen
        ot = cmd.order_type
        otype = _ORDER_TYPE.get(ot)
        if otype is None:
            return self._refuse(cmd, "unsupported_order_type", f"{ot} orders are not gated yet")
        try:
            qty = ins.qty(cmd.qty)
            px = cmd.price
            price = ins.price(px) if px is not None and otype in _LIMIT_CODES else self._price(cmd, ins, otype)
        except ValueError as exc:
            return self._refuse(cmd, "bad_number", str(exc))
        side, ps = _SIDE[cmd.side], _POS_SIDE[cmd.position_side]
        note = ""
        if self.guard is not None and not cmd.reduce_only:  # portfolio guards: tables from a timer, read here
            guarded, refusal = self.guard(a, i, side, ps, qty)
            if refusal is not None:
                return self._refuse(cmd, *refusal)
            if guarded != qty:
                scaled = ins.qty_str(guarded)
                note = f"qty scaled from {cmd.qty} to {scaled} by the volatility guard"
                qty, cmd = guarded, _replace(cmd, qty=scaled)
        if self.quote_check is not None and (refusal := self.quote_check(a, i, side, otype, price, qty,
                                                                        cmd.reduce_only, ps)) is not None:  # fmt: skip
            return self._refuse(cmd, *refusal)
        kernel = (a, i, side, otype, price, qty, 1 if cmd.reduce_only else 0, ps, now)  # O_ACCOUNT ... O_TIME_NS
        return (_READY, cmd, coid, a, i, side, ps, qty, note, kernel)

    def _check(self, ks: list[int], flat: list[int], notes: dict[int, str], cmds: list[PlaceOrder],
               coids: list[str], out: list, now: int) -> None:  # fmt: skip
        """The risk kernel over the prepared orders (one call), their outcomes into ``out`` at ``ks``."""
        n = len(ks)
        if not n:
            return
        if n <= _SMALL_RUN:  # a few orders: one compiled call each beats building the kernel's arrays
            check = self.gate.check
            reasons = [check(*flat[j : j + O_FIELDS]) for j in range(0, n * O_FIELDS, O_FIELDS)]
            cols = [flat[f::O_FIELDS] for f in range(O_FIELDS)]
        else:
            orders = np.array(flat, dtype=np.int64).reshape(n, O_FIELDS).T.copy()
            res = np.empty(n, dtype=np.int64)
            check_orders(*self._blocks, orders, res)
            reasons = res.tolist()
            cols = orders.tolist()
        new_ids, new_recs = [], []
        for k, a, i, side, ps, qty, reason in zip(ks, cols[O_ACCOUNT], cols[O_INSTRUMENT], cols[O_SIDE],
                                                  cols[O_POS_SIDE], cols[O_QTY], reasons, strict=True):  # fmt: skip
            cmd = cmds[k]
            if reason:
                out[k] = self._refuse(cmd, f"risk:{C.reason_name(reason)}", C.reason_message(reason), reason)
                continue
            coid = coids[k]
            new_ids.append(coid)
            new_recs.append(OrderRecord(cmd, a, i, side, ps, qty, _PENDING_NEW, 0, True, None, NO_TRADES, now))
            note = notes.get(k) if notes else None
            result = (CommandResult(ok=True, client_order_id=coid, status=_PENDING_NEW, reason=note) if note
                      else CommandResult(ok=True, client_order_id=coid, status=_PENDING_NEW))  # fmt: skip
            out[k] = (result, cmd, None)
        self.orders.add_new(new_ids, new_recs)
        self.accepted += len(new_ids)
        ks.clear()
        flat.clear()
        notes.clear()

    def cancel(self, cmd: CancelOrder) -> Decision:
        rec = self.orders.get(cmd.client_order_id)
        if rec is None or rec.cmd.account != cmd.account:
            self.rejections["unknown_order"] += 1
            return Decision(
                CommandResult(
                    ok=False,
                    client_order_id=cmd.client_order_id,
                    code="unknown_order",
                    reason=f"order {cmd.client_order_id} of {cmd.account} is not known to this daemon",
                )
            )
        if not _cancellable(rec):
            return Decision(CommandResult(ok=True, client_order_id=cmd.client_order_id, status=rec.status))
        send = [self._cancel_sent(rec, cmd.account, self.clock())]
        return Decision(CommandResult(ok=True, client_order_id=cmd.client_order_id, status=rec.status), send=send)

    def _cancel_sent(self, rec: OrderRecord, account: str, now: int) -> CancelOrder:
        """``rec`` marked ``pending_cancel`` and the cancel to send for it (``cancel`` and ``cancel_all``)."""
        self.orders.mark(rec, OrderEventKind.CANCEL_SENT, now)
        return CancelOrder(account=account, symbol=rec.cmd.symbol, client_order_id=rec.client_order_id,
                           venue_order_id=rec.venue_order_id)  # fmt: skip

    def cancel_all(self, cmd: CancelAll) -> Decision:
        a = self._account_numbers.get(cmd.account)
        if a is None:
            try:
                acc = AccountId.parse(cmd.account)
                a = self._account_numbers[cmd.account] = self.accounts[acc.exchange, acc.name]
            except (KeyError, ValueError):
                a = None
        if a is None:
            self.rejections["unknown_account"] += 1
            return Decision(CommandResult(ok=False, code="unknown_account", reason=f"{cmd.account} is not traded here"))
        out = Decision(CommandResult(ok=True))
        symbol, now = cmd.symbol, self.clock()
        out.send += [self._cancel_sent(rec, cmd.account, now) for rec in self.orders.open_orders(a)
                     if (symbol is None or rec.cmd.symbol == symbol) and _cancellable(rec)]  # fmt: skip
        return out

    def handle_request(self, data: bytes, account: AccountId | str) -> tuple[CommandReply, Decision]:
        """A NATS command request for ``account`` (the subject's): the reply and everything it caused."""
        try:
            req = parse_request(data, account)
        except CommandError as exc:
            self.rejections[exc.code] += 1
            return exc.reply(), Decision(CommandResult(ok=False, code=exc.code, reason=str(exc)))
        total = Decision(CommandResult(ok=True))
        results: list[CommandResult] = []
        sends, events = total.send, total.events
        cmds = req.commands
        n, k = len(cmds), 0
        while k < n:
            cmd = cmds[k]
            if type(cmd) is PlaceOrder:  # a run of placements: one risk-kernel call
                j = k + 1
                while j < n and type(cmds[j]) is PlaceOrder:
                    j += 1
                outcomes = self._place_run(cmds[k:j] if k or j < n else cmds, True)  # type: ignore[arg-type]
                results += [o[0] for o in outcomes]
                sends += [o[1] for o in outcomes if o[1] is not None]
                events += [o[2] for o in outcomes if o[2] is not None]
                k = j
            else:
                d = self._other(cmd)
                results.append(d.result)
                total.events.extend(d.events)
                total.send.extend(d.send)
                k += 1
        return CommandReply(request_id=req.request_id, results=tuple(results)), total

    def _other(self, cmd: CancelOrder | CancelAll | AmendOrder) -> Decision:
        if isinstance(cmd, CancelOrder):
            return self.cancel(cmd)
        if isinstance(cmd, CancelAll):
            return self.cancel_all(cmd)
        assert isinstance(cmd, AmendOrder)
        return self.amend(cmd)

    def amend(self, cmd: AmendOrder) -> Decision:
        """Change an open order's quantity and/or price in place (``stream.amend``: a lower quantity passes at
        once, anything else through the risk kernel as the order it becomes)."""
        qty_only = self.amends_qty_only
        if qty_only is not None and qty_only(cmd.account, cmd.symbol):  # the rest as a cancel-replace
            result, events, send = replace.decide(self, cmd)
        else:
            result, events, send = amend.decide(self, cmd)
        return Decision(result, events, send)  # type: ignore[arg-type]

    # ------------------------------------------------------------------ venue events
    def on_order_event(self, ev: OrderEvent, *, positions: bool = True) -> list[OrderEvent]:
        """Apply one venue event; returns the events to publish (none for a pure duplicate).

        ``positions=False`` folds a fill into its order (status, filled quantity, trade id) without moving the
        positions kernel: reconciliation does so for fills that a venue snapshot of positions already holds."""
        rec = self.orders.get(ev.client_order_id)
        if rec is None or rec.cmd.account != ev.account:
            self._drop("unknown_order", ev, "no such order of this daemon")
            return []
        fill_units = price_units = 0
        if ev.fill is not None:
            _, ins = self.instruments.instrument(rec.instrument)
            try:
                fill_units = ins.qty(ev.fill.qty, "fill quantity")
                price_units = ins.price(ev.fill.price, "fill price")
            except ValueError as exc:
                self._drop("bad_fill", ev, str(exc))
                return []
        try:
            change = self.orders.apply(rec, ev, fill_units)
        except IllegalTransition as exc:
            self._drop("illegal_transition", ev, str(exc))
            return []
        if change.new_fill is not None and self.on_fill is not None:
            fee = self._fee_units(change.new_fill, rec, price_units)
            self.on_fill(rec.account, rec.instrument, rec.side, price_units, fill_units, fee)
        if change.new_fill is not None and positions:
            fee = self._fee_units(change.new_fill, rec, price_units)
            r = apply_fill(
                *self._blocks, rec.account, rec.instrument, rec.side, rec.pos_side, price_units, fill_units, fee
            )
            if r != C.OK:
                self._drop("fill_refused", ev, C.reason_message(r))
        if change.new_fill is not None and rec.reserved:
            self.gate.release(rec.account, rec.instrument, rec.side, rec.pos_side, fill_units, False)
        if rec.reserved and not rec.is_open:
            self.gate.release(rec.account, rec.instrument, rec.side, rec.pos_side, max(0, rec.qty - rec.filled), True)
            rec.reserved = False
        return [ev] if change.changed else []

    def adopt(self, order: Order) -> OrderRecord:
        """Take over an order the venue has and this daemon did not place (or forgot in a restart), with its
        real client order id, status and filled quantity; an open one holds its risk reservation (an
        open-order slot and its unfilled quantity). A known order is returned as it is. Raises ``ValueError``
        naming the order for an account or symbol this daemon does not trade, or an unreadable quantity."""
        known = self.orders.get(order.client_order_id)
        if known is not None:
            return known
        try:
            a, i = self._routes.get((order.account, order.symbol)) or self._route(order.account, order.symbol)
        except _Refusal as r:
            raise ValueError(f"cannot adopt order {order.client_order_id}: {r.reason}") from None
        ins = self.instruments.instrument(i)[1]
        qty = ins.qty(order.qty, f"order {order.client_order_id} quantity")
        filled = ins.qty(order.filled_qty, f"order {order.client_order_id} filled quantity")
        cmd = PlaceOrder(
            account=order.account, symbol=order.symbol, side=order.side, order_type=order.order_type, qty=order.qty,
            price=order.price, stop_price=order.stop_price, time_in_force=order.time_in_force,
            reduce_only=order.reduce_only, post_only=order.post_only, position_side=order.position_side,
            strategy=order.strategy, client_order_id=order.client_order_id,
        )  # fmt: skip
        side, pos_side = C.SIDE_CODES[order.side], C.POSITION_SIDE_CODES[order.position_side]
        rec = OrderRecord(cmd, a, i, side, pos_side, qty, status=order.status, filled=filled, reserved=False,
                          venue_order_id=order.venue_order_id, updated_ns=order.updated_ns or self.clock())  # fmt: skip
        self.orders.add(rec)
        if rec.is_open:
            self._reserve(rec, max(0, qty - filled))
        else:
            self.orders.close(rec)
        return rec

    def _reserve(self, rec: OrderRecord, open_units: int) -> None:
        """The reservation an accepted order holds, for an adopted one (the risk kernel's commit, by hand)."""
        acc, pos = self.state.acc, self.state.pos
        acc[A_OPEN_ORDERS, rec.account] += 1
        field = P_OPEN_BUY if rec.side == C.BUY else P_OPEN_SELL
        pos[field, rec.account, rec.instrument, slot_of(rec.pos_side)] += open_units
        rec.reserved = True

    # ------------------------------------------------------------------ helpers
    def _route(self, account: str, symbol: str) -> tuple[int, int]:
        """Kernel account and instrument numbers of (account, symbol), remembered: they never change."""
        try:
            acc = AccountId.parse(account)
            a = self.accounts[acc.exchange, acc.name]
        except (KeyError, ValueError):
            raise _Refusal("unknown_account", f"{account} is not an account of this daemon") from None
        try:
            i, _ = self.instruments.lookup(acc.exchange, symbol)
        except UnknownInstrument as exc:
            raise _Refusal("unknown_symbol", str(exc)) from None
        route = self._routes[(account, symbol)] = (a, i)
        return route

    @staticmethod
    def _price(cmd: PlaceOrder, ins: Instrument, otype: int) -> int:
        """The price the risk kernel gates: the limit price, a stop's trigger, or 0 (market)."""
        if otype in _LIMIT_CODES:
            if cmd.price is None:
                raise ValueError(f"{cmd.order_type} order needs a price")
            return ins.price(cmd.price)
        if otype in _STOP_CODES:
            if cmd.stop_price is None:
                raise ValueError(f"{cmd.order_type} order needs a stop_price")
            return ins.price(cmd.stop_price, "stop price")
        return 0

    def _fee_units(self, fill: Fill, rec: OrderRecord, price_units: int) -> int:
        """The fill's commission in money units (quote currency). A commission in the base asset is valued at
        the fill price and rounded half-even to 1e-8 (the one rounding here); one in a third asset (BNB) is not
        converted here and is counted."""
        if fill.commission == "0":
            return 0
        ins = self.instruments.instrument(rec.instrument)[1]
        ins_id = ins.id
        if fill.commission_asset in ("", ins_id.quote):  # in the quote's own money unit (1e-12 BTC for ETHBTC)
            return ins.money(fill.commission, "commission")
        if fill.commission_asset == ins_id.base:  # Spot buys pay in the base asset: valued at the fill price
            return round_to_units(to_decimal(fill.commission) * to_decimal(fill.price), ins.money_unit, "commission")
        self.dropped["fee_asset_not_converted"] += 1
        return 0

    def _refuse(self, cmd: PlaceOrder, code: str, reason: str, risk_code: int | None = None) -> _Outcome:
        self.rejections[code] += 1
        ev = OrderEvent(
            account=cmd.account,
            symbol=cmd.symbol,
            client_order_id=cmd.client_order_id or "",
            kind=OrderEventKind.REJECTED,
            status=OrderStatus.REJECTED,
            side=cmd.side,
            order_type=cmd.order_type,
            qty=cmd.qty,
            price=cmd.price,
            code=risk_code,
            reason=f"{code}: {reason}",
            event_ns=self.clock(),
        )
        result = CommandResult(ok=False, client_order_id=cmd.client_order_id, status=OrderStatus.REJECTED,
                               code=code, reason=reason)  # fmt: skip
        return (result, None, ev)

    def _drop(self, reason: str, ev: OrderEvent, detail: str) -> None:
        n = self.dropped[reason] = self.dropped[reason] + 1
        if n <= 5 or n % 1000 == 0:  # logged, but a flood does not flood the log
            log.warning("order event %s for %s %s dropped (%s, %d so far): %s",
                        ev.kind.value, ev.account, ev.client_order_id, reason, n, detail)  # fmt: skip
