"""Balances, positions, transfers and account settings, and their events.

A ``Balance`` and a ``Position`` are snapshots as the venue states them (the exchange is the source of truth
for both); ``BalanceEvent``/``PositionEvent`` carry the ones an update changed, with the reason the venue
gives (``ORDER``, ``FUNDING_FEE``, ``DEPOSIT``, ...). A ``Transfer`` is a request to move an asset between two
accounts (or markets) of one exchange; ``transfer_id`` is ours and idempotent, like a client order id.
"""

from __future__ import annotations

from oms.model.base import Msg
from oms.model.enums import MarginType, Market, PositionMode, PositionSide, TransferKind, TransferStatus
from oms.model.fields import AccountStr, AssetStr, DecimalStr, OptDecimalStr, SymbolStr, TimeNs
from oms.model.ids import AccountId


class Balance(Msg, tag="balance", kw_only=True):
    """One asset of one market's wallet. Spot: ``free`` and ``locked`` (in open orders) as the venue says.
    USD-M: ``free`` is the available balance and ``locked`` the wallet balance minus it (margin in use), so
    ``free + locked`` is the wallet balance (unrealised PnL is the positions', not the balance's)."""

    account: AccountStr
    market: Market
    asset: AssetStr
    free: DecimalStr
    locked: DecimalStr = "0"
    event_ns: TimeNs = 0


class Position(Msg, tag="position", kw_only=True):
    """``qty`` is signed: negative for a short, in one-way mode and on the ``short`` side in hedge mode alike
    (as Binance's ``positionAmt`` and the kernels' position slots)."""

    account: AccountStr
    symbol: SymbolStr
    position_side: PositionSide = PositionSide.BOTH
    qty: DecimalStr
    entry_price: DecimalStr = "0"
    unrealized_pnl: DecimalStr = "0"
    leverage: int = 0  # 0: not reported
    margin_type: MarginType | None = None
    liquidation_price: OptDecimalStr = None
    event_ns: TimeNs = 0


class BalanceEvent(Msg, tag="balance_event", kw_only=True):
    account: AccountStr
    market: Market
    balances: tuple[Balance, ...]
    reason: str = ""
    event_ns: TimeNs
    recv_ns: TimeNs = 0


class PositionEvent(Msg, tag="position_event", kw_only=True):
    account: AccountStr
    positions: tuple[Position, ...]
    reason: str = ""
    event_ns: TimeNs
    recv_ns: TimeNs = 0


class Transfer(Msg, tag="transfer", kw_only=True):
    """Move ``amount`` of ``asset`` from one account (and market) to another of the same exchange."""

    transfer_id: str
    from_account: AccountStr
    to_account: AccountStr
    asset: AssetStr
    amount: DecimalStr
    from_market: Market = Market.SPOT
    to_market: Market = Market.SPOT
    kind: TransferKind = TransferKind.SUB_ACCOUNT
    requested_ns: TimeNs = 0

    def __post_init__(self) -> None:
        a, b = AccountId.parse(self.from_account), AccountId.parse(self.to_account)
        if a.exchange != b.exchange:
            raise ValueError(f"transfer {self.transfer_id}: {a} and {b} are on different exchanges")
        if a == b and self.from_market == self.to_market:
            raise ValueError(f"transfer {self.transfer_id}: from and to are both {a} {self.from_market}")


class TransferEvent(Msg, tag="transfer_event", kw_only=True):
    """What became of a transfer: ``venue_transfer_id`` is the exchange's id (``tranId``) once known."""

    transfer: Transfer
    status: TransferStatus
    venue_transfer_id: str | None = None
    code: int | None = None
    reason: str = ""
    event_ns: TimeNs


class AccountSettings(Msg, tag="account_settings", kw_only=True):
    """A futures account's settings on one symbol, as the venue answers a change or a query."""

    account: AccountStr
    symbol: SymbolStr | None = None
    leverage: int | None = None
    max_notional: OptDecimalStr = None
    margin_type: MarginType | None = None
    position_mode: PositionMode | None = None
    event_ns: TimeNs = 0
