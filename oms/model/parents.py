"""Parent orders the daemon works itself (the venue lacks them): trailing stop, OCO, iceberg, TWAP, VWAP,
percent-of-volume, fixed-percent chunks and liquidity split.

A ``PlaceParent`` is sent like any command on ``cmd.order.{exchange}.{account}`` (version 1 of the envelope:
a type added with defaults, so older senders are unaffected). The daemon answers with the parent's id
(``parent_id``, derived from the command's content like a client order id, prefix ``par``: the same command
retried or replayed is the same parent) and then works it on the live book and trades, sending children
through the same gateway and risk path as any order. Each child's client order id is derived from
(parent id, child number), so a restart re-derives the same ids and finds its children at the venue instead
of placing them again. ``CancelOrder`` with the parent id cancels the parent and its open children.

Fields by algorithm (decimals as strings, like every command):

============== ====================================================================================
algo           uses
============== ====================================================================================
trailing_stop  ``callback_rate`` (percent the price may retrace from its best), ``stop_price``
               (optional activation price); then one market child (capped by ``max_slippage_bps``)
oco            ``price`` (the resting take-profit limit) and ``stop_price`` (the emulated stop):
               the stop fires a market child for what the limit has not filled, and cancels it
iceberg        ``price`` (limit), ``display_qty`` (clip), ``variance_pct`` (clip variation, seeded
               from the parent id: deterministic), one clip resting at a time
twap           ``duration_s``, ``slices``: equal slices at even times (``kernels.execution.split_twap``)
vwap           ``duration_s``, ``profile`` (weight per slice): ``split_vwap``
percent        ``duration_s``, ``chunk_pct``: chunks of a share of the parent (``split_percent``)
pov            ``participation_pct`` of the others' volume since the start (own fills out), ``duration_s``
liquidity      takes the book's depth within ``price`` (``kernels.book.depth``) as IOC children until done;
               with ``route`` across the books of several accounts, each child sized by its book's depth
               within ``price`` and its account's free balance (``kernels.execution.allocate``)
============== ====================================================================================

Slices of twap/vwap/percent/pov/liquidity go out as IOC limits at ``price`` when given, else capped at
``max_slippage_bps`` from the book (default 50); an unfilled remainder joins the next slice.
``ParentEvent`` is each step of a parent on ``orders.{exchange}.{account}.{market}.{symbol}`` (JetStream),
``ParentState`` what the daemon keeps of it in the ``oms_parents`` KV bucket to resume it after a restart.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import msgspec

from oms.model.base import Msg
from oms.model.enums import Side
from oms.model.fields import AccountStr, ClientOrderIdStr, DecimalStr, OptDecimalStr, SymbolStr, TimeNs
from oms.model.ids import ClientOrderId

PARENT_PREFIX = "par"


class ParentAlgo(StrEnum):
    TRAILING_STOP = "trailing_stop"
    OCO = "oco"
    ICEBERG = "iceberg"
    TWAP = "twap"
    VWAP = "vwap"
    PERCENT = "percent"
    POV = "pov"
    LIQUIDITY = "liquidity"


class ParentStatus(StrEnum):
    WORKING = "working"  # children being sent / a trigger being watched
    DONE = "done"  # the whole quantity filled
    CANCELED = "canceled"  # cancelled by a command (what filled stays filled)
    EXPIRED = "expired"  # its time ran out (or an IOC slice schedule ended) with quantity left
    REJECTED = "rejected"  # refused at the start, or a child was refused by risk or the venue

    @property
    def is_terminal(self) -> bool:
        return self is not ParentStatus.WORKING


class PlaceParent(Msg, tag="place_parent", kw_only=True):
    account: AccountStr
    symbol: SymbolStr
    side: Side
    qty: DecimalStr
    algo: ParentAlgo
    price: OptDecimalStr = None
    stop_price: OptDecimalStr = None
    callback_rate: OptDecimalStr = None
    display_qty: OptDecimalStr = None
    variance_pct: OptDecimalStr = None
    duration_s: Annotated[float, msgspec.Meta(ge=0, le=7 * 86400)] = 0.0
    slices: Annotated[int, msgspec.Meta(ge=0, le=10_000)] = 0
    profile: Annotated[tuple[Annotated[int, msgspec.Meta(ge=0)], ...], msgspec.Meta(max_length=10_000)] = ()
    chunk_pct: OptDecimalStr = None
    participation_pct: OptDecimalStr = None
    max_slippage_bps: Annotated[int, msgspec.Meta(ge=0, le=10_000)] | None = None
    reduce_only: bool = False
    strategy: str = ""
    intent: str = ""
    parent_id: ClientOrderIdStr | None = None
    # liquidity: the other accounts (``exchange/name``, this daemon's) it may also send children to, the same symbol
    # on each one's exchange and book (``stream.emulation.split``)
    route: Annotated[tuple[AccountStr, ...], msgspec.Meta(max_length=16)] = ()

    def with_parent_id(self) -> PlaceParent:
        if self.parent_id is not None:
            return self
        return msgspec.structs.replace(self, parent_id=derive_parent_id(self))


def derive_parent_id(cmd: PlaceParent) -> str:
    return ClientOrderId.derive(msgspec.structs.replace(cmd, parent_id=None), PARENT_PREFIX)


class ParentAmend(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """What an ``AmendOrder`` naming a parent may change besides its quantity and limit price (``AmendOrder.
    parent``): None leaves a field as it was. Which fields an algorithm takes is as for ``PlaceParent``."""

    stop_price: OptDecimalStr = None  # oco stop, trailing stop activation
    callback_rate: OptDecimalStr = None  # trailing stop
    display_qty: OptDecimalStr = None  # iceberg
    variance_pct: OptDecimalStr = None  # iceberg
    duration_s: Annotated[float, msgspec.Meta(ge=0, le=7 * 86400)] | None = None  # from the parent's start
    slices: Annotated[int, msgspec.Meta(ge=1, le=10_000)] | None = None  # twap
    profile: Annotated[tuple[Annotated[int, msgspec.Meta(ge=0)], ...], msgspec.Meta(max_length=10_000)] | None = None
    chunk_pct: OptDecimalStr = None  # percent
    participation_pct: OptDecimalStr = None  # pov

    def changes(self) -> dict:
        """The fields given, by name."""
        return {k: v for k in self.__struct_fields__ if (v := getattr(self, k)) is not None}


class _ChildKey(msgspec.Struct, frozen=True):
    parent: str
    n: int


def child_order_id(parent_id: str, n: int, prefix: str = "oms") -> str:
    """The client order id of a parent's child number ``n``: the same after any restart."""
    return ClientOrderId.derive(_ChildKey(parent_id, n), prefix)


class ChildOrder(msgspec.Struct, kw_only=True, omit_defaults=True):
    n: int
    client_order_id: str
    qty: DecimalStr
    price: OptDecimalStr = None
    role: str = "slice"  # slice | clip | take_profit | stop | trigger
    sent: bool = False  # False: recorded before sending (a restart asks the venue by its id first)
    status: str = "pending_new"
    filled_qty: DecimalStr = "0"
    replaces: str = ""  # made by a parent amend as the cancel-replace of this child (its refusal is the amend's)
    account: str = ""  # the account it went to, when not the parent's (a liquidity parent's ``route``)


class ParentState(msgspec.Struct, kw_only=True, omit_defaults=True):
    """The parent as the daemon keeps it (KV ``oms_parents``, key ``{exchange}.{account}.{parent_id}``)."""

    cmd: PlaceParent
    status: ParentStatus = ParentStatus.WORKING
    filled_qty: DecimalStr = "0"
    notional: DecimalStr = "0"  # sum of fill price x qty (avg price = notional / filled)
    children: list[ChildOrder] = msgspec.field(default_factory=list)
    next_slice: int = 0
    started_ns: TimeNs = 0
    best_price: OptDecimalStr = None  # trailing stop: the best price since activation
    activated: bool = False
    triggered: bool = False
    volume_seen: DecimalStr = "0"  # pov: the other participants' volume since the start (the daemon's fills out)
    # the last amend (``AmendOrder`` naming the parent): when it came, what had filled and the volume seen then.
    # The schedule's slices after it share what was left (``stream.emulation.plans.replan``); a pov parent's new
    # participation counts from the volume then.
    amends: int = 0
    amended_ns: TimeNs = 0
    amended_filled: DecimalStr = "0"
    amended_volume: DecimalStr = "0"
    seq: int = 0  # events numbered so far (their message ids)
    # the write-ahead of the parent's events: numbered and written here with the seq, in the same KV write, before
    # they are published and logged; taken off at a later write once JetStream acknowledged them (or the outbox
    # holds them). A restart publishes what is still here again (the ids deduplicate) and logs what the day's
    # parents.jsonl lacks, so a kill -9 between the write and the publish neither loses nor repeats an event
    pending: list[ParentEvent] = msgspec.field(default_factory=list)
    reason: str = ""
    updated_ns: TimeNs = 0


class ParentEvent(Msg, tag="parent_event", kw_only=True):
    account: AccountStr
    symbol: SymbolStr
    parent_id: ClientOrderIdStr
    algo: ParentAlgo
    kind: str  # accepted | child_sent | child_filled | child_done | triggered | done | canceled | expired | rejected
    status: ParentStatus
    side: Side
    qty: DecimalStr
    filled_qty: DecimalStr = "0"
    avg_price: OptDecimalStr = None
    child_client_order_id: str = ""
    child_qty: OptDecimalStr = None
    seq: int = 0
    reason: str = ""
    event_ns: TimeNs
