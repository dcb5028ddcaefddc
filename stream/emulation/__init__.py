"""What the daemon does that a venue may lack: emulated parent orders, managed exits, slippage control.

``Emulation(daemon)`` plugs into a started daemon's parts without changing them: command hooks on the
``OrderRouter`` (``ParentEngine.hook`` for ``PlaceParent``/cancel of a parent, ``SlippageControl.hook`` for
capped market orders and every order's reference price), listeners on the ``EventSink`` (children's events,
fills' slippage fields) and on the market feeds (trades through ``BookView``), and the ``oms_parents`` KV
bucket for what must survive a restart. ``start()`` runs before the daemon subscribes its command subjects,
so the first command already sees the hooks; it resumes the working parents and exits of its accounts.
``attach()`` (before the accounts start) plugs the parts in early, so the managed exits also get the fills
that the accounts' reconciliation finds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import date
from decimal import Decimal

import msgspec

from kernels import codes as C
from oms.archive.logs import LogWriter, day_of
from oms.bus import OutboxRecord, order_subject
from oms.bus.streams import ensure_bucket
from oms.model import AccountId, Instrument, Market, Order, codec
from oms.model.codec import encode
from oms.model.parents import ParentEvent
from oms.model.units import to_decimal
from stream.emulation.book import BookView
from stream.emulation.exits import ExitManager
from stream.emulation.parents import ParentEngine
from stream.emulation.slippage import SlippageControl
from stream.emulation.store import BUCKET, StateStore

log = logging.getLogger("stream.emulation")
FEE_ROOM = Decimal("0.001")  # the taker fee a buy's balance cap leaves room for (Binance's base rate)

__all__ = ["BookView", "Emulation", "ExitManager", "ParentEngine", "SlippageControl", "StateStore"]


def exchange_of(account: str) -> str:
    return account.partition("/")[0]


def _record(ev: ParentEvent) -> OutboxRecord:
    subject = order_subject("orders", AccountId.parse(ev.account), ev.symbol)
    return OutboxRecord(subject, f"parent:{ev.account}:{ev.parent_id}:{ev.seq}", msgspec.Raw(encode(ev)))


def logged_through(logs: LogWriter, account: str, events: list[ParentEvent]) -> dict[date, int]:
    """The last seq of ``events``' parent in each of their days' parents.jsonl of ``account`` (0: none); a line
    that does not read (a crash's torn last line) is not a logged event."""
    pid = events[0].parent_id
    out: dict[date, int] = {}
    for day in {day_of(ev.event_ns) for ev in events}:
        path, top = logs.layout.log("parents", day, account), 0
        if path.exists():
            needle = pid.encode()
            with path.open("rb") as fh:
                for line in fh:
                    if needle not in line:
                        continue
                    try:
                        ev = codec.decode(line, ParentEvent)
                    except codec.DecodeError:
                        continue
                    if ev.parent_id == pid:
                        top = max(top, ev.seq)
        out[day] = top
    return out


class Emulation:
    def __init__(self, daemon, *, tick_s: float = 0.05):
        self.daemon = daemon
        self.tick_s = tick_s
        self.book: BookView | None = None
        self.parents: ParentEngine | None = None
        self.slippage: SlippageControl | None = None
        self.exits: ExitManager | None = None
        self._tasks: list[asyncio.Task] = []
        self._unsent: dict[str, list[tuple[str, str]]] = {}  # account -> (symbol, child id) for its reconciliation

    async def attach(self) -> None:
        """Before the accounts start: the parts and their hooks and listeners, so that the fills a start's
        reconciliation finds (made while the daemon was down) reach the managed exits. The exits hold them
        until ``start`` has reloaded the positions they belong to."""
        d = self.daemon
        kv = await ensure_bucket(d.nc.jetstream(), BUCKET, storage=d.settings.bus.storage)
        store = StateStore(kv)
        self.book = book = BookView(d.wiring.instruments, d.books, d.feeds)
        for feed in d.feeds:
            feed.listeners.append(book.on_trade)
        registry = d.metrics.registry
        self.slippage = SlippageControl(book, exchange_of, registry, id_prefix=d.gateway.id_prefix)
        self.parents = ParentEngine(d.gateway, d.router.execute, book, store, self._publish, recover=self._recover,
                                    exchange_of=exchange_of, tick_s=self.tick_s, free_of=self._free_of,
                                    clients_of=lambda account: d.sessions[account].clients_for)  # fmt: skip
        self.exits = ExitManager(d.cfg.risk, d.gateway, d.router.execute, book, store, registry,
                                 exchange_of=exchange_of, tick_s=self.tick_s)  # fmt: skip
        d.router.hooks.extend((self.parents.hook, self.slippage.hook))
        d.sink.enrich = self.slippage.enrich
        d.sink.listeners.extend((self.parents.on_event, self.exits.on_event))
        book.listeners.extend((self.parents.on_trade, self.exits.on_trade))
        book.volume_listeners.append(self.parents.on_volume)
        self.exits.hold()
        for name in d.sessions:
            self._unsent[name] = await self.parents.unsent(name)
            await self._restore_references(name)

    def _free_of(self, account: str, ins: Instrument, side: int, limit: int) -> int | None:
        """What ``account``'s free Spot balance buys at ``limit`` (less the taker fee) or sells, in whole lots of
        ``ins``; None when it is not known (or not Spot: margin is the risk kernel's)."""
        s = self.daemon.sessions.get(account)
        if s is None or ins.id.market is not Market.SPOT:
            return None
        if side == C.BUY:
            free = s.free(Market.SPOT, ins.id.quote)
            qty = None if free is None else free * (1 - FEE_ROOM) / Decimal(ins.price_str(limit))
        else:
            qty = s.free(Market.SPOT, ins.id.base)
        if qty is None:
            return None
        units = max(0, int(qty / to_decimal(ins.qty_unit)))
        return units - units % ins.lot

    async def _restore_references(self, account: str) -> None:
        """The slippage references of the account's open orders, as the last run left them in the live state."""
        d = self.daemon
        try:
            orders = await d.live.get(account, "open_orders", list[Order]) if d.live is not None else None
        except Exception as exc:  # NATS down or an entry of another version: those fills carry no slippage
            log.warning("slippage references of %s not restored (%s: %s)", account, type(exc).__name__, exc)
            return
        if orders:
            self.slippage.restore(orders)

    def unsent_for(self, account: str, symbols) -> tuple[tuple[str, str], ...]:
        """The recorded, maybe sent children of ``account`` on ``symbols`` (``ParentEngine.unsent``), for its
        start's reconciliation (once: later reconciliations find them in the gateway)."""
        found = self._unsent.get(account, [])
        mine = tuple(x for x in found if x[0] in symbols)
        self._unsent[account] = [x for x in found if x[0] not in symbols]
        return mine

    async def start(self) -> None:
        """After the accounts started: resume the working parents and managed exits of the trading ones, then
        apply the fills their reconciliation found, and run."""
        d = self.daemon
        if self.exits is None:
            await self.attach()
        assert self.parents is not None and self.exits is not None
        for s in d.sessions.values():
            if s.trading:
                await self.parents.resume(s.name, s.clients_for)
                await self.exits.resume(s.name, s.clients_for)
        self.exits.release()
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self.parents.run(), name="parent orders"),
            loop.create_task(self.exits.run(), name="managed exits"),
        ]

    async def _publish(self, ev: ParentEvent) -> asyncio.Future | None:
        ack = await self.daemon.publisher.publish_record(_record(ev))
        self.daemon.sink.log(ev)  # data/logs/YYYY/MM/DD/{account}/parents.jsonl, beside the children's orders.jsonl
        self.daemon.metrics.events_published.labels("ParentEvent").inc()
        return ack

    async def _recover(self, account: str, events: list[ParentEvent]) -> None:
        """A parent's events the last run wrote ahead in its state and may have stopped before publishing or
        logging: through the outbox (each stored once: ``EventPublisher.requeue``), and into parents.jsonl those
        after the last seq the day's file has of that parent (its lines go in seq order)."""
        d = self.daemon
        d.publisher.requeue([msgspec.structs.replace(_record(ev), t=ev.event_ns) for ev in events])
        logged = logged_through(d.sink.logs, account, events)
        for ev in events:
            if ev.seq > logged.get(day_of(ev.event_ns), 0):
                d.sink.log(ev)
        d.metrics.events_published.labels("ParentEvent").inc(len(events))

    async def stop(self) -> None:
        """No new steps; the steps in flight finish (their state is written)."""
        for part in (self.parents, self.exits):
            if part is not None:
                part.stop()
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        for part in (self.parents, self.exits):
            if part is not None:
                await part.drain()
