"""Request parameters: one typed view over a Binance request's query string and form body.

Binance validates every parameter's characters before it looks at its meaning; the getters here do the
same and raise Binance's own errors (-1100 illegal characters, -1102 missing, -1105 empty), so handlers
never see malformed strings and never crash on them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation

import orjson

from localex.server import errors

DECIMAL_RE = re.compile(r"^([0-9]{1,20})(\.[0-9]{1,20})?\Z")
DECIMAL_LEGAL = r"^([0-9]{1,20})(\.[0-9]{1,20})?$"
INT_RE = re.compile(r"^-?[0-9]{1,20}\Z")
INT_LEGAL = "^[0-9]{1,20}$"
SYMBOL_RE = re.compile(r"^[A-Z0-9\-_.]{1,20}\Z")
SYMBOL_LEGAL = r"^[A-Z0-9-_.]{1,20}$"
CLIENT_ID_RE = re.compile(r"^[\.A-Z\:/a-z0-9_-]{1,64}\Z")
CLIENT_ID_LEGAL = r"^[\.A-Z\:/a-z0-9_-]{1,36}$"
MAX_PARAMS = 64


class Params:
    """Read-only access to request parameters with Binance's validation errors."""

    __slots__ = ("_data",)

    def __init__(self, data: Mapping[str, str]) -> None:
        if len(data) > MAX_PARAMS:
            raise errors.too_many_parameters()
        self._data = dict(data)

    def __contains__(self, name: str) -> bool:
        return self._data.get(name, "") != ""

    def raw(self) -> dict[str, str]:
        """A copy of all parameters as sent."""
        return dict(self._data)

    def opt_str(self, name: str) -> str | None:
        """A string parameter, or None when absent or empty."""
        value = self._data.get(name)
        return value if value not in (None, "") else None

    def str(self, name: str) -> str:
        """A mandatory string parameter."""
        value = self.opt_str(name)
        if value is None:
            raise errors.mandatory(name)
        return value

    def opt_symbol(self, name: str = "symbol") -> str | None:
        """An optional symbol, upper-cased as Binance accepts it, checked against its legal range."""
        value = self.opt_str(name)
        if value is None:
            return None
        value = value.upper()
        if not SYMBOL_RE.match(value):
            raise errors.illegal_chars(name, SYMBOL_LEGAL)
        return value

    def symbol(self, name: str = "symbol") -> str:
        """A mandatory symbol."""
        value = self.opt_symbol(name)
        if value is None:
            raise errors.mandatory(name)
        return value

    def opt_decimal(self, name: str) -> Decimal | None:
        """An optional non-negative decimal string (prices, quantities) as an exact Decimal."""
        value = self.opt_str(name)
        if value is None:
            return None
        if not DECIMAL_RE.match(value):
            raise errors.illegal_chars(name, DECIMAL_LEGAL)
        try:
            return Decimal(value)
        except InvalidOperation as exc:  # pragma: no cover - the regex already guarantees a number
            raise errors.illegal_chars(name, DECIMAL_LEGAL) from exc

    def decimal(self, name: str) -> Decimal:
        """A mandatory decimal."""
        value = self.opt_decimal(name)
        if value is None:
            raise errors.mandatory(name)
        return value

    def opt_int(self, name: str, lo: int | None = None, hi: int | None = None) -> int | None:
        """An optional integer, range-checked (-1130 outside the range)."""
        value = self.opt_str(name)
        if value is None:
            return None
        if not INT_RE.match(value):
            raise errors.illegal_chars(name, INT_LEGAL)
        number = int(value)
        if (lo is not None and number < lo) or (hi is not None and number > hi):
            raise errors.bad_param(name)
        return number

    def int(self, name: str, lo: int | None = None, hi: int | None = None) -> int:
        """A mandatory integer."""
        value = self.opt_int(name, lo, hi)
        if value is None:
            raise errors.mandatory(name)
        return value

    def opt_bool(self, name: str) -> bool | None:
        """An optional boolean sent as ``true``/``false`` (any case)."""
        value = self.opt_str(name)
        if value is None:
            return None
        lowered = value.lower()
        if lowered not in ("true", "false"):
            raise errors.bad_param(name)
        return lowered == "true"

    def opt_enum(self, name: str, allowed: frozenset[str], error: errors.BinanceError | None = None) -> str | None:
        """An optional enum value; an unknown value raises ``error`` (or -1130)."""
        value = self.opt_str(name)
        if value is None:
            return None
        if value not in allowed:
            raise error if error is not None else errors.bad_param(name)
        return value

    def enum(self, name: str, allowed: frozenset[str], error: errors.BinanceError | None = None) -> str:
        """A mandatory enum value."""
        value = self.opt_enum(name, allowed, error)
        if value is None:
            raise errors.mandatory(name)
        return value

    def opt_client_id(self, name: str) -> str | None:
        """An optional client order id, checked against Binance's legal range."""
        value = self.opt_str(name)
        if value is None:
            return None
        if not CLIENT_ID_RE.match(value):
            raise errors.illegal_chars(name, CLIENT_ID_LEGAL)
        return value

    def opt_symbols(self, name: str = "symbols") -> list[str] | None:
        """An optional JSON array of symbols (``symbols=["BTCUSDT","ETHUSDT"]``)."""
        value = self.opt_str(name)
        if value is None:
            return None
        try:
            parsed = orjson.loads(value)
        except orjson.JSONDecodeError as exc:
            raise errors.bad_param(name) from exc
        if not isinstance(parsed, list) or not all(isinstance(s, str) and SYMBOL_RE.match(s) for s in parsed):
            raise errors.bad_param(name)
        return list(parsed)

    def opt_json_list(self, name: str) -> list[dict[str, object]] | None:
        """An optional JSON array of objects (``batchOrders``)."""
        value = self.opt_str(name)
        if value is None:
            return None
        try:
            parsed = orjson.loads(value)
        except orjson.JSONDecodeError as exc:
            raise errors.bad_param(name) from exc
        if not isinstance(parsed, list) or not all(isinstance(item, dict) for item in parsed):
            raise errors.bad_param(name)
        return parsed
