"""USD-M futures settings commands: leverage and margin type per symbol, position mode per account.

Sent like an order command on ``cmd.order.{exchange}.{account}`` (version 1 of the envelope: types added with
defaults, so older senders are unaffected). The daemon checks them (the account trades USD-M, the symbol is a
USD-M one, a leverage within the account's ``max_leverage`` of ``risk.yaml``), sends them to the venue and
answers a ``CommandResult`` carrying the venue's answer in ``settings`` (an ``AccountSettings``: the leverage
and its maximum notional, the margin type, the position mode), or the refusal's code and reason
(``risk:MAX_LEVERAGE``, ``venue:-4048`` "Margin type cannot be changed if there exists position.", ...).
Asking for the setting the account already has is success. Unlike the order commands these refuse unknown
fields: a misspelt setting is an error, not a no-op.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from oms.model.base import Msg
from oms.model.enums import MarginType, PositionMode
from oms.model.fields import AccountStr, SymbolStr

MAX_VENUE_LEVERAGE = 125  # Binance's highest bracket; the venue refuses what a symbol's brackets do not allow


class SetLeverage(Msg, tag="set_leverage", kw_only=True, forbid_unknown_fields=True):
    """Set the leverage of one USD-M symbol of the account (``BTC/USDT:USDT``)."""

    account: AccountStr
    symbol: SymbolStr
    leverage: Annotated[int, msgspec.Meta(ge=1, le=MAX_VENUE_LEVERAGE)]


class SetMarginType(Msg, tag="set_margin_type", kw_only=True, forbid_unknown_fields=True):
    """Cross or isolated margin on one USD-M symbol (refused by the venue while a position or order is open)."""

    account: AccountStr
    symbol: SymbolStr
    margin_type: MarginType


class SetPositionMode(Msg, tag="set_position_mode", kw_only=True, forbid_unknown_fields=True):
    """One-way or hedge mode for the account's whole USD-M wallet (refused while any position or order is open)."""

    account: AccountStr
    position_mode: PositionMode


SETTINGS_COMMANDS = (SetLeverage, SetMarginType, SetPositionMode)
