"""The hosted strategies: the compiled callbacks of ``strategies/`` driven by live trades, their intents sent
through the same gateway path as NATS commands (``OrderRouter.execute``).

For each ``StrategyPlan`` (a strategy of ``strategies.yaml`` whose account this daemon owns) a
``strategies.host.StrategyHost`` is built over the daemon's kernel numbering (account and instrument numbers
are the kernel state's), bound to its account and symbols. Each trade of a bound symbol becomes one
``EV_FIELDS`` market event; before the call the host's account view (``acc``, ``pos``) is refreshed from
the kernel state. Each intent becomes a ``PlaceOrder`` whose ``intent`` is ``{strategy}:{event ts}:{row}``,
so the client order id is the same if the same event is replayed; ``CANCEL`` cancels the order the
strategy tagged, ``CANCEL_ALL`` every open order of the account on that symbol.

An intent the host refuses (``IntentError``) or that cannot be an order here (``QUOTE_QTY``, ``CLOSE``) is
counted in ``dropped`` and logged once per reason; the strategy keeps running.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from decimal import Decimal

import numpy as np

from kernels import codes as C
from kernels.state import A_CASH, A_OPEN_ORDERS, P_QTY
from oms.model import CancelAll, CancelOrder, Instrument, OrderType, PlaceOrder, Side, TimeInForce, Trade
from strategies import api
from strategies import registry as builtins
from strategies.base import Binding
from strategies.host import IntentError, StrategyHost
from stream.bars import BarClock
from stream.commands import OrderRouter
from stream.marketdata import MarketFeed
from stream.wiring import DaemonPlan, KernelWiring

log = logging.getLogger("stream.strategies")


class HostedStrategy:
    def __init__(
        self, name: str, host: StrategyHost, account: str, a: int, instruments: set[int], accounts: tuple[int, ...] = ()
    ):
        self.name, self.host, self.account, self.a, self.instruments = name, host, account, a, instruments
        self.accounts = tuple(dict.fromkeys(accounts or (a,)))  # every account it trades (legs), once each
        self.bar_seconds = 0  # > 0: driven by bars of this many seconds (stream.bars), not by each trade
        self.tags: dict[int, tuple[str, str]] = {}  # strategy tag -> (client order id, symbol)


class StrategyRunner:
    def __init__(self, plan: DaemonPlan, wiring: KernelWiring, router: OrderRouter, feeds: list[MarketFeed]):
        self.plan, self.wiring, self.router, self.feeds = plan, wiring, router, feeds
        self.hosted: list[HostedStrategy] = []
        self.dropped: Counter[str] = Counter()
        self.intents = 0
        self._tasks: set[asyncio.Task] = set()
        self.clocks: list[BarClock] = []
        self._clock_tasks: list[asyncio.Task] = []
        self._running = False

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
            host = StrategyHost(
                builtins.get(sp.kind), sp.params, binding, self.wiring.state.n_accounts, instruments, name=sp.name
            )
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
        self._running = True

    def stop(self) -> None:
        self._running = False
        for task in self._clock_tasks:
            task.cancel()

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
        ts = int(ev[api.EV_TS])
        self._view(h)
        try:
            rows = h.host.on_market(ev)
        except IntentError as exc:
            self._drop("bad_intent", h.name, str(exc))
            return
        commands = [c for r, row in enumerate(rows) if (c := self._command(h, row, ts, r)) is not None]
        if commands:
            self.intents += len(commands)
            task = asyncio.get_running_loop().create_task(self.router.execute(commands))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _command(self, h: HostedStrategy, row: np.ndarray, ts: int, r: int):
        a, i, side, otype, price, qty, flags, tag = (int(x) for x in row[: api.IN_FIELDS])
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
        if flags & (api.QUOTE_QTY | api.CLOSE):
            self._drop("unsupported_flags", h.name, f"flags {flags} (QUOTE_QTY/CLOSE) are backtest-only here")
            return None
        cmd = PlaceOrder(
            account=acct,
            symbol=ins.symbol,
            side=Side.BUY if side == C.BUY else Side.SELL,
            order_type=OrderType.LIMIT if otype == C.LIMIT else OrderType.MARKET,
            qty=ins.qty_str(qty),
            price=ins.price_str(price) if otype == C.LIMIT else None,
            time_in_force=(TimeInForce.IOC if flags & api.IOC else TimeInForce.GTC) if otype == C.LIMIT else None,
            reduce_only=bool(flags & api.REDUCE_ONLY),
            post_only=bool(flags & api.POST_ONLY),
            strategy=h.name,
            intent=f"{h.name}:{ts}:{r}",
        ).with_client_order_id(self.router.gateway.id_prefix)
        h.tags[tag] = (cmd.client_order_id or "", ins.symbol)
        return cmd

    def _drop(self, reason: str, strategy: str, detail: str) -> None:
        n = self.dropped[reason] = self.dropped[reason] + 1
        if n == 1 or n % 1000 == 0:
            log.warning("strategy %s: intent dropped (%s, %d so far): %s", strategy, reason, n, detail)
