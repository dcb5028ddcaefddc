"""Commands into orders: NATS request/reply on ``cmd.order.{exchange}.{account}``, the in-process path the
hosted strategies use, and the kill switch (``cmd.halt`` / ``cmd.reduce_only`` / ``cmd.resume``). The USD-M
settings commands on the same subject (``oms.model.settings``) go to ``on_settings``
(``stream.futures_settings``).

``OrderRouter.execute(commands)`` is the one path every order takes, whoever sent it: the gateway decides
(client order id, idempotency, account and instrument, risk kernel, status machine), rejections are published
as events, and what the gateway hands back is sent to the venue by the account's execution client. The
venue's answer goes through the gateway's status machine again and is published; the result of each command
(its client order id and the status it reached, or the rejection's code and reason) is what the NATS reply
carries.

Venue outcomes: ``Rejected`` (and ``RateLimited``, ``NetworkError``, ``AuthError``, ``Unsupported``: nothing
was placed) become a ``rejected`` event with ``code`` ``venue:...``; ``UnknownOutcome`` marks the order
``unknown`` and resolves it by its client order id in the background (never re-sent). A cancel the venue
answers "unknown order" is checked by a query: an order that filled meanwhile keeps waiting for its fill.

Malformed or unknown commands are answered with a reason, counted by reason, logged the first time a reason
is seen (then every 1000th), and the daemon carries on.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping

import msgspec
from nats.aio.msg import Msg

from kernels import codes as C
from kernels.state import G_TRADING_STATE, L_TRADING_STATE
from oms.bus import command_subject, kill_switch_subject
from oms.model import (
    AccountId,
    AmendOrder,
    CancelAll,
    CancelOrder,
    OrderEvent,
    OrderEventKind,
    OrderStatus,
    PlaceOrder,
)
from oms.model.commands import Command, CommandError, CommandReply, CommandResult, encode_reply, parse_request
from oms.model.parents import PlaceParent
from oms.model.rejections import venue_rejection
from oms.model.settings import SETTINGS_COMMANDS
from oms.model.units import to_decimal
from oms.venues.errors import OrderNotFound, RateLimited, UnknownOutcome, VenueError
from stream.accounts import AccountSession
from stream.amend import revert as amend_revert
from stream.amend import settle as amend_settle
from stream.coin_cash import foreign_quote
from stream.events import EventSink, RiskEvent
from stream.gateway import Decision, OrderGateway
from stream.instruments import UnknownInstrument
from stream.metrics import DaemonMetrics
from stream.replace import ReplaceOrder
from stream.replace import send as send_replace

log = logging.getLogger("stream.commands")

_KIND_OF_STATUS = {
    OrderStatus.NEW: OrderEventKind.ACCEPTED,
    OrderStatus.PARTIALLY_FILLED: OrderEventKind.ACCEPTED,  # its fills come from the user stream
    OrderStatus.CANCELED: OrderEventKind.CANCELED,
    OrderStatus.EXPIRED: OrderEventKind.EXPIRED,
    OrderStatus.REJECTED: OrderEventKind.REJECTED,
}


class KillSwitchRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Optional body of ``cmd.halt`` / ``cmd.reduce_only`` / ``cmd.resume`` (an empty body is all defaults)."""

    cancel_orders: bool = False  # also cancel every open order of the account(s)
    reason: str = ""


class KillSwitchReply(msgspec.Struct, frozen=True, omit_defaults=True):
    ok: bool
    trading_state: str = ""
    accounts: tuple[str, ...] = ()
    cancelled: int = 0
    error: str = ""


_ks_decoder = msgspec.json.Decoder(KillSwitchRequest)
_STATE_OF_ACTION = {"halt": "halted", "reduce_only": "reduce_only", "resume": "active"}


class OrderRouter:
    """The daemon's command path; ``sessions`` maps ``exchange/name`` to the account's session."""

    def __init__(
        self,
        gateway: OrderGateway,
        sessions: Mapping[str, AccountSession],
        sink: EventSink,
        metrics: DaemonMetrics,
        *,
        clock: Callable[[], int] = time.time_ns,
    ):
        self.gateway = gateway
        self.sessions = sessions
        self.sink = sink
        self.metrics = metrics
        self.clock = clock
        self.accepting = True
        self.global_state = "active"
        self.on_resume: Callable[[int | None], None] | None = None  # stream.risk.RiskControls.resume
        self.bad = Counter[str]()
        self._pending: set[asyncio.Task] = set()
        # Command hooks (stream.emulation.EmulationEngine): each takes a command and returns it (maybe rewritten)
        # to go on through the gateway, or a CommandResult that answers it (a parent order, a refusal).
        self.hooks: list[Callable[[Command], Awaitable[Command | CommandResult]]] = []
        # the accounts whose configs/accounts.yaml cash_assets is a coin (they trade pairs quoted in it only) ->
        # those cash assets, made once at start: every other account's order passes without a lookup
        self.coin_cash: dict[str, tuple[str, ...]] = {}
        # USD-M settings commands (stream.futures_settings.FuturesSettings.command); None: refused
        self.on_settings: Callable[[AccountSession, Command], Awaitable[CommandResult]] | None = None

    # ------------------------------------------------------------------ NATS
    async def on_order_request(self, msg: Msg) -> None:
        t0 = time.perf_counter()
        account = str(account_of_subject(msg.subject))
        reply = await self.handle_request(msg.data, account)
        if msg.reply:
            await msg.respond(encode_reply(reply))
        self.metrics.latency.labels("command").observe(time.perf_counter() - t0)

    async def handle_request(self, data: bytes, account: str) -> CommandReply:
        """One ``CommandRequest`` for ``account`` (the subject's): its reply, after the venue answered."""
        if not self.accepting:
            return self._bad("shutting_down", "the daemon is shutting down and takes no commands", "")
        try:
            req = parse_request(data, account)
        except CommandError as exc:
            return self._bad(exc.code, str(exc), exc.request_id)
        results = await self.execute(list(req.commands))
        return CommandReply(request_id=req.request_id, results=tuple(results))

    def _bad(self, code: str, reason: str, request_id: str) -> CommandReply:
        n = self.bad[code] = self.bad[code] + 1
        self.metrics.bad_commands.labels(code).inc()
        if n == 1 or n % 1000 == 0:
            log.warning("command refused (%s, %d so far): %s", code, n, reason)
        return CommandReply(request_id=request_id, error=reason, code=code)

    # ------------------------------------------------------------------ the one path
    async def execute(self, commands: list[Command], *, pipelined: bool = False) -> list[CommandResult]:
        """Run commands (one account's, or any: the in-process path) in order; one result each.

        By default each command goes to the gateway after the venue answered the one before it (a NATS request's
        batch: a first order that fills at once frees its risk slot for the next). ``pipelined`` (a hosted
        strategy's intents of one callback, meant together): a run of two or more consecutive ``PlaceOrder`` is
        decided by the gateway in the commands' order (hooks, risk, status machine: synchronous, before the
        first venue call) and their venue calls are in flight together, so a bid and an ask cost one round trip,
        not two. Any other command (cancel, cancel-all, amend, parent, settings) still waits for what came before
        it and is waited for by what follows: a cancel-all then new quotes sends the quotes once the cancel-all
        was answered. An exception of one pipelined command is raised once the others were answered."""
        if not pipelined or len(commands) < 2:
            return [await self._one(cmd) for cmd in commands]
        results: list[CommandResult] = []
        i, n = 0, len(commands)
        while i < n:
            j = i
            while j < n and type(commands[j]) is PlaceOrder:
                j += 1
            if j - i < 2:
                results.append(await self._one(commands[i]))
                i += 1
                continue
            # the tasks start in creation order, each reaching its gateway decision before it first suspends
            results.extend(await _together(self._one(cmd) for cmd in commands[i:j]))
            i = j
        return results

    async def _one(self, cmd: Command) -> CommandResult:
        if not self.accepting:
            return self._refused(cmd, "shutting_down", "the daemon is shutting down and takes no commands")
        session = self.sessions.get(cmd.account)
        if session is None or not session.trading:
            why = (session.refused or "is reconciling and not trading yet") if session else "is not traded here"
            code = "unknown_account" if session is None else "not_trading"
            return self._refused(cmd, code, f"{cmd.account} {why}")
        if isinstance(cmd, SETTINGS_COMMANDS):  # leverage, margin type, position mode: not orders
            if self.on_settings is None:
                return self._refused(cmd, "unsupported", f"{type(cmd).__name__} is not served by this daemon")
            return await self.on_settings(session, cmd)
        if type(cmd) is PlaceOrder or type(cmd) is PlaceParent:
            refused = self._cash_mismatch(cmd)
            if refused is not None:
                return refused
        home = cmd.account
        for hook in self.hooks:  # routing, stream.emulation: parents, slippage caps (a result ends it there)
            out = await hook(cmd)
            if isinstance(out, CommandResult):
                return out
            cmd = out
        if type(cmd) is PlaceOrder and cmd.route:  # routed (stream.routing): the reply names the account chosen
            if cmd.account != home:
                session = self.sessions[cmd.account]
                refused = self._cash_mismatch(cmd)
                if refused is not None:
                    return msgspec.structs.replace(refused, account=cmd.account)
            result = await self._gate_and_carry_out(session, cmd)
            return msgspec.structs.replace(result, account=cmd.account)
        return await self._gate_and_carry_out(session, cmd)

    async def _gate_and_carry_out(self, session: AccountSession, cmd: Command) -> CommandResult:
        t0 = time.perf_counter()
        if isinstance(cmd, PlaceOrder):
            decision = self.gateway.place(cmd)
        elif isinstance(cmd, CancelOrder):
            decision = self.gateway.cancel(cmd)
        elif isinstance(cmd, CancelAll):
            decision = self.gateway.cancel_all(cmd)
        else:
            assert isinstance(cmd, AmendOrder)
            decision = self.gateway.amend(cmd)
        self.metrics.latency.labels("gateway").observe(time.perf_counter() - t0)
        return await self._carry_out(session, decision)

    def _cash_mismatch(self, cmd: PlaceOrder | PlaceParent) -> CommandResult | None:
        """An account whose cash is a coin (``cash_assets: [BTC]``) trades pairs quoted in it only: the refusal
        of an order or parent in another pair (``stream.coin_cash.foreign_quote``), or None."""
        assets = self.coin_cash.get(cmd.account)
        if assets is None:
            return None
        try:
            _, ins = self.gateway.instruments.lookup(cmd.account.partition("/")[0], cmd.symbol)
        except UnknownInstrument:
            return None  # the gateway's unknown_symbol
        quote = foreign_quote(assets, ins)
        if quote is None:
            return None
        cash = ", ".join(assets)
        return self._refused(cmd, "cash_asset_mismatch",
                             f"{cmd.account} holds its cash in {cash} (configs/accounts.yaml cash_assets: [{cash}]): "
                             f"{cmd.symbol} is quoted in {quote}, which that cash does not count; it trades pairs "
                             f"quoted in {cash} only")  # fmt: skip

    def _refused(self, cmd: Command, code: str, reason: str) -> CommandResult:
        self.metrics.rejections.labels(cmd.account, code).inc()
        coid = getattr(cmd, "client_order_id", None)
        return CommandResult(ok=False, client_order_id=coid, code=code, reason=reason)

    async def _carry_out(self, session: AccountSession, d: Decision) -> CommandResult:
        for ev in d.events:  # risk and gateway rejections: events, and nothing changed
            await self.sink.emit(ev)
        if not d.result.ok:
            self.metrics.rejections.labels(session.name, d.result.code).inc()
            return d.result
        result = d.result
        if len(d.send) > 1 and all(type(item) is CancelOrder for item in d.send):  # a cancel-all: independent
            await _together(self._send_cancel(session, c) for c in d.send)
            return result
        for item in d.send:
            if isinstance(item, PlaceOrder):
                self.metrics.orders.labels(session.name).inc()
                result = await self._send_place(session, item)
            elif isinstance(item, AmendOrder):
                result = await self._send_amend(session, item)
            elif isinstance(item, ReplaceOrder):
                self.metrics.orders.labels(session.name).inc()
                result = await send_replace(self, session, item)
            else:
                await self._send_cancel(session, item)
        if d.send and isinstance(d.send[0], CancelOrder) and result.client_order_id:
            rec = self.gateway.orders.get(result.client_order_id)
            if rec is not None:
                result = CommandResult(ok=True, client_order_id=result.client_order_id, status=rec.status)
        return result

    async def _apply(self, ev: OrderEvent) -> None:
        for out in self.gateway.on_order_event(ev):
            await self.sink.emit(out)

    def _event(
        self, cmd: PlaceOrder | CancelOrder | AmendOrder, kind: OrderEventKind, status: OrderStatus, **kw
    ) -> OrderEvent:
        return OrderEvent(
            account=cmd.account,
            symbol=cmd.symbol,
            client_order_id=cmd.client_order_id or "",
            kind=kind,
            status=status,
            event_ns=self.clock(),
            **kw,
        )

    async def _send_place(self, session: AccountSession, cmd: PlaceOrder) -> CommandResult:
        coid = cmd.client_order_id or ""
        t0 = time.perf_counter()
        try:
            ev = await session.clients_for(cmd.symbol).execution.place(cmd)
        except UnknownOutcome as exc:
            rec = self.gateway.orders.get(coid)
            if rec is not None:
                self.gateway.orders.mark(rec, OrderEventKind.OUTCOME_UNKNOWN, self.clock())
            await self.sink.emit(self._event(cmd, OrderEventKind.OUTCOME_UNKNOWN, OrderStatus.UNKNOWN, reason=str(exc)))
            self._spawn(self._resolve(session, cmd))
            return CommandResult(
                ok=True,
                client_order_id=coid,
                status=OrderStatus.UNKNOWN,
                code="outcome_unknown",
                reason=f"{exc}; resolving by client order id, not re-sending",
            )
        except (VenueError, KeyError) as exc:
            code = _venue_code(exc)
            reason = str(exc)
            await self._apply(
                self._event(
                    cmd,
                    OrderEventKind.REJECTED,
                    OrderStatus.REJECTED,
                    code=getattr(exc, "code", None),
                    reason=f"{code}: {reason}",
                )
            )
            self.metrics.rejections.labels(session.name, code).inc()
            return CommandResult(ok=False, client_order_id=coid, status=OrderStatus.REJECTED, code=code, reason=reason)
        finally:
            self.metrics.latency.labels("venue_place").observe(time.perf_counter() - t0)
        await self._apply(ev)
        rec = self.gateway.orders.get(coid)
        return CommandResult(ok=True, client_order_id=coid, status=rec.status if rec else ev.status)

    async def _send_cancel(self, session: AccountSession, cmd: CancelOrder) -> None:
        t0 = time.perf_counter()
        clients = session.clients_for(cmd.symbol)
        try:
            ev = await clients.execution.cancel(cmd)
        except OrderNotFound:
            await self._cancel_not_found(session, cmd)
            return
        except VenueError as exc:
            await self._apply(self._event(cmd, OrderEventKind.CANCEL_REJECTED, OrderStatus.NEW, reason=str(exc)))
            return
        finally:
            self.metrics.latency.labels("venue_cancel").observe(time.perf_counter() - t0)
        await self._apply(ev)

    async def _send_amend(self, session: AccountSession, cmd: AmendOrder) -> CommandResult:
        """The amend to the venue. Its ``amended`` answer is published once (the user stream's copy changes
        nothing after it); a refusal puts the order back as it was and is an ``amend_rejected`` event; an
        answer that never came is settled by a query of the order."""
        coid = cmd.client_order_id
        execution = session.clients_for(cmd.symbol).execution
        t0 = time.perf_counter()
        try:
            ev = await execution.amend(cmd)
        except UnknownOutcome as exc:
            ev = await self._amend_outcome(execution, cmd, exc)
            if ev is None:
                return await self._amend_refused(session, cmd, "venue:outcome_unknown", f"{exc}; order unchanged")
        except (VenueError, KeyError) as exc:
            return await self._amend_refused(session, cmd, _venue_code(exc), str(exc), getattr(exc, "code", None))
        finally:
            self.metrics.latency.labels("venue_amend").observe(time.perf_counter() - t0)
        amend_settle(self.gateway, ev)
        await self._apply(ev)  # status machine (an amend leaves the status), venue order id
        await self.sink.emit(ev)
        rec = self.gateway.orders.get(coid)
        return CommandResult(ok=True, client_order_id=coid, status=rec.status if rec else ev.status)

    async def _amend_outcome(self, execution, cmd: AmendOrder, exc: Exception) -> OrderEvent | None:
        """An amend whose answer never came: the order as the venue has it says whether it took effect."""
        try:
            order = await execution.query_order(cmd.symbol, cmd.client_order_id)
        except VenueError as qexc:
            log.warning("amend of %s for %s: answer lost (%s) and the query failed: %s", cmd.client_order_id,
                        cmd.account, exc, qexc)  # fmt: skip
            return None
        same_qty = cmd.qty is None or to_decimal(order.qty) == to_decimal(cmd.qty)
        same_price = cmd.price is None or (order.price is not None and to_decimal(order.price) == to_decimal(cmd.price))
        if not (same_qty and same_price):
            return None
        return self._event(cmd, OrderEventKind.AMENDED, order.status, qty=order.qty, price=order.price,
                           venue_order_id=order.venue_order_id, side=order.side)  # fmt: skip

    async def _amend_refused(
        self, session: AccountSession, cmd: AmendOrder, code: str, reason: str, venue_code: int | None = None
    ) -> CommandResult:
        amend_revert(self.gateway, cmd.client_order_id)
        rec = self.gateway.orders.get(cmd.client_order_id)
        status = rec.status if rec is not None else OrderStatus.NEW
        ev = self._event(cmd, OrderEventKind.AMEND_REJECTED, status, qty=cmd.qty, price=cmd.price, side=cmd.side,
                         code=venue_code, reason=f"{code}: {reason}")  # fmt: skip
        await self.sink.emit(ev)
        self.metrics.rejections.labels(session.name, code).inc()
        return CommandResult(ok=False, client_order_id=cmd.client_order_id, status=status, code=code, reason=reason)

    async def _cancel_not_found(self, session: AccountSession, cmd: CancelOrder) -> None:
        """The venue has no open order by that id: filled meanwhile (its fill is on the way), or gone."""
        try:
            order = await session.clients_for(cmd.symbol).execution.query_order(cmd.symbol, cmd.client_order_id)
        except OrderNotFound:
            self.metrics.cancel_races.labels("not_found").inc()
            await self._apply(self._event(cmd, OrderEventKind.NOT_FOUND, OrderStatus.CANCELED))
            return
        except VenueError as exc:
            log.warning(
                "cancel of %s for %s: unknown to the venue, and the query failed: %s",
                cmd.client_order_id,
                cmd.account,
                exc,
            )
            return
        self.metrics.cancel_races.labels(order.status.value).inc()
        kind = _KIND_OF_STATUS.get(order.status)
        if kind is not None and order.status is not OrderStatus.NEW:
            await self._apply(self._event(cmd, kind, order.status, venue_order_id=order.venue_order_id))
        # FILLED: the fill arrives on the user stream and closes the order with its quantity

    async def _resolve(self, session: AccountSession, cmd: PlaceOrder, attempts: int = 5) -> None:
        """An order whose answer never came: ask the venue by client order id until it says."""
        coid = cmd.client_order_id or ""
        for attempt in range(attempts):
            rec = self.gateway.orders.get(coid)
            if rec is None or rec.status is not OrderStatus.UNKNOWN:
                return  # the user stream told us meanwhile
            try:
                order = await session.clients_for(cmd.symbol).execution.query_order(cmd.symbol, coid)
            except OrderNotFound:
                if attempt < attempts - 1:  # briefly unknown right after the send: ask again
                    await asyncio.sleep(0.2 * (attempt + 1))
                    continue
                await self._apply(
                    self._event(
                        cmd,
                        OrderEventKind.NOT_FOUND,
                        OrderStatus.REJECTED,
                        reason="the venue has no such order: it was never placed",
                    )
                )
                return
            except VenueError as exc:
                log.warning("resolving %s for %s: %s (attempt %d)", coid, cmd.account, exc, attempt + 1)
                await asyncio.sleep(0.2 * (attempt + 1))
                continue
            kind = _KIND_OF_STATUS.get(order.status)
            if kind is not None:
                await self._apply(self._event(cmd, kind, order.status, venue_order_id=order.venue_order_id))
            return  # FILLED: the user stream brings the fills

    def _spawn(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    # ------------------------------------------------------------------ kill switch
    async def on_kill_switch(self, msg: Msg) -> None:
        parts = msg.subject.split(".")
        action = parts[1]
        target = f"{parts[2]}/{parts[3]}" if len(parts) == 4 else None
        try:
            req = _ks_decoder.decode(msg.data) if msg.data.strip() else KillSwitchRequest()
        except msgspec.DecodeError as exc:
            reply = KillSwitchReply(ok=False, error=f"bad {msg.subject} body: {exc}")
            self._bad("kill_switch_malformed", reply.error, "")
        else:
            reply = await self.kill_switch(action, target, req)
        if msg.reply:
            await msg.respond(msgspec.json.encode(reply))

    async def kill_switch(self, action: str, account: str | None, req: KillSwitchRequest) -> KillSwitchReply:
        """Halt, reduce-only or resume one account (``exchange/name``) or, with None, every account."""
        state = _STATE_OF_ACTION[action]
        code = C.TRADING_STATES[state]
        if account is not None and account not in self.sessions:
            return KillSwitchReply(ok=False, error=f"{account} is not traded by this daemon")
        targets = [self.sessions[account]] if account else list(self.sessions.values())
        if action == "resume" and self.on_resume is not None:  # the breaker forgets what tripped it
            self.on_resume(None if account is None else self.sessions[account].number)
        if account is None:
            self.gateway.state.glob[G_TRADING_STATE] = code
            self.global_state = state
        cancelled = 0
        for s in targets:
            if account is not None:
                self.gateway.state.lim[L_TRADING_STATE, s.number] = code
                s.trading_state = state
            n = await self.cancel_open(s) if req.cancel_orders and s.trading else 0
            cancelled += n
            await self.sink.emit_risk(
                RiskEvent(
                    account=s.name,
                    action=action,
                    trading_state=self.state_of(s),
                    reason=req.reason,
                    cancelled=n,
                    event_ns=self.clock(),
                )
            )
            self.sink.dirty.add(s.name)
        self.metrics.kill_switch.labels(action).inc()
        log.warning(
            "kill switch: %s on %s%s (%s)",
            action,
            account or "all accounts",
            f", {cancelled} open order(s) cancelled" if req.cancel_orders else "",
            req.reason or "no reason",
        )
        return KillSwitchReply(
            ok=True, trading_state=state, accounts=tuple(s.name for s in targets), cancelled=cancelled
        )

    def state_of(self, session: AccountSession) -> str:
        """The account's effective trading state: the stricter of its own and the global one."""
        order = ("active", "reduce_only", "halted")
        return max(session.trading_state, self.global_state, key=order.index)

    async def cancel_open(self, session: AccountSession) -> int:
        """Cancel every open order of the account known to the daemon; how many cancels were sent."""
        d = self.gateway.cancel_all(CancelAll(account=session.name))
        for item in d.send:
            assert isinstance(item, CancelOrder)
            await self._send_cancel(session, item)
        return len(d.send)

    async def subscribe(self, nc, sessions: list[AccountSession]) -> list:
        """Subscribe the command and kill-switch subjects of ``sessions`` (and the global kill switch)."""
        subs = []
        for s in sessions:
            subs.append(
                await nc.subscribe(command_subject(s.account.exchange, s.account.name), cb=self.on_order_request)
            )
            for action in _STATE_OF_ACTION:
                subs.append(await nc.subscribe(kill_switch_subject(action, s.account), cb=self.on_kill_switch))
        for action in _STATE_OF_ACTION:
            subs.append(await nc.subscribe(kill_switch_subject(action), cb=self.on_kill_switch))
        await nc.flush()
        return subs

    async def drain(self, timeout_s: float = 5.0) -> None:
        """Wait for background resolutions to finish."""
        if self._pending:
            await asyncio.wait(list(self._pending), timeout=timeout_s)


def _venue_code(exc: Exception) -> str:
    if isinstance(exc, RateLimited):
        return "venue:rate_limited"
    if isinstance(exc, KeyError):
        return "unknown_market"
    code = getattr(exc, "code", None)
    shared = venue_rejection(code, getattr(exc, "venue_message", ""))  # the table the backtest reports from too
    if shared is not None:
        return shared.code
    return f"venue:{code}" if code is not None else f"venue:{type(exc).__name__.lower()}"


async def _together(coros) -> list:
    """The coroutines' results, run concurrently; the first exception is raised once every one has finished
    (none is cancelled halfway through a venue call)."""
    done = await asyncio.gather(*coros, return_exceptions=True)
    for out in done:
        if isinstance(out, BaseException):
            raise out
    return done


def account_of_subject(subject: str) -> AccountId:
    """``cmd.order.binance.sub_mm`` -> ``binance/sub_mm``."""
    parts = subject.split(".")
    return AccountId(parts[2], parts[3])
