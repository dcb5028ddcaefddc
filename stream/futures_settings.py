"""USD-M futures settings enforced from ``configs/``, and changed on command.

**Targets** (``targets_from_config``), per owned account with USD-M enabled, from ``accounts.yaml``:

* ``position_mode`` (``one_way`` | ``hedge``): the account's whole USD-M wallet;
* ``margin_type`` (``isolated`` | ``cross``): each USD-M symbol the daemon trades for the account (its hosted
  strategies' symbols on it, and ``daemon.markets`` of ``stream.yaml``);
* the leverage of each of those symbols: the account's ``max_leverage``, capped by its ``max_leverage`` of
  ``risk.yaml`` (the risk kernel's limit; a fraction rounds down).

A setting the config leaves out is not touched. ``FuturesSettings.enforce(session, reason)`` runs at start and
after every reconnect (``Daemon._reconcile``, once the account is reconciled): it reads the venue's settings
(``position_mode``; Binance's ``symbol_settings``, ``GET /fapi/v1/symbolConfig``) and changes only what
differs, position mode first, then per symbol margin type and leverage. A setting the venue already has is
success (Binance -4046 / -4059 included). A change the venue refuses (an open position or open order:
-4047, -4048, -4067, -4068; a leverage the open position does not allow: -2027, -4161; ...) is reported, never
half-applied silently (and one refused because of a position is tried again when the futures monitor sees the
account flat, ``retry_when_flat``): a warning log line, ``oms_futures_settings{outcome="refused"}``, and a
``futures_settings_refused`` ``RiskEvent`` on ``risk.{exchange}.{account}`` naming what was applied and what
was not, and the account keeps trading on the settings it has. The same refusal found again (at a restart or a
reconnect: the same settings, values and codes, nothing applied) is logged but not announced again: the last
announced refusal is kept in the live-state bucket (kind ``futures_settings``). Changes that all went through are one
``futures_settings_applied`` event; an account already in line publishes nothing (a venue that cannot report
its settings, without ``symbol_settings``, is sent the target each time, logged but not announced).
``reports[account]`` (shown in ``/health/{exchange}/{account}``) is the last run's outcome. The venue's position
mode, configured or not, is then the kernels' (``sync_kernel``: which position sides the risk kernel accepts).

**Commands** (``oms.model.settings``: ``SetLeverage``, ``SetMarginType``, ``SetPositionMode``) arrive on the
account's ``cmd.order.{exchange}.{account}`` like orders (``OrderRouter`` hands them to ``command``). A leverage
above the account's ``max_leverage`` in ``risk.yaml`` is refused (``risk:MAX_LEVERAGE``) before the venue is
asked; the venue's answer (``AccountSettings``) or its refusal (``venue:{code}``) is the reply. A setting changed
by command becomes the account's target until the daemon restarts, so a reconnect does not undo it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from decimal import ROUND_FLOOR, Decimal

import msgspec

from kernels.codes import HEDGE
from kernels.fixed import PPM
from kernels.state import A_POS_MODE, L_MAX_LEVERAGE_PPM, UNLIMITED, KernelState
from oms.bus import LiveState
from oms.config import Config
from oms.model import AccountSettings, InstrumentId, MarginType, Market, PositionMode
from oms.model.commands import CommandResult
from oms.model.settings import SetLeverage, SetMarginType, SetPositionMode
from oms.venues.binance.codes import SETTINGS_BLOCKED_BY
from oms.venues.errors import RateLimited, Rejected, VenueError
from stream.accounts import AccountSession
from stream.events import RiskEvent
from stream.metrics import DaemonMetrics
from stream.wiring import DaemonPlan

log = logging.getLogger("stream.futures_settings")

SettingsCommand = SetLeverage | SetMarginType | SetPositionMode

BLOCKED_BY = SETTINGS_BLOCKED_BY  # Binance's codes (ccxt passes the exchange's own code through)
BY_POSITION = frozenset({-4048, -4068, -4161, -2027})  # refusals that end when the positions are closed
HEDGE_WITH_SPOT = (
    "the kernels hold one position mode per account and this account also trades Spot (position side both): "
    "set spot_enabled: false or position_mode: one_way in accounts.yaml"
)
MARGIN_OF_CONFIG = {"isolated": MarginType.ISOLATED, "cross": MarginType.CROSS}
MODE_OF_CONFIG = {"one_way": PositionMode.ONE_WAY, "hedge": PositionMode.HEDGE}


@dataclass(frozen=True)
class FuturesTarget:
    """What one account's USD-M settings should be (None: not configured, left as the venue has it)."""

    position_mode: PositionMode | None = None
    margin_type: MarginType | None = None
    leverage: int | None = None
    symbols: tuple[str, ...] = ()
    # set by command since the start: symbol -> value (they win over the config's)
    margin_by_symbol: dict[str, MarginType] = field(default_factory=dict)
    leverage_by_symbol: dict[str, int] = field(default_factory=dict)

    def margin_of(self, symbol: str) -> MarginType | None:
        return self.margin_by_symbol.get(symbol, self.margin_type)

    def leverage_of(self, symbol: str) -> int | None:
        return self.leverage_by_symbol.get(symbol, self.leverage)

    @property
    def all_symbols(self) -> tuple[str, ...]:
        extra = [s for s in (*self.margin_by_symbol, *self.leverage_by_symbol) if s not in self.symbols]
        return self.symbols + tuple(dict.fromkeys(extra))


@dataclass(frozen=True)
class SettingOutcome:
    setting: str  # position_mode | margin_type | leverage
    symbol: str  # "" for the account-wide position mode
    want: str
    had: str  # "" when the venue cannot say
    outcome: str  # applied | refused (by the venue) | failed (network, ...) | unsupported (by the daemon)
    code: int | None = None
    reason: str = ""

    def describe(self) -> str:
        where = f"{self.setting} of {self.symbol}" if self.symbol else self.setting
        if self.outcome == "applied":
            return f"{where} set to {self.want}" + (f" (was {self.had})" if self.had else "")
        return f"{where} {self.want} not applied" + (f" (is {self.had})" if self.had else "") + f": {self.reason}"


class AnnouncedSettings(msgspec.Struct, frozen=True, kw_only=True):
    """The refusal last announced on ``risk.{exchange}.{account}`` (``futures_settings`` in the live-state
    bucket): each refused setting as ``[setting, symbol, want, had, outcome, code]``; empty once in line."""

    refused: list[list[str]]
    event_ns: int


@dataclass(frozen=True)
class SettingsReport:
    account: str
    reason: str  # start | reconnect | ...
    checked_ns: int
    applied: tuple[SettingOutcome, ...] = ()
    refused: tuple[SettingOutcome, ...] = ()  # refused by the venue, or failed (network, ...)

    @property
    def in_line(self) -> bool:
        return not self.refused


def targets_from_config(cfg: Config, plan: DaemonPlan) -> dict[str, FuturesTarget]:
    """``exchange/name`` -> its target, for each owned account with USD-M enabled and something configured."""
    out: dict[str, FuturesTarget] = {}
    for p in plan.accounts:
        if Market.USDM not in p.markets:
            continue
        acct = cfg.account(p.exchange, p.name)
        symbols = [sym for s in plan.strategies for a, m, sym in s.legs if str(a) == str(p) and m is Market.USDM]
        symbols += cfg.stream.daemon.markets.get(p.exchange, {}).get("usdm", [])
        leverage = None
        if acct.max_leverage is not None:
            cap = cfg.risk.limits_for(p.exchange, p.name).max_leverage
            leverage = max(1, min(acct.max_leverage, int(Decimal(cap).to_integral_value(ROUND_FLOOR))))
        target = FuturesTarget(
            position_mode=MODE_OF_CONFIG.get(acct.position_mode or ""),
            margin_type=MARGIN_OF_CONFIG.get(acct.margin_type or ""),
            leverage=leverage,
            symbols=tuple(dict.fromkeys(symbols)),
        )
        if target.position_mode or (target.symbols and (target.margin_type or target.leverage)):
            out[str(p)] = target
    return out


class FuturesSettings:
    def __init__(
        self,
        targets: dict[str, FuturesTarget],
        sessions: Mapping[str, AccountSession],
        state: KernelState,
        metrics: DaemonMetrics,
        emit_risk: Callable[[RiskEvent], Awaitable[None]],
        state_of: Callable[[AccountSession], str],
        live: LiveState | None = None,
    ):
        self.targets = targets
        self.sessions = sessions
        self.state = state
        self.metrics = metrics
        self.emit_risk = emit_risk
        self.state_of = state_of
        self.live = live
        self.reports: dict[str, SettingsReport] = {}
        self.announced: dict[str, list[list[str]] | None] = {}  # account -> refusal last announced ([]: none)

    # ------------------------------------------------------------------ enforcement
    async def enforce(self, session: AccountSession, reason: str) -> SettingsReport | None:
        """Make the account's USD-M settings match its target; the report (None: nothing to enforce)."""
        link = session.links.get(Market.USDM)
        if link is None:
            return None
        configured = self.targets.get(session.name)
        target = configured or FuturesTarget()
        ex = link.clients.execution
        done: list[SettingOutcome] = []
        try:
            mode = await ex.position_mode()  # read even when not configured: the kernels must know it
        except VenueError as exc:
            want = target.position_mode.value if target.position_mode else "read"
            done.append(self._failed("position_mode", "", want, exc))
        else:
            if target.position_mode is not None and mode is not target.position_mode:
                want = target.position_mode
                if want is PositionMode.HEDGE and Market.SPOT in session.links:
                    o = self._count(session, SettingOutcome("position_mode", "", want.value, mode.value, "unsupported",
                                                            reason=HEDGE_WITH_SPOT))  # fmt: skip
                else:
                    o = await self._change(session, "position_mode", "", want.value, mode.value,
                                           lambda: ex.set_position_mode(want))  # fmt: skip
                done.append(o)
                mode = want if o.outcome == "applied" else mode
            self.sync_kernel(session, mode)
        if configured is None and not done:
            return None
        symbols = target.all_symbols
        if symbols and any(target.margin_of(s) or target.leverage_of(s) for s in symbols):
            done.extend(await self._symbols(session, ex, target, symbols))
        report = SettingsReport(
            account=session.name,
            reason=reason,
            checked_ns=time.time_ns(),
            applied=tuple(o for o in done if o.outcome == "applied"),
            refused=tuple(o for o in done if o.outcome != "applied"),
        )
        self.reports[session.name] = report
        await self._report(session, report)
        return report

    async def retry_when_flat(self, session: AccountSession) -> SettingsReport | None:
        """Called by the futures monitor when the account has no open position: a change the venue refused
        because of one is tried again (once per refusal: one refused again for another reason waits for the
        next reconnect)."""
        report = self.reports.get(session.name)
        if report is None or not any(o.code in BY_POSITION for o in report.refused):
            return None
        return await self.enforce(session, "positions closed")

    async def _symbols(self, session: AccountSession, ex, target: FuturesTarget, symbols) -> list[SettingOutcome]:
        out: list[SettingOutcome] = []
        reader = getattr(ex, "symbol_settings", None)  # Binance: GET /fapi/v1/symbolConfig (all symbols at once)
        now: dict[str, AccountSettings] = {}
        if callable(reader):
            try:
                now = {x.symbol: x for x in await reader() if x.symbol}
            except VenueError as exc:
                return [self._failed("symbol_settings", "", "read", exc)]
        for symbol in symbols:
            cur = now.get(symbol)
            margin, leverage = target.margin_of(symbol), target.leverage_of(symbol)
            if margin is not None and (cur is None or cur.margin_type is not margin):
                had = cur.margin_type.value if cur is not None and cur.margin_type else ""
                out.append(await self._change(session, "margin_type", symbol, margin.value, had,
                                              lambda s=symbol, m=margin: ex.set_margin_type(s, m)))  # fmt: skip
            if leverage is not None and (cur is None or cur.leverage != leverage):
                had = str(cur.leverage) if cur is not None and cur.leverage else ""
                out.append(await self._change(session, "leverage", symbol, str(leverage), had,
                                              lambda s=symbol, n=leverage: ex.set_leverage(s, n)))  # fmt: skip
        return out

    async def _change(self, session, setting: str, symbol: str, want: str, had: str, call) -> SettingOutcome:
        try:
            await call()
        except Rejected as exc:
            return self._count(session, SettingOutcome(setting, symbol, want, had, "refused", exc.code, explain(exc)))
        except (VenueError, KeyError) as exc:
            return self._count(session, self._failed(setting, symbol, want, exc, had))
        return self._count(session, SettingOutcome(setting, symbol, want, had, "applied"))

    def _failed(self, setting: str, symbol: str, want: str, exc: Exception, had: str = "") -> SettingOutcome:
        return SettingOutcome(setting, symbol, want, had, "failed", getattr(exc, "code", None),
                              f"{type(exc).__name__}: {exc}")  # fmt: skip

    def _count(self, session: AccountSession, o: SettingOutcome) -> SettingOutcome:
        self.metrics.futures_settings.labels(session.name, o.setting, o.outcome).inc()
        return o

    async def _report(self, session: AccountSession, r: SettingsReport) -> None:
        extra = {"account": session.name}
        for o in r.applied:
            log.info("futures settings: %s: %s", session.name, o.describe(), extra=extra)
        for o in r.refused:
            log.warning("futures settings: %s: %s; trading on the current setting", session.name, o.describe(),
                        extra=extra)  # fmt: skip
        by_venue = [o for o in r.refused if o.outcome != "unsupported"]  # the daemon's own limits: logged only
        refusal = [[o.setting, o.symbol, o.want, o.had, o.outcome, str(o.code)] for o in by_venue]
        if by_venue and not r.applied and refusal == await self._announced(session):
            log.info("futures settings: %s: the same refusal as last announced; not announced again", session.name,
                     extra=extra)  # fmt: skip
            return
        if by_venue:
            applied = "; ".join(o.describe() for o in r.applied) or "nothing"
            why = (f"{r.reason}: not applied: {'; '.join(o.describe() for o in by_venue)}. Applied: {applied}. "
                   "The account trades on its current settings")  # fmt: skip
            await self._event(session, "futures_settings_refused", why)
        elif any(o.had for o in r.applied):  # a venue that cannot say what it had: set each time, not announced
            await self._event(session, "futures_settings_applied", f"{r.reason}: " + "; ".join(
                o.describe() for o in r.applied))  # fmt: skip
        if refusal != await self._announced(session):
            await self._announce(session, refusal)

    async def _announced(self, session: AccountSession) -> list[list[str]] | None:
        """The refusal last announced for the account (None: unknown), read from the live-state bucket once."""
        if session.name not in self.announced and self.live is not None:
            try:
                got = await self.live.get(session.name, "futures_settings", AnnouncedSettings)
            except Exception as exc:  # NATS down or an unreadable entry: announce it again rather than miss it
                log.warning("futures settings: %s: last announcement unreadable (%s: %s)", session.name,
                            type(exc).__name__, exc)  # fmt: skip
                return None
            self.announced[session.name] = None if got is None else got.refused
        return self.announced.get(session.name)

    async def _announce(self, session: AccountSession, refusal: list[list[str]]) -> None:
        self.announced[session.name] = refusal
        if self.live is None:
            return
        try:
            await self.live.put(session.name, "futures_settings",
                                AnnouncedSettings(refused=refusal, event_ns=time.time_ns()))  # fmt: skip
        except Exception as exc:  # the next start then announces it once more
            log.warning("futures settings: %s: announcement not recorded (%s: %s)", session.name,
                        type(exc).__name__, exc)  # fmt: skip

    async def _event(self, session: AccountSession, action: str, reason: str) -> None:
        await self.emit_risk(
            RiskEvent(
                account=session.name,
                action=action,
                trading_state=self.state_of(session),
                reason=reason,
                event_ns=time.time_ns(),
            )
        )

    def sync_kernel(self, session: AccountSession, mode: PositionMode) -> None:
        """The kernels' position mode of the account (which position sides the risk and positions kernels take)
        set to the venue's USD-M mode. The kernels hold one mode per account, so an account that also trades
        Spot stays in netting mode (its Spot orders are position side both): hedge mode there is logged."""
        hedge = mode is PositionMode.HEDGE
        a = session.number
        if (int(self.state.acc[A_POS_MODE, a]) == HEDGE) == hedge:
            return
        if Market.SPOT in session.links:
            log.warning("futures settings: %s is in %s mode on USD-M but also trades Spot: the kernels keep one "
                        "position mode per account and stay one-way, so the venue refuses its USD-M orders "
                        "(position side both) until the account is one-way again", session.name, mode.value,
                        extra={"account": session.name})  # fmt: skip
            return
        try:
            self.state.set_position_mode(a, hedge)
        except ValueError as exc:
            log.error("futures settings: %s: the kernels' position mode not switched to %s: %s", session.name,
                      mode.value, exc, extra={"account": session.name})  # fmt: skip
            return
        log.info("futures settings: %s: the kernels now take %s-mode orders", session.name, mode.value,
                 extra={"account": session.name})  # fmt: skip

    # ------------------------------------------------------------------ commands
    async def command(self, session: AccountSession, cmd: SettingsCommand) -> CommandResult:
        """One settings command for ``session`` (the router checked it is traded here): the venue's answer."""
        link = session.links.get(Market.USDM)
        if link is None:
            return self._refuse(session, cmd, "unsupported_market",
                                f"{session.name} does not trade USD-M futures (futures_enabled is off)")  # fmt: skip
        symbol = getattr(cmd, "symbol", "")
        if symbol:
            try:
                market = InstrumentId.parse(symbol).market
            except ValueError as exc:
                return self._refuse(session, cmd, "unknown_market", f"{symbol!r}: {exc}")
            if market is not Market.USDM:
                return self._refuse(session, cmd, "unknown_market",
                                    f"{symbol} is not a USD-M symbol (like BTC/USDT:USDT)")  # fmt: skip
        if (
            isinstance(cmd, SetPositionMode)
            and cmd.position_mode is PositionMode.HEDGE
            and Market.SPOT in session.links
        ):
            return self._refuse(session, cmd, "unsupported", f"hedge mode on {session.name}: {HEDGE_WITH_SPOT}")
        if isinstance(cmd, SetLeverage):
            limit = int(self.state.lim[L_MAX_LEVERAGE_PPM, session.number])
            if limit != UNLIMITED and cmd.leverage * PPM > limit:
                why = (f"leverage {cmd.leverage} for {cmd.symbol} exceeds {session.name}'s max_leverage "
                       f"{Decimal(limit) / PPM:f} (risk.yaml)")  # fmt: skip
                return self._refuse(session, cmd, "risk:MAX_LEVERAGE", why)
        setting, want = _setting_of(cmd)
        try:
            answer = await _send(link.clients.execution, cmd)
        except Rejected as exc:
            self.metrics.futures_settings.labels(session.name, setting, "refused").inc()
            return self._refuse(session, cmd, f"venue:{exc.code}" if exc.code is not None else "venue:rejected",
                                explain(exc))  # fmt: skip
        except RateLimited as exc:
            return self._refuse(session, cmd, "venue:rate_limited", str(exc))
        except (VenueError, KeyError) as exc:
            code = "unknown_symbol" if isinstance(exc, KeyError) else f"venue:{type(exc).__name__.lower()}"
            return self._refuse(session, cmd, code, f"{symbol or session.name}: {exc}")
        self._remember(session.name, cmd)
        if isinstance(cmd, SetPositionMode):
            self.sync_kernel(session, cmd.position_mode)
        self.metrics.futures_settings.labels(session.name, setting, "applied").inc()
        where = f"{setting} of {symbol}" if symbol else setting
        log.info("futures settings: %s: %s set to %s by command", session.name, where, want,
                 extra={"account": session.name})  # fmt: skip
        await self._event(session, "futures_settings_applied", f"command: {where} set to {want}")
        return CommandResult(ok=True, settings=answer)

    def _remember(self, account: str, cmd: SettingsCommand) -> None:
        """A setting changed by command is the account's target from now on (until the daemon restarts)."""
        t = self.targets.get(account, FuturesTarget())
        if isinstance(cmd, SetLeverage):
            t = replace(t, leverage_by_symbol={**t.leverage_by_symbol, cmd.symbol: cmd.leverage})
        elif isinstance(cmd, SetMarginType):
            t = replace(t, margin_by_symbol={**t.margin_by_symbol, cmd.symbol: cmd.margin_type})
        else:
            t = replace(t, position_mode=cmd.position_mode)
        self.targets[account] = t

    def _refuse(self, session: AccountSession, cmd: SettingsCommand, code: str, reason: str) -> CommandResult:
        self.metrics.rejections.labels(session.name, code).inc()
        log.warning("futures settings: %s: %s refused (%s): %s", session.name, type(cmd).__name__, code, reason,
                    extra={"account": session.name})  # fmt: skip
        return CommandResult(ok=False, code=code, reason=reason)


def _setting_of(cmd: SettingsCommand) -> tuple[str, str]:
    if isinstance(cmd, SetLeverage):
        return "leverage", str(cmd.leverage)
    if isinstance(cmd, SetMarginType):
        return "margin_type", cmd.margin_type.value
    return "position_mode", cmd.position_mode.value


async def _send(ex, cmd: SettingsCommand) -> AccountSettings:
    if isinstance(cmd, SetLeverage):
        return await ex.set_leverage(cmd.symbol, cmd.leverage)
    if isinstance(cmd, SetMarginType):
        return await ex.set_margin_type(cmd.symbol, cmd.margin_type)
    return await ex.set_position_mode(cmd.position_mode)


def explain(exc: Rejected) -> str:
    """The venue's refusal, and what blocked it when that is an open position or order."""
    blocked = BLOCKED_BY.get(exc.code) if exc.code is not None else None
    text = f"venue {exc.code}: {exc.venue_message}" if exc.code is not None else f"venue: {exc.venue_message}"
    return f"{text} (blocked by {blocked})" if blocked else text
