"""The parent-order engine: emulated trailing stops, OCOs, icebergs and scheduled/volume/liquidity parents.

``ParentEngine.hook`` is a command hook of ``OrderRouter``: a ``PlaceParent`` is accepted here (its id derived
from its content: a retry is answered with the same parent), and a ``CancelOrder`` naming a parent id cancels
it; every other command goes on to the gateway. A working parent is *stepped* (one task at a time per parent)
when the clock passes its next slice, when a trade moves its trigger, and when one of its children changes;
a step decides from the live book (``BookView``) and its children's records in the gateway what to send next.
Children go through ``OrderRouter.execute`` (the same risk gate and venue path as any order), each with the
client order id ``child_order_id(parent_id, n)``, recorded in the KV state *before* it is sent. On start the
engine reloads the working parents of its accounts and finds each recorded child at the venue by that id
(adopting it), so a restart re-sends nothing. Every step is a ``ParentEvent`` on JetStream.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal

import msgspec

from kernels import codes as C
from oms.model import (
    AmendOrder,
    CancelOrder,
    Instrument,
    OrderEvent,
    OrderStatus,
    OrderType,
    PlaceOrder,
    Side,
    TimeInForce,
)
from oms.model.commands import CommandResult
from oms.model.parents import (
    ChildOrder,
    ParentAlgo,
    ParentEvent,
    ParentState,
    ParentStatus,
    PlaceParent,
    child_order_id,
    derive_parent_id,
)
from oms.venues.errors import OrderNotFound, VenueError
from stream.emulation import parent_amend, plans, split
from stream.emulation.book import BookView
from stream.emulation.store import StateStore
from stream.orders import TERMINAL

log = logging.getLogger("stream.emulation.parents")

DEFAULT_SLIPPAGE_BPS = 50  # slices without a limit price: IOC limits this far from the book
MAX_CHILDREN = 500  # a parent that needed more children than this expires
_IOC_ALGOS = frozenset({ParentAlgo.TWAP, ParentAlgo.VWAP, ParentAlgo.PERCENT, ParentAlgo.POV, ParentAlgo.LIQUIDITY})
_FILLED = OrderStatus.FILLED
_NOT_SENT = frozenset({"shutting_down", "not_trading"})  # router refusals before anything reached the venue
_TERMINAL_CHILD = frozenset(s.value for s in TERMINAL) | {"not_found"}
Execute = Callable[[list], Awaitable[list[CommandResult]]]
Publish = Callable[[ParentEvent], Awaitable[asyncio.Future | None]]  # to JetStream and the log; its ack or None
Recover = Callable[[str, list[ParentEvent]], Awaitable[None]]  # events a crash may have cut off: again, once


@dataclass
class Working:
    st: ParentState
    account: str
    i: int
    ins: Instrument
    side: int  # kernel side code
    total: int  # quantity units
    price: int = 0  # limit price units (0: none)
    stop: int = 0  # OCO stop / trailing activation price units
    rate_ppm: int = 0  # trailing callback or pov participation, parts per million
    end_ns: int = 0  # 0: no end
    plan: list[tuple[int, int]] = field(default_factory=list)
    notes: list[tuple[str, str, str | None, str]] = field(default_factory=list)  # (kind, child id, qty, reason)
    trades: set[str] = field(default_factory=set)
    reported: dict[str, int] = field(default_factory=dict)  # child id -> cumulative filled units the venue said
    task: asyncio.Task | None = None
    again: bool = False
    dirty: bool = False
    volume_from: int = 0  # pov: the book's volume_seq when it started watching (earlier counts are not its own)
    base: int = 0  # units filled when last amended: the schedule after it shares the rest (``plans.replan``)
    volume_base: int = 0  # pov: the others' volume seen when last amended (the new participation counts from it)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # one step or amend at a time
    venues: list[split.Venue] = field(default_factory=list)  # a routed liquidity parent's books (``split``)
    handed: dict[int, asyncio.Future | None] = field(default_factory=dict)  # pending seq -> its ack (None: outbox)
    kept: int = 0  # every event up to this seq is in JetStream or the outbox: off the write-ahead

    @property
    def pid(self) -> str:
        return self.st.cmd.parent_id or ""


class ParentEngine:
    def __init__(
        self,
        gateway,
        execute: Execute,
        book: BookView,
        store: StateStore,
        publish: Publish,
        *,
        recover: Recover | None = None,
        exchange_of: Callable[[str], str],
        clock: Callable[[], int] = time.time_ns,
        tick_s: float = 0.05,
        free_of: split.FreeOf | None = None,
        clients_of: Callable[[str], Callable] | None = None,
    ):
        self.gateway = gateway
        self.execute = execute
        self.book = book
        self.store = store
        self.publish = publish
        self.recover = recover
        self.exchange_of = exchange_of
        self.clock = clock
        self.tick_s = tick_s
        self.free_of = free_of  # an account's free balance as a quantity (a routed liquidity parent's caps)
        self.clients_of = clients_of  # account -> its clients_for (a routed child found at restart)
        self.parents: dict[str, Working] = {}
        self.children: dict[str, str] = {}  # child client order id -> parent id
        self.refused = 0
        self.amending: set[str] = set()  # children the engine amends or cancels for a parent amend, right now
        self._stored: dict[str, list[ParentState]] = {}  # account -> its parents as read before its reconciliation
        self._running = True

    # ------------------------------------------------------------------ commands
    async def hook(self, cmd):
        try:
            if type(cmd) is PlaceParent:
                return await self.place(cmd)
            if type(cmd) is CancelOrder and cmd.client_order_id in self.parents:
                return await self.cancel(cmd.client_order_id)
            if type(cmd) is AmendOrder:
                return await parent_amend.hook(self, cmd)
        except Exception as exc:  # a bug here refuses the command, it does not end the request
            log.exception("parent command %s of %s failed", type(cmd).__name__, cmd.account)
            return CommandResult(ok=False, client_order_id=getattr(cmd, "parent_id", None) or None,
                                 code="parent:error", reason=f"{type(exc).__name__}: {exc}")  # fmt: skip
        return cmd

    async def place(self, cmd: PlaceParent) -> CommandResult:
        pid = cmd.parent_id or derive_parent_id(cmd)
        cmd = msgspec.structs.replace(cmd, parent_id=pid)
        known = self.parents.get(pid)
        if known is not None:
            return CommandResult(ok=True, client_order_id=pid, parent_status=known.st.status)
        try:
            w = self._working(ParentState(cmd=cmd, started_ns=self.clock()))
        except ValueError as exc:
            self.refused += 1
            return CommandResult(ok=False, client_order_id=pid, code="parent:bad_params",
                                 reason=f"{cmd.algo} parent {pid} on {cmd.account} {cmd.symbol}: {exc}",
                                 parent_status=ParentStatus.REJECTED)  # fmt: skip
        self._register(w)
        w.notes.append(("accepted", "", None, ""))
        await self._save(w)
        self.kick(w)
        return CommandResult(ok=True, client_order_id=pid, parent_status=ParentStatus.WORKING)

    async def cancel(self, pid: str) -> CommandResult:
        w = self.parents[pid]
        if w.st.status is ParentStatus.WORKING:
            self._finish(w, ParentStatus.CANCELED, "cancelled by command")
            await self._cancel_children(w)
            await self._save(w)
        return CommandResult(ok=True, client_order_id=pid, parent_status=w.st.status)

    def _working(self, st: ParentState) -> Working:
        """The parent's numbers from its command (ValueError naming what is wrong)."""
        cmd = st.cmd
        try:
            i, ins = self.book.number(self.exchange_of(cmd.account), cmd.symbol)
        except Exception as exc:
            raise ValueError(str(exc)) from None
        total = ins.qty(cmd.qty)
        if total <= 0:
            raise ValueError("qty must be positive")
        side = C.BUY if cmd.side is Side.BUY else C.SELL
        w = Working(st, cmd.account, i, ins, side, total, volume_from=self.book.volume_seq)
        w.price = ins.price(cmd.price) if cmd.price is not None else 0
        w.stop = ins.price(cmd.stop_price, "stop_price") if cmd.stop_price is not None else 0
        w.end_ns = st.started_ns + int(cmd.duration_s * 1e9) if cmd.duration_s else 0
        algo = cmd.algo
        if algo is ParentAlgo.TRAILING_STOP:
            w.rate_ppm = plans.parse_ppm(cmd.callback_rate, "callback_rate", high=Decimal(50))
        elif algo is ParentAlgo.OCO:
            if not w.price or not w.stop:
                raise ValueError("oco needs price (take profit) and stop_price (stop)")
            if (side == C.SELL and not w.stop < w.price) or (side == C.BUY and not w.stop > w.price):
                raise ValueError("oco stop_price must be on the losing side of price")
        elif algo is ParentAlgo.ICEBERG and not w.price:
            raise ValueError("iceberg needs a limit price")
        elif algo is ParentAlgo.POV:
            w.rate_ppm = plans.parse_ppm(cmd.participation_pct, "participation_pct")
            if not w.end_ns:
                raise ValueError("pov needs duration_s")
        elif algo is ParentAlgo.LIQUIDITY and not w.price:
            raise ValueError("liquidity split needs a limit price")
        self._plan(w, st)
        return w

    def _plan(self, w: Working, st: ParentState) -> None:
        """A routed liquidity parent's books, a schedule's or an iceberg's slices (``plans``)."""
        cmd, algo, ins, i, side, total = st.cmd, st.cmd.algo, w.ins, w.i, w.side, w.total
        if cmd.route:
            if algo is not ParentAlgo.LIQUIDITY:
                raise ValueError("only a liquidity parent takes a route")
            w.venues = split.venues(self.book, self.exchange_of, cmd.account, cmd.route, cmd.symbol, cmd.price or "")
        if algo in plans.SCHEDULED and not cmd.duration_s:
            raise ValueError(f"{algo} needs duration_s")
        if st.amends:
            w.base, w.volume_base = ins.qty(st.amended_filled), ins.qty(st.amended_volume)
        if algo in plans.SCHEDULED or algo is ParentAlgo.ICEBERG:
            ref = w.price or self.book.reference(i, side) or self.book.last(i)
            least = plans.min_child(ins, ref)
            if st.amends:
                w.plan = plans.replan(cmd, ins, total, st.started_ns, least, st.amended_ns, w.base)
            else:
                w.plan = plans.plan(cmd, ins, total, st.started_ns, least)

    def _register(self, w: Working) -> None:
        self.parents[w.pid] = w
        for ch in w.st.children:
            self.children[ch.client_order_id] = w.pid

    # ------------------------------------------------------------------ what drives the steps
    def on_event(self, ev) -> None:
        """The event sink's listener: a child's order event (with its fill) kicks its parent; any fill of the
        daemon's accounts is its own volume, not the market's others (``BookView.on_own_fill``)."""
        if type(ev) is not OrderEvent:
            return
        if ev.fill is not None:
            self._own_fill(ev)
        pid = self.children.get(ev.client_order_id)
        if pid is None:
            return
        w = self.parents[pid]
        try:
            said = w.ins.qty(ev.filled_qty)
        except ValueError:
            said = 0
        if said > w.reported.get(ev.client_order_id, 0):
            w.reported[ev.client_order_id] = said
        if ev.fill is not None and ev.fill.trade_id not in w.trades:
            w.trades.add(ev.fill.trade_id)
            f = ev.fill
            w.st.notional = format(Decimal(w.st.notional) + Decimal(f.price) * Decimal(f.qty), "f")
            w.notes.append(("child_filled", ev.client_order_id, f.qty, ""))
        elif ev.status.is_terminal:
            w.notes.append(("child_done", ev.client_order_id, None, ev.status.value))
        self.kick(w)

    def _own_fill(self, ev: OrderEvent) -> None:
        try:
            i, ins = self.book.number(self.exchange_of(ev.account), ev.symbol)
            qty = ins.qty(ev.fill.qty)
        except (KeyError, ValueError):  # UnknownInstrument is a KeyError
            return  # not an instrument the daemon trades: no pov parent watches it
        self.book.on_own_fill(i, ev.fill.trade_id, qty)

    def on_volume(self, i: int, delta: int, seq: int) -> None:
        """The others' volume changed (``BookView.volume_listeners``): pov parents take part in it. A take-back
        of a trade counted before a parent started is not that parent's: its own fill (another parent's child,
        say) often reaches the user stream after the public trade, and the parent would lose volume it never
        had (seen in CI: a pov parent's volume went back to 0)."""
        for w in self.parents.values():
            if seq <= w.volume_from:
                continue
            if w.i == i and w.st.cmd.algo is ParentAlgo.POV and w.st.status is ParentStatus.WORKING:
                w.st.volume_seen = w.ins.qty_str(max(0, w.ins.qty(w.st.volume_seen) + delta))
                w.dirty = True

    def on_trade(self, i: int, price: int, qty: int, ts: int) -> None:
        """A market trade: trailing stops follow it, OCO stops look again."""
        for w in self.parents.values():
            if w.i != i or w.st.status is not ParentStatus.WORKING:
                continue
            algo = w.st.cmd.algo
            if algo is ParentAlgo.TRAILING_STOP:
                if self._trail(w, price):
                    self.kick(w)
            elif algo is ParentAlgo.OCO and not w.st.triggered:
                if self._stop_hit(w, price):
                    self.kick(w)

    @staticmethod
    def _stop_hit(w: Working, price: int) -> bool:
        return (w.side == C.SELL and price <= w.stop) or (w.side == C.BUY and price >= w.stop)

    def _trail(self, w: Working, price: int) -> bool:
        """Follow ``price``; True when the stop is hit."""
        st = w.st
        if not st.activated:
            if w.stop and ((w.side == C.SELL and price < w.stop) or (w.side == C.BUY and price > w.stop)):
                return False
            st.activated, w.dirty = True, True
        best = w.ins.price(st.best_price) if st.best_price is not None else 0
        if not best or (w.side == C.SELL and price > best) or (w.side == C.BUY and price < best):
            st.best_price, w.dirty = w.ins.price_str(price), True
            best = price
        if st.triggered:
            return True
        if w.side == C.SELL:
            return price * 1_000_000 <= best * (1_000_000 - w.rate_ppm)
        return price * 1_000_000 >= best * (1_000_000 + w.rate_ppm)

    async def run(self) -> None:
        """The clock: slices come due, pov and liquidity parents look at the market, time runs out."""
        last_save = 0.0
        while self._running:
            await asyncio.sleep(self.tick_s)
            self.book.release()  # public trades whose grace for an own fill is over: the others' volume
            now = self.clock()
            save = time.monotonic() - last_save > 1.0
            for w in list(self.parents.values()):
                if w.st.status is not ParentStatus.WORKING:
                    # finished: written again if its last write failed, or once its last events have their
                    # answers (they come off its write-ahead)
                    if save and (w.dirty or self._answered(w)):
                        self.kick(w)
                    continue
                algo = w.st.cmd.algo
                due = algo in plans.SCHEDULED and w.st.next_slice < len(w.plan) and w.plan[w.st.next_slice][0] <= now
                if due or algo in (ParentAlgo.POV, ParentAlgo.LIQUIDITY) or (w.end_ns and now >= w.end_ns):
                    self.kick(w)
                elif algo is ParentAlgo.TRAILING_STOP or (algo is ParentAlgo.OCO and not w.st.triggered):
                    price = self.book.price(w.i)  # the book moves between trades too
                    if price and (
                        self._trail(w, price) if algo is ParentAlgo.TRAILING_STOP else self._stop_hit(w, price)
                    ):
                        self.kick(w)
                    elif save and w.dirty:
                        self.kick(w)
                elif save and w.dirty:
                    self.kick(w)
            if save:
                last_save = time.monotonic()

    def stop(self) -> None:
        self._running = False

    def kick(self, w: Working) -> None:
        if not self._running and w.st.status is ParentStatus.WORKING:
            return
        if w.task is not None and not w.task.done():
            w.again = True
            return
        w.task = asyncio.get_running_loop().create_task(self._steps(w), name=f"parent {w.pid}")

    async def _steps(self, w: Working) -> None:
        while True:
            w.again = False
            try:
                async with w.lock:
                    await self._step(w)
            except Exception:
                log.exception("parent %s of %s: step failed", w.pid, w.account)
            if not w.again:
                return

    async def drain(self, timeout_s: float = 5.0) -> None:
        tasks = [w.task for w in self.parents.values() if w.task is not None and not w.task.done()]
        if tasks:
            await asyncio.wait(tasks, timeout=timeout_s)

    # ------------------------------------------------------------------ one step
    def _child_state(self, ch: ChildOrder, reported: dict[str, int]) -> tuple[bool, int | None]:
        """(open, filled units or None) of a child: from the gateway's record when it has one."""
        rec = self.gateway.orders.get(ch.client_order_id)
        if rec is not None:
            ch.status = rec.status.value
            if rec.status is _FILLED:  # the venue said all of it filled (its fills may still be on the way)
                return False, rec.qty
            # ended with part filled, its fills not all here yet (the venue's answer came before the stream's)
            return rec.is_open or rec.filled < reported.get(ch.client_order_id, 0), rec.filled
        return (ch.status not in _TERMINAL_CHILD), None

    def _progress(self, w: Working) -> tuple[int, list[ChildOrder]]:
        filled, open_ = 0, []
        for ch in w.st.children:
            is_open, units = self._child_state(ch, w.reported)
            saved = w.ins.qty(ch.filled_qty)  # what an earlier run saw (a rebuilt record may know less)
            units = saved if units is None else max(units, saved)
            ch.filled_qty = w.ins.qty_str(units)
            filled += units
            if is_open:
                open_.append(ch)
        w.st.filled_qty = w.ins.qty_str(filled)
        return filled, open_

    async def _step(self, w: Working) -> None:
        st = w.st
        filled, open_ = self._progress(w)
        if st.status is ParentStatus.WORKING:
            if filled >= w.total:
                self._finish(w, ParentStatus.DONE, "")
            else:
                await self._decide(w, filled, open_)
        await self._save(w)

    async def _decide(self, w: Working, filled: int, open_: list[ChildOrder]) -> None:
        st, cmd, now = w.st, w.st.cmd, self.clock()
        left = w.total - filled
        rejected = [c for c in st.children if c.status == "rejected" and not c.replaces]  # an amend's: refused it
        if rejected:
            self._finish(w, ParentStatus.REJECTED, f"child {rejected[-1].client_order_id} was rejected")
            log.warning("parent %s of %s rejected: %s", w.pid, w.account, w.st.reason)
            await self._cancel_children(w)
            return
        if len(st.children) >= MAX_CHILDREN and not open_:
            self._finish(w, ParentStatus.EXPIRED, f"{MAX_CHILDREN} children sent, {w.ins.qty_str(left)} left")
            return
        if w.end_ns and now >= w.end_ns and cmd.algo in (ParentAlgo.POV, ParentAlgo.LIQUIDITY, ParentAlgo.ICEBERG):
            self._finish(w, ParentStatus.EXPIRED, f"duration over with {w.ins.qty_str(left)} unfilled")
            await self._cancel_children(w)
            return
        algo = cmd.algo
        if algo is ParentAlgo.TRAILING_STOP:
            if not st.triggered:
                if st.best_price is None or not self._trail(w, self.book.price(w.i) or w.ins.price(st.best_price)):
                    return
                st.triggered = True
                w.notes.append(("triggered", "", None, f"price retraced {cmd.callback_rate}% from {st.best_price}"))
            if not open_:
                await self._send(w, "trigger", left, 0, None)
        elif algo is ParentAlgo.OCO:
            await self._oco(w, left, open_)
        elif algo in plans.SCHEDULED:
            await self._slices(w, filled, left, open_, now)
        elif not open_:
            await self._flow(w, filled, left)

    async def _flow(self, w: Working, filled: int, left: int) -> None:
        """The next child of an iceberg, pov or liquidity parent (none of its children open)."""
        st, algo = w.st, w.st.cmd.algo
        if algo is ParentAlgo.ICEBERG:
            if not w.plan:
                return
            k = min(st.next_slice, len(w.plan) - 1)
            target = w.base + sum(q for _, q in w.plan[: k + 1])
            qty = min(left, max(target - filled, w.plan[k][1]))
            st.next_slice = k + 1
            await self._send(w, "clip", qty, w.price, TimeInForce.GTC)
        elif algo is ParentAlgo.POV:
            target = w.base + (w.ins.qty(st.volume_seen) - w.volume_base) * w.rate_ppm // 1_000_000
            qty = min(left, (target - filled) - (target - filled) % w.ins.lot)
            least = plans.min_child(w.ins, self.book.reference(w.i, w.side))
            if qty > 0 and left - qty < least:
                qty = left  # never leave a remainder the venue would refuse: take it with this child
            if qty >= least or (qty == left and target >= w.total):
                await self._send(w, "slice", qty, w.price, TimeInForce.IOC)
        elif algo is ParentAlgo.LIQUIDITY and w.venues:
            sizes = split.sizes(self.book, self.free_of, w.venues, w.side, left)
            pairs = zip(w.venues, sizes, strict=True)
            children = [("slice", q, v.limit, TimeInForce.IOC, v) for v, q in pairs if q > 0]
            if children:
                await self._send_all(w, children)
        elif algo is ParentAlgo.LIQUIDITY:
            qty = self.book.depth_within(w.i, w.side, w.price)
            qty = min(left, qty - qty % w.ins.lot)
            if qty >= plans.min_child(w.ins, w.price) or (qty == left and qty > 0):
                await self._send(w, "slice", qty, w.price, TimeInForce.IOC)

    async def _slices(self, w: Working, filled: int, left: int, open_: list, now: int) -> None:
        st = w.st
        if open_:
            return
        k = st.next_slice
        if k >= len(w.plan):
            self._finish(w, ParentStatus.EXPIRED, f"schedule ended with {w.ins.qty_str(left)} unfilled")
            return
        if w.plan[k][0] > now:
            return
        # this slice and what the slices before it did not fill
        due = k
        while due + 1 < len(w.plan) and w.plan[due + 1][0] <= now:
            due += 1
        target = w.base + sum(q for _, q in w.plan[: due + 1])
        qty = min(left, target - filled)
        st.next_slice = due + 1
        ref = w.price or self.book.reference(w.i, w.side)
        if qty < plans.min_child(w.ins, ref) and st.next_slice < len(w.plan):
            w.notes.append(("slice_deferred", "", w.ins.qty_str(max(qty, 0)), "below the venue's minimum"))
            return
        if qty > 0:
            await self._send(w, "slice", qty, w.price, TimeInForce.IOC)

    async def _oco(self, w: Working, left: int, open_: list[ChildOrder]) -> None:
        st = w.st
        if not st.triggered:
            price = self.book.price(w.i)
            if not (price and self._stop_hit(w, price)):
                if not st.children:
                    await self._send(w, "take_profit", left, w.price, TimeInForce.GTC)
                return
            st.triggered = True
            w.notes.append(("triggered", "", None, f"stop {w.st.cmd.stop_price} reached at {w.ins.price_str(price)}"))
        if open_:  # the take-profit leg goes first; its cancel's answer kicks us again
            await self._cancel_children(w)
            return
        await self._send(w, "stop", left, 0, None)

    # ------------------------------------------------------------------ children
    async def _send(
        self, w: Working, role: str, qty: int, price: int, tif: TimeInForce | None, venue: split.Venue | None = None
    ) -> None:
        await self._send_all(w, [(role, qty, price, tif, venue)])

    async def _send_all(
        self, w: Working, specs: list[tuple[str, int, int, TimeInForce | None, split.Venue | None]]
    ) -> None:
        """Children ``(role, qty, price, tif, venue)`` of ``w``: written to its state first (one write: a restart
        asks the venue for each id), then sent together (``execute(..., pipelined=True)``: a liquidity split's
        children reach their accounts at once, not one round trip after the other)."""
        made = [self._child(w, *spec) for spec in specs]
        await self._save(w)  # written before they are sent
        for child, _ in made:
            child.sent = True
        results = await self.execute([order for _, order in made], pipelined=True)
        for (child, _), res in zip(made, results, strict=True):
            self._child_answer(w, child, res)

    def _child(
        self, w: Working, role: str, qty: int, price: int, tif: TimeInForce | None, venue: split.Venue | None
    ) -> tuple[ChildOrder, PlaceOrder]:
        st, cmd = w.st, w.st.cmd
        ins = venue.ins if venue is not None else w.ins
        account = venue.account if venue is not None else cmd.account
        n = len(st.children)
        coid = child_order_id(w.pid, n, self.gateway.id_prefix)
        limit = price > 0
        slippage = None
        if not limit:
            slippage = cmd.max_slippage_bps
            if slippage is None and cmd.algo in _IOC_ALGOS:
                slippage = DEFAULT_SLIPPAGE_BPS
        shown = ins.price_str(price) if limit else None
        child = ChildOrder(n=n, client_order_id=coid, qty=ins.qty_str(qty), price=shown, role=role,
                           account=account if account != cmd.account else "")  # fmt: skip
        st.children.append(child)
        self.children[coid] = w.pid
        order = PlaceOrder(
            account=account, symbol=cmd.symbol, side=cmd.side,
            order_type=OrderType.LIMIT if limit else OrderType.MARKET, qty=child.qty, price=child.price,
            time_in_force=tif if limit else None, reduce_only=cmd.reduce_only, strategy=cmd.strategy,
            intent=f"{w.pid}:{n}", client_order_id=coid, max_slippage_bps=slippage,
        )  # fmt: skip
        return child, order

    def _child_answer(self, w: Working, child: ChildOrder, res) -> None:
        coid, cmd = child.client_order_id, w.st.cmd
        if not res.ok and res.code in _NOT_SENT:  # the daemon stopping or the account reconciling: never placed
            child.status = "not_found"
            w.notes.append(("child_not_sent", coid, child.qty, f"{res.code}: {res.reason}"))
            if w.st.next_slice and cmd.algo in plans.SCHEDULED | {ParentAlgo.ICEBERG}:
                w.st.next_slice -= 1  # that slice comes due again
        elif not res.ok and self.gateway.orders.get(coid) is None:
            child.status = "rejected"
            log.warning("parent %s of %s: child %s refused (%s: %s)", w.pid, w.account, coid, res.code, res.reason)
            w.notes.append(("child_rejected", coid, child.qty, f"{res.code}: {res.reason}"))
            w.again = True
        else:
            w.notes.append(("child_sent", coid, child.qty, child.role))

    async def _cancel_children(self, w: Working) -> None:
        for ch in w.st.children:
            rec = self.gateway.orders.get(ch.client_order_id)
            if rec is not None and rec.is_open:
                await self.execute([CancelOrder(account=ch.account or w.account, symbol=w.st.cmd.symbol,
                                                client_order_id=ch.client_order_id)])  # fmt: skip

    def _finish(self, w: Working, status: ParentStatus, reason: str) -> None:
        w.st.status = status
        w.st.reason = reason
        w.notes.append((status.value, "", None, reason))

    # ------------------------------------------------------------------ state and events
    async def _save(self, w: Working) -> None:
        st = w.st
        st.updated_ns = self.clock()
        filled = Decimal(st.filled_qty)
        avg = format(Decimal(st.notional) / filled, "f") if filled else None
        events = []
        for kind, coid, qty, reason in w.notes:
            st.seq += 1
            events.append(
                ParentEvent(
                    account=w.account, symbol=st.cmd.symbol, parent_id=w.pid, algo=st.cmd.algo, kind=kind,
                    status=st.status, side=st.cmd.side, qty=st.cmd.qty, filled_qty=st.filled_qty, avg_price=avg,
                    child_client_order_id=coid, child_qty=qty, seq=st.seq, reason=reason, event_ns=st.updated_ns,
                )
            )  # fmt: skip
        w.notes.clear()
        w.dirty = False
        # the write-ahead: the new events go into the state in the same KV write as their seq, and are published
        # and logged only once it is written; those JetStream acknowledged since the last write come off it. Killed
        # before the write, the events never were (their step runs again after the restart); after it, the restart
        # finds them in the state and publishes them again (``_recover``). Published before the write (as it once
        # was), a kill -9 while the state was being written let the restarted daemon number new events with seqs
        # already logged, whose outbox copies JetStream then dropped as duplicates (the kill -9 TWAP scenario)
        await self._confirm(w)
        st.pending = [e for e in st.pending if e.seq > w.kept] + events  # (an amend's copy of the state too)
        if not await self.store.put(w.account, w.pid, st):
            w.dirty = True  # NATS down: the events wait in the state until a later write of it succeeds
            return
        todo = [e for e in st.pending if e.seq > w.kept and e.seq not in w.handed]
        loop = asyncio.get_running_loop()
        for ev in todo:  # handed before the first await: a save meanwhile does not publish them again
            w.handed[ev.seq] = loop.create_future()
        for k, ev in enumerate(todo):
            try:
                w.handed[ev.seq] = await self.publish(ev)
            except BaseException:  # not handed after all: the next save publishes them
                for later in todo[k:]:
                    w.handed.pop(later.seq, None)
                raise

    async def _confirm(self, w: Working) -> None:
        """Move ``w.kept`` over the handed events, in seq order, that JetStream acknowledged or the outbox holds;
        one whose publish failed (no ack in time: the publisher cancels it) goes again through the outbox
        (``recover``: once in JetStream by its id, logged only if it is not)."""
        failed = []
        for seq in sorted(w.handed):
            ack = w.handed[seq]
            if ack is not None and not ack.done():
                break
            if ack is not None and (ack.cancelled() or ack.exception() is not None):
                failed.append(seq)
            del w.handed[seq]
            w.kept = seq
        if failed and self.recover is not None:
            await self.recover(w.account, [e for e in w.st.pending if e.seq in failed])

    @staticmethod
    def _answered(w: Working) -> bool:
        """Whether the first handed event of ``w`` has its answer (a later write takes it off the state)."""
        if not w.handed:
            return False
        ack = w.handed[min(w.handed)]
        return ack is None or ack.done()

    # ------------------------------------------------------------------ restart
    async def unsent(self, account: str) -> list[tuple[str, str]]:
        """(symbol, client order id) of the children of ``account``'s working parents recorded before they were
        sent and not known to have an answer: a crash may have come after the frame went out. The start's
        reconciliation looks them up by id, so a fill the venue made meanwhile is named after its child."""
        out = []
        self._stored[account] = states = await self.store.load(account, "par-", ParentState)  # resume reuses them
        for st in states:
            if st.status is ParentStatus.WORKING:
                out += [(st.cmd.symbol, ch.client_order_id) for ch in st.children
                        if not ch.sent and ch.status not in _TERMINAL_CHILD and not ch.account]  # fmt: skip
        return out

    async def resume(self, account: str, clients_for) -> int:
        """Reload the working parents of ``account`` and find their children at the venue; how many."""
        n = 0
        states = self._stored.pop(account, None)  # read by ``unsent`` at attach; nothing else writes them since
        for st in states if states is not None else await self.store.load(account, "par-", ParentState):
            pid = st.cmd.parent_id or ""
            if pid in self.parents:
                continue
            if st.pending:
                await self._recover(account, pid, st)
            if st.status is not ParentStatus.WORKING:
                continue
            try:
                w = self._working(st)
            except ValueError as exc:
                log.error("parent %s of %s cannot be resumed: %s", pid, account, exc)
                continue
            for ch in st.children:
                self.children[ch.client_order_id] = pid
                if self.gateway.orders.get(ch.client_order_id) is not None or ch.status in _TERMINAL_CHILD:
                    continue
                found_by = clients_for
                if ch.account and self.clients_of is not None:  # a routed child: its own account's venue
                    found_by = self.clients_of(ch.account)
                await self._find(w, ch, found_by)
            self._register(w)
            w.notes.append(("resumed", "", None, f"{len(st.children)} child(ren) checked at the venue"))
            self.kick(w)
            n += 1
        return n

    async def _recover(self, account: str, pid: str, st: ParentState) -> None:
        """The events the last run wrote ahead and may not have published or logged (it stopped in between):
        published again and logged where missing (``recover``), then off the state. A working parent's next
        write takes them off in KV too; a finished one's is written here."""
        if self.recover is None:
            return
        log.info("parent %s of %s: %d event(s) of the last run published again", pid, account, len(st.pending))
        await self.recover(account, st.pending)
        st.pending = []
        if st.status is not ParentStatus.WORKING:
            await self.store.put(account, pid, st)

    async def _find(self, w: Working, ch: ChildOrder, clients_for) -> None:
        """A recorded child the gateway does not know: the venue says whether it exists (never re-sent)."""
        symbol = w.st.cmd.symbol
        try:
            order = await clients_for(symbol).execution.query_order(symbol, ch.client_order_id)
        except OrderNotFound:
            ch.status = "not_found"  # never reached the venue: its number is not used again
            return
        except VenueError as exc:
            log.warning("parent %s: child %s not found out (%s); asking again later", w.pid, ch.client_order_id, exc)
            return
        before = Decimal(ch.filled_qty)
        rec = self.gateway.adopt(order)
        gained = Decimal(w.ins.qty_str(rec.filled)) - before
        if gained > 0 and order.avg_price:
            w.st.notional = format(Decimal(w.st.notional) + gained * Decimal(order.avg_price), "f")
