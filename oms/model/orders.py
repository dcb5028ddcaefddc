"""Order commands (place, amend, cancel, cancel-all), the order itself, its events and its fills.

Decimals are strings (``"0.015"``), times int64 nanoseconds since the epoch (UTC). ``account`` is
``exchange/name`` (``binance/sub_mm``), ``symbol`` the unified symbol (``BTC/USDT:USDT``).

``Fill`` and ``OrderEvent`` are made for every venue event and are not tracked by the cyclic garbage collector
(``gc=False``): their fields are strings, numbers, enums and (an event's) one ``Fill``, so they cannot be part
of a reference cycle. A field that can hold a container must not be added to them without removing it.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from oms.model.base import Msg
from oms.model.enums import LiquiditySide, OrderStatus, OrderType, PositionSide, Side, TimeInForce
from oms.model.fields import AccountStr, ClientOrderIdStr, DecimalStr, OptDecimalStr, SymbolStr, TimeNs
from oms.model.ids import AccountId, ClientOrderId, InstrumentId
from oms.model.parents import ParentAmend
from oms.model.status import OrderEventKind


class _OrderRef:
    """``account_id``/``instrument_id`` of a message with ``account`` and ``symbol`` fields."""

    __slots__ = ()
    account: str
    symbol: str

    @property
    def account_id(self) -> AccountId:
        return AccountId.parse(self.account)

    @property
    def instrument_id(self) -> InstrumentId:
        return InstrumentId.parse(self.symbol)


class PlaceOrder(Msg, _OrderRef, tag="place_order", kw_only=True):
    """A new order. ``client_order_id`` None: ``with_client_order_id()`` derives it from the content.

    ``price`` is the limit price of the limit-priced types, ``stop_price`` the trigger of the stop and
    take-profit types (the activation price of a trailing stop, optional there), ``callback_rate`` a
    trailing stop's distance in percent. ``intent`` distinguishes two orders of equal content (the
    strategy's order sequence number or signal id): it is part of the derived client order id.
    """

    account: AccountStr
    symbol: SymbolStr
    side: Side
    order_type: OrderType
    qty: DecimalStr
    price: OptDecimalStr = None
    stop_price: OptDecimalStr = None
    callback_rate: OptDecimalStr = None
    time_in_force: TimeInForce | None = None
    good_till_ns: TimeNs = 0
    reduce_only: bool = False
    post_only: bool = False
    position_side: PositionSide = PositionSide.BOTH
    strategy: str = ""
    intent: str = ""
    client_order_id: ClientOrderIdStr | None = None
    # slippage control (stream.emulation.slippage): a market order goes out as an IOC limit at most this many
    # basis points from the live book's best price (None: as sent)
    max_slippage_bps: Annotated[int, msgspec.Meta(ge=0, le=10_000)] | None = None
    # smart routing (stream.routing): other accounts this order may go to instead of ``account``; the routing
    # kernel picks the one whose book, fee, balance and rate-limit headroom serve it best (the reply names it)
    route: tuple[AccountStr, ...] = ()

    def with_client_order_id(self, prefix: str = "oms") -> PlaceOrder:
        """This command with its client order id set (derived from the content when not given)."""
        if self.client_order_id is not None:
            return self
        return msgspec.structs.replace(self, client_order_id=ClientOrderId.derive(self, prefix))


class AmendOrder(Msg, _OrderRef, tag="amend_order", kw_only=True):
    """Change an open order's price and/or quantity in place, where the venue can (``Capabilities.amend``).

    Naming a parent order (its parent id as ``client_order_id``), the daemon amends the parent: ``qty`` its total,
    ``price`` its limit, ``parent`` its algorithm's parameters (``ParentAmend``); an order that is not a parent
    takes no ``parent`` (refused)."""

    account: AccountStr
    symbol: SymbolStr
    client_order_id: ClientOrderIdStr
    side: Side
    qty: OptDecimalStr = None
    price: OptDecimalStr = None
    parent: ParentAmend | None = None


class CancelOrder(Msg, _OrderRef, tag="cancel_order", kw_only=True):
    account: AccountStr
    symbol: SymbolStr
    client_order_id: ClientOrderIdStr
    venue_order_id: str | None = None


class CancelAll(Msg, tag="cancel_all", kw_only=True):
    """Cancel every open order of the account on one symbol (``symbol`` None: on every symbol)."""

    account: AccountStr
    symbol: SymbolStr | None = None


class Fill(Msg, _OrderRef, tag="fill", kw_only=True, gc=False):
    """One trade of one order. ``trade_id`` is unique per (account, symbol): the key that drops duplicates."""

    account: AccountStr
    symbol: SymbolStr
    client_order_id: ClientOrderIdStr
    venue_order_id: str
    trade_id: str
    side: Side
    price: DecimalStr
    qty: DecimalStr
    commission: DecimalStr = "0"
    commission_asset: str = ""
    liquidity: LiquiditySide = LiquiditySide.TAKER
    position_side: PositionSide = PositionSide.BOTH
    realized_pnl: OptDecimalStr = None
    event_ns: TimeNs
    recv_ns: TimeNs = 0
    # realised slippage (stream.emulation.slippage): the book's best opposite price when the order was sent,
    # and how far the fill was from it, in basis points (positive: worse for us)
    reference_price: OptDecimalStr = None
    slippage_bps: OptDecimalStr = None

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.account, self.symbol, self.trade_id)


class Order(Msg, _OrderRef, tag="order", kw_only=True):
    """An order as the platform knows it (the state the events fold into; what a query returns)."""

    account: AccountStr
    symbol: SymbolStr
    client_order_id: ClientOrderIdStr
    venue_order_id: str | None = None
    side: Side
    order_type: OrderType
    qty: DecimalStr
    price: OptDecimalStr = None
    stop_price: OptDecimalStr = None
    time_in_force: TimeInForce | None = None
    reduce_only: bool = False
    post_only: bool = False
    position_side: PositionSide = PositionSide.BOTH
    status: OrderStatus
    filled_qty: DecimalStr = "0"
    avg_price: OptDecimalStr = None
    created_ns: TimeNs = 0
    updated_ns: TimeNs = 0
    strategy: str = ""
    # the book's best price on the side the order takes when it was sent (the daemon's slippage control): kept
    # in the live state so that its fills after a restart still carry their realised slippage
    reference_price: OptDecimalStr = None


class OrderEvent(Msg, _OrderRef, tag="order_event", kw_only=True, gc=False):
    """Something that happened to an order: ``kind`` (see ``oms.model.status``) and the status after it.

    ``filled_qty`` is cumulative; ``fill`` is set for ``partial_fill``/``fill``. ``code`` and ``reason``
    carry the venue's error code and message of a rejection or a refused cancel/amend.
    """

    account: AccountStr
    symbol: SymbolStr
    client_order_id: ClientOrderIdStr
    venue_order_id: str | None = None
    kind: OrderEventKind
    status: OrderStatus
    side: Side | None = None
    order_type: OrderType | None = None
    qty: OptDecimalStr = None
    price: OptDecimalStr = None
    filled_qty: DecimalStr = "0"
    avg_price: OptDecimalStr = None
    fill: Fill | None = None
    code: int | None = None
    reason: str = ""
    event_ns: TimeNs
    recv_ns: TimeNs = 0
