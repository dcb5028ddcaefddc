"""Risk limits from configuration (configs/risk.yaml, via ``oms.config``) into the kernels' arrays.

``risk_limits(risk, accounts)`` takes any object shaped like ``oms.config.RiskConfig``
(``risk.global_limits`` and ``risk.limits_for(exchange, account)``) and an ordered list of
(exchange, account) pairs; account number k in the kernels is ``accounts[k]``. Decimal values are
converted exactly: USDT to money units (1e-8), leverage to ppm, percentages to ppm, orders per second
to orders per 1000 s. A value that does not convert exactly, or an unknown trading state, raises
ValueError naming the account and the field.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kernels import state as S
from kernels.codes import TRADING_STATES
from oms.config import load_config
from oms.config.units import RISK_FIELD_UNITS, units_of

# kernel limit field -> config field; the unit of each is oms.config.units.RISK_FIELD_UNITS, the table
# `oms config check` validates risk.yaml with, so a config that checks ok converts here without error.
_FIELDS = (
    (S.L_MAX_ORDER_NOTIONAL, "max_order_notional_usdt"),
    (S.L_MAX_POSITION_NOTIONAL, "max_position_notional_usdt"),
    (S.L_MAX_GROSS, "max_gross_exposure_usdt"),
    (S.L_MAX_LEVERAGE_PPM, "max_leverage"),
    (S.L_MAX_OPEN_ORDERS, "max_open_orders"),
    (S.L_ORDER_RATE_MILLI, "orders_per_second"),
    (S.L_ORDER_BURST, "order_burst"),
    (S.L_MAX_DAILY_LOSS, "max_daily_loss_usdt"),
    (S.L_MAX_DRAWDOWN_PPM, "max_drawdown_pct"),
    (S.L_PRICE_BAND_PPM, "price_band_pct"),
    (S.L_TRADING_STATE, "trading_state"),
)


def _convert(value, kind: str, where: str) -> int:
    if kind == "state":
        try:
            return TRADING_STATES[value]
        except KeyError:
            raise ValueError(f"{where}: trading_state must be one of {sorted(TRADING_STATES)}, not {value!r}") from None
    return units_of(kind, value if isinstance(value, int) else str(value), where)


@dataclass(frozen=True)
class RiskLimits:
    """Limit arrays ready for a KernelState: ``lim`` is (L_FIELDS, len(accounts))."""

    accounts: tuple[tuple[str, str], ...]
    lim: np.ndarray
    max_gross_exposure: int
    max_daily_loss: int
    trading_state: int

    def apply(self, state: S.KernelState) -> None:
        """Write the limits into accounts 0..n-1 of ``state`` (and refill their token buckets)."""
        n = len(self.accounts)
        if n > state.n_accounts:
            raise ValueError(f"{n} accounts configured but the state holds only {state.n_accounts}")
        state.lim[:, :n] = self.lim
        for a in range(n):
            state.refill_tokens(a)
        state.glob[S.G_MAX_GROSS] = self.max_gross_exposure
        state.glob[S.G_MAX_DAILY_LOSS] = self.max_daily_loss
        state.glob[S.G_TRADING_STATE] = self.trading_state


def risk_limits(risk, accounts: list[tuple[str, str]]) -> RiskLimits:
    """Limit arrays from a RiskConfig-like object for the ordered (exchange, account) pairs."""
    lim = np.zeros((S.L_FIELDS, len(accounts)), dtype=np.int64)
    for a, (exchange, account) in enumerate(accounts):
        limits = risk.limits_for(exchange, account)
        for field, name in _FIELDS:
            kind = RISK_FIELD_UNITS.get(name, "state")
            lim[field, a] = _convert(getattr(limits, name), kind, f"risk.yaml {exchange}/{account} {name}")
    g = risk.global_limits
    return RiskLimits(
        accounts=tuple(accounts),
        lim=lim,
        max_gross_exposure=_convert(g.max_gross_exposure_usdt, "money", "risk.yaml global max_gross_exposure_usdt"),
        max_daily_loss=_convert(g.max_daily_loss_usdt, "money", "risk.yaml global max_daily_loss_usdt"),
        trading_state=_convert(g.trading_state, "state", "risk.yaml global"),
    )


def load_risk_limits(config_dir: str | Path | None = None, accounts: list[tuple[str, str]] | None = None) -> RiskLimits:
    """Load configs/ with ``oms.config.load_config`` and build the limits; ``accounts`` defaults to
    every account of accounts.yaml, in file order."""
    cfg = load_config(config_dir)
    if accounts is None:
        accounts = [(ex, name) for ex, names in cfg.accounts.items() for name in names]
    return risk_limits(cfg.risk, accounts)
