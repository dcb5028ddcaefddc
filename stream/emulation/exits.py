"""Managed exits: stop-loss (fixed, trailing, time-based) and take-profit ladders per position.

A *managed position* is what the daemon's own entry fills built on one (account, symbol, strategy) with an
exit rule (``risk.yaml`` ``exits:``, ``oms.config.exits``): its signed size, entry price (volume-weighted),
opening time and size, and the best price since. Fills against it (exits, or any order of the other side)
shrink it; flat ends it. On Spot this is the quantity the daemon bought, not the whole holding.

Triggers, checked on every market trade of the symbol and on a timer: the price ``stop_loss_pct`` against the
entry, ``trailing_stop_pct`` back from the best price, ``max_hold_s`` after opening (each exits all), and each
take-profit level ``at_pct`` in favour (exits ``fraction`` of the opening size, once). An exit is a market order
capped at the rule's ``max_slippage_bps`` (``SlippageControl``), reduce-only on futures, with the client order id
``child_order_id("exit:{account}:{symbol}:{epoch}", n)``: ``epoch`` is the opening fill's trade id, so a
restart (the state is in the ``oms_parents`` bucket) derives the same ids.

A hosted strategy may set the rule of its own positions on one symbol (``set_rule``: its exit intents,
``strategies.api.STOP_LOSS`` ...): that rule goes before the configured ones, and is kept in the position's
state (``ExitState.rule``) so a restart applies it again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal

import msgspec
from prometheus_client import Counter

from oms.bus import symbol_token
from oms.config.exits import ExitRule
from oms.model import Fill, Market, OrderEvent, OrderStatus, OrderType, PlaceOrder, Side
from oms.model.parents import child_order_id
from oms.venues.errors import OrderNotFound, VenueError
from stream.emulation.book import BookView
from stream.emulation.store import StateStore

log = logging.getLogger("stream.emulation.exits")

Execute = Callable[[list], Awaitable[list]]


class ExitState(msgspec.Struct, kw_only=True, omit_defaults=True):
    account: str
    symbol: str
    strategy: str = ""
    epoch: str  # the opening fill's trade id
    qty: str  # signed size managed (decimal)
    entry: str  # volume-weighted entry price
    opened_size: str  # |size| when opened (the take-profit fractions are of this)
    opened_ns: int
    best: str  # best price since the opening
    levels_done: int = 0
    stopped: str = ""  # why everything is being exited ("" while not)
    sent: int = 0  # exit orders sent (their numbers)
    exits: list[str] = msgspec.field(default_factory=list)  # their client order ids
    rule: dict | None = None  # a strategy's own rule (``ExitManager.set_rule``), as ExitRule's JSON


@dataclass
class Managed:
    st: ExitState
    i: int
    ins: object
    rule: object
    key: str
    task: asyncio.Task | None = None
    again: bool = False


class ExitManager:
    def __init__(self, risk, gateway, execute: Execute, book: BookView, store: StateStore, registry, *,
                 exchange_of, tick_s: float = 0.05, clock=time.time_ns):  # fmt: skip
        self.conf = getattr(risk, "exits", None)
        self.gateway, self.execute, self.book, self.store = gateway, execute, book, store
        self.exchange_of = exchange_of
        self.clock = clock
        self.interval_s = float(self.conf.interval_s) if self.conf else 1.0
        self.positions: dict[str, Managed] = {}
        self.exit_ids: set[str] = set()
        self._trades: set[tuple[str, str]] = set()
        self._held: list | None = None  # fills kept until the positions are reloaded (``hold``/``release``)
        self._running = True
        self.overrides: dict[tuple[str, str, str], object] = {}  # (account, symbol, strategy) -> ExitRule
        self.fired = Counter("oms_exits", "Managed exits sent, by trigger", ["account", "trigger"], registry=registry)

    @staticmethod
    def key_of(account: str, symbol: str, strategy: str) -> str:
        return f"exit-{symbol_token(symbol)}-{strategy or 'any'}"

    def set_rule(self, account: str, symbol: str, strategy: str, rule) -> None:
        """A strategy's own exit rule (``oms.config.exits.ExitRule``) for its positions on ``symbol``: the next
        position it opens there is managed by it (and an open one from its next check on)."""
        self.overrides[account, symbol, strategy] = rule
        m = self.positions.get(f"{account}|{self.key_of(account, symbol, strategy)}")
        if m is not None:
            m.rule = rule
            m.st.rule = rule.model_dump(mode="json")

    def rule_for(self, account: str, symbol: str, strategy: str):
        found = self.overrides.get((account, symbol, strategy))
        if found is not None or self.conf is None:
            return found
        return self.conf.rule_for(account, strategy)

    # ------------------------------------------------------------------ fills build and shrink positions
    def hold(self) -> None:
        """Keep the fills that arrive from now on (a start's reconciliation) until ``release``."""
        self._held = []

    def release(self) -> None:
        """Apply the kept fills, in order, onto the positions ``resume`` reloaded."""
        held, self._held = self._held or [], None
        for ev in held:
            self.on_event(ev)
        if held:
            log.info("managed exits: %d fill(s) found by the reconciliation applied", len(held))

    def on_event(self, ev) -> None:
        """A fill: inside its order event (the live stream), or standalone (a reconciliation's, found at the
        venue); each trade once."""
        if self.conf is None and not self.overrides:
            return
        if type(ev) is OrderEvent and ev.fill is not None:
            f = ev.fill
        elif type(ev) is Fill:
            f = ev
        else:
            return
        if self._held is not None:
            self._held.append(ev)
            return
        if (ev.account, f.trade_id) in self._trades:
            return
        self._trades.add((ev.account, f.trade_id))
        ev = f  # account, symbol and client order id: the fill's own
        rec = self.gateway.orders.get(ev.client_order_id)
        strategy = rec.cmd.strategy if rec is not None else ""
        sign = 1 if f.side is Side.BUY else -1
        qty, price = Decimal(f.qty) * sign, Decimal(f.price)
        if ev.client_order_id in self.exit_ids:
            m = next((m for m in self.positions.values() if ev.client_order_id in m.st.exits), None)
            if m is not None:
                self._shrink(m, qty)
            return
        key = self.key_of(ev.account, ev.symbol, strategy)
        full = f"{ev.account}|{key}"
        m = self.positions.get(full)
        if m is not None and Decimal(m.st.qty) * qty < 0:
            self._shrink(m, qty)  # an order of the other side (not an exit) reduces it too
            return
        rule = self.rule_for(ev.account, ev.symbol, strategy)
        if rule is None:
            return
        if m is None:
            try:
                i, ins = self.book.number(self.exchange_of(ev.account), ev.symbol)
            except Exception:
                return
            st = ExitState(
                account=ev.account, symbol=ev.symbol, strategy=strategy, epoch=f.trade_id, qty="0", entry=f.price,
                opened_size="0", opened_ns=f.event_ns or self.clock(), best=f.price,
            )  # fmt: skip
            if (ev.account, ev.symbol, strategy) in self.overrides:
                st.rule = rule.model_dump(mode="json")
            m = self.positions[full] = Managed(st, i, ins, rule, key)
        st = m.st
        old = Decimal(st.qty)
        new = old + qty
        st.entry = format((Decimal(st.entry) * abs(old) + price * abs(qty)) / abs(new), "f")
        st.qty = format(new, "f")
        st.opened_size = format(abs(new), "f") if not st.levels_done else st.opened_size
        self.kick(m)

    def _shrink(self, m: Managed, qty: Decimal) -> None:
        st = m.st
        old = Decimal(st.qty)
        new = old + qty
        st.qty = format(new if new * old > 0 else Decimal(0), "f")
        self.kick(m)

    # ------------------------------------------------------------------ triggers
    def on_trade(self, i: int, price: int, qty: int, ts: int) -> None:
        for m in self.positions.values():
            if m.i == i and Decimal(m.st.qty) != 0 and self._check(m, Decimal(m.ins.price_str(price))):
                self.kick(m)

    def _check(self, m: Managed, price: Decimal) -> bool:
        """Follow ``price``; True when something is to be sent."""
        st, rule = m.st, m.rule
        long = Decimal(st.qty) > 0
        best = Decimal(st.best)
        if (long and price > best) or (not long and price < best):
            st.best = format(price, "f")
            best = price
        if st.stopped:
            return True
        entry = Decimal(st.entry)
        move = (price - entry) / entry * 100 * (1 if long else -1)  # percent in our favour
        if rule.stop_loss_pct is not None and -move >= rule.stop_loss_pct:
            st.stopped = f"stop_loss: {format(-move, '.4f')}% against the entry {st.entry}"
            return True
        if rule.trailing_stop_pct is not None:
            back = (best - price) / best * 100 * (1 if long else -1)
            if back >= rule.trailing_stop_pct:
                st.stopped = f"trailing_stop: {format(back, '.4f')}% back from the best {st.best}"
                return True
        if rule.max_hold_s is not None and self.clock() - st.opened_ns >= int(rule.max_hold_s * 1_000_000_000):
            st.stopped = f"max_hold: held {rule.max_hold_s} s"
            return True
        lv = rule.take_profit
        return st.levels_done < len(lv) and move >= lv[st.levels_done].at_pct

    async def run(self) -> None:
        while self._running:
            await asyncio.sleep(self.interval_s)
            for m in list(self.positions.values()):
                price = self.book.price(m.i)
                if Decimal(m.st.qty) != 0 and price and self._check(m, Decimal(m.ins.price_str(price))):
                    self.kick(m)

    def stop(self) -> None:
        self._running = False

    def kick(self, m: Managed) -> None:
        if not self._running:
            return
        if m.task is not None and not m.task.done():
            m.again = True
            return
        m.task = asyncio.get_running_loop().create_task(self._steps(m), name=f"exit {m.key}")

    async def _steps(self, m: Managed) -> None:
        while True:
            m.again = False
            try:
                await self._step(m)
            except Exception:
                log.exception("managed exit %s of %s: step failed", m.key, m.st.account)
            if not m.again:
                return

    async def drain(self, timeout_s: float = 5.0) -> None:
        tasks = [m.task for m in self.positions.values() if m.task is not None and not m.task.done()]
        if tasks:
            await asyncio.wait(tasks, timeout=timeout_s)

    async def _step(self, m: Managed) -> None:
        st = m.st
        size = Decimal(st.qty)
        if size == 0:
            await self.store.put(st.account, m.key, st)
            return
        pending = any(self._in_flight(c) for c in st.exits)
        price = self.book.price(m.i)
        if not pending and price and self._check(m, Decimal(m.ins.price_str(price))):
            if st.stopped:
                await self._exit(m, abs(size), st.stopped.partition(":")[0])
            else:
                level = m.rule.take_profit[st.levels_done]
                part = min(abs(size), Decimal(st.opened_size) * level.fraction)
                st.levels_done += 1
                await self._exit(m, part, f"take_profit_{st.levels_done}")
        await self.store.put(st.account, m.key, st)

    def _in_flight(self, coid: str) -> bool:
        """An exit still open, or ended filled with fills not all arrived (the venue's answer came first)."""
        rec = self.gateway.orders.get(coid)
        if rec is None:
            return False
        return rec.is_open or (rec.status is OrderStatus.FILLED and rec.filled < rec.qty)

    async def _exit(self, m: Managed, qty: Decimal, trigger: str) -> None:
        st, ins = m.st, m.ins
        units = ins.qty(format(qty, "f")) if qty == qty.quantize(Decimal(ins.step_size)) else None
        if units is None:
            units = int(qty / Decimal(ins.step_size)) * ins.lot
        if units <= 0:
            return
        n = st.sent
        coid = child_order_id(f"exit:{st.account}:{st.symbol}:{st.epoch}", n)
        st.sent += 1
        st.exits.append(coid)
        self.exit_ids.add(coid)
        await self.store.put(st.account, m.key, st)  # before the send: a restart knows the id
        long = Decimal(st.qty) > 0
        futures = ins.id.market is Market.USDM
        order = PlaceOrder(account=st.account, symbol=st.symbol, side=Side.SELL if long else Side.BUY,
                           order_type=OrderType.MARKET, qty=ins.qty_str(units), reduce_only=futures,
                           strategy=st.strategy, intent=f"{trigger}:{st.epoch}:{n}", client_order_id=coid,
                           max_slippage_bps=m.rule.max_slippage_bps)  # fmt: skip
        self.fired.labels(st.account, trigger).inc()
        log.info("managed exit of %s %s: %s %s (%s)", st.account, st.symbol, order.side, order.qty, trigger)
        [res] = await self.execute([order])
        if not res.ok:
            log.warning("managed exit %s of %s refused: %s %s", coid, st.account, res.code, res.reason)

    # ------------------------------------------------------------------ restart
    async def resume(self, account: str, clients_for=None) -> int:
        """Reload the managed positions of ``account``; an exit order recorded but unknown to the gateway is
        looked up at the venue by its id and adopted (so it is waited for, never sent again)."""
        n = 0
        for st in await self.store.load(account, "exit-", ExitState):
            if Decimal(st.qty) == 0:
                continue
            if st.rule is not None:  # a strategy's own: it applies again
                try:
                    rule = ExitRule.model_validate(st.rule)
                except ValueError as exc:  # pydantic's ValidationError: a state of another version
                    log.error("managed exit %s of %s: its strategy's rule is unreadable, not resumed: %s",
                              st.symbol, account, exc)  # fmt: skip
                    continue
                self.overrides.setdefault((account, st.symbol, st.strategy), rule)
            else:
                rule = self.conf.rule_for(account, st.strategy) if self.conf is not None else None
            if rule is None:
                continue
            try:
                i, ins = self.book.number(self.exchange_of(account), st.symbol)
            except Exception:
                continue
            key = self.key_of(account, st.symbol, st.strategy)
            self.positions[f"{account}|{key}"] = Managed(st, i, ins, rule, key)
            self.exit_ids.update(st.exits)
            for coid in st.exits:
                if clients_for is not None and self.gateway.orders.get(coid) is None:
                    try:
                        self.gateway.adopt(await clients_for(st.symbol).execution.query_order(st.symbol, coid))
                    except OrderNotFound:
                        pass  # recorded, never placed
                    except (VenueError, ValueError) as exc:
                        log.warning("managed exit %s of %s not found out at restart: %s", coid, account, exc)
            n += 1
        return n
