"""A tape: the market events of a run, the instruments they refer to, and where each event came from."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np

from backtest.codes import I_FIELDS, I_KIND, I_LEVERAGE, I_LIQ_FEE_PPM, I_LOT, I_MAINT_PPM, I_MULT, I_TICK
from kernels.instruments import Instrument, InstrumentSpec
from strategies.api import EV_AUX, EV_CLOSE, EV_FIELDS, EV_INST, EV_KIND, EV_T0, EV_TS, FUNDING
from strategies.base import ppm

# Binance's filters for the instruments the built-ins and tests use (exchangeInfo, 2025).
BTCUSDT_SPOT = InstrumentSpec("BTCUSDT", "spot", tick_size="0.01", step_size="0.00001", min_qty="0.00001")
BTCUSDT_PERP = InstrumentSpec("BTCUSDT", "perp", tick_size="0.10", step_size="0.001", min_qty="0.001")


@dataclass(frozen=True)
class Venue:
    """How a venue treats one instrument beyond its filters: perps' leverage and margin rates."""

    leverage: int = 1
    maintenance_margin: Decimal | str = "0.004"  # Binance's first BTCUSDT bracket
    liquidation_fee: Decimal | str = "0.0125"


@dataclass
class Tape:
    """Events (n, EV_FIELDS) sorted by time, with their instruments and provenance (file, row)."""

    events: np.ndarray
    instruments: list[Instrument]
    venues: list[Venue]
    sources: list[str] = field(default_factory=list)
    origin: np.ndarray | None = None  # (n, 2): index into sources, row in that source (1-based)

    def __post_init__(self) -> None:
        self.events = np.ascontiguousarray(self.events, dtype=np.int64)
        if self.events.ndim != 2 or self.events.shape[1] != EV_FIELDS:
            raise ValueError(f"events must be (n, {EV_FIELDS}), not {self.events.shape}")
        if len(self.venues) != len(self.instruments):
            raise ValueError("one Venue per instrument")
        if len(self.events) and np.any(np.diff(self.events[:, EV_TS]) < 0):
            k = int(np.argmax(np.diff(self.events[:, EV_TS]) < 0)) + 1
            raise ValueError(f"events are not sorted by time: event {k} ({self.where(k)}) is before the one before it")
        self.columns = np.ascontiguousarray(self.events.T)  # (EV_FIELDS, n): what the engine reads
        bad = (self.events[:, EV_INST] < 0) | (self.events[:, EV_INST] >= len(self.instruments))
        if np.any(bad):
            raise ValueError(f"event {int(np.argmax(bad))} names an instrument that is not on the tape")

    @property
    def inst(self) -> np.ndarray:
        out = np.zeros((len(self.instruments), I_FIELDS), dtype=np.int64)
        for r, (ins, v) in enumerate(zip(self.instruments, self.venues, strict=True)):
            if v.leverage < 1:
                raise ValueError(f"{ins.symbol}: leverage must be >= 1")
            out[r] = 0
            out[r, I_KIND] = ins.kind
            out[r, I_MULT] = ins.mult
            out[r, I_TICK] = ins.tick
            out[r, I_LOT] = ins.lot
            out[r, I_LEVERAGE] = v.leverage
            out[r, I_MAINT_PPM] = ppm(Decimal(str(v.maintenance_margin)), f"{ins.symbol} maintenance_margin")
            out[r, I_LIQ_FEE_PPM] = ppm(Decimal(str(v.liquidation_fee)), f"{ins.symbol} liquidation_fee")
        return out

    def where(self, k: int) -> str:
        """Where event ``k`` came from: 'file row N', or 'event k' for built tapes."""
        if self.origin is None or not self.sources:
            return f"event {k}"
        src, row = self.origin[k]
        if src < 0:
            return f"event {k}"
        return f"{self.sources[int(src)]} row {int(row)}"

    def __len__(self) -> int:
        return len(self.events)

    @classmethod
    def single(cls, events: np.ndarray, instrument: Instrument, venue: Venue | None = None, source: str = "") -> Tape:
        origin = np.stack([np.zeros(len(events), np.int64), np.arange(1, len(events) + 1)], axis=1)
        return cls(events, [instrument], [venue or Venue()], [source] if source else [], origin if source else None)

    @classmethod
    def merge(cls, tapes: list[Tape]) -> Tape:
        """One tape of several (instrument indices renumbered in order), stable-sorted by time."""
        events, instruments, venues, sources, origins = [], [], [], [], []
        for t in tapes:
            ev = t.events.copy()
            ev[:, EV_INST] += len(instruments)
            events.append(ev)
            org = t.origin if t.origin is not None else np.stack([np.full(len(ev), -1), np.arange(len(ev))], 1)
            org = org.copy()
            org[:, 0] = np.where(org[:, 0] >= 0, org[:, 0] + len(sources), -1)
            origins.append(org)
            instruments += t.instruments
            venues += t.venues
            sources += t.sources
        ev = np.concatenate(events) if events else np.zeros((0, EV_FIELDS), np.int64)
        org = np.concatenate(origins) if origins else np.zeros((0, 2), np.int64)
        order = np.lexsort((ev[:, EV_INST], ev[:, EV_TS]))
        return cls(ev[order], instruments, venues, sources, org[order] if sources else None)


def funding_events(inst: int, times_ns: list[int] | np.ndarray, marks: np.ndarray, rates_e8: np.ndarray) -> np.ndarray:
    """Funding events for instrument ``inst``: at each time, the mark (price units) and rate (1e-8)."""
    n = len(times_ns)
    ev = np.zeros((n, EV_FIELDS), dtype=np.int64)
    ev[:, EV_TS] = times_ns
    ev[:, EV_T0] = times_ns
    ev[:, EV_KIND] = FUNDING
    ev[:, EV_INST] = inst
    ev[:, EV_CLOSE] = marks
    ev[:, EV_AUX] = rates_e8
    return ev
