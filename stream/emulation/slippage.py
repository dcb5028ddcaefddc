"""Slippage control: market orders capped from the live book, and the realised slippage of every fill.

``SlippageControl.hook`` is a command hook of ``OrderRouter`` (it runs before the gateway):

* every ``PlaceOrder`` gets its client order id first (derived from the command as sent, so a retry is still
  the same order) and its **reference price**: the best price on the side it would take, from the book kernel,
  when it arrived (the best ask to buy, the best bid to sell);
* a ``market`` order with ``max_slippage_bps`` goes out as a ``limit`` IOC at the reference price moved by at
  most that many basis points against us (rounded to the tick towards the book: never wider than asked), so
  it fills what the book offers within the cap and the rest expires; with no book it is refused
  (``slippage:no_book``), never sent blind.

Each open order's reference price is also in the live state (``Order.reference_price`` of ``open_orders`` in
the KV bucket); ``restore`` reads them back at the next start, before its reconciliation, so that the fills found
then (an order resting while the daemon was down) carry their slippage too.

``enrich`` (the event sink's) writes ``reference_price`` and ``slippage_bps`` (positive: worse than the
reference) into every fill of such an order, standalone and inside its order event, and observes the
``oms_fill_slippage_bps{account}`` histogram once per fill.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from decimal import ROUND_HALF_EVEN, Decimal

import msgspec
from prometheus_client import Counter, Histogram

from kernels import codes as C
from oms.model import Fill, Order, OrderEvent, OrderType, PlaceOrder, Side, TimeInForce
from oms.model.commands import CommandResult
from stream.emulation.book import BookView

log = logging.getLogger("stream.emulation.slippage")

BPS_BUCKETS = (-50.0, -20.0, -10.0, -5.0, -2.0, -1.0, 0.0, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 500.0)
_BPS = Decimal(10_000)
_CENT = Decimal("0.01")


class SlippageControl:
    def __init__(self, book: BookView, exchange_of, registry, *, id_prefix: str = "oms", keep: int = 200_000):
        self.book = book
        self.exchange_of = exchange_of  # account "binance/x" -> exchange "binance"
        self.id_prefix = id_prefix
        self.keep = keep
        self.refs: OrderedDict[str, tuple[Decimal, int]] = OrderedDict()  # coid -> (reference price, side sign)
        self.histogram = Histogram(
            "oms_fill_slippage_bps",
            "Realised slippage of each fill from the book's best price when its order was sent (bps, + is worse)",
            ["account"],
            buckets=BPS_BUCKETS,
            registry=registry,
        )
        self.capped = Counter("oms_slippage_capped", "Market orders sent as IOC limits capped from the book",
                              ["account"], registry=registry)  # fmt: skip

    async def hook(self, cmd):
        if type(cmd) is not PlaceOrder:
            return cmd
        cmd = cmd.with_client_order_id(self.id_prefix)
        try:
            i, ins = self.book.number(self.exchange_of(cmd.account), cmd.symbol)
        except (KeyError, ValueError):
            return cmd  # the gateway refuses unknown symbols with its own reason
        side = C.BUY if cmd.side is Side.BUY else C.SELL
        ref = self.book.reference(i, side)
        coid = cmd.client_order_id or ""
        if ref and coid not in self.refs:
            self.refs[coid] = (Decimal(ins.price_str(ref)), side)
            if len(self.refs) > self.keep:
                self.refs.popitem(last=False)
        if cmd.order_type is not OrderType.MARKET or cmd.max_slippage_bps is None:
            return cmd
        if not ref:
            why = f"no live book for {cmd.symbol}: a capped market order is not sent blind"
            return CommandResult(ok=False, client_order_id=coid, code="slippage:no_book", reason=why)
        cap = self.cap(ref, side, cmd.max_slippage_bps, ins.tick)
        self.capped.labels(cmd.account).inc()
        return msgspec.structs.replace(
            cmd, order_type=OrderType.LIMIT, time_in_force=TimeInForce.IOC, price=ins.price_str(cap)
        )

    @staticmethod
    def cap(ref: int, side: int, bps: int, tick: int) -> int:
        """The limit price at most ``bps`` from ``ref`` against ``side``, on the tick grid towards ``ref``."""
        if side == C.BUY:
            raw = ref * (10_000 + bps) // 10_000
            return max(tick, raw - raw % tick)
        raw = -((-ref * (10_000 - bps)) // 10_000)  # ceiling
        return max(tick, raw + (-raw % tick))

    def reference_of(self, coid: str) -> str | None:
        """The order's reference price as a decimal string (None: none recorded)."""
        got = self.refs.get(coid)
        return None if got is None else format(got[0], "f")

    def restore(self, orders: list[Order]) -> int:
        """The reference prices of the open orders a previous run wrote to the live state (``Order.
        reference_price``), so that their fills after a restart still carry their slippage; how many."""
        n = 0
        for o in orders:
            if o.reference_price is not None and o.client_order_id not in self.refs:
                self.refs[o.client_order_id] = (Decimal(o.reference_price), C.BUY if o.side is Side.BUY else C.SELL)
                n += 1
        while len(self.refs) > self.keep:
            self.refs.popitem(last=False)
        return n

    def slippage_bps(self, coid: str, price: str) -> tuple[Decimal, Decimal] | None:
        got = self.refs.get(coid)
        if got is None:
            return None
        ref, side = got
        bps = (Decimal(price) - ref) / ref * _BPS * (1 if side == C.BUY else -1)
        return ref, bps.quantize(_CENT, rounding=ROUND_HALF_EVEN)

    def _fill(self, fill: Fill) -> Fill:
        if fill.slippage_bps is not None:
            return fill
        got = self.slippage_bps(fill.client_order_id, fill.price)
        if got is None:
            return fill
        ref, bps = got
        return msgspec.structs.replace(fill, reference_price=format(ref, "f"), slippage_bps=format(bps, "f"))

    def enrich(self, event):
        if type(event) is Fill:
            out = self._fill(event)
            if out.slippage_bps is not None:
                self.histogram.labels(out.account).observe(float(out.slippage_bps))
            return out
        if type(event) is OrderEvent and event.fill is not None:
            fill = self._fill(event.fill)
            if fill is not event.fill:
                return msgspec.structs.replace(event, fill=fill)
        return event
