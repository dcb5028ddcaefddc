"""The one codec of the model's messages, used on NATS and in files: msgspec JSON, tagged by ``type``.

``encode(msg)`` gives the bytes of one message; ``decode(data)`` reads any message of the ``Message`` union
(or of one given type) and validates it; ``encode_lines``/``decode_lines`` handle JSON Lines files. A bad
payload raises ``DecodeError`` (a ``ValueError``) saying where and why, e.g.
``bad message: Expected `str` matching regex ... - at `$.qty```; callers count and log it and carry on.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, TypeVar, Union

import msgspec

from oms.model.account import (
    AccountSettings,
    Balance,
    BalanceEvent,
    Position,
    PositionEvent,
    Transfer,
    TransferEvent,
)
from oms.model.market import BookSnapshot, DepthDiff, Kline, MarkPrice, Quote, Trade
from oms.model.orders import AmendOrder, CancelAll, CancelOrder, Fill, Order, OrderEvent, PlaceOrder
from oms.model.parents import ParentEvent, PlaceParent
from oms.model.settings import SetLeverage, SetMarginType, SetPositionMode

MESSAGE_TYPES: tuple[type[msgspec.Struct], ...] = (
    PlaceOrder,
    AmendOrder,
    CancelOrder,
    CancelAll,
    Order,
    OrderEvent,
    Fill,
    Balance,
    BalanceEvent,
    Position,
    PositionEvent,
    Transfer,
    TransferEvent,
    AccountSettings,
    Trade,
    Quote,
    DepthDiff,
    BookSnapshot,
    Kline,
    MarkPrice,
    PlaceParent,
    ParentEvent,
    SetLeverage,
    SetMarginType,
    SetPositionMode,
)
Message = Union[MESSAGE_TYPES]  # type: ignore[valid-type]  # noqa: UP007
T = TypeVar("T")


class DecodeError(ValueError):
    """A payload that is not a valid model message (garbage, truncated, wrong field, wrong type)."""


_encoder = msgspec.json.Encoder()
_decoder: msgspec.json.Decoder[Any] = msgspec.json.Decoder(Message)
_typed: dict[type, msgspec.json.Decoder[Any]] = {}


def encode(msg: msgspec.Struct) -> bytes:
    return _encoder.encode(msg)


def decode(data: bytes | str | memoryview, type: type[T] | None = None) -> T:
    """One message from its JSON, validated; ``type`` decodes one struct type instead of the union."""
    dec = _decoder if type is None else _typed.get(type) or _typed.setdefault(type, msgspec.json.Decoder(type))
    try:
        return dec.decode(data)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        preview = bytes(data[:80]) if not isinstance(data, str) else data[:80].encode()
        raise DecodeError(f"bad {_name(type)} message: {exc} (payload starts {preview!r})") from None


def validate(msg: T) -> T:
    """``msg`` round-tripped through the codec: DecodeError if a field breaks its constraint."""
    return decode(encode(msg), type(msg))  # type: ignore[arg-type]


def encode_lines(msgs: Iterable[msgspec.Struct]) -> bytes:
    """JSON Lines: one message per line, each ending in a newline."""
    buf = bytearray()
    for msg in msgs:
        _encoder.encode_into(msg, buf, -1)
        buf += b"\n"
    return bytes(buf)


def decode_lines(data: bytes, *, errors: list[DecodeError] | None = None) -> Iterator[Message]:
    """The messages of a JSON Lines payload. With ``errors`` a bad line is appended there (numbered) and
    skipped; without it the first bad line raises."""
    for number, line in enumerate(data.splitlines(), 1):
        if not line.strip():
            continue
        try:
            yield decode(line)
        except DecodeError as exc:
            err = DecodeError(f"line {number}: {exc}")
            if errors is None:
                raise err from None
            errors.append(err)


def _name(t: type | None) -> str:
    return "model" if t is None else t.__name__


__all__ = [
    "MESSAGE_TYPES",
    "DecodeError",
    "Message",
    "decode",
    "decode_lines",
    "encode",
    "encode_lines",
    "validate",
]
