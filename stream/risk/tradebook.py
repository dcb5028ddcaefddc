"""The PnL of the platform's own trades: what the circuit breaker calls a loss (``pnl: trades`` in risk.yaml).

An account usually holds inventory the daemon did not trade: the BTC a Spot account was funded with, a
perpetual position opened by hand. Reconciliation loads it into the positions kernel (the exchange is the
source of truth), so the account's PnL there swings with that inventory's mark-to-market, and a breaker on
it would halt an account because BTC moved, not because its trading lost money.

``TradeBook`` is a second ``KernelState`` of the same shape into which only the daemon's fills go
(``OrderGateway.on_fill``: every new fill of an order of the daemon, once by trade id, including the fills
reconciliation finds for its orders), through the same exact ``kernels.positions.apply_fill``. Its positions
are the quantities the platform's fills opened on top of the inventory (a sale of inventory opens a short
here: the trade then gains when the price falls, as against holding), its cost basis their prices. At each
breaker tick the marks are copied from the daemon's state, and ``pnl()`` is realised - fees + unrealised of
these positions per account. Transfers, deposits and the inventory's price moves never enter it.

One-way and hedge mode alike net into slot 0 here: a trade's total PnL (realised + unrealised) depends only
on its cash flows and its net quantity, so the netted sum equals the sum over the legs.

It starts empty with the daemon (like the breaker's windows): what earlier runs opened is inventory now.
"""

from __future__ import annotations

import numpy as np

from kernels import codes as C
from kernels.positions import S_FEES, S_FIELDS, S_FUNDING, S_REALISED, S_UNREALISED, account_summary, apply_fill
from kernels.state import I_MARK, I_RATE_DEN, I_RATE_NUM, P_QTY, KernelState


class TradeBook:
    def __init__(self, state: KernelState):
        self.state = state  # the daemon's: instruments and marks are read from it
        self.book = KernelState(state.n_accounts, state.n_instruments)
        self._blocks = tuple(self.book.blocks)
        self._summary = np.zeros((S_FIELDS, state.n_accounts), dtype=np.int64)
        self.fills = 0
        self.refused = 0

    def on_fill(self, a: int, i: int, side: int, price: int, qty: int, fee: int) -> None:
        """One new fill of the daemon's (kernel units: price and qty in the instrument's, fee in money)."""
        ins = self.book.ins
        ins[:, i] = self.state.ins[:, i]  # filters, multiplier, kind (and the mark, refreshed at each tick)
        r = apply_fill(*self._blocks, a, i, side, C.POS_BOTH, price, qty, fee)
        if r == C.OK:
            self.fills += 1
        else:
            self.refused += 1

    def pnl(self) -> np.ndarray:
        """Per account (money units): realised - fees + funding + unrealised of the trades, at the marks now."""
        ins = self.book.ins
        ins[I_MARK] = self.state.ins[I_MARK]
        ins[I_RATE_NUM] = self.state.ins[I_RATE_NUM]  # cross-quoted trades' unrealised PnL at the USDT rate now
        ins[I_RATE_DEN] = self.state.ins[I_RATE_DEN]
        s = self._summary
        account_summary(*self._blocks, s)
        return s[S_REALISED] - s[S_FEES] + s[S_FUNDING] + s[S_UNREALISED]

    def position(self, a: int, i: int) -> int:
        """The net quantity the platform's fills opened on (a, i), in lot units."""
        return int(self.book.pos[P_QTY, a, i, 0])
