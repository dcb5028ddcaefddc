"""USD-M futures arithmetic: positions, realised/unrealised PnL, margins, liquidation price.

A position keeps signed lots ``qty`` and signed ``cost`` (sum of price*qty of the open part, in 1e-8
quote units). Unrealised PnL = mark*qty - cost. Reducing moves ``cost * closed / |qty|`` (floored) out
of ``cost`` and pays the difference to the wallet as realised PnL, so for every trade between two
accounts the sum over accounts of wallet + unrealised PnL (at any common mark) is exactly conserved.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from .markets import AMOUNT_SCALE, SymbolSpec
from .types import BUY, Position


def apply_fill(pos: Position, side: str, lots: int, price: int, nu: int) -> tuple[int, int]:
    """Apply a fill to ``pos``; returns (realised PnL in 1e-8 units, lots that closed exposure)."""
    signed = lots if side == BUY else -lots
    q = pos.qty
    if q == 0 or (q > 0) == (signed > 0):
        pos.qty = q + signed
        pos.cost += price * signed * nu
        return 0, 0
    sign = 1 if q > 0 else -1
    size = q * sign
    close = lots if lots < size else size
    closed_cost = pos.cost * close // size
    pnl = sign * price * close * nu - closed_cost
    pos.qty = q - sign * close
    pos.cost -= closed_cost
    rest = lots - close
    if rest:
        s = rest if side == BUY else -rest
        pos.qty += s
        pos.cost += price * s * nu
    return pnl, close


def unrealized(pos: Position, mark: int, nu: int) -> int:
    """Unrealised PnL (1e-8 units) at ``mark`` ticks."""
    return mark * pos.qty * nu - pos.cost


def notional(pos: Position, mark: int, nu: int) -> int:
    """Absolute position notional at ``mark`` (1e-8 units)."""
    return abs(mark * pos.qty * nu)


def entry_price(pos: Position, spec: SymbolSpec) -> Decimal:
    """Average entry price (exact Decimal), 0 when flat."""
    if pos.qty == 0:
        return Decimal(0)
    return (Decimal(pos.cost) / (Decimal(pos.qty) * spec.qty_unit)).quantize(Decimal("0.00000001"))


def initial_margin(notional_units: int, leverage: int) -> int:
    """Initial margin of a notional at ``leverage`` (ceil, 1e-8 units)."""
    return -(-notional_units // leverage)


def maint_margin(spec: SymbolSpec, notional_units: int) -> int:
    """Maintenance margin by the symbol's bracket (1e-8 units)."""
    if not spec.brackets:
        return 0
    b = spec.bracket_for(notional_units)
    return int(Decimal(notional_units) * b.maint_margin_ratio - b.cum * AMOUNT_SCALE)


def liquidation_price(pos: Position, spec: SymbolSpec, margin_units: int) -> Decimal:
    """Price at which margin + PnL equals maintenance margin (one position, isolated-style), 0 if none.

    Long: (cost - margin) / (qty * (1 - mmr)); short: (cost - margin) / (qty * (1 + mmr)), qty signed,
    amounts in quote.
    """
    if pos.qty == 0 or not spec.brackets:
        return Decimal(0)
    mmr = spec.bracket_for(abs(pos.cost)).maint_margin_ratio
    qty = Decimal(pos.qty) * spec.qty_unit / AMOUNT_SCALE
    cost = Decimal(pos.cost) / AMOUNT_SCALE
    margin = Decimal(margin_units) / AMOUNT_SCALE
    denom = qty * (1 - mmr) if pos.qty > 0 else qty * (1 + mmr)
    liq = (cost - margin) / denom
    return max(liq, Decimal(0)).quantize(Decimal("0.00000001"))


@dataclass(slots=True)
class PositionRisk:
    """One row of /fapi/v2/positionRisk (amounts in 1e-8 units, prices as exact Decimals)."""

    symbol: str
    position_side: str
    position_amt: int  # signed lots
    entry_price: Decimal
    mark_price: int  # ticks
    unrealized_pnl: int
    liquidation_price: Decimal
    leverage: int
    max_notional: int
    margin_type: str
    isolated_margin: int
    notional: int  # signed
    isolated_wallet: int
    update_ns: int


@dataclass(slots=True)
class FuturesAccountInfo:
    """Totals of /fapi/v2/account and /fapi/v2/balance for the USDT futures wallet (1e-8 units)."""

    asset: str
    wallet_balance: int
    unrealized_pnl: int
    margin_balance: int
    position_initial_margin: int
    open_order_initial_margin: int
    maint_margin: int
    available_balance: int
    max_withdraw: int
    cross_wallet_balance: int
    cross_unrealized_pnl: int
    update_ns: int
