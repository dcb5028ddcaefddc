"""What a strategy is to the platform: its compiled functions, its parameter model and its array builder.

A ``Strategy`` bundles the three Numba functions of ``strategies.api``, a frozen pydantic model of its
parameters (unknown keys rejected, every field documented) and ``build``, which turns validated
parameters plus a ``Binding`` (which accounts and instruments it trades, as engine indices) into its
int64 ``params`` array and a fresh ``state`` array. Decimal amounts become int64 units here, once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from kernels.fixed import MONEY_SCALE, PPM
from kernels.instruments import Instrument


class Params(BaseModel):
    """Base of every strategy's parameter model: frozen, unknown keys rejected."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class Binding:
    """Where a strategy instance trades: engine account indices and (index, Instrument) pairs."""

    accounts: tuple[int, ...]
    instruments: tuple[tuple[int, Instrument], ...]

    def check(self, n_accounts: int, n_instruments: int, strategy: str) -> None:
        """ValueError unless every index is in range (a compiled strategy does not check its indices)."""
        for a in self.accounts:
            if not 0 <= a < n_accounts:
                raise ValueError(
                    f"strategy {strategy!r}: bound to account {a}, but the run has {n_accounts} account(s)"
                )
        for i, _ in self.instruments:
            if not 0 <= i < n_instruments:
                raise ValueError(f"strategy {strategy!r}: bound to instrument {i}, but there are {n_instruments}")

    def account(self, k: int, strategy: str) -> int:
        if k >= len(self.accounts):
            raise ValueError(f"strategy {strategy!r} needs {k + 1} account(s), bound to {len(self.accounts)}")
        return self.accounts[k]

    def instrument(self, k: int, strategy: str) -> tuple[int, Instrument]:
        if k >= len(self.instruments):
            raise ValueError(f"strategy {strategy!r} needs {k + 1} instrument(s), bound to {len(self.instruments)}")
        return self.instruments[k]


@dataclass(frozen=True)
class Strategy:
    """A strategy kind: compiled callbacks, parameter model, and the builder of its arrays."""

    kind: str
    on_market: Any  # numba dispatcher
    on_fill: Any
    on_timer: Any
    params_model: type[Params]
    build: Callable[[Any, Binding], tuple[np.ndarray, np.ndarray]]
    summary: str = ""
    timer_ns: int = 0  # how often on_timer runs in market time (0: never)
    extra: dict = field(default_factory=dict)

    def arrays(self, params: dict | Params, binding: Binding) -> tuple[np.ndarray, np.ndarray]:
        """(params, state) int64 arrays for one instance; ``params`` may be a raw mapping (validated here)."""
        model = params if isinstance(params, self.params_model) else self.params_model.model_validate(params)
        p, s = self.build(model, binding)
        return np.ascontiguousarray(p, dtype=np.int64), np.ascontiguousarray(s, dtype=np.int64)


def ppm(value: Decimal | float | int, what: str) -> int:
    """A fraction (0.01 = 1%) as parts per million, exactly or ValueError."""
    d = Decimal(str(value)) * PPM
    if d != d.to_integral_value():
        raise ValueError(f"{what}: {value} is finer than 1e-6")
    return int(d)


def bps_to_ppm(value: Decimal | float | int, what: str) -> int:
    """Basis points as parts per million (1 bp = 100 ppm), exactly or ValueError."""
    d = Decimal(str(value)) * 100
    if d != d.to_integral_value():
        raise ValueError(f"{what}: {value} bps is finer than 0.01 bp")
    return int(d)


def money(value: Decimal | float | int, what: str) -> int:
    """USDT as money units (1e-8), exactly or ValueError."""
    d = Decimal(str(value)) * MONEY_SCALE
    if d != d.to_integral_value():
        raise ValueError(f"{what}: {value} USDT is finer than 1e-8")
    return int(d)
