"""Identifiers: exchange, account (exchange + name), instrument (unified symbol), client order id.

* ``ExchangeId``: a lower-case name (``binance``, ``bybit``), safe as a NATS subject token.
* ``AccountId``: exchange + account name, written ``binance/sub_mm`` (the form every message carries).
* ``InstrumentId``: base, quote and settle asset, written the ccxt way: ``BTC/USDT`` for Spot,
  ``BTC/USDT:USDT`` for a USD-M (linear) perpetual. It converts both ways to Binance's ``BTCUSDT`` + market;
  the exact symbol map of an exchange comes from its markets (``oms.venues.InstrumentProvider``), and
  ``from_binance`` splits a bare symbol by known quote assets only where no markets are at hand.
* ``ClientOrderId``: derived deterministically from a command's content (``derive``), so the same command
  retried or replayed after a restart carries the same id and can never be placed twice. It fits Binance's
  alphabet ``^[\\.A-Z\\:/a-z0-9_-]{1,36}$``, which ccxt's other exchanges accept as well.

Every parser raises ``ValueError`` naming the text and what is wrong with it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable

import msgspec

from oms.model.enums import Market

# these are used with fullmatch: "$" alone lets a trailing newline through ("0\n" was a valid client order id)
_EXCHANGE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_ACCOUNT_NAME = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
_ASSET = re.compile(r"^[^/:\s.*>]{1,32}$")
CLIENT_ORDER_ID_RE = re.compile(r"^[\.A-Z\:/a-z0-9_-]{1,36}$")
_PREFIX = re.compile(r"^[A-Za-z0-9]{1,9}$")

# Quote assets of Binance symbols, tried longest first when a bare symbol must be split without markets.
BINANCE_QUOTES = (
    "FDUSD", "USDT", "USDC", "BUSD", "TUSD", "USDP", "AEUR", "EURI", "BIDR", "USD1",
    "BTC", "ETH", "BNB", "EUR", "TRY", "BRL", "JPY", "GBP", "AUD", "RUB", "UAH", "ZAR", "IDR", "PLN", "RON",
    "ARS", "MXN", "COP", "CZK", "DAI", "XRP", "DOGE", "DOT", "TRX",
)  # fmt: skip


class ExchangeId(msgspec.Struct, frozen=True):
    name: str

    def __post_init__(self) -> None:
        if not _EXCHANGE.fullmatch(self.name):
            raise ValueError(f"exchange id {self.name!r}: must be lower-case letters, digits or _ (e.g. 'binance')")

    def __str__(self) -> str:
        return self.name


class AccountId(msgspec.Struct, frozen=True):
    """An account of one exchange: ``AccountId("binance", "sub_mm")``, written ``binance/sub_mm``."""

    exchange: str
    name: str

    def __post_init__(self) -> None:
        ExchangeId(self.exchange)
        if not _ACCOUNT_NAME.fullmatch(self.name):
            raise ValueError(
                f"account name {self.name!r} on {self.exchange}: must be 1-64 letters, digits, _ or - "
                "(it is a NATS subject token)"
            )

    @classmethod
    def parse(cls, text: str) -> AccountId:
        exchange, sep, name = text.partition("/")
        if not sep:
            raise ValueError(f"account id {text!r}: expected 'exchange/name', e.g. 'binance/sub_mm'")
        return cls(exchange, name)

    def __str__(self) -> str:
        return f"{self.exchange}/{self.name}"


class InstrumentId(msgspec.Struct, frozen=True):
    """``base/quote`` (Spot) or ``base/quote:settle`` (USD-M perpetual; ``settle`` is the margin asset)."""

    base: str
    quote: str
    settle: str = ""

    def __post_init__(self) -> None:
        for what, asset in (("base", self.base), ("quote", self.quote)):
            if not _ASSET.fullmatch(asset):
                raise ValueError(f"instrument {self.base}/{self.quote}: bad {what} asset {asset!r}")
        if self.settle and self.settle != self.quote:
            raise ValueError(
                f"instrument {self}: settle asset {self.settle} differs from the quote {self.quote} "
                "(inverse/coin-margined contracts are not supported)"
            )

    @classmethod
    def parse(cls, text: str) -> InstrumentId:
        """From the unified symbol: ``BTC/USDT`` or ``BTC/USDT:USDT``."""
        pair, colon, settle = text.partition(":")
        base, slash, quote = pair.partition("/")
        if not slash or not base or not quote or (colon and not settle):
            raise ValueError(f"symbol {text!r}: expected BASE/QUOTE (spot) or BASE/QUOTE:SETTLE (perpetual)")
        if "-" in settle:
            raise ValueError(f"symbol {text!r}: dated futures are not supported, only perpetuals")
        return cls(base, quote, settle)

    @classmethod
    def from_binance(cls, symbol: str, market: Market | str, quotes: tuple[str, ...] = BINANCE_QUOTES) -> InstrumentId:
        """From Binance's ``BTCUSDT`` and its market (``spot``: BTC/USDT, ``usdm``: BTC/USDT:USDT)."""
        market = Market(market)
        if "_" in symbol:
            raise ValueError(f"binance symbol {symbol!r}: dated futures are not supported, only perpetuals")
        for quote in sorted(quotes, key=len, reverse=True):
            if symbol.endswith(quote) and len(symbol) > len(quote):
                base = symbol[: -len(quote)]
                return cls(base, quote, quote if market is Market.USDM else "")
        raise ValueError(f"binance symbol {symbol!r}: no known quote asset at its end ({', '.join(quotes)})")

    @property
    def market(self) -> Market:
        return Market.USDM if self.settle else Market.SPOT

    @property
    def symbol(self) -> str:
        """The unified symbol (``BTC/USDT``, ``BTC/USDT:USDT``)."""
        return f"{self.base}/{self.quote}:{self.settle}" if self.settle else f"{self.base}/{self.quote}"

    @property
    def binance_symbol(self) -> str:
        return self.base + self.quote

    def __str__(self) -> str:
        return self.symbol


class ClientOrderId:
    """Client order ids: ``PREFIX-`` + 26 characters of base32's alphabet (``a-z2-7``) digesting the command.

    The digest is a 26-byte BLAKE2b of the command's wire form (defaults omitted, keys sorted) without its
    ``client_order_id``, of which each byte gives one character (its low 5 bits: 130 bits in all). Equal
    commands get equal ids, and a field added to the struct later leaves the ids of commands that do not set
    it unchanged. A command that must be placed twice with equal content carries a distinct ``intent`` (the
    strategy's sequence number or signal id): that, not the clock, is what makes an order new.
    """

    DIGEST_CHARS = 26

    @staticmethod
    def derive(command: msgspec.Struct, prefix: str = "oms") -> str:
        if prefix not in _GOOD_PREFIXES:
            _check_prefix(prefix)
        if _DIRECT.get(type(command)) and getattr(command, "client_order_id", None) is None:  # the hot path
            digest = _blake2b(_SORTED.encode(command), digest_size=26).digest()
            return f"{prefix}-{digest.translate(_B32_BYTES).decode()}"
        return f"{prefix}-{_b32_digest(_content(command))}"

    @staticmethod
    def deriver(prefix: str = "oms", bare: type | None = None) -> Callable[[msgspec.Struct], str]:
        """``derive`` bound to ``prefix``, checked once here: ``deriver(p)(cmd) == derive(cmd, p)`` for every
        command, at less cost per call (the order gateway derives one per order).

        ``bare``: a model command type (``PlaceOrder``) whose commands the caller passes only without a client
        order id; the function then skips looking at the command's type and id (the gateway's hot path)."""
        _check_prefix(prefix)  # a bad prefix is refused now, not per order
        head, encode, spell = f"{prefix}-", _SORTED.encode, _B32_BYTES
        empty = _blake2b(digest_size=26).copy  # a copy of a fresh hash costs less than making one

        def derive(command: msgspec.Struct) -> str:
            if _DIRECT.get(type(command)) and getattr(command, "client_order_id", None) is None:
                h = empty()
                h.update(encode(command))
                return head + h.digest().translate(spell).decode()
            return ClientOrderId.derive(command, prefix)

        if bare is None:
            return derive
        if not _is_direct(bare):
            raise TypeError(f"{bare.__name__} is not a tagged model message: derive its ids with deriver()")

        def derive_bare(command: msgspec.Struct) -> str:
            h = empty()
            h.update(encode(command))
            return head + h.digest().translate(spell).decode()

        return derive_bare

    @staticmethod
    def validate(text: str) -> str:
        """``text`` if it is a valid client order id, else ValueError saying why."""
        if not isinstance(text, str) or not CLIENT_ORDER_ID_RE.fullmatch(text):
            raise ValueError(
                f"client order id {text!r}: must be 1-36 characters of A-Z a-z 0-9 . : / _ - (Binance's alphabet)"
            )
        return text


# ---- the digest: on the hot path of every order (tests/bench/test_model_bench.py times it) --------------------
_GOOD_PREFIXES: set[str] = {"oms"}
_SORTED = msgspec.json.Encoder(order="sorted")


def _check_prefix(prefix: str) -> None:
    if prefix not in _GOOD_PREFIXES:
        if not _PREFIX.fullmatch(prefix):
            raise ValueError(f"client order id prefix {prefix!r}: 1-9 letters or digits")
        if len(_GOOD_PREFIXES) < 64:
            _GOOD_PREFIXES.add(prefix)


_B32 = "abcdefghijklmnopqrstuvwxyz234567"  # RFC 4648 base32, lower-case, as base64.b32encode(...).lower()


def _content(command: msgspec.Struct) -> bytes:
    """The bytes the id digests: the command's wire form without ``client_order_id``, keys sorted.

    For the model's tagged messages (``{"type": ...}``, defaults omitted) msgspec's sorted encoding of the
    struct itself is exactly that; other structs go through a dict and get their class name as ``type``."""
    kind = type(command)
    direct = _DIRECT.get(kind)
    if direct is None:
        direct = _is_direct(kind)
    if getattr(command, "client_order_id", None) is not None:
        command = msgspec.structs.replace(command, client_order_id=None)
    if direct:
        return _SORTED.encode(command)
    content = msgspec.json.decode(_SORTED.encode(command))
    if not isinstance(content, dict):
        raise TypeError(f"client order id: {kind.__name__} is not a struct encoded as an object")
    content.setdefault("type", kind.__name__)
    return _SORTED.encode(content)


_DIRECT: dict[type, bool] = {}


def _is_direct(kind: type) -> bool:
    """Whether msgspec's sorted encoding of a ``kind`` struct is its content (a tagged model message)."""
    if kind not in _DIRECT:
        config = kind.__struct_config__  # type: ignore[attr-defined]
        _DIRECT[kind] = bool(
            config.tag_field == "type" and config.omit_defaults and "type" not in kind.__struct_fields__  # type: ignore[attr-defined]
        )
    return _DIRECT[kind]


def _b32_digest(content: bytes) -> str:
    """26 characters of base32's lower-case alphabet from a 26-byte BLAKE2b digest of ``content``: the low 5
    bits of each byte (130 bits in all), spelled by one ``bytes.translate`` (no per-character Python work)."""
    return _blake2b(content, digest_size=26).digest().translate(_B32_BYTES).decode()


_blake2b = hashlib.blake2b
_B32_BYTES = bytes(ord(_B32[b & 31]) for b in range(256))  # byte -> the character of its low 5 bits
