"""The daemon's risk controls on its timers: the tiered circuit breaker and the portfolio guards."""

from stream.risk.breaker import CircuitBreaker, Tier, Trip
from stream.risk.controls import RiskControls
from stream.risk.guards import PortfolioGuards
from stream.risk.quotes import QuoteLimits

__all__ = ["CircuitBreaker", "PortfolioGuards", "QuoteLimits", "RiskControls", "Tier", "Trip"]
