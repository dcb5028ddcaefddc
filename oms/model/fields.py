"""Constrained field types of the model's structs: decoding checks them, the JSON Schema shows them.

Constructing a struct in Python does not validate (msgspec checks on decode); ``oms.model.codec.validate``
round-trips an object through the codec when a check is wanted.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

# Every pattern ends in ``(?!\n)$``: a bare ``$`` also matches before a trailing newline, so "1.5\n" was a
# decimal and "binance\n" an exchange (a newline in a NATS subject). The lookahead keeps JSON Schema's
# ECMA-262 dialect, which has no ``\Z``.

DecimalStr = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^-?[0-9]+(\.[0-9]+)?(?!\n)$", description="an exact decimal number as a string, e.g. '0.015'"
    ),
]
OptDecimalStr = DecimalStr | None
TimeNs = Annotated[int, msgspec.Meta(ge=0, description="nanoseconds since the Unix epoch, UTC")]
AccountStr = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^[a-z][a-z0-9_]{0,31}/[A-Za-z0-9_\-]{1,64}(?!\n)$",
        description="exchange/account, e.g. 'binance/sub_mm'",
    ),
]
ExchangeStr = Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z0-9_]{0,31}(?!\n)$", description="e.g. 'binance'")]
SymbolStr = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^[^/:\s.*>]+/[^/:\s.*>]+(:[^/:\s.*>]+)?(?!\n)$",
        description="unified symbol: BASE/QUOTE (spot) or BASE/QUOTE:SETTLE (perpetual)",
    ),
]
AssetStr = Annotated[str, msgspec.Meta(pattern=r"^[^/:\s.*>]{1,32}(?!\n)$", description="an asset, e.g. 'USDT'")]
ClientOrderIdStr = Annotated[
    str, msgspec.Meta(pattern=r"^[\.A-Z\:/a-z0-9_-]{1,36}(?!\n)$", description="client order id (Binance's alphabet)")
]
