"""Cash held in a coin (``cash_assets: [BTC]`` in configs/accounts.yaml), counted in the kernels' USDT.

The kernels count every account's money in 1e-8 USDT (``kernels.quote_rates``). An account whose cash is a coin
holds that coin, so its kernel cash (``acc[A_CASH]``) is the coin it holds valued at the coin's USDT rate, and
the model treats it like a position in the coin, revalued with the rate:

* **the coin held** ``n`` (in the coin's money unit, 1e-12 BTC: ``oms.model.units.money_decimals_of``) is the
  wallet's ``free + locked`` at reconciliation (``anchor``), plus, since then, the exact coin amounts of the
  account's fills in spot pairs quoted in the coin (ETH/BTC): the change of their ``realised - fees - cost``
  position fields, which is exactly the coin a spot fill pays or receives (``kernels.positions``);
* **the rate** ``r = num / den`` (1e-8 USDT per money unit) is the kernel's rate of an instrument quoted in the
  coin (``stream.risk.quotes.QuoteLimits.push_rates``): the live mark of the coin's USDT pair (``BTC/USDT``, or
  risk.yaml ``quote_rates``: ``QuoteLimits.pair_of``) times the units' ratio;
* **the cash** is ``floor(n * r)`` (what the account holds rounds down), set at reconciliation and again at
  every rate push (``revalue``: the risk controls' 1 s timer and before each breaker tick, right after
  ``push_rates``). Between two pushes a fill moves it at the rate of the moment, as every cross fill does; the
  push then makes it ``floor(n * r)`` again. A move of the rate moves the cash by ``floor(n * r') - floor(n * r)``
  (and raises the equity peak, as ``kernels.quote_rates.set_quote_rate`` does for positions).

So the equity of a BTC-cash account rises and falls with BTC/USDT like that of a USDT account holding the same
BTC, and the risk limits (in USDT) measure it in USDT. The account's cash is the coin only, as at
reconciliation. Such an account trades pairs quoted in its coin only: an order in a pair quoted in something else
(ETH/USDT, BTC/USDT) is refused before the risk check with ``cash_asset_mismatch`` (``foreign_quote``), since its
USDT would not be part of that cash (the next push would drop it) and its position would not be reconciled.

A coin without a rate (its pair not an instrument of the daemon, or no mark yet) cannot be valued: ``anchor``
raises ``NoCashRate`` naming the pair, reconciliation fails and the account does not trade
(``stream.reconcile_hook`` waits for the mark first, and tries again when it arrives).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

import numpy as np

from kernels.codes import PERP
from kernels.quote_rates import LIMIT_CURRENCY
from kernels.state import (
    A_CASH,
    A_COST_PERP,
    A_PEAK_EQUITY,
    A_VALUE,
    G_CASH,
    I_KIND,
    I_MARK,
    P_COST,
    P_FEES,
    P_REALISED,
    KernelState,
)
from oms.model import Instrument
from oms.model.units import MONEY_DECIMALS, money_decimals_of, money_unit
from stream.instruments import InstrumentTable, UnknownInstrument, quote_of

LIMIT_UNIT = money_unit(MONEY_DECIMALS)  # 1e-8 USDT


class NoCashRate(ValueError):
    """A coin cash that cannot be valued in USDT now (the message names the pair and why); ``waiting``: the pair
    is an instrument of the daemon without a mark yet (its market data will bring one)."""

    def __init__(self, message: str, waiting: bool = False):
        super().__init__(message)
        self.waiting = waiting


def is_coin(asset: str) -> bool:
    """True for a cash asset valued at its USDT rate (a coin: BTC, ETH, BNB); else it is counted at par."""
    return asset != LIMIT_CURRENCY and money_decimals_of(asset) != MONEY_DECIMALS


def foreign_quote(cash_assets: Sequence[str], ins: Instrument) -> str | None:
    """The quote of ``ins`` when an account whose cash is a coin may not trade it, else None. Such an account's
    cash is the coin alone: a pair quoted in anything else (ETH/USDT, BTC/USDT, a USD-M perpetual) would pay or
    receive money that cash does not hold (its next valuation would drop it) and put a position in the kernel
    that reconciliation does not read (only pairs quoted in a cash asset are), so it is refused before the risk
    check (``cash_asset_mismatch``, ``stream.commands``)."""
    if len(cash_assets) != 1 or not is_coin(cash_assets[0]):
        return None
    quote = quote_of(ins) or LIMIT_CURRENCY
    return None if quote == cash_assets[0] else quote


@dataclass
class _Held:
    """One account's coin cash: where it stands since the last valuation."""

    exchange: str
    asset: str
    native: int  # the coin held at the anchor, in its money unit
    ledger: int | Fraction  # realised - fees - cost of its coin-quoted spot slots at the anchor (coin's unit)
    num: int  # the rate the cash was last valued at
    den: int


class CoinCash:
    """The coin cash of the daemon's accounts, valued in USDT (see the module docstring)."""

    def __init__(self, state: KernelState, instruments: InstrumentTable, pair_of, push=None):
        self.state = state
        self.instruments = instruments
        self.pair_of = pair_of  # quote asset -> its USDT pair (stream.risk.quotes.QuoteLimits.pair_of)
        self.push = push  # the instruments' rates into the kernel state now (QuoteLimits.push_rates)
        self._held: dict[int, _Held] = {}
        self._pairs: dict[tuple[str, str], tuple[int, np.ndarray, list[Fraction] | None]] = {}  # _quoted
        self.revalued = 0  # cash values changed by revalue()

    def rate(self, exchange: str, asset: str) -> tuple[int, int]:
        """The coin's rate now (num, den: 1e-8 USDT per money unit of the coin); ``NoCashRate`` without one."""
        pair = self.pair_of(asset)
        try:
            i, ins = self.instruments.lookup(exchange, pair)
        except UnknownInstrument:
            raise NoCashRate(
                f"the {asset} cash cannot be valued in {LIMIT_CURRENCY}: {pair} is not an instrument of this daemon "
                f"on {exchange} (stream it: stream.yaml daemon.markets, or name the pair in risk.yaml quote_rates)"
            ) from None
        if quote_of(ins) != LIMIT_CURRENCY:
            raise NoCashRate(f"the {asset} cash cannot be valued: {pair} is not quoted in {LIMIT_CURRENCY}")
        mark = int(self.state.ins[I_MARK, i])
        if mark <= 0:
            raise NoCashRate(f"the {asset} cash cannot be valued in {LIMIT_CURRENCY}: no {pair} mark yet", waiting=True)
        factor = Fraction(money_unit(money_decimals_of(asset))) * Fraction(ins.price_unit) / Fraction(LIMIT_UNIT)
        return mark * factor.numerator, factor.denominator

    def units(self, asset: str, amount: Decimal) -> int:
        """A wallet amount of the coin in its money unit (a digit finer than the unit is dropped)."""
        return int(amount / money_unit(money_decimals_of(asset)))

    def anchor(self, a: int, exchange: str, asset: str, native: int) -> int:
        """Account ``a`` holds ``native`` of the coin (its wallet, just read): its cash in 1e-8 USDT at the rate
        now, written into the kernel's cash; ``NoCashRate`` (nothing changed) when there is no rate. The
        instruments' rates are pushed first and every other coin cash revalued after, so the account's positions
        quoted in the coin and its cash stand at the same rate."""
        num, den = self.rate(exchange, asset)
        if self.push is not None:
            self.push()
        self._held[a] = _Held(exchange, asset, native, self._ledgers([a], exchange, asset)[0], num, den)
        value = native * num // den
        self._move(a, value - int(self.state.acc[A_CASH, a]), peak=False)  # set, as a USDT cash is: not a gain
        self.revalue()
        return value

    def release(self, a: int) -> None:
        """Account ``a``'s cash is not a coin (any more)."""
        self._held.pop(a, None)

    def held(self, a: int) -> int | None:
        """The coin account ``a`` holds now, in the coin's money unit (None: its cash is not a coin)."""
        h = self._held.get(a)
        if h is None:
            return None
        return h.native + int(self._ledgers([a], h.exchange, h.asset)[0] - h.ledger)

    def value(self, a: int) -> int | None:
        """``floor(held * rate)`` of account ``a`` at the rate it was last valued at (None: not a coin)."""
        h = self._held.get(a)
        n = self.held(a)
        return None if h is None or n is None else n * h.num // h.den

    def revalue(self) -> int:
        """Every coin cash set to the coin held at the rate now; a coin without a rate keeps its last value.
        Returns how many cash values changed."""
        changed = 0
        groups: dict[tuple[str, str], list[int]] = {}
        for a, h in self._held.items():
            groups.setdefault((h.exchange, h.asset), []).append(a)
        cash = self.state.acc[A_CASH]
        for (exchange, asset), accounts in groups.items():
            try:
                rate: tuple[int, int] | None = self.rate(exchange, asset)
            except NoCashRate:
                rate = None  # the last value stands (its pairs' entries are refused without a rate meanwhile)
            for a, ledger in zip(accounts, self._ledgers(accounts, exchange, asset), strict=True):
                h = self._held[a]
                if rate is not None:
                    h.num, h.den = rate
                delta = (h.native + int(ledger - h.ledger)) * h.num // h.den - int(cash[a])
                if delta:
                    self._move(a, delta)
                    changed += 1
        self.revalued += changed
        return changed

    def _move(self, a: int, delta: int, peak: bool = True) -> None:
        acc = self.state.acc
        acc[A_CASH, a] += delta
        self.state.glob[G_CASH] += delta
        if not peak:
            return
        equity = acc[A_CASH, a] + acc[A_VALUE, a] - acc[A_COST_PERP, a]
        if acc[A_PEAK_EQUITY, a] != 0 and equity > acc[A_PEAK_EQUITY, a]:
            acc[A_PEAK_EQUITY, a] = equity

    def _ledgers(self, accounts: list[int], exchange: str, asset: str) -> list[int | Fraction]:
        """Per account: the sum over its spot slots in pairs quoted in ``asset`` of realised - fees - cost, in the
        coin's money unit (its change is the coin the account's fills paid and received); one array pass."""
        idx, ratios = self._quoted(exchange, asset)
        if len(idx) == 0:
            return [0] * len(accounts)
        pos, rows = self.state.pos, np.ix_(np.asarray(accounts, dtype=np.intp), idx)
        own = (pos[P_REALISED][rows] - pos[P_FEES][rows] - pos[P_COST][rows]).sum(axis=2)  # (accounts, pairs)
        if ratios is None:  # every pair counts money in the coin's own unit (the usual case): plain integers
            return [int(x) for x in own.sum(axis=1)]
        return [sum((int(x) * r for x, r in zip(row, ratios, strict=True)), Fraction(0)) for row in own]

    def _quoted(self, exchange: str, asset: str) -> tuple[np.ndarray, list[Fraction] | None]:
        """The spot pairs of ``exchange`` quoted in ``asset`` and their money units in the coin's (None: all 1);
        looked up again when the table has grown."""
        key = (exchange, asset)
        known = self._pairs.get(key)
        if known is not None and known[0] == len(self.instruments):
            return known[1], known[2]
        unit = Fraction(money_unit(money_decimals_of(asset)))
        kind = self.state.ins[I_KIND]
        found = [
            (i, Fraction(ins.money_unit) / unit)
            for _, i in self.instruments.numbers(exchange)
            if kind[i] != PERP and quote_of(ins := self.instruments.instrument(i)[1]) == asset
        ]
        idx = np.asarray([i for i, _ in found], dtype=np.intp)
        ratios = None if all(r == 1 for _, r in found) else [r for _, r in found]
        self._pairs[key] = (len(self.instruments), idx, ratios)
        return idx, ratios
