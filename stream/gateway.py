"""The order gateway: every command passes here, synchronously, between its arrival and the venue.

``OrderGateway`` turns commands into decisions and venue events into state, with no I/O and no awaits (the
daemon's asyncio edges do the sending and publishing):

* ``place(cmd)``: the client order id (derived from the command when it has none, so a retry or a restart
  yields the same id), idempotency (a known id is answered with its order's status and never sent again),
  the account and instrument (unknown ones refused), exact decimal conversion to kernel units (an over-precise
  price or quantity refused), then the risk kernel. A rejection is an ``OrderEvent`` with the kernel's reason
  and changes nothing; an accepted order holds a reservation (an open-order slot and its quantity) and is
  handed back to be sent.
* ``cancel(cmd)`` / ``cancel_all(cmd)``: mark the open orders ``pending_cancel`` and hand the cancels back.
* ``on_order_event(ev)``: a venue event through the status machine; a new fill goes into the positions
  kernel (once, by trade id) and frees its share of the reservation; a finished order frees the rest. Events
  for unknown orders, illegal transitions and fills the kernel refuses are counted by reason and logged, and
  the gateway carries on.
* ``handle_request(data, account)``: a NATS ``CommandRequest`` in, its ``CommandReply`` out.

Risk rejections carry the kernel's reason code (positive: ``kernels.codes``) in ``OrderEvent.code``; venue
rejections carry the venue's code (Binance's are negative), so the two never collide.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import msgspec

from kernels import codes as C
from kernels.positions import apply_fill
from kernels.risk import RiskGate
from kernels.state import AccountIndex, KernelState
from oms.model import (
    AccountId,
    AmendOrder,
    CancelAll,
    CancelOrder,
    Fill,
    IllegalTransition,
    Instrument,
    OrderEvent,
    OrderEventKind,
    OrderStatus,
    OrderType,
    PlaceOrder,
)
from oms.model.commands import CommandError, CommandReply, CommandResult, parse_request
from oms.model.units import MONEY_UNIT, money_to_units, round_to_units, to_decimal
from stream.instruments import InstrumentTable, UnknownInstrument
from stream.orders import OrderRecord, OrderTracker

log = logging.getLogger("stream.gateway")

_STOP_PRICED = frozenset({OrderType.STOP_MARKET, OrderType.TAKE_PROFIT_MARKET})
_LIMIT_PRICED = frozenset({OrderType.LIMIT, OrderType.LIMIT_MAKER, OrderType.STOP_LIMIT, OrderType.TAKE_PROFIT_LIMIT})


class _Refusal(Exception):
    def __init__(self, code: str, reason: str):
        self.code, self.reason = code, reason


@dataclass(slots=True)
class Decision:
    """The gateway's answer to one command: the reply, the events to publish, what to send to the venue."""

    result: CommandResult
    events: list[OrderEvent] = field(default_factory=list)
    send: list[PlaceOrder | CancelOrder] = field(default_factory=list)


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
        self._routes: dict[tuple[str, str], tuple[int, int]] = {}

    # ------------------------------------------------------------------ commands
    def place(self, cmd: PlaceOrder) -> Decision:
        cmd = cmd.with_client_order_id(self.id_prefix)
        coid = cmd.client_order_id or ""
        known = self.orders.get(coid)
        if known is not None:  # a retry or a replay: answer, never send twice
            return Decision(CommandResult(ok=True, client_order_id=coid, status=known.status))
        route = self._routes.get((cmd.account, cmd.symbol))
        if route is None:
            try:
                route = self._route(cmd.account, cmd.symbol)
            except _Refusal as r:
                return self._refuse(cmd, r.code, r.reason)
        a, i = route
        ins = self.instruments.instrument(i)[1]  # by number: filters updated later are seen
        otype = C.ORDER_TYPE_CODES.get(cmd.order_type)
        if otype is None or otype > C.MAX_ORDER_TYPE:
            return self._refuse(cmd, "unsupported_order_type", f"{cmd.order_type.value} orders are not gated yet")
        try:
            qty, price = self._units(cmd, ins)
        except ValueError as exc:
            return self._refuse(cmd, "bad_number", str(exc))
        side = C.SIDE_CODES[cmd.side]
        pos_side = C.POSITION_SIDE_CODES[cmd.position_side]
        note = ""
        if self.guard is not None and not cmd.reduce_only:
            guarded, refusal = self.guard(a, i, side, pos_side, qty)
            if refusal is not None:
                return self._refuse(cmd, *refusal)
            if guarded != qty:
                scaled = ins.qty_str(guarded)
                note = f"qty scaled from {cmd.qty} to {scaled} by the volatility guard"
                qty, cmd = guarded, msgspec.structs.replace(cmd, qty=scaled)
        reason = self.gate.check(a, i, side, otype, price, qty, int(cmd.reduce_only), pos_side, self.clock())
        if reason != C.OK:
            name = C.reason_name(reason)
            return self._refuse(cmd, f"risk:{name}", C.reason_message(reason), risk_code=reason)
        self.orders.add(OrderRecord(cmd, a, i, side, pos_side, qty, updated_ns=self.clock()))
        self.accepted += 1
        result = CommandResult(ok=True, client_order_id=coid, status=OrderStatus.PENDING_NEW, reason=note)
        return Decision(result, send=[cmd])

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
        if not rec.is_open or rec.status is OrderStatus.PENDING_CANCEL:
            return Decision(CommandResult(ok=True, client_order_id=cmd.client_order_id, status=rec.status))
        self.orders.mark(rec, OrderEventKind.CANCEL_SENT, self.clock())
        return Decision(
            CommandResult(ok=True, client_order_id=cmd.client_order_id, status=rec.status),
            send=[CancelOrder(account=cmd.account, symbol=rec.cmd.symbol, client_order_id=cmd.client_order_id,
                              venue_order_id=rec.venue_order_id)],
        )  # fmt: skip

    def cancel_all(self, cmd: CancelAll) -> Decision:
        try:
            acc = AccountId.parse(cmd.account)
            a = self.accounts[acc.exchange, acc.name]
        except (KeyError, ValueError):
            self.rejections["unknown_account"] += 1
            return Decision(CommandResult(ok=False, code="unknown_account", reason=f"{cmd.account} is not traded here"))
        out = Decision(CommandResult(ok=True))
        for rec in self.orders.open_orders(a):
            if cmd.symbol is None or rec.cmd.symbol == cmd.symbol:
                d = self.cancel(
                    CancelOrder(account=cmd.account, symbol=rec.cmd.symbol, client_order_id=rec.client_order_id)
                )
                out.send.extend(d.send)
        return out

    def handle_request(self, data: bytes, account: AccountId | str) -> tuple[CommandReply, Decision]:
        """A NATS command request for ``account`` (the subject's): the reply and everything it caused."""
        try:
            req = parse_request(data, account)
        except CommandError as exc:
            self.rejections[exc.code] += 1
            return exc.reply(), Decision(CommandResult(ok=False, code=exc.code, reason=str(exc)))
        total = Decision(CommandResult(ok=True))
        results = []
        for cmd in req.commands:
            if isinstance(cmd, PlaceOrder):
                d = self.place(cmd)
            elif isinstance(cmd, CancelOrder):
                d = self.cancel(cmd)
            elif isinstance(cmd, CancelAll):
                d = self.cancel_all(cmd)
            else:  # AmendOrder: in-place amend is not gated by the risk kernel yet
                assert isinstance(cmd, AmendOrder)
                self.rejections["unsupported"] += 1
                why = "amend is not supported by this daemon yet; cancel and place"
                d = Decision(
                    CommandResult(ok=False, client_order_id=cmd.client_order_id, code="unsupported", reason=why)
                )
            results.append(d.result)
            total.events.extend(d.events)
            total.send.extend(d.send)
        return CommandReply(request_id=req.request_id, results=tuple(results)), total

    # ------------------------------------------------------------------ venue events
    def on_order_event(self, ev: OrderEvent) -> list[OrderEvent]:
        """Apply one venue event; returns the events to publish (none for a pure duplicate)."""
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
        if change.new_fill is not None:
            fee = self._fee_units(change.new_fill, rec, price_units)
            r = apply_fill(
                *self._blocks, rec.account, rec.instrument, rec.side, rec.pos_side, price_units, fill_units, fee
            )
            if r != C.OK:
                self._drop("fill_refused", ev, C.reason_message(r))
            if rec.reserved:
                self.gate.release(rec.account, rec.instrument, rec.side, rec.pos_side, fill_units, False)
        if rec.reserved and not rec.is_open:
            self.gate.release(rec.account, rec.instrument, rec.side, rec.pos_side, max(0, rec.qty - rec.filled), True)
            rec.reserved = False
        return [ev] if change.changed else []

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

    def _units(self, cmd: PlaceOrder, ins: Instrument) -> tuple[int, int]:
        qty = ins.qty(cmd.qty)
        if cmd.order_type in _LIMIT_PRICED:
            if cmd.price is None:
                raise ValueError(f"{cmd.order_type.value} order needs a price")
            return qty, ins.price(cmd.price)
        if cmd.order_type in _STOP_PRICED:
            if cmd.stop_price is None:
                raise ValueError(f"{cmd.order_type.value} order needs a stop_price")
            return qty, ins.price(cmd.stop_price, "stop price")
        return qty, 0

    def _fee_units(self, fill: Fill, rec: OrderRecord, price_units: int) -> int:
        """The fill's commission in money units (quote currency). A commission in the base asset is valued at
        the fill price and rounded half-even to 1e-8 (the one rounding here); one in a third asset (BNB) is not
        converted here and is counted."""
        if fill.commission == "0":
            return 0
        ins_id = self.instruments.instrument(rec.instrument)[1].id
        if fill.commission_asset in ("", ins_id.quote):
            return money_to_units(fill.commission, "commission")
        if fill.commission_asset == ins_id.base:  # Spot buys pay in the base asset: valued at the fill price
            return round_to_units(to_decimal(fill.commission) * to_decimal(fill.price), MONEY_UNIT, "commission")
        self.dropped["fee_asset_not_converted"] += 1
        return 0

    def _refuse(self, cmd: PlaceOrder, code: str, reason: str, risk_code: int | None = None) -> Decision:
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
        return Decision(result, events=[ev])

    def _drop(self, reason: str, ev: OrderEvent, detail: str) -> None:
        n = self.dropped[reason] = self.dropped[reason] + 1
        if n <= 5 or n % 1000 == 0:  # logged, but a flood does not flood the log
            log.warning("order event %s for %s %s dropped (%s, %d so far): %s",
                        ev.kind.value, ev.account, ev.client_order_id, reason, n, detail)  # fmt: skip
