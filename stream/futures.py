"""USD-M position monitoring: position mode, leverage, margin type, liquidation distance and ADL quantile, with
alerts (``futures_monitor`` in ``configs/risk.yaml``).

Every ``interval_s`` ``FuturesMonitor.tick()`` reads, for each trading account with a USD-M market, its open
positions (``positionRisk``: quantity, entry, the liquidation price), its position mode, and, where the
connector has them (Binance), each symbol's leverage and margin type (``symbol_settings``, ``GET
/fapi/v1/symbolConfig``: positionRisk v3 dropped them) and each position's auto-deleveraging quantile
(``adl_quantiles``, ``GET /fapi/v1/adlQuantile``). The liquidation distance is
``|mark - liquidation| / mark`` in percent at the daemon's mark (the mark-price stream's, in the kernel state).
The result is ``views[account]`` (one ``FuturesPositionView`` per position; ``/health/{exchange}/{account}``
shows it). A position whose distance falls below ``min_liquidation_distance_pct`` raises a ``liquidation_risk``
alert, one whose quantile reaches ``adl_alert_quantile`` an ``adl_risk`` alert: a ``RiskEvent`` on
``risk.{exchange}.{account}`` and a warning log line, once when the condition starts (and an ``info`` line
when it ends), not at every tick. A venue error is logged and counted, and the next tick tries again.

With ``targets`` (``stream.futures_settings``: what ``accounts.yaml`` and the settings commands ask for), a
position whose margin type or leverage, or an account whose position mode, differs from its target raises a
``settings_drift`` alert the same way (once, until it is back in line): a change made behind the daemon's back,
or one the venue refused while a position was open. The daemon sets it right at the next reconnect or restart,
and ``on_flat`` (``FuturesSettings.retry_when_flat``) once the account has no open position.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from oms.model import Market
from oms.venues.errors import VenueError
from stream.accounts import AccountSession
from stream.events import RiskEvent

log = logging.getLogger("stream.futures")

MarkOf = Callable[[str, str], Decimal | None]  # (exchange, symbol) -> the daemon's mark, None if not streamed


@dataclass(frozen=True)
class FuturesPositionView:
    symbol: str
    position_side: str
    qty: str
    entry_price: str
    position_mode: str
    leverage: int  # 0: not reported by the venue's positionRisk
    margin_type: str
    liquidation_price: str | None
    mark_price: str | None
    liquidation_distance_pct: str | None  # None: no liquidation price (or no mark)
    adl_quantile: int | None  # None: the venue has no ADL quantiles


class FuturesMonitor:
    def __init__(
        self,
        cfg,  # oms.config.models.FuturesMonitorConfig
        sessions: Mapping[str, AccountSession],
        mark_of: MarkOf,
        emit_risk: Callable[[RiskEvent], Awaitable[None]],
        state_of: Callable[[AccountSession], str],
        targets: Mapping | None = None,  # account -> stream.futures_settings.FuturesTarget
        on_flat: Callable[[AccountSession], Awaitable[object]] | None = None,  # no open position at a tick
    ):
        self.targets = targets if targets is not None else {}
        self.on_flat = on_flat
        self.cfg = cfg
        self.sessions = sessions
        self.mark_of = mark_of
        self.emit_risk = emit_risk
        self.state_of = state_of
        self.min_distance = Decimal(cfg.min_liquidation_distance_pct)
        self.views: dict[str, list[FuturesPositionView]] = {}
        self.active: set[tuple[str, str, str, str]] = set()  # (account, symbol, side, alert) raised now
        self.alerts = 0
        self.errors = 0
        self.ticks = 0
        self._task: asyncio.Task | None = None

    def start(self) -> asyncio.Task:
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="futures monitor")
        return self._task

    async def _loop(self) -> None:
        while True:
            await self.tick()
            await asyncio.sleep(float(self.cfg.interval_s))

    async def tick(self) -> None:
        for s in list(self.sessions.values()):
            if s.trading and Market.USDM in s.links:
                try:
                    await self.check(s)
                except (VenueError, OSError, TimeoutError) as exc:
                    self.errors += 1
                    log.warning("futures monitor: %s: %s: %s", s.name, type(exc).__name__, exc)
        self.ticks += 1

    async def check(self, session: AccountSession) -> list[FuturesPositionView]:
        ex = session.links[Market.USDM].clients.execution
        positions = await ex.positions()
        if not positions and self.on_flat is not None:
            await self.on_flat(session)  # stream.futures_settings: a change refused for a position, tried again
        mode = (await ex.position_mode()).value
        reader = getattr(ex, "adl_quantiles", None)
        adl = await reader() if callable(reader) and positions else {}
        settings_of = getattr(ex, "symbol_settings", None)  # where positionRisk lacks leverage and margin type
        settings = {x.symbol: x for x in await settings_of()} if callable(settings_of) and positions else {}
        views, seen = [], set()
        for p in positions:
            mark = self.mark_of(session.account.exchange, p.symbol)
            liq = Decimal(p.liquidation_price) if p.liquidation_price else Decimal(0)
            distance = abs(mark - liq) / mark * 100 if liq > 0 and mark else None
            quantile = adl.get((p.symbol, p.position_side)) if callable(reader) else None
            conf = settings.get(p.symbol)
            leverage = conf.leverage if conf is not None and conf.leverage else p.leverage
            margin = conf.margin_type if conf is not None and conf.margin_type else p.margin_type
            view = FuturesPositionView(
                symbol=p.symbol, position_side=p.position_side.value, qty=p.qty, entry_price=p.entry_price,
                position_mode=mode, leverage=leverage, margin_type=margin.value if margin else "",
                liquidation_price=p.liquidation_price if liq > 0 else None,
                mark_price=None if mark is None else str(mark),
                liquidation_distance_pct=None if distance is None else f"{distance:.4f}",
                adl_quantile=quantile,
            )  # fmt: skip
            views.append(view)
            if distance is not None and distance < self.min_distance:
                why = (f"{p.symbol} {view.position_side} {p.qty}: mark {mark} is {distance:.2f}% from the liquidation "
                       f"price {p.liquidation_price} (alert below {self.min_distance}%)")  # fmt: skip
                seen.add(await self._raise(session, p.symbol, view.position_side, "liquidation_risk", why))
            if quantile is not None and quantile >= self.cfg.adl_alert_quantile:
                why = (f"{p.symbol} {view.position_side} {p.qty}: ADL quantile {quantile} "
                       f"(alert at {self.cfg.adl_alert_quantile} of 4)")  # fmt: skip
                seen.add(await self._raise(session, p.symbol, view.position_side, "adl_risk", why))
        for key, why in self._drift(session.name, mode, views):
            seen.add(await self._raise(session, key[0], key[1], "settings_drift", why))
        for key in [k for k in self.active if k[0] == session.name and k not in seen]:
            self.active.discard(key)
            log.info("futures monitor: %s %s %s: %s over", key[0], key[1], key[2], key[3], extra={"account": key[0]})
        self.views[session.name] = views
        return views

    def _drift(self, account: str, mode: str, views: list[FuturesPositionView]) -> list[tuple[tuple[str, str], str]]:
        """((symbol, side), why) of each setting that differs from the account's target."""
        target = self.targets.get(account)
        if target is None:
            return []
        out = []
        if target.position_mode is not None and mode != target.position_mode.value:
            out.append((("", ""), f"position mode is {mode}, configured {target.position_mode.value}"))
        for v in views:
            margin, leverage = target.margin_of(v.symbol), target.leverage_of(v.symbol)
            if margin is not None and v.margin_type and v.margin_type != margin.value:
                out.append(((v.symbol, "margin_type"), f"{v.symbol} margin type is {v.margin_type}, configured "
                                                       f"{margin.value} (a position is open)"))  # fmt: skip
            if leverage is not None and v.leverage and v.leverage != leverage:
                out.append(((v.symbol, "leverage"), f"{v.symbol} leverage is {v.leverage}, configured {leverage}"))
        return out

    async def _raise(self, session: AccountSession, symbol: str, side: str, alert: str, why: str):
        key = (session.name, symbol, side, alert)
        if key not in self.active:
            self.active.add(key)
            self.alerts += 1
            log.warning("futures monitor: %s %s: %s", session.name, alert, why, extra={"account": session.name})
            await self.emit_risk(
                RiskEvent(
                    account=session.name,
                    action=alert,
                    trading_state=self.state_of(session),
                    reason=why,
                    event_ns=time.time_ns(),
                )  # fmt: skip
            )
        return key
