"""The hosted strategies: the compiled callbacks of ``strategies/`` driven by live trades, their intents sent
through the same gateway path as NATS commands (``OrderRouter.execute``).

For each ``StrategyPlan`` (a strategy of ``strategies.yaml`` whose account this daemon owns) a
``strategies.host.StrategyHost`` is built over the daemon's kernel numbering (account and instrument numbers
are the kernel state's), bound to its account and symbols. Each trade of a bound symbol becomes one
``EV_FIELDS`` market event; before the call the host's account view (``acc``, ``pos``) is refreshed from
the kernel state. Each intent becomes a ``PlaceOrder`` whose ``intent`` is ``{strategy}:{event ts}:{row}``,
so the client order id is the same if the same event is replayed; ``CANCEL`` cancels the order the
strategy tagged, ``CANCEL_ALL`` every open order of the account on that symbol. The commands of one call go
through ``OrderRouter.execute(..., pipelined=True)``: decided in order, consecutive placements in flight together
(a quote's bid and ask cost one venue round trip).

``on_fill`` is called for every fill and every rejection of a strategy's own orders (the event sink's
listener: ``F_FIELDS`` with its tag, ``MAKER``/``PARTIAL``/``REJECTED`` flags, the fee in money units), and
``on_timer`` every ``Strategy.timer_ns`` of wall-clock time (on the boundaries, as the backtest does in market
time); their intents take the same path as those of ``on_market``.

``QUOTE_QTY`` (spend ``IN_QTY`` money units, fees included) is sized here, like the backtest's
``_size_budget``, at the book's best price on the side taken (the account's own taker fee, ``stream.fees``) and
sent as a market order of that quantity; ``CLOSE`` becomes a market order for the account's whole position on
the instrument (from the positions kernel; reduce-only on futures; on Spot at most the free balance of the base
asset, since a Spot buy pays its fee in that asset). An intent the host refuses (``IntentError``) or that
cannot be an order now (``QUOTE_QTY`` without a book or below one lot, ``CLOSE`` when flat) is counted in
``dropped`` and logged once per reason; the strategy keeps running.

Emulated intents are worked by ``stream.emulation``, as the backtest's ``backtest.emulation`` works them: a
``TWAP`` or ``POV`` becomes a ``PlaceParent`` (twap, pov; its tag names the parent: ``CANCEL`` of the tag cancels
it, and its children's fills reach ``on_fill`` with that tag); the exit rows of one call for one instrument
(``STOP_LOSS``, ``TRAILING_STOP``, ``MAX_HOLD``, ``TAKE_PROFIT``) become the strategy's ``ExitRule`` on that symbol
(``ExitManager.set_rule``, through ``exit_rules``), whose exits' fills reach ``on_fill`` tagged ``EXIT_TAG``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from decimal import Decimal

import numpy as np

from kernels import book as K
from kernels import codes as C
from kernels.state import A_CASH, A_OPEN_ORDERS, P_QTY
from oms.config.exits import ExitRule, TakeProfitLevel
from oms.model import (
    CancelAll,
    CancelOrder,
    Instrument,
    LiquiditySide,
    Market,
    OrderEvent,
    OrderStatus,
    OrderType,
    PlaceOrder,
    Side,
    TimeInForce,
    Trade,
)
from oms.model.parents import ParentAlgo, PlaceParent
from oms.model.units import MONEY_UNIT, money_to_units, round_to_units, to_decimal
from strategies import api
from strategies import registry as builtins
from strategies.base import Binding
from strategies.host import IntentError, StrategyHost
from stream.bars import BarClock
from stream.commands import OrderRouter
from stream.marketdata import MarketFeed
from stream.wiring import DaemonPlan, KernelWiring

log = logging.getLogger("stream.strategies")


_EXIT_TRIGGERS = frozenset({"stop_loss", "trailing_stop", "max_hold"})  # stream.emulation.exits' order intents
QUOTE_FEE_PPM = 1_000  # the taker fee QUOTE_QTY budgets leave room for (Binance's base rate, 0.1%)


class HostedStrategy:
    def __init__(
        self, name: str, host: StrategyHost, account: str, a: int, instruments: set[int], accounts: tuple[int, ...] = ()
    ):
        self.name, self.host, self.account, self.a, self.instruments = name, host, account, a, instruments
        self.accounts = tuple(dict.fromkeys(accounts or (a,)))  # every account it trades (legs), once each
        self.bar_seconds = 0  # > 0: driven by bars of this many seconds (stream.bars), not by each trade
        self.tags: dict[int, tuple[str, str]] = {}  # strategy tag -> (client order id, symbol)
        self.by_order: dict[str, int] = {}  # client order id -> strategy tag (fills back to on_fill)
        self.also: dict[str, list[int]] = {}  # client order id -> its earlier tags, where it has several
        self.fills = self.timers = 0


class StrategyRunner:
    def __init__(self, plan: DaemonPlan, wiring: KernelWiring, router: OrderRouter, feeds: list[MarketFeed], fees=None):
        self.plan, self.wiring, self.router, self.feeds = plan, wiring, router, feeds
        self.fees = fees  # stream.fees.FeeRates: the account's own taker rate for QUOTE_QTY budgets
        self.hosted: list[HostedStrategy] = []
        self.dropped: Counter[str] = Counter()
        self.intents = 0
        self._tasks: set[asyncio.Task] = set()
        self.clocks: list[BarClock] = []
        self.refused: list[str] = []  # strategies whose parameters or binding their kind refused (named, logged)
        self._clock_tasks: list[asyncio.Task] = []
        self._running = False
        self._orders: dict[str, HostedStrategy] = {}  # client order id -> its strategy
        self._seen: set[str] = set()  # trade ids delivered to on_fill
        lv = feeds[0].lv if feeds else None
        self.books = (lv, feeds[0].meta) if feeds else None
        self.parents: dict[str, tuple[HostedStrategy, int]] = {}  # parent id -> its strategy and tag
        self.exit_rules = None  # (account, symbol, strategy, ExitRule) -> None: stream.emulation.ExitManager.set_rule

    def start(self) -> None:
        table = self.wiring.instruments
        instruments = [table.instrument(k)[1] for k in range(len(table))]
        for sp in self.plan.strategies:
            session_number = self.wiring.accounts[sp.account.exchange, sp.account.name]
            legs = sp.legs or tuple((sp.account, sp.market, s) for s in sp.symbols)
            numbers = [table.lookup(acct.exchange, sym)[0] for acct, _, sym in legs]
            leg_accounts = tuple(self.wiring.accounts[acct.exchange, acct.name] for acct, _, _ in legs)
            binding = Binding(
                accounts=leg_accounts if sp.legs else (session_number,),
                instruments=tuple((i, instruments[i]) for i in numbers),
            )
            try:
                host = StrategyHost(
                    builtins.get(sp.kind), sp.params, binding, self.wiring.state.n_accounts, instruments, name=sp.name
                )
            except (ValueError, KeyError) as exc:  # pydantic's ValidationError is a ValueError
                why = f"strategies.yaml strategies.{sp.name} ({sp.kind}) is not hosted: {exc}"
                self.refused.append(why)
                log.error(why)
                continue
            hosted = HostedStrategy(sp.name, host, str(sp.account), session_number, set(numbers), binding.accounts)
            hosted.bar_seconds = sp.bar_seconds
            self.hosted.append(hosted)
            where = ", ".join(f"{sym} on {acct}" for acct, _, sym in legs)
            driven = f"bars of {sp.bar_seconds} s" if sp.bar_seconds else "each trade"
            log.info("strategy %s (%s) hosted on %s, driven by %s", sp.name, sp.kind, where, driven)
        for seconds in sorted({h.bar_seconds for h in self.hosted if h.bar_seconds}):
            wanted = set().union(*(h.instruments for h in self.hosted if h.bar_seconds == seconds))
            clock = BarClock(seconds, wanted, lambda ev, s=seconds: self.on_bar(s, ev))
            self.clocks.append(clock)
            task = asyncio.get_running_loop().create_task(clock.run(), name=f"bars {seconds}s")
            self._clock_tasks.append(task)
        for feed in self.feeds:
            feed.listeners.append(self.on_trade)
            if self.clocks:
                feed.price_listeners.append(self.on_price)
        sink = getattr(self.router, "sink", None)
        if sink is not None and hasattr(sink, "listeners"):
            sink.listeners.append(self.on_event)
        self.router.gateway.orders.forget_listeners.append(self.forget)
        self._running = True
        loop = asyncio.get_running_loop()
        for h in self.hosted:
            if h.host.strategy.timer_ns > 0:
                self._spawn(loop, self._timer(h), f"timer {h.name}")

    def stop(self) -> None:
        self._running = False
        for task in self._clock_tasks:
            task.cancel()
        for t in list(self._tasks):
            if t.get_name().startswith("timer "):
                t.cancel()

    def _spawn(self, loop, coro, name: str | None = None) -> None:
        task = loop.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _send(self, h: HostedStrategy, rows, ts: int, what: str) -> None:
        rows = rows.tolist()  # Python ints: a numpy row's fields are slow to read one by one
        exits: dict[tuple[int, int], list] = {}
        for row in rows:
            if api.STOP_LOSS <= int(row[api.IN_TYPE]) <= api.TAKE_PROFIT:
                exits.setdefault((int(row[api.IN_ACCOUNT]), int(row[api.IN_INST])), []).append(row)
        for (a, i), parts in exits.items():
            self._exit_rule(h, a, i, parts)
        commands = [c for r, row in enumerate(rows) if (c := self._command(h, row, ts, r, what)) is not None]
        if commands:
            self.intents += len(commands)
            self._spawn(asyncio.get_running_loop(), self.router.execute(commands, pipelined=True))

    # ------------------------------------------------------------------ on_timer and on_fill
    async def _timer(self, h: HostedStrategy) -> None:
        period = h.host.strategy.timer_ns
        while self._running:
            now = time.time_ns()
            due = (now // period + 1) * period
            await asyncio.sleep((due - now) / 1e9)
            if not self._running:
                return
            h.timers += 1
            self._call(h, h.host.on_timer, due, due, "timer")

    def on_event(self, ev) -> None:
        """The event sink's listener: fills and rejections of a hosted strategy's orders go to its on_fill."""
        if not self._running or type(ev) is not OrderEvent:
            return
        h = self._orders.get(ev.client_order_id)
        rec = self.router.gateway.orders.get(ev.client_order_id)
        tag = h.by_order.get(ev.client_order_id, 0) if h is not None else 0
        if rec is None and h is not None and ev.status is OrderStatus.REJECTED:
            self.forget(ev.client_order_id, None)  # refused before the venue: the gateway never tracked it
        if h is None:  # a child of its parent, or one of its managed exits
            h, tag = self._emulated(rec)
            if h is None:
                return
        if rec is None and ev.status is not OrderStatus.REJECTED:
            return
        row = np.zeros(api.F_FIELDS, dtype=np.int64)
        row[api.F_TAG] = tag
        exchange, _, name = str(ev.account).partition("/")
        try:  # a strategy with legs trades several accounts: the fill's own account
            row[api.F_ACCOUNT] = self.wiring.accounts[exchange, name]
        except KeyError:
            row[api.F_ACCOUNT] = h.a
        row[api.F_TS] = ev.event_ns
        if ev.fill is not None:
            f = ev.fill
            if f.trade_id in self._seen:
                return
            self._seen.add(f.trade_id)
            _, ins = self.wiring.instruments.instrument(rec.instrument)
            row[api.F_INST], row[api.F_SIDE] = rec.instrument, 1 if f.side is Side.BUY else -1
            row[api.F_PRICE], row[api.F_QTY] = ins.price(f.price), ins.qty(f.qty)
            row[api.F_FEE] = self._fee(f, ins)
            row[api.F_FLAGS] = (api.MAKER if f.liquidity is LiquiditySide.MAKER else 0) | (
                api.PARTIAL if rec.is_open else 0
            )
        elif ev.status is OrderStatus.REJECTED:
            try:
                i, _ = self.wiring.instruments.lookup(ev.account.partition("/")[0], ev.symbol)
            except Exception:
                return
            row[api.F_INST] = i
            row[api.F_SIDE] = 1 if ev.side is Side.BUY else -1
            row[api.F_FEE] = ev.code or 0
            row[api.F_FLAGS] = api.REJECTED
        else:
            return
        h.fills += 1
        self._call(h, h.host.on_fill, row, int(row[api.F_TS]), f"fill{int(h.fills)}")

    def forget(self, coid: str, rec) -> None:
        """The gateway forgot a finished order (``OrderTracker.forget_listeners``), or refused one it never
        tracked (``rec`` None): what the runner kept for it goes too (its strategy, tag and delivered trade ids;
        a tag now naming a later order keeps it)."""
        h = self._orders.pop(coid, None)
        if h is not None:
            tag = h.by_order.pop(coid, None)
            for t in (tag, *h.also.pop(coid, ())) if tag is not None else ():
                known = h.tags.get(t)
                if known is not None and known[0] == coid:
                    del h.tags[t]
        if rec is not None and rec.trade_ids:
            self._seen.difference_update(rec.trade_ids)

    def _emulated(self, rec) -> tuple[HostedStrategy | None, int]:
        """The strategy and tag of an order the emulation sent for it: a parent's child (``intent`` is
        ``{parent id}:{n}``) or a managed exit (``{trigger}:{epoch}:{n}``, the strategy's name on it)."""
        if rec is None:
            return None, 0
        intent = rec.cmd.intent
        found = self.parents.get(intent.rpartition(":")[0])
        if found is not None:
            return found
        trigger = intent.partition(":")[0]
        if trigger in _EXIT_TRIGGERS or trigger.startswith("take_profit_"):
            h = next((h for h in self.hosted if h.name == rec.cmd.strategy), None)
            return h, api.EXIT_TAG
        return None, 0

    def _exit_rule(self, h: HostedStrategy, a: int, i: int, parts) -> None:
        """The exit rows of one call for one instrument: the strategy's rule there (``ExitManager.set_rule``)."""
        _, ins = self.wiring.instruments.instrument(i)
        account = self.wiring.accounts.pairs[a]
        fields: dict = {"take_profit": []}
        for row in parts:
            t, value, qty = int(row[api.IN_TYPE]), int(row[api.IN_PRICE]), int(row[api.IN_QTY])
            pct = Decimal(value) / 10_000  # ppm of the price as percent
            if t == api.STOP_LOSS:
                fields["stop_loss_pct"] = pct
            elif t == api.TRAILING_STOP:
                fields["trailing_stop_pct"] = pct
            elif t == api.MAX_HOLD:
                fields["max_hold_s"] = Decimal(value)
            else:
                fields["take_profit"].append(TakeProfitLevel(at_pct=pct, fraction=Decimal(qty) / 1_000_000))
        try:
            rule = ExitRule(**fields)
        except ValueError as exc:  # pydantic's ValidationError
            self._drop("bad_exit_rule", h.name, str(exc))
            return
        if self.exit_rules is None:
            self._drop("no_exits", h.name, "the daemon manages no exits (no emulation)")
            return
        self.exit_rules(f"{account[0]}/{account[1]}", ins.symbol, h.name, rule)

    @staticmethod
    def _fee(f, ins: Instrument) -> int:
        try:
            if f.commission == "0":
                return 0
            if f.commission_asset in ("", ins.id.quote):
                return money_to_units(f.commission, "commission")
            if f.commission_asset == ins.id.base:
                return round_to_units(to_decimal(f.commission) * to_decimal(f.price), MONEY_UNIT, "commission")
        except ValueError:
            pass
        return 0

    def _view(self, h: HostedStrategy) -> None:
        st = self.wiring.state
        n = h.host.pos.shape[1]
        for a in h.accounts:
            h.host.acc[a, api.A_CASH] = st.acc[A_CASH, a]
            h.host.acc[a, api.A_EQUITY] = st.equity(a)
            h.host.acc[a, api.A_OPEN_ORDERS] = st.acc[A_OPEN_ORDERS, a]
            h.host.pos[a, :] = st.pos[P_QTY, a, :n, 0] + st.pos[P_QTY, a, :n, 1]

    def on_trade(self, i: int, ins: Instrument, trade: Trade) -> None:
        if not self._running:
            return
        for clock in self.clocks:
            clock.observe(i, ins, Decimal(trade.price), Decimal(trade.qty))
        for h in self.hosted:
            if i not in h.instruments or h.bar_seconds:
                continue
            try:
                price, qty = ins.price(trade.price), ins.qty(trade.qty)
            except ValueError as exc:
                self._drop("bad_trade", h.name, str(exc))
                continue
            ev = np.zeros(api.EV_FIELDS, dtype=np.int64)
            ev[api.EV_TS] = ev[api.EV_T0] = trade.event_ns
            ev[api.EV_KIND], ev[api.EV_INST] = api.TRADE, i
            ev[api.EV_OPEN] = ev[api.EV_HIGH] = ev[api.EV_LOW] = ev[api.EV_CLOSE] = price
            ev[api.EV_VOLUME] = qty
            ev[api.EV_AUX] = 1 if trade.taker_side is Side.BUY else -1
            self._deliver(h, ev)

    def on_price(self, i: int, ins: Instrument, price: Decimal) -> None:
        """A top-of-book mid: a price observation of the bars (``stream.bars``)."""
        for clock in self.clocks:
            clock.observe(i, ins, price)

    def on_bar(self, seconds: int, ev: np.ndarray) -> None:
        if not self._running:
            return
        i = int(ev[api.EV_INST])
        for h in self.hosted:
            if h.bar_seconds == seconds and i in h.instruments:
                self._deliver(h, ev)

    def _deliver(self, h: HostedStrategy, ev: np.ndarray) -> None:
        """One market event to one strategy; its intents go through the gateway like NATS commands."""
        self._call(h, h.host.on_market, ev, int(ev[api.EV_TS]), "")

    def _call(self, h: HostedStrategy, callback, arg, ts: int, what: str) -> None:
        """Refresh the strategy's account view, run one of its callbacks, send its intents (a refused one is
        dropped and counted; the strategy keeps running)."""
        self._view(h)
        try:
            rows = callback(arg)
        except IntentError as exc:
            self._drop("bad_intent", h.name, str(exc))
            return
        self._send(h, rows, ts, what)

    def _command(self, h: HostedStrategy, row: list[int], ts: int, r: int, what: str = ""):
        a, i, side, otype, price, qty, flags, tag = row[: api.IN_FIELDS]
        exchange, ins = self.wiring.instruments.instrument(i)
        account = self.wiring.accounts.pairs[a]
        acct = f"{account[0]}/{account[1]}"
        if otype == api.CANCEL:
            known = h.tags.get(tag)
            if known is None:
                self._drop("cancel_unknown_tag", h.name, f"tag {tag}")
                return None
            return CancelOrder(account=acct, symbol=known[1], client_order_id=known[0])
        if otype == api.CANCEL_ALL:
            return CancelAll(account=acct, symbol=ins.symbol)
        if api.STOP_LOSS <= otype <= api.TAKE_PROFIT:
            return None  # the strategy's exit rule (``_exit_rule``)
        if otype in (api.TWAP, api.POV):
            return self._parent(h, acct, ins, otype, side, price, qty, flags, tag, ts, r, what)
        if flags & api.QUOTE_QTY:
            qty = self._size_budget(qty, i, side, ins, a)
            if qty <= 0:
                self._drop("quote_qty_unsized", h.name, f"{ins.symbol}: no book, or the budget buys less than a lot")
                return None
        elif flags & api.CLOSE:
            held = int(self.wiring.state.pos[P_QTY, a, i, 0] + self.wiring.state.pos[P_QTY, a, i, 1])
            if held == 0:
                self._drop("close_flat", h.name, f"{ins.symbol}: no position to close")
                return None
            qty, side = abs(held), C.SELL if held > 0 else C.BUY
            if (
                side == C.SELL and ins.id.market is Market.SPOT
            ):  # a Spot buy paid its fee in the asset: sell what is there
                qty = min(qty, self._free_units(acct, ins))
                if qty <= 0:
                    self._drop("close_flat", h.name, f"{ins.symbol}: no free {ins.id.base} to sell")
                    return None
        cmd = PlaceOrder(
            account=acct,
            symbol=ins.symbol,
            side=Side.BUY if side == C.BUY else Side.SELL,
            order_type=OrderType.LIMIT if otype == C.LIMIT else OrderType.MARKET,
            qty=ins.qty_str(qty),
            price=ins.price_str(price) if otype == C.LIMIT else None,
            time_in_force=(TimeInForce.IOC if flags & api.IOC else TimeInForce.GTC) if otype == C.LIMIT else None,
            reduce_only=bool(flags & api.REDUCE_ONLY) or bool(flags & api.CLOSE and ins.id.market is Market.USDM),
            post_only=bool(flags & api.POST_ONLY),
            strategy=h.name,
            intent=f"{h.name}:{ts}:{r}" + (f":{what}" if what else ""),
        ).with_client_order_id(self.router.gateway.id_prefix)
        coid = cmd.client_order_id or ""
        h.tags[tag] = (coid, ins.symbol)
        was = h.by_order.get(coid)
        if was is not None and was != tag:  # the same order under another tag (two events of one timestamp)
            h.also.setdefault(coid, []).append(was)
        h.by_order[coid] = tag
        self._orders[coid] = h
        return cmd

    def _parent(self, h: HostedStrategy, acct: str, ins: Instrument, otype: int, side: int, price: int, qty: int,
                flags: int, tag: int, ts: int, r: int, what: str) -> PlaceParent:  # fmt: skip
        if otype == api.TWAP:
            algo = {"algo": ParentAlgo.TWAP, "slices": flags & ((1 << api.TWAP_SLICES_BITS) - 1),
                    "duration_s": float(flags >> api.TWAP_SLICES_BITS)}  # fmt: skip
        else:  # POV: participation ppm as a percentage (1 ppm = 0.0001%)
            ppm = flags & ((1 << api.POV_PPM_BITS) - 1)
            algo = {"algo": ParentAlgo.POV, "participation_pct": format(Decimal(ppm) / 10_000, "f"),
                    "duration_s": float(flags >> api.POV_PPM_BITS)}  # fmt: skip
        cmd = PlaceParent(
            account=acct, symbol=ins.symbol, side=Side.BUY if side == C.BUY else Side.SELL, qty=ins.qty_str(qty),
            price=ins.price_str(price) if price else None, strategy=h.name,
            intent=f"{h.name}:{ts}:{r}" + (f":{what}" if what else ""), **algo,
        ).with_parent_id()  # fmt: skip
        pid = cmd.parent_id or ""
        h.tags[tag] = (pid, ins.symbol)  # CANCEL of the tag cancels the parent
        self.parents[pid] = (h, tag)
        return cmd

    def _free_units(self, account: str, ins: Instrument) -> int:
        """The account's free Spot balance of the base asset, in whole lots (the user stream keeps it; a fill
        whose balance update has not arrived yet is counted in, ``AccountSession.free``)."""
        session = getattr(self.router, "sessions", {}).get(account)
        free = session.free(Market.SPOT, ins.id.base) if session is not None else None
        if free is None or free <= 0:
            return 0
        units = int(free / to_decimal(ins.qty_unit))
        return units - units % ins.lot

    def _size_budget(self, budget: int, i: int, side: int, ins: Instrument, a: int = -1) -> int:
        """Most whole lots whose notional plus the taker fee fits in ``budget`` money units at the book's best
        price on the side taken (the backtest's ``_size_budget`` at its fill price). The fee is account a's own
        taker rate where the venue reported it (``stream.fees``), else ``QUOTE_FEE_PPM``."""
        fee = self.fees.taker_ppm(a, i, QUOTE_FEE_PPM) if self.fees is not None else QUOTE_FEE_PPM
        if self.books is None:
            return 0
        lv, meta = self.books
        best = int(K.best(lv, meta, i, K.ASK if side == C.BUY else K.BID)[0])
        if best <= 0:
            return 0
        unit = best * ins.mult
        q = budget * 1_000_000 // (unit * (1_000_000 + fee)) // ins.lot * ins.lot
        while q > 0 and q * unit + q * unit * fee // 1_000_000 > budget:
            q -= ins.lot
        return q

    def _drop(self, reason: str, strategy: str, detail: str) -> None:
        n = self.dropped[reason] = self.dropped[reason] + 1
        if n == 1 or n % 1000 == 0:
            log.warning("strategy %s: intent dropped (%s, %d so far): %s", strategy, reason, n, detail)
