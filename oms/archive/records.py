"""The rows of the trade, order and funding logs: the model's messages, and their columns in DuckDB.

``trades.jsonl`` holds ``oms.model.Fill``, ``orders.jsonl`` ``oms.model.OrderEvent``, ``funding.jsonl``
``Funding`` (below: the model has no funding-payment message yet), ``parents.jsonl``
``oms.model.parents.ParentEvent`` (every step of an emulated parent order) and ``transfers.jsonl``
``oms.model.TransferEvent``, one message a line in the model codec's JSON. The DuckDB column of every
field is derived here from the struct itself (decimal strings -> DECIMAL, ints -> BIGINT, enums -> VARCHAR,
nested structs -> JSON), with the struct's default for a field the codec omitted, so the file schema has one
source: the model.
"""

from __future__ import annotations

import enum
import typing
from dataclasses import dataclass
from typing import Any

import msgspec

from oms.model import Fill, OrderEvent, TransferEvent
from oms.model.base import Msg
from oms.model.fields import AccountStr, DecimalStr, OptDecimalStr, SymbolStr, TimeNs
from oms.model.parents import ParentEvent

# Exact decimals: 38 digits, 12 after the point (int128 in DuckDB; products are cast back to this scale).
DECIMAL = "DECIMAL(38,12)"
_DECIMAL_PATTERN = typing.get_args(DecimalStr)[1].pattern


class Funding(Msg, tag="funding", kw_only=True):
    """A funding payment of a perpetual position: ``amount`` signed (negative: paid), in ``asset``.

    Kept with the archive until the domain model has a funding-payment message of its own.
    """

    account: AccountStr
    symbol: SymbolStr
    asset: str
    amount: DecimalStr
    rate: OptDecimalStr = None
    mark_price: OptDecimalStr = None
    position_qty: OptDecimalStr = None
    venue_id: str = ""
    event_ns: TimeNs


LOG_TYPES: dict[str, type[msgspec.Struct]] = {
    "trades": Fill,
    "orders": OrderEvent,
    "funding": Funding,
    "parents": ParentEvent,
}
# the fields that identify one row: a repeat of the key in the same log is a duplicate
LOG_KEYS: dict[str, tuple[str, ...]] = {
    "trades": ("account", "symbol", "trade_id"),
    "orders": ("account", "client_order_id", "kind", "status", "filled_qty", "event_ns"),
    "funding": ("account", "symbol", "event_ns", "venue_id"),  # hedge mode: both sides paid at one time
    "parents": ("account", "parent_id", "seq"),  # a parent's steps are numbered from 1
}


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    sql_type: str  # the stored (Parquet) and view type
    json_type: str  # the type read from the raw JSON
    default: str | None  # SQL literal of the struct's default (the codec omits fields equal to it)


def _is_decimal(tp: Any) -> bool:
    args = typing.get_args(tp)
    if type(None) in args:
        args = typing.get_args(next(a for a in args if a is not type(None)))
    return len(args) == 2 and isinstance(args[1], msgspec.Meta) and args[1].pattern == _DECIMAL_PATTERN


def _base(tp: Any) -> Any:
    args = typing.get_args(tp)
    if typing.get_origin(tp) is typing.Annotated:
        return _base(args[0])
    if args and type(None) in args:
        return _base(next(a for a in args if a is not type(None)))
    return tp


def _sql_literal(value: Any) -> str | None:
    if value is msgspec.NODEFAULT or value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return None


def struct_columns(struct: type[msgspec.Struct]) -> list[Column]:
    """One column per field of ``struct``, typed from its annotation."""
    hints = typing.get_type_hints(struct, include_extras=True)
    out = []
    for f in msgspec.structs.fields(struct):
        tp = hints[f.name]
        base = _base(tp)
        if _is_decimal(tp):
            sql, js = DECIMAL, "VARCHAR"
        elif base is bool:
            sql = js = "BOOLEAN"
        elif base is int:
            sql = js = "BIGINT"
        elif isinstance(base, type) and issubclass(base, msgspec.Struct) or typing.get_origin(base) is tuple:
            sql = js = "JSON"
        else:
            sql = js = "VARCHAR"
        default = f.default if f.default is not msgspec.NODEFAULT else None
        out.append(Column(f.name, sql, js, _sql_literal(default)))
    return out


LOG_COLUMN_DEFS: dict[str, list[Column]] = {kind: struct_columns(t) for kind, t in LOG_TYPES.items()}
# stored columns of each compacted log table (the hive key `date` is the path)
LOG_COLUMNS: dict[str, dict[str, str]] = {
    kind: {c.name: c.sql_type for c in cols} for kind, cols in LOG_COLUMN_DEFS.items()
}
TRANSFER_COLUMNS = struct_columns(TransferEvent)


def json_columns_arg(cols: list[Column]) -> str:
    """The ``columns={...}`` argument of DuckDB's read_json for these columns (plus the ``type`` tag)."""
    items = [f"'{c.name}': '{c.json_type}'" for c in cols]
    return "{'type': 'VARCHAR', " + ", ".join(items) + "}"


def typed_select(cols: list[Column], source_alias: str = "") -> str:
    """Expressions that turn raw JSON columns into the stored types, filling omitted defaults."""
    p = f"{source_alias}." if source_alias else ""
    out = []
    for c in cols:
        e = f'{p}"{c.name}"'
        if c.default is not None:
            e = f"coalesce({e}, {c.default})"
        if c.sql_type != c.json_type:
            e = f"CAST({e} AS {c.sql_type})"
        out.append(f'{e} AS "{c.name}"')
    return ", ".join(out)
