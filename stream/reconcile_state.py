"""The venue's balances and positions into the kernel state (the exchange is the source of truth for both).

For one account and market, after reconciliation has read them:

* **cash** (``acc[A_CASH]``, 1e-8 USDT) is the wallet balance of the account's cash assets (``cash_assets`` of
  its configs/accounts.yaml entry, ``USDT`` by default), ``free + locked``, summed over the account's markets
  (Spot wallet plus USD-M wallet): at par for USDT (and any other asset of 8 decimals), or, for an account whose
  cash is a coin (``cash_assets: [BTC]``), the coin held valued at its USDT rate, ``floor(BTC x rate)``, and
  revalued with the rate from then on (``stream.coin_cash.CoinCash``; without a rate the account is refused:
  ``NoCashRate``);
* **USD-M positions**: each perpetual's signed quantity and a cost basis of quantity x entry price (the
  venue's average entry, rounded half-even to the tick unit);
* **Spot positions**: the base asset's wallet balance (``free + locked``) on the instruments quoted in a
  cash asset (ETH/BTC for a BTC-cash account); the cost basis is kept when the quantity did not change, else
  valued at the mark (Spot has no entry price on the venue).

Quantities finer than the instrument's unit (dust) are rounded down. Then the cached exposure and value are
rebuilt (``kernels.positions.recompute_caches``); a state never loaded before (day start and peak both 0)
takes its equity as the day's start and the peak, so the loss limits measure from here.
"""

from __future__ import annotations

import decimal
from collections.abc import Sequence
from decimal import Decimal

from kernels.positions import recompute_caches
from kernels.state import (
    A_CASH,
    A_DAY_START_EQUITY,
    A_PEAK_EQUITY,
    G_DAY_START_EQUITY,
    I_MARK,
    I_MULT,
    P_COST,
    P_QTY,
    KernelState,
)
from oms.model import Balance, Instrument, InstrumentId, Market, Position, PositionSide
from oms.model.units import money_to_units, round_to_units, to_decimal
from stream.coin_cash import CoinCash, NoCashRate, is_coin
from stream.instruments import InstrumentTable

CASH_ASSETS = ("USDT",)  # an account's cash assets when its config names none


def _floor_units(value: str, unit: Decimal, what: str) -> int:
    d = to_decimal(value, what)
    return int((d / unit).to_integral_value(rounding=decimal.ROUND_DOWN))


class KernelSync:
    """Writes venue snapshots into one ``KernelState`` (see the module docstring)."""

    def __init__(self, state: KernelState, instruments: InstrumentTable, coins: CoinCash | None = None):
        self.state = state
        self.instruments = instruments
        self.coins = coins  # values a coin cash in USDT (the daemon's risk controls own it)
        # (kernel account, market) -> cash units: 1e-8 USDT, or the coin's own unit for a coin cash
        self._cash: dict[tuple[int, Market], int] = {}

    def apply(
        self,
        a: int,
        exchange: str,
        market: Market,
        balances: Sequence[Balance],
        positions: Sequence[Position],
        cash_assets: Sequence[str] = CASH_ASSETS,
    ) -> None:
        s = self.state
        fresh = s.acc[A_DAY_START_EQUITY, a] == 0 and s.acc[A_PEAK_EQUITY, a] == 0  # never loaded before
        total = {b.asset: to_decimal(b.free, "free") + to_decimal(b.locked, "locked") for b in balances}
        coin = cash_assets[0] if len(cash_assets) == 1 and is_coin(cash_assets[0]) else None
        if coin is not None:
            if self.coins is None:
                raise NoCashRate(f"the {coin} cash cannot be valued in USDT: this reconciler has no quote rates")
            self.coins.rate(exchange, coin)  # before anything changes: NoCashRate leaves the state as it was
            self._cash[(a, market)] = self.coins.units(coin, total.get(coin, Decimal(0)))
        else:
            if self.coins is not None:
                self.coins.release(a)
            cash = sum((total.get(asset, Decimal(0)) for asset in cash_assets), Decimal(0))
            exact = cash.quantize(Decimal("1e-8"), decimal.ROUND_DOWN)
            self._cash[(a, market)] = money_to_units(format(exact, "f"))
            s.acc[A_CASH, a] = sum(v for (acct, _), v in self._cash.items() if acct == a)
        by_symbol = {(p.symbol, p.position_side): p for p in positions}
        for symbol, i in self.instruments.numbers(exchange):
            ins = self.instruments.instrument(i)[1]
            sid = InstrumentId.parse(symbol)
            if sid.market is not market:
                continue
            if market is Market.USDM:
                for side, slot in ((PositionSide.BOTH, 0), (PositionSide.LONG, 0), (PositionSide.SHORT, 1)):
                    p = by_symbol.get((symbol, side))
                    if p is None:
                        if side is not PositionSide.LONG:  # LONG and BOTH share slot 0: clear it once
                            self._set(a, i, slot, 0, 0)
                        continue
                    q = _floor_units(p.qty.lstrip("-"), ins.qty_unit, f"{symbol} position")
                    q = -q if p.qty.startswith("-") or side is PositionSide.SHORT and q > 0 else q
                    entry = round_to_units(p.entry_price, ins.price_unit, f"{symbol} entry price")
                    self._set(a, i, slot, q, q * entry * ins.mult)
            elif sid.quote in cash_assets:
                q = _floor_units(format(total.get(sid.base, Decimal(0)), "f"), ins.qty_unit, f"{symbol} balance")
                self._set_spot(a, i, ins, q)
        if coin is not None and self.coins is not None:  # after the positions: their cost is the ledger's anchor
            native = sum(v for (acct, _), v in self._cash.items() if acct == a)
            self.coins.anchor(a, exchange, coin, native)
        recompute_caches(*s.blocks)
        if fresh:
            eq = s.equity(a)
            s.acc[A_DAY_START_EQUITY, a] = eq
            s.acc[A_PEAK_EQUITY, a] = eq
            s.glob[G_DAY_START_EQUITY] += eq

    def _set(self, a: int, i: int, slot: int, qty: int, cost: int) -> None:
        self.state.pos[P_QTY, a, i, slot] = qty
        self.state.pos[P_COST, a, i, slot] = cost

    def _set_spot(self, a: int, i: int, ins: Instrument, qty: int) -> None:
        pos = self.state.pos
        if pos[P_QTY, a, i, 0] == qty:
            return
        mark = int(self.state.ins[I_MARK, i])
        pos[P_QTY, a, i, 0] = qty
        pos[P_COST, a, i, 0] = qty * mark * int(self.state.ins[I_MULT, i])

    def position(self, a: int, i: int, short: bool = False) -> int:
        return int(self.state.pos[P_QTY, a, i, 1 if short else 0])
