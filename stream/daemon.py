"""The stream daemon: one process, one asyncio loop, trading every account it owns.

    daemon = Daemon(load_config(), keys, DaemonSettings.from_config(cfg), accounts=["binance/sub_mm"])
    await daemon.start()          # wired, warmed up, reconciled, trading, serving /health and /metrics
    await daemon.wait_stopped()   # until SIGTERM (``request_stop``) or ``stop()``

``start()`` in order: the plan and kernel state from ``configs/`` (``stream.wiring``); the kernels warmed up
(``kernels.warmup``) so nothing compiles while trading; NATS (JetStream streams and KV buckets created if
missing) and the event publisher with its fsync'd outbox; market data per configured symbol (each instrument
gets its first mark before any order); then per account: its lease (a second daemon for the same account
logs why and leaves it alone), its clients with keys from the key provider, its balances into the kernel,
its user streams, the **reconciliation hook** (``Daemon.reconcile``, awaited before the account trades, at
start and after every user-stream gap) followed by the USD-M settings of ``accounts.yaml`` made to match
(``stream.futures_settings``), and the key-rotation listener; last the command subscriptions, the
hosted strategies, the live-state writer and the operations endpoints.

``stop()`` (SIGTERM): stop taking commands, cancel the open orders or leave them (``daemon.on_shutdown``),
wait for answers in flight, write the live state, flush the publisher (what JetStream does not confirm stays
in the outbox for the next run), release the leases, close the venues and NATS.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import signal
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import nats

from kernels.book import new_books
from kernels.codes import TRADING_STATES
from kernels.state import I_MARK, L_TRADING_STATE
from kernels.warmup import warm_up
from oms.archive.layout import Layout
from oms.archive.logs import LogWriter
from oms.bus import AccountLease, BusSettings, EventPublisher, LeaseHeld, LiveState, Outbox
from oms.bus.connect import NatsClientSettings
from oms.bus.streams import ensure_bucket, ensure_streams
from oms.config import Config
from oms.keys.metrics import KeyStoreCollector
from oms.keys.provider import Credentials, KeyProvider, KeyStoreError
from oms.keys.rotation import KeyRotationListener
from oms.keys.webhook import WebhookSecret
from oms.model import BalanceEvent, Fill, Market, OrderEvent, PositionEvent
from oms.model.commands import CommandReply, CommandRequest, encode_request
from oms.venues.factory import VenueFactory
from oms.venues.interface import StreamStatus, UserEvent
from stream import livestate
from stream.accounts import AccountSession
from stream.coin_cash import is_coin
from stream.commands import OrderRouter
from stream.emulation import Emulation
from stream.events import EventSink, RiskEvent, StateWriter
from stream.fees import FeeRates
from stream.funding import FundingBook
from stream.futures import FuturesMonitor
from stream.futures_settings import FuturesSettings, targets_from_config
from stream.gateway import OrderGateway
from stream.health import OpsServer
from stream.instruments import UnknownInstrument
from stream.marketdata import BOOK_DEPTH, MarketFeed
from stream.metrics import DaemonMetrics
from stream.reconcile_hook import reconcile_session, reconciler_of
from stream.risk import RiskControls, Trip
from stream.routing import SmartRouter
from stream.strategies import StrategyRunner
from stream.webhook import AlertWebhook, WebhookSettings
from stream.webhook import serve as serve_webhook
from stream.wiring import DaemonPlan, KernelWiring, plan_from_config

log = logging.getLogger("stream.daemon")

ReconcileHook = Callable[["Daemon", AccountSession, str], Awaitable[None]]


@dataclass(frozen=True)
class DaemonSettings:
    nats_url: str
    data_dir: Path
    health_port: int
    metrics_port: int
    holder: str = field(default_factory=lambda: f"stream-{socket.gethostname()}-{os.getpid()}".replace(".", "-"))
    on_shutdown: str = "leave"  # cancel | leave
    bus: BusSettings = BusSettings()
    local_url: str | None = None  # the local exchange's address (tests: a free port)
    venue_options: dict = field(default_factory=dict)  # exchange -> connector options
    nats_options: dict = field(default_factory=dict)  # more nats.connect options (user_credentials, tls, ...)
    # an account's user stream subscribed and its open orders loaded; more than one weight window: the load
    # (80 weight per Spot account without a symbol) may wait up to a minute for the IP's background share
    ready_timeout_s: float = 90.0
    start_concurrency: int = 16  # accounts started (and reconciled) at once
    finished_order_retention_s: float = 3600.0  # a finished order is remembered this long (stream.orders)
    finished_orders_max: int = 100_000  # and at most this many finished orders
    # who the daemon is on NATS (oms.bus.auth: the `daemon` NKey); None connects without credentials
    nats_identity: NatsClientSettings | None = None
    key_check_s: float | None = 30.0  # how often the key listener re-reads the keys (a Vault outage shows)

    @classmethod
    def from_config(cls, cfg: Config, **overrides) -> DaemonSettings:
        d = cfg.stream.daemon
        identity = NatsClientSettings.from_config(cfg, "daemon")  # OMS_NATS_URL / OMS_NATS_CREDENTIALS_DIR first
        values = dict(
            nats_url=identity.url,
            nats_identity=identity,
            data_dir=cfg.data_dir(),
            health_port=d.health_port,
            metrics_port=d.metrics_port,
            on_shutdown=d.on_shutdown,
            start_concurrency=d.start_concurrency,
            finished_order_retention_s=float(d.finished_order_retention_s),
            finished_orders_max=d.finished_orders_max,
        )
        values.update(overrides)
        return cls(**values)


async def no_reconcile(daemon: Daemon, session: AccountSession, reason: str) -> None:
    """The default hook: nothing beyond the balances loaded at start (``stream.reconcile`` replaces it)."""


class Daemon:
    def __init__(
        self,
        cfg: Config,
        keys: KeyProvider,
        settings: DaemonSettings,
        *,
        accounts: list[str] | None = None,
        reconcile: ReconcileHook = reconcile_session,
        warm: bool = True,
        webhook_secret: Callable[[], bytes] | None = None,
    ):
        self.cfg = cfg
        self.keys = keys
        self.settings = settings
        self.reconcile_hook = reconcile
        self.warm = warm
        self.webhook_secret = webhook_secret  # default: from Vault (oms.keys.webhook) when the keys are Vault's
        self.webhook: AlertWebhook | None = None
        self._webhook_runner = None
        self.risk: RiskControls | None = None
        self.futures: FuturesMonitor | None = None  # USD-M positions monitoring (risk.yaml futures_monitor)
        self.futures_settings: FuturesSettings | None = None  # USD-M leverage, margin type, position mode
        self.funding: FundingBook | None = None  # USD-M funding payments (stream.funding)
        self.plan: DaemonPlan = plan_from_config(cfg, accounts)
        for why in self.plan.unhosted:
            log.warning(why)
        self.wiring = KernelWiring(cfg, self.plan)
        self.metrics = DaemonMetrics()
        # key store and rotation series (oms_keys_*), read at scrape time
        self.metrics.registry.register(KeyStoreCollector(lambda: self.keys, lambda: self.rotation))
        self.gateway = OrderGateway(self.wiring.state, self.wiring.accounts, self.wiring.instruments)
        self.gateway.orders.set_limits(settings.finished_order_retention_s, settings.finished_orders_max)
        self.sessions: dict[str, AccountSession] = {
            str(p): AccountSession(p.id, self.wiring.accounts[p.exchange, p.name], p.markets)
            for p in self.plan.accounts
        }
        self.gateway.amends_qty_only = self._amends_qty_only  # Binance Spot: other amends are cancel-replaces
        self.feeds: list[MarketFeed] = []
        self.books = new_books(self.wiring.state.n_instruments, BOOK_DEPTH)
        self.nc = None
        self.publisher: EventPublisher | None = None
        self.sink: EventSink | None = None
        self.router: OrderRouter | None = None
        self.factory: VenueFactory | None = None
        self.live: LiveState | None = None
        self.writer: StateWriter | None = None
        self.rotation: KeyRotationListener | None = None
        self.strategies: StrategyRunner | None = None
        self.fees: FeeRates | None = None  # the accounts' own commission rates (stream.fees)
        self.routing: SmartRouter | None = None  # routed placements (stream.routing)
        self.emulation: Emulation | None = None
        self.ops: OpsServer | None = None
        self.logs: LogWriter | None = None
        self._subs: list = []
        self._tasks: list[asyncio.Task] = []
        self._stopped = asyncio.Event()
        self._stopping = False
        self.started_ns = 0
        self.warmup_s: dict[str, float] = {}
        self.starting = 0  # accounts starting now, the most at once, and how long all took
        self.start_peak = 0
        self.start_s = 0.0

    # ------------------------------------------------------------------ start
    async def start(self) -> None:
        s = self.settings
        if self.warm:
            self.warmup_s = warm_up()
            log.info("kernels warmed up in %.2f s", sum(self.warmup_s.values()))
        options = dict(name=s.holder, max_reconnect_attempts=-1, reconnect_time_wait=0.25, connect_timeout=5,
                       allow_reconnect=True)  # fmt: skip
        if s.nats_identity is not None:
            options.update(s.nats_identity.options())  # the daemon's NKey and reply inbox
        options.update(s.nats_options)
        self.nc = await nats.connect(s.nats_url, **options)
        js = self.nc.jetstream()
        await ensure_streams(js, s.bus)
        self.live = LiveState(await ensure_bucket(js, s.bus.state_bucket, storage=s.bus.storage))
        leases = await ensure_bucket(js, s.bus.lease_bucket, ttl_s=s.bus.lease_ttl_s, storage=s.bus.storage)
        self.publisher = EventPublisher(self.nc, Outbox(s.data_dir / "stream" / "outbox"))
        self.publisher.start()
        self.logs = LogWriter(Layout(s.data_dir))
        self.sink = EventSink(self.publisher, self.logs, self.metrics)
        self.router = OrderRouter(self.gateway, self.sessions, self.sink, self.metrics)
        self.router.coin_cash = {
            f"{ex}/{name}": tuple(acc.cash_assets)
            for ex, names in self.cfg.accounts.items()
            for name, acc in names.items()
            if len(acc.cash_assets) == 1 and is_coin(acc.cash_assets[0])
        }
        self.funding = FundingBook(self.wiring.state, self.wiring.instruments, self.publisher, self.logs, js,
                                   on_booked=lambda account: self.sink.dirty.add(account),
                                   pace=lambda limiter, w: reconciler_of(self).pacer.call(limiter, w))  # fmt: skip
        self.risk = RiskControls.from_config(
            self.cfg.risk, self.wiring.state, self.wiring.accounts, self._symbol_of, self._on_trip
        )
        self.risk.attach(self.gateway)
        self.router.on_resume = self.risk.resume
        self.futures_settings = FuturesSettings(
            targets_from_config(self.cfg, self.plan), self.sessions, self.wiring.state, self.metrics,
            self.sink.emit_risk, self.router.state_of, self.live,
        )  # fmt: skip
        self.router.on_settings = self.futures_settings.command
        # the start's reconciliation reads the open orders of the daemon's symbols (Spot: 6 weight a symbol) and
        # the connector learns them from that read: the user stream's own read of every open order (80) would
        # repeat it for each account, about half of a 200-account start's weight
        options = {ex: {"open_orders_at_start": False} for ex in self.cfg.exchanges.exchanges}
        for ex, opts in s.venue_options.items():
            options[ex] = {**options.get(ex, {}), **opts}
        self.factory = VenueFactory(self.cfg, self.keys, local_url=s.local_url, options=options)
        self._apply_config_states()
        for (exchange, market), symbols in self.plan.symbols.items():
            feed = MarketFeed(
                exchange, market, symbols, self.wiring.instruments, self.nc, self.metrics, books=self.books,
                kline_intervals=tuple(self.cfg.stream.daemon.kline_intervals),
            )  # fmt: skip
            await feed.start(self.factory)
            self.feeds.append(feed)
        self.emulation = Emulation(self)  # parents, managed exits, slippage control: hooks on the router
        await self.emulation.attach()  # before the accounts' reconciliation: the exits get the fills it finds
        await self._start_accounts(leases)
        await self._start_rotation()
        await self.emulation.start()
        self.fees = FeeRates(self.sessions, self.wiring.instruments, float(self.cfg.stream.daemon.fee_refresh_s))
        self._tasks.append(asyncio.get_running_loop().create_task(self.fees.run(), name="fee rates"))
        # placements naming other accounts (PlaceOrder.route) go where the routing kernel scores best
        self.routing = SmartRouter(self.books, self.sessions, self.wiring.instruments, self.gateway.orders.get,
                                   self.fees.taker_ppm, id_prefix=self.gateway.id_prefix)  # fmt: skip
        self.router.hooks.insert(0, self.routing)
        self.strategies = StrategyRunner(self.plan, self.wiring, self.router, self.feeds, fees=self.fees)
        self.strategies.exit_rules = self.emulation.exits.set_rule  # the strategies' exit intents
        self.strategies.start()
        trading = [x for x in self.sessions.values() if x.lease is not None]
        self._subs = await self.router.subscribe(self.nc, trading)
        self.writer = StateWriter(self.live, self.sink, self._account_view)
        self.sink.dirty.update(x.name for x in trading)
        await self.writer.flush()
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self.writer.run(), name="live state writer"))
        self.metrics.on_scrape(self._read_gauges)
        self.ops = OpsServer(
            s.health_port,
            s.metrics_port,
            summary=self.health,
            account_health=self.account_health,
            accounts=lambda: sorted(self.sessions),
            metrics=self.metrics.render,
        )
        await self.ops.start()
        self._tasks.extend(self.risk.start())
        fm = self.cfg.risk.futures_monitor
        if fm is not None and fm.enabled and any(Market.USDM in x.links for x in trading):
            self.futures = FuturesMonitor(fm, self.sessions, self._mark_of, self.sink.emit_risk, self.router.state_of,
                                          targets=self.futures_settings.targets,
                                          on_flat=self.futures_settings.retry_when_flat)  # fmt: skip
            self._tasks.append(self.futures.start())
        await self._start_webhook()
        self.started_ns = time.time_ns()
        log.info(
            "stream daemon %s trading %d of %d account(s): %s",
            s.holder,
            sum(x.trading for x in trading),
            len(self.sessions),
            ", ".join(x.name for x in trading if x.trading) or "none",
        )

    def _amends_qty_only(self, account: str, symbol: str) -> bool:
        """The venue of ``account``'s ``symbol`` amends only a lower quantity in place (``amend_qty_only``)."""
        session = self.sessions.get(account)
        try:
            execution = session.clients_for(symbol).execution if session is not None else None
        except (KeyError, ValueError):
            return False
        return bool(getattr(getattr(execution, "capabilities", None), "amend_qty_only", False))

    # ------------------------------------------------------------------ risk controls and the webhook
    def _mark_of(self, exchange: str, symbol: str) -> Decimal | None:
        try:
            i, ins = self.wiring.instruments.lookup(exchange, symbol)
        except UnknownInstrument:
            return None
        units = int(self.wiring.state.ins[I_MARK, i])
        return Decimal(ins.price_str(units)) if units > 0 else None

    def _symbol_of(self, i: int) -> str:
        return self.wiring.instruments.instrument(i)[1].symbol

    async def _on_trip(self, trip: Trip) -> None:
        """The circuit breaker switched an account (or all: ``*``): our view, a risk event, a metric."""
        if trip.account == "*":
            self.router.global_state = trip.trading_state
            names = list(self.sessions)
        else:
            self.sessions[trip.account].trading_state = trip.trading_state
            names = [trip.account]
        self.metrics.breaker_trips.labels(trip.account, trip.trading_state).inc()
        cancelled = dict.fromkeys(names, 0)
        cb = self.cfg.risk.circuit_breaker
        if trip.trading_state == "halted" and cb is not None and cb.cancel_orders_on_halt:
            sessions = [self.sessions[n] for n in names if self.sessions[n].trading]
            counts = await asyncio.gather(*(self.router.cancel_open(x) for x in sessions), return_exceptions=True)
            for x, n in zip(sessions, counts, strict=True):
                if isinstance(n, BaseException):
                    log.error("account %s: cancelling open orders after the breaker's halt failed: %s", x.name, n)
                else:
                    cancelled[x.name] = n
                    log.warning("account %s: %d open order(s) cancelled by the breaker's halt", x.name, n)
        for name in names:
            self.sink.dirty.add(name)
            await self.sink.emit_risk(
                RiskEvent(
                    account=name,
                    action="breaker",
                    trading_state=self.router.state_of(self.sessions[name]),
                    reason=trip.reason,
                    cancelled=cancelled[name],
                    event_ns=trip.event_ns,
                )
            )

    async def _start_webhook(self) -> None:
        """The alert webhook (``webhook:`` in stream.yaml) on its loopback port, into the same command path."""
        conf = self.cfg.stream.webhook
        if not conf.enabled:
            return
        secret = self.webhook_secret
        if secret is None:
            if not callable(getattr(self.keys, "read_data", None)):
                log.error("webhook enabled but the key provider is not Vault: its secret cannot be read; webhook off")
                return
            secret = WebhookSecret(self.keys).get  # type: ignore[arg-type]

        async def submit(account: str, req: CommandRequest) -> CommandReply:
            return await self.router.handle_request(encode_request(req), account)

        def counted(outcome: str) -> None:
            self.metrics.webhook_alerts.labels(outcome).inc()

        hook = AlertWebhook(WebhookSettings.from_config(conf), secret, submit, on_outcome=counted)
        self.webhook = hook
        self._webhook_runner = await serve_webhook(hook)
        log.info("webhook listening on http://%s:%d%s", conf.host, conf.port, conf.path)

    def _apply_config_states(self) -> None:
        for session in self.sessions.values():
            code = int(self.wiring.state.lim[L_TRADING_STATE, session.number])
            session.trading_state = next(k for k, v in TRADING_STATES.items() if v == code)

    async def _start_accounts(self, leases) -> None:
        """Every account's start (lease, clients, balances, user streams, reconciliation), up to
        ``start_concurrency`` at once; their venue calls share the reconciler's weight pacer, so many accounts
        starting together stay within the IP's weight budget. One account's failure leaves the others alone."""
        sem = asyncio.Semaphore(max(1, self.settings.start_concurrency))
        holder = self.settings.holder

        async def one(session: AccountSession) -> None:
            async with sem:
                self.starting += 1
                self.start_peak = max(self.start_peak, self.starting)
                try:
                    await self._start_account(session, AccountLease(leases, session.account, holder))
                finally:
                    self.starting -= 1

        t0 = time.perf_counter()
        await asyncio.gather(*(one(x) for x in self.sessions.values()))
        self.start_s = time.perf_counter() - t0
        log.info("%d account(s) started in %.2f s (%d at once at most)", len(self.sessions), self.start_s,
                 self.start_peak)  # fmt: skip

    async def _start_account(self, session: AccountSession, lease: AccountLease) -> None:
        try:
            await session.take_lease(lease)
        except LeaseHeld as exc:
            session.refused = str(exc)
            log.error("%s", exc, extra={"account": session.name})
            await self.sink.emit_risk(
                RiskEvent(
                    account=session.name,
                    action="lease_held",
                    trading_state="halted",
                    reason=str(exc),
                    event_ns=time.time_ns(),
                )
            )
            return
        # refreshed from now on, not once every account has started: a start longer than the lease's TTL
        # (200 accounts paced inside the IP's weight take minutes) must not let another daemon take it meanwhile
        ttl_s = self.settings.bus.lease_ttl_s
        self._tasks.append(
            asyncio.get_running_loop().create_task(
                session.keep_lease(ttl_s / 3, self._lease_lost), name=f"lease {session.name}"
            )
        )
        try:
            await session.connect(self.factory)
            # no balances read here: reconciliation reads them right after the subscription and sets the
            # session's balances and the kernel's cash (``ReconcileState.apply``); nothing trades before it
            session.subscribe(self._on_user_event)
            await session.ready(self.settings.ready_timeout_s)
        except (TimeoutError, KeyStoreError, KeyError, ValueError, OSError, Exception) as exc:
            session.refused = f"could not start: {type(exc).__name__}: {exc}"
            log.error("account %s %s; not trading it", session.name, session.refused, extra={"account": session.name})
            return
        await self._reconcile(session, "start")

    async def _reconcile(self, session: AccountSession, reason: str) -> None:
        """THE reconciliation call site: awaited before ``session`` trades, at start and after every gap."""
        session.trading = False
        try:
            await self.reconcile_hook(self, session, reason)
        except Exception as exc:
            session.refused = f"reconciliation ({reason}) failed: {type(exc).__name__}: {exc}"
            log.exception("account %s: %s; not trading it", session.name, session.refused)
            return
        if session.lease is None:  # lost to another daemon meanwhile (``_lease_lost`` said why)
            return
        await self._enforce_futures_settings(session, reason)
        self._catch_up_funding(session, reason)
        session.refused = ""
        session.trading = True
        self.sink.dirty.add(session.name)

    async def _enforce_futures_settings(self, session: AccountSession, reason: str) -> None:
        """The account's USD-M settings made to match configs/ (stream.futures_settings); whatever the venue
        refuses is reported there, and the account trades on the settings it has."""
        if self.futures_settings is None:
            return
        try:
            await self.futures_settings.enforce(session, reason)
        except Exception:  # a bug here must not keep the account from trading
            log.exception("account %s: enforcing the futures settings (%s) failed", session.name, reason)

    def _catch_up_funding(self, session: AccountSession, reason: str) -> None:
        """The funding payments JetStream lacks (stream.funding), read in the background and paced."""
        link = session.links.get(Market.USDM)
        if link is not None and self.funding is not None:
            self.funding.start_catch_up(session.name, session.number, link.clients.execution, reason)

    async def _start_rotation(self) -> None:
        if not callable(getattr(self.keys, "refresh", None)):
            return  # a key provider without versions (demo file, environment): nothing rotates live
        holder = self.settings.holder.replace(".", "-")
        self.rotation = KeyRotationListener(self.nc, self.keys, holder, check_s=self.settings.key_check_s)
        for session in self.sessions.values():
            if session.trading:
                markets = tuple(m.value for m in session.links)
                self.rotation.register(
                    session.account.exchange, session.account.name, self._rotated(session), markets=markets
                )
        await self.rotation.start()

    def _rotated(self, session: AccountSession):
        async def switch(creds: Credentials) -> None:
            link = session.links.get(Market(creds.market))
            if link is not None:
                await link.clients.set_credentials(creds)

        return switch

    # ------------------------------------------------------------------ events from the venue
    async def _on_user_event(self, session: AccountSession, market: Market, ev: UserEvent) -> None:
        self.metrics.venue_events.labels(session.name).inc()
        if isinstance(ev, OrderEvent):
            if ev.fill is not None:  # before the kernels see it: a strategy acting on the fill sees its balance
                session.book_fill(market, ev.fill)
            for out in self.gateway.on_order_event(ev):
                await self.sink.emit(out)
        elif isinstance(ev, Fill | PositionEvent):
            if isinstance(ev, Fill):
                session.book_fill(market, ev)
            await self.sink.emit(ev)
        elif isinstance(ev, BalanceEvent):
            session.set_balances(market, list(ev.balances))
            await self.sink.emit(ev)
            link = session.links.get(market)
            if self.funding is not None and link is not None:  # a FUNDING_FEE update: its payments booked
                self.funding.on_update(session.name, session.number, link.clients.execution, ev)
        elif isinstance(ev, StreamStatus):
            if ev.kind == "gap":
                session.trading = False
                self.metrics.reconnects.labels("user_stream").inc()
                log.warning(
                    "account %s %s: user stream gap (%s); not trading until reconciled",
                    session.name,
                    market.value,
                    ev.reason,
                )
            elif ev.kind == "resynced" and not self._stopping and session.lease is not None:
                await self._reconcile(session, "reconnect")

    async def _lease_lost(self, session: AccountSession, why: str) -> None:
        session.trading = False
        session.refused = why
        session.lease = None
        log.error("account %s: %s", session.name, why, extra={"account": session.name})
        await self.sink.emit_risk(
            RiskEvent(
                account=session.name, action="lease_lost", trading_state="halted", reason=why, event_ns=time.time_ns()
            )
        )

    # ------------------------------------------------------------------ views
    def _reference_of(self, client_order_id: str) -> str | None:
        slippage = self.emulation.slippage if self.emulation is not None else None
        return None if slippage is None else slippage.reference_of(client_order_id)

    def _account_view(self, account: str) -> dict:
        s = self.sessions.get(account)
        if s is None:
            return {}
        table = self.wiring.instruments
        return {
            "positions": livestate.positions_of(table, s.number, account, s.account.exchange),
            "balances": livestate.balances_list(s.balances),
            "open_orders": livestate.open_orders_of(self.gateway.orders, table, s.number, self._reference_of),
            "pnl": livestate.pnl_of(table, s.number, account),
            "trading_state": livestate.TradingStateView(
                account=account,
                trading_state=self.router.state_of(s),
                trading=s.trading,
                reason=s.refused,
                holder=self.settings.holder,
                event_ns=time.time_ns(),
            ),
        }

    def account_health(self, account: str) -> dict | None:
        s = self.sessions.get(account)
        if s is None:
            return None
        used, limit = s.weight()
        age = s.last_message_age_s()
        futures = (
            {"futures": [dataclasses.asdict(v) for v in self.futures.views.get(account, [])]} if self.futures else {}
        )
        report = self.futures_settings.reports.get(account) if self.futures_settings else None
        if report is not None:
            futures["futures_settings"] = {**dataclasses.asdict(report), "in_line": report.in_line}
        return {
            "account": account,
            "connected": s.connected,
            "last_message_age_s": None if age is None else round(age, 3),
            "rate_limit_headroom": round(1 - used / limit, 4) if limit else None,
            "weight_used": used,
            "weight_limit": limit,
            "trading": s.trading and not self._stopping,
            "trading_state": self.router.state_of(s) if self.router else s.trading_state,
            "open_orders": len(self.gateway.orders.open_orders(s.number)),
            "reason": s.refused,
            **futures,
        }

    def health(self) -> tuple[bool, dict]:
        accounts = {name: self.account_health(name) for name in sorted(self.sessions)}
        ok = not self._stopping and all(a["trading"] for a in accounts.values())
        backlog = self.publisher.backlog if self.publisher else 0
        return ok, {
            "status": "ok" if ok else "degraded",
            "holder": self.settings.holder,
            "nats_connected": bool(self.nc and self.nc.is_connected),
            "outbox": backlog,
            "accounts": accounts,
        }

    def _read_gauges(self, m: DaemonMetrics) -> None:
        orders = self.gateway.orders
        m.finished_orders.set(orders.finished)
        m.forgotten_orders.labels("window").set(orders.forgotten - orders.forgotten_early)
        m.forgotten_orders.labels("cap").set(orders.forgotten_early)
        if self.publisher is not None:
            m.outbox_depth.set(len(self.publisher.outbox))
            m.unconfirmed.set(self.publisher.backlog)
        for name, s in self.sessions.items():
            used, limit = s.weight()
            m.weight_used.labels(name).set(used)
            if limit:
                m.weight_headroom.labels(name).set(1 - used / limit)
            m.open_orders.labels(name).set(len(self.gateway.orders.open_orders(s.number)))
            m.connected.labels(name).set(1 if s.connected else 0)
        if self.funding is not None:
            for outcome, n in self.funding.counts.items():
                m.funding.labels(outcome).set(n)

    # ------------------------------------------------------------------ stop
    def request_stop(self) -> None:
        """From a signal handler: stop soon (on the loop)."""
        if not self._stopping:
            asyncio.get_running_loop().create_task(self.stop(), name="daemon stop")

    async def wait_stopped(self) -> None:
        await self._stopped.wait()

    async def stop(self) -> None:
        if self._stopping:
            await self._stopped.wait()
            return
        self._stopping = True
        how = "cancel" if self.settings.on_shutdown == "cancel" else "leave"
        log.info("stream daemon %s stopping (open orders: %s)", self.settings.holder, how)
        try:
            await self._stop_trading()
            await self._flush()
            await self._close()
        finally:
            log.info("stream daemon %s stopped", self.settings.holder)
            self._stopped.set()

    async def _stop_trading(self) -> None:
        """No new commands, no strategy intents; open orders cancelled if configured; answers awaited."""
        if self.router is not None:
            self.router.accepting = False
        if self._webhook_runner is not None:
            await _bounded("stop the webhook", self._webhook_runner.cleanup(), 5)
        for sub in self._subs:
            await _bounded("unsubscribe the commands", sub.unsubscribe(), 5)
        if self.strategies is not None:
            self.strategies.stop()
        if self.emulation is not None:
            await _bounded("stop the parent orders and exits", self.emulation.stop(), 10)
        if self.router is None:
            return
        if self.settings.on_shutdown == "cancel":
            for s in self.sessions.values():
                if s.trading:
                    n = await self.router.cancel_open(s)
                    log.info("account %s: %d open order(s) cancelled at shutdown", s.name, n)
        await _bounded("finish the answers in flight", self.router.drain(), 10)
        if self.funding is not None:
            await _bounded("book the funding payments in flight", self.funding.drain(), 10)

    async def _flush(self) -> None:
        """Background tasks ended, live state written, events in JetStream (or kept in the outbox)."""
        for t in self._tasks:
            t.cancel()
        if self._tasks:
            _, stuck = await asyncio.wait(self._tasks, timeout=5.0)
            for t in stuck:
                log.warning("shutdown: background task %r did not end when cancelled; going on", t.get_name())
        if self.writer is not None:
            self.sink.dirty.update(self.sessions)
            await _bounded("write the live state", self.writer.flush(), 15)
        if self.rotation is not None:
            await _bounded("stop the key-rotation listener", self.rotation.stop(), 10)
        if self.publisher is not None:
            if not await self.publisher.flush(5.0):
                log.warning("%d event(s) stay in the outbox for the next run", self.publisher.backlog)
            await _bounded("close the publisher", self.publisher.close(), 10)

    async def _close(self) -> None:
        """Each step bounded: a venue or NATS that does not answer cannot keep the process from exiting."""
        if self.ops is not None:
            await _bounded("stop the HTTP endpoints", self.ops.stop(), 10)
        for s in self.sessions.values():
            await _bounded(f"close {s.name}", s.close(), 15)
        for feed in self.feeds:
            await _bounded(f"close market data {feed.exchange}/{feed.market.value}", feed.close(), 15)
        if self.factory is not None:
            await _bounded("close the venue clients", self.factory.close(), 20)
        if self.logs is not None:
            self.logs.close()
        if self.nc is not None:
            await _bounded("drain the NATS connection", self.nc.drain(), 10)


async def _bounded(what: str, coro, timeout_s: float) -> None:
    """One shutdown step, given ``timeout_s``. Unlike ``asyncio.wait_for``, which waits on after cancelling, a
    step that does not end when cancelled is left behind after a second: stopping always ends."""
    task = asyncio.ensure_future(coro)
    done, _ = await asyncio.wait({task}, timeout=timeout_s)
    if not done:
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=1.0)
        log.warning(
            "shutdown: could not %s within %.0f s; going on%s", what, timeout_s, "" if done else " (it ignored cancel)"
        )
        return
    exc = None if task.cancelled() else task.exception()
    if exc is not None:
        log.warning("shutdown: could not %s: %s: %s", what, type(exc).__name__, exc)


def install_signal_handlers(daemon: Daemon) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, daemon.request_stop)
