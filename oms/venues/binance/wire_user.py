"""Binance user-data events as frozen ``msgspec.Struct``s whose fields are Binance's own names.

Decoding is validation: a frame missing a required field, or with a field of the wrong type, fails in
``msgspec`` with a message naming the field (``Expected `str`, got `int` - at `$.q```); the stream loop counts
and logs it and carries on. Unknown fields are ignored (Binance adds fields without notice). Decimals stay
strings, times are Binance milliseconds: ``oms.venues.binance.parse`` converts them at the boundary.

Spot events arrive on the WebSocket API as ``{"subscriptionId": N, "event": {...}}`` (python-binance hands the
``event`` object on); USD-M events on the listenKey stream as bare objects. Both are tagged by ``e``, so one
tagged union decodes any of them: ``SPOT_USER_EVENT`` and ``FUTURES_USER_EVENT``.

Field letters follow Binance's documentation (Spot "User Data Streams", USD-M "User Data Streams"); each is
commented once with its meaning.
"""

from __future__ import annotations

import msgspec


class ExecutionReport(msgspec.Struct, tag_field="e", tag="executionReport", frozen=True, kw_only=True, gc=False):
    """Spot ``executionReport``: one order's new state (and its fill, when ``x`` is TRADE).

    Fields are declared in the order Binance writes them (the decoder looks for the next key at the next field
    first); ``kw_only`` lets the optional ones sit among the required ones.
    """

    E: int  # event time, ms
    s: str  # symbol
    c: str  # client order id (the current one; on a cancel it is the cancel's id)
    S: str  # side
    o: str  # order type
    f: str  # time in force
    q: str  # order quantity
    p: str  # order price
    P: str = "0"  # stop price
    F: str = "0"  # iceberg quantity
    g: int = -1  # order list id
    C: str = ""  # original client order id of a cancelled order
    x: str  # execution type: NEW, CANCELED, REPLACED, REJECTED, TRADE, EXPIRED, TRADE_PREVENTION
    X: str  # order status
    r: str = "NONE"  # reject reason
    i: int  # order id
    l: str  # noqa: E741  last executed quantity
    z: str  # cumulative filled quantity
    L: str  # last executed price
    n: str  # commission of this fill
    N: str | None = None  # commission asset (null without a fill)
    T: int  # transaction time, ms
    t: int  # trade id (-1 without a fill)
    w: bool = False  # is the order on the book
    m: bool = False  # is this fill the maker side
    O: int  # noqa: E741  order creation time, ms
    Z: str  # cumulative quote quantity
    Y: str = "0"  # last quote quantity (l * L)
    Q: str = "0"  # quote order quantity
    W: int = 0  # working time, ms
    V: str = "NONE"  # self-trade prevention mode


class BalanceRow(msgspec.Struct, frozen=True):
    """One ``B`` row of ``outboundAccountPosition``."""

    a: str  # asset
    f: str  # free
    l: str  # noqa: E741  locked


class OutboundAccountPosition(msgspec.Struct, tag_field="e", tag="outboundAccountPosition", frozen=True):
    """Spot ``outboundAccountPosition``: the balances an account event changed."""

    E: int
    u: int  # last account update time, ms
    B: list[BalanceRow]


class BalanceUpdate(msgspec.Struct, tag_field="e", tag="balanceUpdate", frozen=True):
    """Spot ``balanceUpdate``: a deposit, withdrawal or transfer changed one asset."""

    E: int
    a: str  # asset
    d: str  # balance delta (signed decimal)
    T: int  # clear time, ms


class ListenKeyExpired(msgspec.Struct, tag_field="e", tag="listenKeyExpired", frozen=True):
    """The stream's listenKey expired: no more events until a new key is opened.

    Binance documents ``E`` as a string on USD-M (``"E": "1736996475556"``) and a number elsewhere.
    """

    E: int | str
    listenKey: str = ""


class EventStreamTerminated(msgspec.Struct, tag_field="e", tag="eventStreamTerminated", frozen=True):
    """Spot WebSocket API: the user-data subscription ended (the session logged out or the key was revoked)."""

    E: int


class OrderUpdate(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """The ``o`` object of USD-M ``ORDER_TRADE_UPDATE`` (fields in Binance's order, as ``ExecutionReport``)."""

    s: str  # symbol
    c: str  # client order id
    S: str  # side
    o: str  # order type
    f: str  # time in force
    q: str  # original quantity
    p: str  # original price
    ap: str  # average price
    sp: str = "0"  # stop price
    x: str  # execution type: NEW, CANCELED, CALCULATED (liquidation), EXPIRED, TRADE, AMENDMENT
    X: str  # order status
    i: int  # order id
    l: str  # noqa: E741  last filled quantity
    z: str  # cumulative filled quantity
    L: str  # last filled price
    N: str | None = None  # commission asset
    n: str = "0"  # commission
    T: int  # trade time, ms
    t: int  # trade id (0 without a fill)
    b: str = "0"  # bids notional
    a: str = "0"  # ask notional
    m: bool = False  # maker side
    R: bool = False  # reduce only
    wt: str = "CONTRACT_PRICE"  # stop price working type
    ot: str = ""  # original order type
    ps: str = "BOTH"  # position side
    cp: bool = False  # close position (conditional close-all)
    rp: str = "0"  # realized profit of this trade
    V: str = "NONE"  # self-trade prevention mode


class OrderTradeUpdate(msgspec.Struct, tag_field="e", tag="ORDER_TRADE_UPDATE", frozen=True, gc=False):
    """USD-M ``ORDER_TRADE_UPDATE``."""

    E: int  # event time, ms
    T: int  # transaction time, ms
    o: OrderUpdate


class FuturesBalanceRow(msgspec.Struct, frozen=True):
    """One ``a.B`` row of ``ACCOUNT_UPDATE``."""

    a: str  # asset
    wb: str  # wallet balance
    cw: str  # cross wallet balance
    bc: str = "0"  # balance change except PnL and commission


class FuturesPositionRow(msgspec.Struct, frozen=True):
    """One ``a.P`` row of ``ACCOUNT_UPDATE``."""

    s: str  # symbol
    pa: str  # position amount (signed)
    ep: str  # entry price
    up: str  # unrealised PnL
    mt: str  # margin type: isolated | cross
    ps: str  # position side: BOTH, LONG, SHORT
    bep: str = "0"  # break-even price
    cr: str = "0"  # accumulated realised
    iw: str = "0"  # isolated wallet


class AccountUpdateData(msgspec.Struct, frozen=True):
    """The ``a`` object of ``ACCOUNT_UPDATE``."""

    m: str  # reason: ORDER, FUNDING_FEE, DEPOSIT, WITHDRAW, ...
    B: list[FuturesBalanceRow]
    P: list[FuturesPositionRow]


class AccountUpdate(msgspec.Struct, tag_field="e", tag="ACCOUNT_UPDATE", frozen=True):
    """USD-M ``ACCOUNT_UPDATE``: balances and positions after an order, funding or transfer."""

    E: int
    T: int
    a: AccountUpdateData


class TradeLite(msgspec.Struct, tag_field="e", tag="TRADE_LITE", frozen=True):
    """USD-M ``TRADE_LITE``: a fast fill notice; ``ORDER_TRADE_UPDATE`` carries the same fill in full."""

    E: int
    T: int
    s: str
    c: str
    i: int
    t: int


class AccountConfigUpdate(msgspec.Struct, tag_field="e", tag="ACCOUNT_CONFIG_UPDATE", frozen=True):
    """USD-M ``ACCOUNT_CONFIG_UPDATE`` (leverage or multi-assets mode changed); carried as a notice."""

    E: int
    T: int


class AlgoOrderUpdate(msgspec.Struct, frozen=True):
    """The ``o`` object of USD-M ``ALGO_UPDATE`` (a conditional order of the Algo Order API)."""

    caid: str  # client algo id (the model's client order id)
    aid: int  # algo id
    o: str  # order type: STOP, STOP_MARKET, TAKE_PROFIT, TAKE_PROFIT_MARKET, TRAILING_STOP_MARKET
    s: str  # symbol
    S: str  # side
    X: str  # algo status: NEW, CANCELED, TRIGGERING, TRIGGERED, FINISHED, REJECTED, EXPIRED
    q: str = "0"  # quantity
    p: str = "0"  # limit price
    tp: str = "0"  # trigger price
    ps: str = "BOTH"  # position side
    f: str = "GTC"  # time in force
    ai: str = ""  # the triggered order's id in the matching engine
    rm: str = ""  # reject reason


class AlgoUpdate(msgspec.Struct, tag_field="e", tag="ALGO_UPDATE", frozen=True):
    """USD-M ``ALGO_UPDATE``: a conditional order was placed, cancelled, triggered, finished or rejected."""

    E: int
    T: int
    o: AlgoOrderUpdate


SpotUserEvent = ExecutionReport | OutboundAccountPosition | BalanceUpdate | ListenKeyExpired | EventStreamTerminated
FuturesUserEvent = OrderTradeUpdate | AccountUpdate | ListenKeyExpired | TradeLite | AccountConfigUpdate | AlgoUpdate

SPOT_USER_DECODER = msgspec.json.Decoder(SpotUserEvent)
FUTURES_USER_DECODER = msgspec.json.Decoder(FuturesUserEvent)


def decode_spot_user(frame: bytes | str) -> SpotUserEvent:
    """A Spot user-data event from its JSON (the ``event`` object); raises ``msgspec.ValidationError``."""
    return SPOT_USER_DECODER.decode(frame)


def convert_spot_user(event: object) -> SpotUserEvent:
    """A Spot user-data event from the dict python-binance hands on; raises ``msgspec.ValidationError``."""
    t = _SPOT_BY_TAG.get(event.get("e")) if type(event) is dict else None  # type: ignore[arg-type]
    return msgspec.convert(event, t or SpotUserEvent)  # type: ignore[arg-type]


def decode_futures_user(frame: bytes | str) -> FuturesUserEvent:
    """A USD-M user-data event from its JSON; raises ``msgspec.ValidationError`` (or ``DecodeError``)."""
    return FUTURES_USER_DECODER.decode(frame)


def convert_futures_user(event: object) -> FuturesUserEvent:
    """A USD-M user-data event from a decoded dict; raises ``msgspec.ValidationError``."""
    t = _FUTURES_BY_TAG.get(event.get("e")) if type(event) is dict else None  # type: ignore[arg-type]
    return msgspec.convert(event, t or FuturesUserEvent)  # type: ignore[arg-type]


def _by_tag(union: object) -> dict[object, type]:
    return {t.__struct_config__.tag: t for t in union.__args__}  # type: ignore[attr-defined]


# a dict is converted to its event's own struct, found by its tag ``e``: msgspec.convert to the union prepares the
# union's types on every call, several times the cost of the conversion itself; an unknown or missing tag goes to
# the union, which refuses it with msgspec's own message
_SPOT_BY_TAG = _by_tag(SpotUserEvent)
_FUTURES_BY_TAG = _by_tag(FuturesUserEvent)
