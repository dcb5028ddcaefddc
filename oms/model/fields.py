"""Constrained field types of the model's structs: decoding checks them, the JSON Schema shows them.

Constructing a struct in Python does not validate (msgspec checks on decode); ``oms.model.codec.validate``
round-trips an object through the codec when a check is wanted.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

DecimalStr = Annotated[
    str,
    msgspec.Meta(pattern=r"^-?[0-9]+(\.[0-9]+)?$", description="an exact decimal number as a string, e.g. '0.015'"),
]
OptDecimalStr = DecimalStr | None
TimeNs = Annotated[int, msgspec.Meta(ge=0, description="nanoseconds since the Unix epoch, UTC")]
AccountStr = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^[a-z][a-z0-9_]{0,31}/[A-Za-z0-9_\-]{1,64}$", description="exchange/account, e.g. 'binance/sub_mm'"
    ),
]
ExchangeStr = Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z0-9_]{0,31}$", description="e.g. 'binance'")]
SymbolStr = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^[^/:\s.*>]+/[^/:\s.*>]+(:[^/:\s.*>]+)?$",
        description="unified symbol: BASE/QUOTE (spot) or BASE/QUOTE:SETTLE (perpetual)",
    ),
]
AssetStr = Annotated[str, msgspec.Meta(pattern=r"^[^/:\s.*>]{1,32}$", description="an asset, e.g. 'USDT'")]
ClientOrderIdStr = Annotated[
    str, msgspec.Meta(pattern=r"^[\.A-Z\:/a-z0-9_-]{1,36}$", description="client order id (Binance's alphabet)")
]
