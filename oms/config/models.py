"""Typed, frozen models of the files in `configs/`. Unknown keys are rejected.

Each model mirrors one YAML file; cross-file checks live in `oms.config.checks`.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from oms.config.exits import ExitsConfig
from oms.config.units import INT64_MAX, check_units
from oms.model.units import MONEY_DECIMALS, money_decimals_of

# Numbers the kernels hold as int64 units (oms.config.units): each must convert exactly and fit.
NonNegDecimal = Annotated[Decimal, Field(ge=0), AfterValidator(check_units("money"))]
PosDecimal = Annotated[Decimal, Field(gt=0), AfterValidator(check_units("money"))]
Leverage = Annotated[Decimal, Field(gt=0, le=125), AfterValidator(check_units("ratio"))]
Percent = Annotated[Decimal, Field(gt=0, le=100), AfterValidator(check_units("pct"))]
OrderRate = Annotated[Decimal, Field(gt=0), AfterValidator(check_units("milli"))]
# Integers and booleans are strict: YAML `true` is not the number 1, and 8080.0 is not a port.
Count = Annotated[int, Field(strict=True, ge=0, le=INT64_MAX)]
PosCount = Annotated[int, Field(strict=True, gt=0, le=INT64_MAX)]
Flag = Annotated[bool, Field(strict=True)]
Port = Annotated[int, Field(strict=True, ge=1, le=65535)]
Core = Annotated[int, Field(strict=True, ge=0)]
Name = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]
Market = Literal["spot", "usdm"]
TradingState = Literal["active", "reduce_only", "halted"]
Asset = Annotated[str, Field(strict=True, pattern=r"^[A-Z0-9]{1,20}$")]  # an asset as exchanges spell it (BTC, USDT)


class Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --------------------------------------------------------------------------- accounts.yaml
class AccountConfig(Frozen):
    """One exchange account (main, sub-account or strategy account)."""

    type: Literal["main", "sub", "strategy"] = Field(description="main account, sub-account or strategy account")
    parent: str | None = Field(None, description="for sub/strategy accounts: the main account they belong to")
    api_key_vault_path: str = Field(
        pattern=r"^[a-z][a-z0-9_]*$",
        description="stem `{exchange}_{name}`; keys live at secret/exchanges/{exchange}_{market}_{name}",
    )
    spot_enabled: Flag = True
    futures_enabled: Flag = False
    withdraw_enabled: Flag = Field(False, description="withdrawal permission: only ever on a main account")
    strategy: str | None = Field(None, description="the strategy this account trades, if dedicated")
    max_balance_usdt: NonNegDecimal | None = Field(None, description="rebalance sweeps above this")
    working_balance_usdt: NonNegDecimal | None = Field(
        None, description="rebalance tops the sub-account up to this when it is below it"
    )
    max_leverage: Annotated[int, Field(strict=True, ge=1, le=125)] | None = Field(None, description="futures only")
    max_position_usdt: NonNegDecimal | None = Field(None, description="futures only")
    margin_type: Literal["isolated", "cross"] | None = Field(None, description="futures only")
    position_mode: Literal["one_way", "hedge"] | None = Field(None, description="futures only")
    cash_assets: tuple[Asset, ...] = Field(
        ("USDT",),
        description="the assets the account's cash is held in: reconciliation sets the kernels' cash (1e-8 USDT) "
        "from their wallet balances (free + locked; USDT and other 8-decimal assets at par); one coin (BTC, "
        "oms.model.units.QUOTE_MONEY_DECIMALS) alone for an account whose cash is that coin (it trades ETH/BTC): "
        "its cash is then the coin held valued at the coin's USDT rate and revalued with it (stream.coin_cash)",
    )

    @field_validator("cash_assets")
    @classmethod
    def _cash_assets(cls, assets: tuple[str, ...]) -> tuple[str, ...]:
        if not assets:
            raise ValueError("name at least one asset (the default is [USDT])")
        twice = sorted({a for a in assets if assets.count(a) > 1})
        if twice:
            raise ValueError(f"{', '.join(twice)} listed more than once")
        coins = [a for a in assets if money_decimals_of(a) != MONEY_DECIMALS]
        if coins and len(assets) > 1:
            raise ValueError(
                f"{coins[0]} must be the account's only cash asset: a coin cash is the coin held valued at its USDT "
                f"rate (stream.coin_cash), it is not added to "
                f"{', '.join(a for a in assets if a != coins[0])} at par"
            )
        return assets

    def cash_money_decimals(self) -> int:
        """The decimals of the money unit of the asset the account's cash is held in (8 for USDT, 12 for BTC: the
        unit the coin is counted in before it is valued in USDT)."""
        return money_decimals_of(self.cash_assets[0])

    @model_validator(mode="after")
    def _shape(self) -> AccountConfig:
        if self.type == "main" and self.parent is not None:
            raise ValueError("a main account has no parent")
        if self.type != "main" and self.parent is None:
            raise ValueError(f"a {self.type} account needs `parent` (its main account)")
        if not (self.spot_enabled or self.futures_enabled):
            raise ValueError("enable at least one of spot_enabled, futures_enabled")
        return self

    def markets(self) -> tuple[Market, ...]:
        out: list[Market] = []
        if self.spot_enabled:
            out.append("spot")
        if self.futures_enabled:
            out.append("usdm")
        return tuple(out)


class BalanceRules(Frozen):
    min_main_balance: NonNegDecimal = Field(description="USDT the main account keeps at least")
    max_sub_balance: NonNegDecimal = Field(description="USDT above which a sub-account is swept to main")
    sub_working_balance: NonNegDecimal = Field(
        Decimal(0), description="USDT a sub-account is topped up to when below it (its working_balance_usdt wins)"
    )


class RebalanceSchedule(Frozen):
    enabled: Flag = True
    schedule: Literal["hourly", "daily", "weekly"] = "daily"
    time: str = Field("00:00 UTC", description='"HH:MM UTC"')

    @field_validator("time")
    @classmethod
    def _time(cls, v: str) -> str:
        m = re.fullmatch(r"([01]\d|2[0-3]):([0-5]\d) UTC", v)
        if not m:
            raise ValueError('expected "HH:MM UTC", e.g. "00:00 UTC"')
        return v

    def hour_minute(self) -> tuple[int, int]:
        hh, mm = self.time.split()[0].split(":")
        return int(hh), int(mm)


class AccountRouting(Frozen):
    default: str = Field(description="account for orders of strategies without a dedicated account")
    strategies: dict[str, str] = Field(default_factory=dict, description="strategy -> account")
    balance_rules: BalanceRules
    rebalance: RebalanceSchedule = RebalanceSchedule()


class AccountsFile(Frozen):
    accounts: dict[Name, dict[Name, AccountConfig]] = Field(description="exchange -> account name -> account")
    account_routing: AccountRouting


# --------------------------------------------------------------------------- exchanges.yaml
class Endpoints(Frozen):
    rest_url: str = Field(pattern=r"^https?://")
    ws_url: str | None = Field(None, pattern=r"^wss?://")
    ws_api_url: str | None = Field(None, pattern=r"^wss?://")


class MarketEndpoints(Frozen):
    live: Endpoints = Field(description="the exchange's real endpoints, used when venue is `live`")


class RateBudget(Frozen):
    spot_weight_per_minute: PosCount = 1200
    futures_weight_per_minute: PosCount = 2400
    orders_per_10s: PosCount = 100
    orders_per_day: PosCount = 200000
    ws_connections: PosCount = 5


class RateLimits(Frozen):
    default: RateBudget = RateBudget()
    accounts: dict[str, RateBudget] = Field(default_factory=dict, description="per-account overrides")


# ccxt exchanges whose wire is Binance's (the local exchange serves only that wire)
BINANCE_WIRE_CCXT_IDS = frozenset({"binance", "binanceus", "binanceusdm", "binancecoinm"})


class ExchangeConfig(Frozen):
    library: Literal["python-binance", "ccxt"]
    ccxt_id: str | None = Field(None, description="ccxt exchange id, required when library is ccxt")
    local_ccxt_id: str | None = Field(
        None,
        description="the ccxt class that trades this exchange on the local exchange (venue: local), which speaks "
        "Binance's wire: a Binance-family class such as `binance`; needed when ccxt_id is not one",
    )
    venue: Literal["local", "live"] = "local"
    markets: dict[Market, MarketEndpoints]
    rate_limits: RateLimits = RateLimits()

    @model_validator(mode="after")
    def _ccxt_id(self) -> ExchangeConfig:
        if self.library == "ccxt" and not self.ccxt_id:
            raise ValueError("`ccxt_id` is required when library is ccxt")
        if self.local_ccxt_id is not None and self.local_ccxt_id not in BINANCE_WIRE_CCXT_IDS:
            raise ValueError(
                f"local_ccxt_id {self.local_ccxt_id!r} does not speak the local exchange's Binance wire "
                f"(one of {', '.join(sorted(BINANCE_WIRE_CCXT_IDS))})"
            )
        if self.library == "ccxt" and self.venue == "local" and self.ccxt_id not in BINANCE_WIRE_CCXT_IDS:
            if self.local_ccxt_id is None:
                raise ValueError(
                    f"ccxt's {self.ccxt_id} does not speak the local exchange's Binance wire: set "
                    "`local_ccxt_id: binance` to paper-trade this exchange there, or `venue: live`"
                )
        return self

    def ccxt_class(self) -> str | None:
        """The ccxt exchange id the connector builds: ``local_ccxt_id`` on the local exchange, else ``ccxt_id``."""
        if self.venue == "local" and self.local_ccxt_id:
            return self.local_ccxt_id
        return self.ccxt_id

    def budget(self, account: str) -> RateBudget:
        return self.rate_limits.accounts.get(account, self.rate_limits.default)


class LocalExchange(Frozen):
    host: Literal["127.0.0.1"] = "127.0.0.1"
    port: Port = 8765

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"


class ExchangesFile(Frozen):
    local_exchange: LocalExchange = LocalExchange()
    exchanges: dict[Name, ExchangeConfig]


# --------------------------------------------------------------------------- risk.yaml
class GlobalRiskLimits(Frozen):
    """Limits over all accounts together."""

    max_gross_exposure_usdt: PosDecimal
    max_daily_loss_usdt: PosDecimal
    trading_state: TradingState = "active"


class AccountRiskLimits(Frozen):
    """Limits of one account (money in USDT)."""

    max_order_notional_usdt: PosDecimal
    max_position_notional_usdt: PosDecimal
    max_gross_exposure_usdt: PosDecimal
    max_leverage: Leverage
    max_open_orders: Count
    orders_per_second: OrderRate = Field(description="token-bucket refill rate")
    order_burst: PosCount = Field(description="token-bucket capacity")
    max_daily_loss_usdt: PosDecimal
    max_drawdown_pct: Percent
    price_band_pct: Percent = Field(description="limit price vs mark")
    trading_state: TradingState = "active"


class AccountRiskOverride(Frozen):
    """Any subset of `AccountRiskLimits`, overriding `defaults` for one account."""

    max_order_notional_usdt: PosDecimal | None = None
    max_position_notional_usdt: PosDecimal | None = None
    max_gross_exposure_usdt: PosDecimal | None = None
    max_leverage: Leverage | None = None
    max_open_orders: Count | None = None
    orders_per_second: OrderRate | None = None
    order_burst: PosCount | None = None
    max_daily_loss_usdt: PosDecimal | None = None
    max_drawdown_pct: Percent | None = None
    price_band_pct: Percent | None = None
    trading_state: TradingState | None = None


_DURATION = re.compile(r"^([1-9][0-9]*)(s|m|h|d)$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _duration_s(v: str) -> str:
    m = _DURATION.fullmatch(v) if isinstance(v, str) else None
    if not m:
        raise ValueError(f"{v!r} is not a duration like 30s, 15m, 1h or 1d")
    seconds = int(m.group(1)) * _SECONDS[m.group(2)]
    if not 1 <= seconds <= 7 * 86400:
        raise ValueError(f"{v!r} is outside 1s..7d")
    return v


Duration = Annotated[str, AfterValidator(_duration_s)]


def duration_seconds(v: str) -> int:
    m = _DURATION.fullmatch(v)
    assert m is not None, v
    return int(m.group(1)) * _SECONDS[m.group(2)]


class BreakerTier(Frozen):
    """One tier of the circuit breaker: a loss of `max_loss_usdt` within `window` switches to `action`."""

    window: Duration = Field(description="rolling window, e.g. 15m, 1h (1s..7d)")
    max_loss_usdt: PosDecimal = Field(description="loss from the window's highest PnL that trips this tier")
    action: Literal["reduce_only", "halt"]

    @property
    def window_s(self) -> int:
        return duration_seconds(self.window)


def _check_tiers(tiers: list[BreakerTier]) -> list[BreakerTier]:
    seen: dict[tuple[int, str], int] = {}
    for k, t in enumerate(tiers):
        key = (t.window_s, t.action)
        if key in seen:
            raise ValueError(f"tiers {seen[key]} and {k} are both {t.action} over {t.window}")
        seen[key] = k
    for k, t in enumerate(tiers):
        if t.action != "halt":
            continue
        for j, r in enumerate(tiers):
            # a loss within the shorter window is also one within the longer: the halt tier trips first
            if r.action == "reduce_only" and t.window_s >= r.window_s and t.max_loss_usdt <= r.max_loss_usdt:
                raise ValueError(
                    f"tier {k} (halt at {t.max_loss_usdt} over {t.window}) trips no later than tier {j} "
                    f"(reduce_only at {r.max_loss_usdt} over {r.window}): the reduce-only tier would never act"
                )
    return tiers


Tiers = Annotated[list[BreakerTier], Field(min_length=1, max_length=16), AfterValidator(_check_tiers)]


class CircuitBreakerConfig(Frozen):
    """The tiered circuit breaker (stream/risk/breaker.py): losses within rolling windows -> reduce-only ->
    halt, per account and over all accounts. It only ever tightens; `cmd.resume` lifts it."""

    enabled: Flag = True
    interval_s: Annotated[Decimal, Field(ge=Decimal("0.1"), le=3600)] = Decimal(1)
    pnl: Literal["trades", "account"] = Field(
        "trades",
        description="the loss measured: trades = realised + unrealised PnL of the positions the platform's fills "
        "opened (inventory held before is not counted); account = the whole account marked to market",
    )
    cancel_orders_on_halt: Flag = Field(
        True, description="a halt tier also cancels every open order of the halted account(s)"
    )
    accounts: Tiers = Field(description="tiers of every account (unless `overrides` names it)")
    global_tiers: Tiers | None = Field(None, alias="global", description="tiers over all accounts together")
    overrides: dict[str, dict[str, Tiers]] = Field(default_factory=dict, description="exchange -> account -> tiers")
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    def tiers_for(self, exchange: str, account: str) -> list[BreakerTier]:
        return self.overrides.get(exchange, {}).get(account, self.accounts)


Fraction01 = Annotated[Decimal, Field(gt=0, le=1)]


class PortfolioGuardsConfig(Frozen):
    """Correlation and volatility guards (stream/risk/guards.py), computed on a timer from sampled marks."""

    enabled: Flag = True
    interval_s: Annotated[Decimal, Field(ge=1, le=86400)] = Field(Decimal(60), description="mark sampling period")
    lookback: Annotated[int, Field(strict=True, ge=3, le=100_000)] = Field(240, description="samples kept")
    min_observations: Annotated[int, Field(strict=True, ge=2)] = 30
    max_correlation: Fraction01 = Field(Decimal("0.85"), description="refuse entries correlated above this")
    target_volatility: PosDecimal = Field(Decimal("0.8"), description="annualised; sizes x target/vol, <= 1")
    min_size_scale: Fraction01 = Field(Decimal("0.1"), description="the volatility scale never goes below")

    @model_validator(mode="after")
    def _observations(self) -> PortfolioGuardsConfig:
        if self.min_observations >= self.lookback:
            raise ValueError(
                f"min_observations ({self.min_observations}) must be below lookback ({self.lookback} samples)"
            )
        return self


class FuturesMonitorConfig(Frozen):
    """USD-M position monitoring (stream/futures.py): liquidation distance and ADL quantile, with alerts."""

    enabled: Flag = True
    interval_s: Annotated[Decimal, Field(ge=1, le=3600)] = Field(Decimal(10), description="polling period")
    min_liquidation_distance_pct: Annotated[Decimal, Field(gt=0, le=100)] = Field(
        Decimal(10), description="alert when the mark is closer to the liquidation price than this (% of mark)"
    )
    adl_alert_quantile: Annotated[int, Field(strict=True, ge=1, le=4)] = Field(
        4, description="alert when a position's ADL quantile (0..4) reaches this"
    )


class RiskConfig(Frozen):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    global_limits: GlobalRiskLimits = Field(alias="global")
    defaults: AccountRiskLimits
    accounts: dict[str, dict[str, AccountRiskOverride]] = Field(default_factory=dict)
    circuit_breaker: CircuitBreakerConfig | None = None
    portfolio_guards: PortfolioGuardsConfig | None = None
    exits: ExitsConfig | None = None  # managed stop-loss / take-profit (oms/config/exits.py)
    futures_monitor: FuturesMonitorConfig | None = None
    # quote asset -> the unified symbol of its USDT pair (Spot, or the USD-M perpetual), whose mark converts a
    # notional quoted in that asset (ETH/BTC's BTC) into the limits' USDT (stream/risk/quotes.py); an asset not
    # named here uses "{asset}/USDT"
    quote_rates: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _quote_rates(self) -> RiskConfig:
        for asset, pair in self.quote_rates.items():
            if not re.fullmatch(r"[A-Z0-9]{1,20}", asset):
                raise ValueError(f"quote_rates: {asset!r} is not an asset name like BTC")
            if pair not in (f"{asset}/USDT", f"{asset}/USDT:USDT"):
                raise ValueError(
                    f"quote_rates {asset}: {pair!r} is not {asset}'s USDT pair ({asset}/USDT or {asset}/USDT:USDT)"
                )
        return self

    def limits_for(self, exchange: str, account: str) -> AccountRiskLimits:
        """The defaults with this account's overrides applied."""
        override = self.accounts.get(exchange, {}).get(account)
        if override is None:
            return self.defaults
        return self.defaults.model_copy(update=override.model_dump(exclude_none=True))


# --------------------------------------------------------------------------- strategies.yaml
def _symbol_problem(market: str, symbol: str) -> str | None:
    pattern = r"^[A-Z0-9]+/[A-Z0-9]+:[A-Z0-9]+$" if market == "usdm" else r"^[A-Z0-9]+/[A-Z0-9]+$"
    example = "BTC/USDT:USDT" if market == "usdm" else "BTC/USDT"
    return None if re.fullmatch(pattern, symbol) else f"{symbol!r} is not a {market} symbol like {example}"


class StrategyLeg(Frozen):
    """One (account, instrument) pair of a strategy that trades several, in the order its kind documents
    (``basis``: spot then perp; ``arbitrage``: one leg per venue)."""

    market: Market
    symbol: str
    exchange: str | None = Field(None, description="default: the strategy's exchange")
    account: Name | None = Field(
        None, description="default: the strategy's account (account_routing) on its exchange, else the default"
    )

    @model_validator(mode="after")
    def _symbol(self) -> StrategyLeg:
        problem = _symbol_problem(self.market, self.symbol)
        if problem:
            raise ValueError(problem)
        return self


class StrategyConfig(Frozen):
    kind: Name | None = Field(None, description="built-in strategy kind (strategies.registry); default: the name")
    exchange: str
    market: Market
    symbols: list[str] = Field(default_factory=list, description="instruments on the strategy's own account")
    legs: list[StrategyLeg] = Field(
        default_factory=list, description="instead of symbols: (account, market, symbol) legs across accounts/venues"
    )
    params: dict[str, float | int | str | bool] = Field(default_factory=dict)
    bar_seconds: Annotated[int, Field(strict=True, gt=0, le=86_400)] | None = Field(
        None,
        description="the daemon feeds the strategy one bar per instrument every this many seconds (the events "
        "it is backtested on) instead of each public trade",
    )

    @model_validator(mode="after")
    def _symbols(self) -> StrategyConfig:
        if bool(self.symbols) == bool(self.legs):
            raise ValueError("give either `symbols` (one account) or `legs` (several), not both and not neither")
        bad = [p for s in self.symbols if (p := _symbol_problem(self.market, s))]
        if bad:
            raise ValueError("; ".join(bad))
        return self

    def bound_legs(self, account: str, default_account: str) -> list[tuple[str, str, str, str]]:
        """(exchange, account, market, symbol) of every instrument the strategy trades, in binding order;
        ``account`` is its routed account on its exchange, ``default_account`` the routing default."""
        if not self.legs:
            return [(self.exchange, account, self.market, s) for s in self.symbols]
        out = []
        for leg in self.legs:
            exchange = leg.exchange or self.exchange
            name = leg.account or (account if exchange == self.exchange else default_account)
            out.append((exchange, name, leg.market, leg.symbol))
        return out


class StrategiesFile(Frozen):
    strategies: dict[Name, StrategyConfig]


# --------------------------------------------------------------------------- stream.yaml
class DaemonConfig(Frozen):
    cpu_cores: list[Core] = Field(default_factory=lambda: [0], min_length=1, description="at least one core")
    kernel_cores: list[Core] = Field(default_factory=lambda: [0], min_length=1, description="at least one core")
    health_port: Port = 8780
    metrics_port: Port = 8781
    markets: dict[str, dict[Market, list[str]]] = Field(
        default_factory=dict,
        description="symbols to stream and trade beyond the hosted strategies': exchange -> market -> symbols",
    )
    on_shutdown: Literal["cancel", "leave"] = Field(
        "leave", description="SIGTERM: cancel every open order of the daemon's accounts, or leave them resting"
    )
    kline_intervals: list[Literal["1s", "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d"]] = (
        Field(default_factory=lambda: ["1m"], description="bars streamed per symbol on md.* (Binance's interval names)")
    )
    start_concurrency: Annotated[int, Field(strict=True, ge=1, le=256)] = Field(
        16, description="accounts started and reconciled at once (their calls paced within the IP weight budget)"
    )
    log_max_bytes: PosCount = Field(20_000_000, description="per-account log file size before it rotates")
    log_backups: Count = Field(10, description="rotated per-account log files kept")
    fee_refresh_s: Annotated[int, Field(strict=True, ge=60, le=86400)] = Field(
        3600, description="seconds between reads of each account's commission rates from the venue (stream.fees)"
    )
    finished_order_retention_s: Annotated[int, Field(strict=True, ge=10, le=604_800)] = Field(
        3600, description="seconds a finished order is remembered after it finished (stream.orders)"
    )
    finished_orders_max: Annotated[int, Field(strict=True, ge=1_000, le=10_000_000)] = Field(
        100_000, description="finished orders remembered at most; beyond it the oldest finished are forgotten first"
    )


class NatsService(Frozen):
    port: Port = 4222
    monitor_port: Port = 8222


class OpenBaoService(Frozen):
    port: Port = 8200
    cluster_port: Port = 8201


class PrefectService(Frozen):
    port: Port = 4200
    host: str = Field(
        "127.0.0.1",
        description="address the server and UI listen on; anything but loopback turns the API auth string on",
    )
    api_auth: Literal["auto", "always"] = Field(
        "auto", description="auto: an API auth string when the host is not loopback; always: also on loopback"
    )

    @field_validator("host")
    @classmethod
    def _host(cls, v: str) -> str:
        import ipaddress

        try:
            ipaddress.ip_address(v)
        except ValueError:
            raise ValueError(f"must be an IP address to listen on (e.g. 127.0.0.1 or 0.0.0.0), not {v!r}") from None
        return v


class LocalExchangeService(Frozen):
    enabled: Flag = True


class StreamService(Frozen):
    enabled: Flag = Field(False, description="`oms up` also starts the stream daemon (`oms stream run`)")


class DaskService(Frozen):
    """The standing Dask cluster the ``backtest-sweep`` flow sends its chunks to (workers preloaded, warm)."""

    enabled: Flag = Field(True, description="`oms up` starts it; the flow runner then gives sweeps its address")
    scheduler_port: Port = Field(8786, description="the scheduler's port on 127.0.0.1 (tcp://127.0.0.1:PORT)")
    dashboard_port: Port = Field(8787, description="the scheduler's HTTP port (health check, /json/counts.json)")
    workers: Annotated[int, Field(strict=True, ge=1, le=64)] = Field(2, description="worker processes")
    threads: Annotated[int, Field(strict=True, ge=1, le=64)] = Field(1, description="threads per worker")

    @model_validator(mode="after")
    def _distinct_ports(self) -> DaskService:
        if self.scheduler_port == self.dashboard_port:
            raise ValueError(f"scheduler_port and dashboard_port are both {self.scheduler_port}; give them two ports")
        return self


DeploymentName = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]*$")]


class FlowsService(Frozen):
    run_at_start: list[DeploymentName | dict[DeploymentName, dict[str, str | int | float | bool]]] = Field(
        default_factory=lambda: ["snapshot", {"pnl-report": {"month": "current"}}],
        description="deployments of prefect.yaml `oms up` runs once as soon as the flow runner serves them: a "
        "name, or {name: parameters}",
    )

    def start_runs(self) -> list[tuple[str, dict]]:
        """(deployment, parameters) of each run at start."""
        out: list[tuple[str, dict]] = []
        for item in self.run_at_start:
            if isinstance(item, str):
                out.append((item, {}))
            else:
                out.extend((name, dict(params)) for name, params in item.items())
        return out


class ServicesConfig(Frozen):
    data_dir: str = Field(
        "data", description="folder of the services' data and logs; relative paths are under the project root"
    )
    nats: NatsService = NatsService()
    openbao: OpenBaoService = OpenBaoService()
    prefect: PrefectService = PrefectService()
    local_exchange: LocalExchangeService = LocalExchangeService()
    stream: StreamService = StreamService()
    dask: DaskService = DaskService()
    flows: FlowsService = FlowsService()

    @field_validator("data_dir")
    @classmethod
    def _data_dir(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must name a folder (an empty path would put the data in the project root)")
        if "\x00" in v:
            raise ValueError("contains a NUL character")
        return v


class WebhookConfig(Frozen):
    """The TradingView-style alert webhook (stream/webhook.py); its secret is in Vault."""

    enabled: Flag = False
    host: str = Field("127.0.0.1", description="loopback by default; anything else needs TLS in front")
    port: Port = 8782
    path: str = Field("/webhook", pattern=r"^/[A-Za-z0-9_/-]*$")
    max_age_s: Annotated[Decimal, Field(ge=1, le=3600)] = Field(Decimal(60), description="timestamp window")
    max_body_bytes: Annotated[int, Field(strict=True, ge=256, le=1_048_576)] = 16 * 1024


class StreamFile(Frozen):
    daemon: DaemonConfig = DaemonConfig()
    services: ServicesConfig = ServicesConfig()
    webhook: WebhookConfig = WebhookConfig()
