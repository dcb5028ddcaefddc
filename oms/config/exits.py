"""Managed exits (``risk.yaml`` ``exits:``): stop-loss (fixed, trailing, time-based) and take-profit ladders
per position, for an account or for the positions a strategy's orders open (the strategy's rule wins).

```yaml
exits:
  interval_s: 0.5                       # how often time-based stops are looked at
  accounts:
    binance:
      sub_futures_trend: {stop_loss_pct: 2, trailing_stop_pct: 1.5, max_hold_s: 86400,
                          take_profit: [{at_pct: 1, fraction: 0.5}, {at_pct: 3, fraction: 0.5}]}
  strategies:
    trend_following: {stop_loss_pct: 1, max_slippage_bps: 30}
```

Percentages are of the position's entry price (``trailing_stop_pct`` of the best price since entry); a
take-profit level sells (or buys back) ``fraction`` of the position's size when it was opened; fractions add
up to at most 1. Exits go out as market orders capped at ``max_slippage_bps`` from the book.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

Pct = Annotated[Decimal, Field(gt=0, le=1000, description="percent, e.g. 1.5")]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TakeProfitLevel(_Frozen):
    at_pct: Pct
    fraction: Annotated[Decimal, Field(gt=0, le=1, description="share of the opening size exited here")]


class ExitRule(_Frozen):
    stop_loss_pct: Pct | None = Field(None, description="exit all when the price is this far against the entry")
    trailing_stop_pct: Pct | None = Field(None, description="exit all after this retracement from the best price")
    max_hold_s: Annotated[Decimal, Field(gt=0, le=365 * 86400)] | None = Field(None, description="exit all after")
    take_profit: list[TakeProfitLevel] = Field(default_factory=list, description="partial exits, nearest first")
    max_slippage_bps: Annotated[int, Field(strict=True, ge=0, le=10_000)] = 50

    @model_validator(mode="after")
    def _ladder(self) -> ExitRule:
        levels = [lv.at_pct for lv in self.take_profit]
        if levels != sorted(levels) or len(set(levels)) != len(levels):
            raise ValueError(f"take_profit levels must rise strictly (got at_pct {[str(x) for x in levels]})")
        total = sum((lv.fraction for lv in self.take_profit), Decimal(0))
        if total > 1:
            raise ValueError(f"take_profit fractions add up to {total}, more than the whole position")
        if not (self.stop_loss_pct or self.trailing_stop_pct or self.max_hold_s or self.take_profit):
            raise ValueError("an exit rule needs stop_loss_pct, trailing_stop_pct, max_hold_s or take_profit")
        return self


class ExitsConfig(_Frozen):
    interval_s: Annotated[Decimal, Field(gt=0, le=3600)] = Decimal("0.5")
    accounts: dict[str, dict[str, ExitRule]] = Field(default_factory=dict, description="exchange -> account ->")
    strategies: dict[str, ExitRule] = Field(default_factory=dict, description="strategy name -> rule")

    def rule_for(self, account: str, strategy: str) -> ExitRule | None:
        """The strategy's rule, else the account's (``exchange/name``), else None."""
        if strategy and strategy in self.strategies:
            return self.strategies[strategy]
        exchange, _, name = account.partition("/")
        return self.accounts.get(exchange, {}).get(name)
