"""The daemon's instrument table: (exchange, unified symbol) <-> kernel instrument number and ``Instrument``.

The kernels know instruments by number; the edges speak ``binance`` + ``BTC/USDT:USDT``. The same symbol on
two exchanges is two instruments (their filters, books and marks differ). Numbers are given once, when the
venue's markets are loaded, and written into the kernel state's instrument block. An instrument quoted in
another asset than the limits' USDT (ETH/BTC) enters without a rate into USDT (``kernels.quote_rates``): the
risk check refuses entries in it until ``stream.risk.quotes.QuoteLimits`` pushes the rate of its quote's pair.
"""

from __future__ import annotations

from kernels.quote_rates import LIMIT_CURRENCY
from kernels.state import I_RATE_NUM, KernelState
from oms.model import Instrument


def quote_of(ins: Instrument) -> str:
    """The instrument's quote asset ("" for a synthetic name without one: its money is taken as USDT)."""
    if ins.spec.quote_asset:
        return ins.spec.quote_asset
    try:
        return ins.id.quote
    except ValueError:
        return ""


class UnknownInstrument(KeyError):
    def __str__(self) -> str:
        return str(self.args[0])


class InstrumentTable:
    """Instruments of every exchange the daemon trades, numbered for one ``KernelState``."""

    def __init__(self, state: KernelState):
        self.state = state
        self._index: dict[tuple[str, str], int] = {}
        self._by_number: list[tuple[str, Instrument]] = []

    def add(self, exchange: str, instrument: Instrument) -> int:
        """Number ``instrument`` of ``exchange`` (again: the same number, with its filters updated)."""
        key = (exchange, instrument.symbol)
        i = self._index.get(key)
        if i is None:
            i = len(self._by_number)
            if i >= self.state.n_instruments:
                raise ValueError(f"instrument table full: the kernel state holds {self.state.n_instruments}")
            self._index[key] = i
            self._by_number.append((exchange, instrument))
            self.state.set_instrument(i, instrument)
            if quote_of(instrument) not in ("", LIMIT_CURRENCY):
                self.state.ins[I_RATE_NUM, i] = 0  # no rate into USDT yet (a new instrument: no position holds it)
            return i
        self._by_number[i] = (exchange, instrument)
        self.state.set_instrument(i, instrument)  # the rate it has stays
        return i

    def lookup(self, exchange: str, symbol: str) -> tuple[int, Instrument]:
        i = self._index.get((exchange, symbol))
        if i is None:
            known = sorted(s for e, s in self._index if e == exchange)[:8]
            raise UnknownInstrument(
                f"{symbol} is not an instrument of {exchange} (known: {', '.join(known) or 'none'})"
            )
        return i, self._by_number[i][1]

    def numbers(self, exchange: str) -> list[tuple[str, int]]:
        """(unified symbol, number) of every instrument of ``exchange``, in number order."""
        return sorted(((s, i) for (e, s), i in self._index.items() if e == exchange), key=lambda p: p[1])

    def instrument(self, i: int) -> tuple[str, Instrument]:
        return self._by_number[i]

    def __len__(self) -> int:
        return len(self._by_number)
