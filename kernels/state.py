"""Kernel state: struct-of-arrays blocks indexed by account and instrument number.

Every block is one contiguous int64 array whose *first* axis is the field, so each field is its own
array (``acc[A_CASH]`` is every account's cash) and the whole state travels to a kernel as five
arguments, in this order:

=======  ==============================  ===================================================
block    shape                           holds
=======  ==============================  ===================================================
``ins``  (I_FIELDS, n_instruments)       filters, multiplier, kind, status and mark price
``lim``  (L_FIELDS, n_accounts)          per-account risk limits (from configs/risk.yaml)
``acc``  (A_FIELDS, n_accounts)          cash, cached exposure, PnL, day start, peak, orders
``pos``  (P_FIELDS, n_accounts,          per position slot: quantity, cost basis, PnL,
         n_instruments, 2)               reserved quantity of open orders
``glob`` (G_FIELDS,)                     global limits, kill switch and cross-account sums
=======  ==============================  ===================================================

Switching account is an index (``acc[A_CASH, a]``), never a lookup; names map to numbers once, at
the edge (``AccountIndex``, ``KernelState.symbols``). Position slot 0 is the net position in netting
mode and the long side in hedge mode; slot 1 is the short side in hedge mode.

Field-major positions keep the hot path's working set small: the risk check reads two position
fields (4 MB each for 256 accounts x 1,024 instruments), which stay in the L3 cache even when orders
hit accounts and instruments at random; a record-per-slot layout (measured) made that case 4x slower.

Money fields are int64 units of 1e-8 USDT. An instrument quoted in another asset (ETH/BTC) counts its money
(1e-12 BTC) at its rate ``ins[I_RATE_NUM] / ins[I_RATE_DEN]`` (``kernels.quote_rates``): positions, cash
moves and exposure enter the account caches in USDT, rounded against the account (values down, exposure
and cost up); a position's own fields (``pos``) stay in the instrument's money. ``acc[A_VALUE]`` (sum of
signed quantity x mark x mult over the account's positions), ``acc[A_COST_PERP]`` (cost basis of perpetual
positions) and ``acc[A_GROSS]`` (sum of |quantity| x mark x mult) are caches kept exact by every kernel that
moves a quantity, a mark, a rate or cash, so that equity (``cash + value - cost_perp``) and exposure are O(1) in the
risk check; ``positions.recompute_caches`` rebuilds them from the positions.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from kernels.codes import ACTIVE, HEDGE, NETTING, POS_BOTH, POS_SHORT
from kernels.fixed import INT64_MAX
from kernels.instruments import Instrument, InstrumentSpec

UNLIMITED = int(INT64_MAX)  # a limit field holding this value never rejects
# Token bucket: one order costs TOKEN units; a rate of r orders/s is stored as r x 1000
# (L_ORDER_RATE_MILLI, so 0.5 orders/s is exact) and refills that many units per nanosecond.
TOKEN = 1_000_000_000_000

# ins: instruments
I_KIND, I_STATUS, I_MULT, I_TICK, I_LOT, I_MIN_QTY, I_MAX_QTY, I_MIN_PRICE, I_MAX_PRICE = range(9)
I_MIN_NOTIONAL, I_MAX_NOTIONAL, I_MARK = range(9, 12)
# the instrument's money -> 1e-8 USDT (the limits' unit): x USDT units = x * I_RATE_NUM / I_RATE_DEN, pushed by
# the daemon from the quote's USDT pair (kernels.quote_rates); 1/1 (the default) for USDT-quoted instruments,
# I_RATE_NUM = 0 while no rate is known (the risk check then refuses entries: NO_QUOTE_RATE)
I_RATE_NUM, I_RATE_DEN = range(12, 14)
I_FIELDS = 14

# lim: per-account limits (money in units of 1e-8 USDT, ratios in parts per million, order rate in
# orders per 1000 s)
L_MAX_ORDER_NOTIONAL, L_MAX_POSITION_NOTIONAL, L_MAX_GROSS, L_MAX_LEVERAGE_PPM = range(4)
L_MAX_OPEN_ORDERS, L_ORDER_RATE_MILLI, L_ORDER_BURST, L_MAX_DAILY_LOSS = range(4, 8)
L_MAX_DRAWDOWN_PPM, L_PRICE_BAND_PPM, L_TRADING_STATE = range(8, 11)
L_FIELDS = 11

# acc: per-account state
A_POS_MODE, A_EXCHANGE, A_CASH, A_VALUE, A_COST_PERP, A_GROSS, A_REALISED, A_FEES = range(8)
A_FUNDING, A_DAY_START_EQUITY, A_PEAK_EQUITY, A_OPEN_ORDERS, A_TOKENS, A_TOKENS_NS = range(8, 14)
A_UNPRICED = 14  # open position slots in instruments without a USDT rate (their value is unknown)
A_FIELDS = 15

# pos: per (account, instrument, slot)
P_QTY, P_COST, P_REALISED, P_FEES, P_FUNDING, P_OPEN_BUY, P_OPEN_SELL = range(7)
P_FIELDS = 7

# glob: global limits, kill switch, and sums over all accounts of the acc caches
G_MAX_GROSS, G_MAX_DAILY_LOSS, G_TRADING_STATE, G_CASH, G_VALUE, G_COST_PERP, G_GROSS = range(7)
G_DAY_START_EQUITY = 7
G_UNPRICED = 8  # sum of acc[A_UNPRICED]
G_FIELDS = 9

LIMIT_FIELDS = {
    "max_order_notional": L_MAX_ORDER_NOTIONAL,
    "max_position_notional": L_MAX_POSITION_NOTIONAL,
    "max_gross_exposure": L_MAX_GROSS,
    "max_leverage_ppm": L_MAX_LEVERAGE_PPM,
    "max_open_orders": L_MAX_OPEN_ORDERS,
    "order_rate_milli": L_ORDER_RATE_MILLI,
    "order_burst": L_ORDER_BURST,
    "max_daily_loss": L_MAX_DAILY_LOSS,
    "max_drawdown_ppm": L_MAX_DRAWDOWN_PPM,
    "price_band_ppm": L_PRICE_BAND_PPM,
    "trading_state": L_TRADING_STATE,
}


def slot_of(pos_side: int) -> int:
    """Position slot for a position side: BOTH and LONG -> 0, SHORT -> 1."""
    return 1 if pos_side == POS_SHORT else 0


@dataclass(frozen=True)
class Blocks:
    """The five arrays, in the order every state kernel takes them."""

    ins: np.ndarray
    lim: np.ndarray
    acc: np.ndarray
    pos: np.ndarray
    glob: np.ndarray

    def __iter__(self):
        return iter((self.ins, self.lim, self.acc, self.pos, self.glob))


class AccountIndex:
    """Maps (exchange, account) names to account numbers and exchanges to exchange numbers, once."""

    def __init__(self, pairs: list[tuple[str, str]]):
        self.pairs = list(pairs)
        self.number = {pair: k for k, pair in enumerate(self.pairs)}
        if len(self.number) != len(self.pairs):
            raise ValueError("duplicate (exchange, account) pair in the account list")
        self.exchanges = list(dict.fromkeys(ex for ex, _ in self.pairs))
        self.exchange_number = {ex: k for k, ex in enumerate(self.exchanges)}

    def __getitem__(self, pair: tuple[str, str]) -> int:
        try:
            return self.number[pair]
        except KeyError:
            raise KeyError(f"unknown account {pair[0]}/{pair[1]}") from None

    def __len__(self) -> int:
        return len(self.pairs)


class KernelState:
    """Allocates the blocks and offers the slow, readable set-up calls; kernels do the rest."""

    def __init__(self, n_accounts: int, n_instruments: int):
        if n_accounts <= 0 or n_instruments <= 0:
            raise ValueError("need at least one account and one instrument")
        self.n_accounts = n_accounts
        self.n_instruments = n_instruments
        self.ins = np.zeros((I_FIELDS, n_instruments), dtype=np.int64)
        self.ins[I_RATE_NUM] = 1  # money in the limits' unit until a rate is set (kernels.quote_rates)
        self.ins[I_RATE_DEN] = 1
        self.lim = np.full((L_FIELDS, n_accounts), UNLIMITED, dtype=np.int64)
        self.lim[L_TRADING_STATE] = ACTIVE
        self.acc = np.zeros((A_FIELDS, n_accounts), dtype=np.int64)
        self.pos = np.zeros((P_FIELDS, n_accounts, n_instruments, 2), dtype=np.int64)
        self.glob = np.zeros(G_FIELDS, dtype=np.int64)
        self.glob[G_MAX_GROSS] = UNLIMITED
        self.glob[G_MAX_DAILY_LOSS] = UNLIMITED
        self.glob[G_TRADING_STATE] = ACTIVE
        self.instruments: list[Instrument | None] = [None] * n_instruments
        self.symbols: dict[str, int] = {}

    @property
    def blocks(self) -> Blocks:
        return Blocks(self.ins, self.lim, self.acc, self.pos, self.glob)

    # --- instruments -------------------------------------------------------------------------
    def set_instrument(self, i: int, spec: InstrumentSpec | Instrument) -> Instrument:
        inst = spec if isinstance(spec, Instrument) else Instrument(spec)
        col = self.ins[:, i]
        col[I_KIND] = inst.kind
        col[I_STATUS] = inst.status
        col[I_MULT] = inst.mult
        col[I_TICK] = inst.tick
        col[I_LOT] = inst.lot
        col[I_MIN_QTY] = inst.min_qty
        col[I_MAX_QTY] = inst.max_qty
        col[I_MIN_PRICE] = inst.min_price
        col[I_MAX_PRICE] = inst.max_price
        col[I_MIN_NOTIONAL] = inst.min_notional
        col[I_MAX_NOTIONAL] = inst.max_notional
        self.instruments[i] = inst
        self.symbols[inst.symbol] = i
        return inst

    def set_raw_instrument(
        self,
        i: int,
        *,
        kind: int,
        mult: int,
        tick: int = 1,
        lot: int = 1,
        min_qty: int = 0,
        max_qty: int = 0,
        min_price: int = 0,
        max_price: int = 0,
        min_notional: int = 0,
        max_notional: int = 0,
        status: int = 1,
    ) -> None:
        """Set an instrument column from unit values directly (tests and synthetic set-ups)."""
        col = self.ins[:, i]
        col[
            [
                I_KIND,
                I_STATUS,
                I_MULT,
                I_TICK,
                I_LOT,
                I_MIN_QTY,
                I_MAX_QTY,
                I_MIN_PRICE,
                I_MAX_PRICE,
                I_MIN_NOTIONAL,
                I_MAX_NOTIONAL,
            ]
        ] = [kind, status, mult, tick, lot, min_qty, max_qty, min_price, max_price, min_notional, max_notional]

    # --- accounts ----------------------------------------------------------------------------
    def set_limits(self, a: int, **limits: int) -> None:
        """Set limit fields by name (see LIMIT_FIELDS) and refill the account's token bucket."""
        for name, value in limits.items():
            if name not in LIMIT_FIELDS:
                raise KeyError(f"unknown limit {name!r}; known: {sorted(LIMIT_FIELDS)}")
            if not 0 <= value <= UNLIMITED:
                raise ValueError(
                    f"limit {name}={value} for account {a} is outside 0..{UNLIMITED} (int64; "
                    "money is in 1e-8 USDT, so at most ~92 billion USDT); use UNLIMITED for none"
                )
            self.lim[LIMIT_FIELDS[name], a] = value
        self.refill_tokens(a)

    def refill_tokens(self, a: int) -> None:
        burst = int(self.lim[L_ORDER_BURST, a])
        self.acc[A_TOKENS, a] = UNLIMITED if burst >= UNLIMITED // TOKEN else burst * TOKEN

    def set_position_mode(self, a: int, hedge: bool) -> None:
        if np.any(self.pos[P_QTY, a] != 0):
            raise ValueError(f"account {a} has open positions; close them before changing position mode")
        self.acc[A_POS_MODE, a] = HEDGE if hedge else NETTING

    def set_exchange(self, a: int, exchange_number: int) -> None:
        self.acc[A_EXCHANGE, a] = exchange_number

    # --- reading back ------------------------------------------------------------------------
    def equity(self, a: int) -> int:
        acc = self.acc
        return int(acc[A_CASH, a] + acc[A_VALUE, a] - acc[A_COST_PERP, a])

    def average_entry(self, a: int, i: int, pos_side: int = POS_BOTH) -> Fraction | None:
        """Average entry price of a position slot in price units, exactly (None when flat)."""
        s = slot_of(pos_side)
        qty = int(self.pos[P_QTY, a, i, s])
        if qty == 0:
            return None
        return Fraction(int(self.pos[P_COST, a, i, s]), qty * int(self.ins[I_MULT, i]))

    def position(self, a: int, i: int, pos_side: int = POS_BOTH) -> dict[str, int]:
        s = slot_of(pos_side)
        names = ("qty", "cost", "realised", "fees", "funding", "open_buy", "open_sell")
        return {name: int(self.pos[f, a, i, s]) for f, name in enumerate(names)}
