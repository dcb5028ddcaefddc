"""Symbol specifications: filters, precisions and exact conversions between wire strings and ints.

Inside the engine prices are int ticks, quantities int lots (multiples of stepSize) and every asset
amount (balances, notionals, commissions, PnL) an int count of 1e-8 units (``AMOUNT_SCALE``).
``SymbolSpec`` converts once at the boundary and formats back like Binance.

A market quoted in a coin (ETHBTC: tick 0.00001 x step 0.0001 = 1e-9 BTC) trades values finer than 1e-8:
its spec works out notionals in *fine* quote units of 1e-``quote_decimals`` (12 for BTC, ETH and BNB, as
``oms.model.units.QUOTE_MONEY_DECIMALS``), so ``notional_unit``, ``min_notional_units`` and
``max_notional_units`` are fine units and exact. What moves in the ledger is settled to 1e-8 (the settlement
rule, ``settled_quote``): the quote amount of each fill is truncated to 1e-8 and that same amount leaves the
buyer and reaches the seller (its ``quoteQty``), so no money is created or destroyed; a buy locks the exact
value rounded up (``lock_quote``), which covers every truncated fill. For 1e-8-quoted markets (USDT) the fine
unit is the ledger unit and all of this is the identity.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Final

from .errors import ExchangeError, bad_param, filter_failure
from .market_table import MARKETS, SPOT_ORDER_TYPES, USDM_ORDER_TYPES

AMOUNT_DECIMALS: Final = 8
AMOUNT_SCALE: Final = 10**AMOUNT_DECIMALS
SPOT: Final = "spot"
USDM: Final = "usdm"
MARKET_KINDS: Final = (SPOT, USDM)
PARSE_CACHE_SIZE: Final = 4096  # per symbol and kind: distinct price / quantity strings remembered
MAX_AMOUNT_UNITS: Final = (
    2**63 - 1
)  # the largest amount or balance (1e-8 units): an int64, as downstream kernels hold it
MAX_AMOUNT: Final = Decimal(MAX_AMOUNT_UNITS) / AMOUNT_SCALE
FINE_QUOTE_DECIMALS: Final = {"BTC": 12, "ETH": 12, "BNB": 12}  # the coins that quote other coins
ASSET_RE: Final = re.compile(r"^[A-Z0-9]{1,20}\Z")  # an asset name as Binance spells them (BTC, USDT, 1000SATS)


def fmt_scaled(value: int, decimals: int = AMOUNT_DECIMALS, shown: int | None = None) -> str:
    """Format an int of 10^-decimals units as a decimal string with ``shown`` decimals (default all).

    ``fmt_scaled(1000000, 8)`` -> ``"0.01000000"``; ``fmt_scaled(1000000, 8, 2)`` -> ``"0.01"``.
    Digits beyond ``shown`` are truncated (the engine only asks for exact reductions).
    """
    if shown is None:
        shown = decimals
    sign = "-" if value < 0 else ""
    whole, frac = divmod(-value if value < 0 else value, 10**decimals)
    if shown <= 0:
        return f"{sign}{whole}"
    frac_s = str(frac).rjust(decimals, "0")[:shown].ljust(shown, "0")
    return f"{sign}{whole}.{frac_s}"


def fmt_amount(units: int) -> str:
    """An asset amount (int of 1e-8 units) as Binance's 8-decimal string: 150000000 -> '1.50000000'."""
    return fmt_scaled(units, AMOUNT_DECIMALS)


def parse_decimal(name: str, value: str | int | float | Decimal) -> Decimal:
    """Parse a wire value as Decimal; -1100/-1130 style error naming the parameter on bad input."""
    if isinstance(value, Decimal):
        d = value
    else:
        try:
            d = Decimal(str(value).strip())
        except (InvalidOperation, ValueError) as exc:
            raise bad_param(name, value) from exc
    if not d.is_finite():
        raise bad_param(name, value)
    return d


def parse_amount(name: str, value: str | int | Decimal) -> int:
    """An asset amount string -> int 1e-8 units (at most 8 decimals, 0 <= amount <= ``MAX_AMOUNT``)."""
    d = parse_decimal(name, value)
    if d > MAX_AMOUNT:
        raise bad_param(name, value)
    units = d * AMOUNT_SCALE
    if units != units.to_integral_value() or d < 0:
        raise bad_param(name, value)
    return int(units)


@dataclass(frozen=True)
class Bracket:
    """One leverage bracket (Binance /fapi/v1/leverageBracket row)."""

    bracket: int
    initial_leverage: int
    notional_cap: int  # amount units (1e-8 quote)
    notional_floor: int
    maint_margin_ratio: Decimal
    cum: Decimal  # maintenance amount, quote


@dataclass(frozen=True)
class SymbolSpec:
    """One listed symbol of one market ("spot" or "usdm"): filters, precisions and conversions."""

    market: str
    symbol: str
    base_asset: str
    quote_asset: str
    tick_size: Decimal
    min_price: Decimal
    max_price: Decimal
    step_size: Decimal
    min_qty: Decimal
    max_qty: Decimal
    market_max_qty: Decimal
    min_notional: Decimal
    max_notional: Decimal
    order_types: tuple[str, ...]
    price_precision: int
    quantity_precision: int
    base_asset_precision: int = 8
    quote_precision: int = 8
    path: str = ""
    brackets: tuple[Bracket, ...] = ()
    max_num_orders: int = 200  # MAX_NUM_ORDERS: open orders (resting and pending stops) per account and symbol
    max_num_algo_orders: int = 5  # MAX_NUM_ALGO_ORDERS: pending stop/take-profit/trailing orders of those
    # USD-M PERCENT_PRICE: a LIMIT price must lie within [mark * down, mark * up] (basis points of 1e-4)
    percent_up_bp: int = 10500
    percent_down_bp: int = 9500
    quote_decimals: int = AMOUNT_DECIMALS  # fine quote units of notionals: 1e-quote_decimals (see module doc)
    # derived ints, filled in __post_init__
    price_unit: int = field(default=0, repr=False)  # 1e-8 units per tick
    qty_unit: int = field(default=0, repr=False)  # 1e-8 units (of base) per lot
    notional_unit: int = field(default=0, repr=False)  # fine quote units per tick*lot
    quote_scale: int = field(default=1, repr=False)  # fine quote units per 1e-8
    min_price_ticks: int = field(default=0, repr=False)
    max_price_ticks: int = field(default=0, repr=False)
    min_qty_lots: int = field(default=0, repr=False)
    max_qty_lots: int = field(default=0, repr=False)
    market_max_lots: int = field(default=0, repr=False)
    min_notional_units: int = field(default=0, repr=False)
    max_notional_units: int = field(default=0, repr=False)
    # identity and parse caches, filled in __post_init__ (not compared, hashed, shown or accepted by __init__)
    is_futures: bool = field(default=False, init=False, repr=False, compare=False)
    margin_asset: str = field(default="", init=False, repr=False, compare=False)
    key: tuple[str, str] = field(default=("", ""), init=False, repr=False, compare=False)
    price_cache: dict[str, int] = field(default_factory=dict, init=False, repr=False, compare=False)
    qty_cache: dict[str, int] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        def exact(name: str, d: Decimal) -> int:
            v = d * AMOUNT_SCALE
            if v != v.to_integral_value() or v <= 0:
                raise ValueError(
                    f"market table: {self.market} {self.symbol}: {name}={d} is not a positive multiple of 1e-8"
                )
            return int(v)

        price_unit = exact("tick", self.tick_size)
        qty_unit = exact("step", self.step_size)
        if self.quote_decimals < AMOUNT_DECIMALS or (self.market != SPOT and self.quote_decimals != AMOUNT_DECIMALS):
            raise ValueError(
                f"market table: {self.market} {self.symbol}: quote_decimals={self.quote_decimals} "
                f"(spot: at least {AMOUNT_DECIMALS}; usdm: {AMOUNT_DECIMALS})"
            )
        fine = 10**self.quote_decimals
        notional = self.tick_size * self.step_size * fine
        if notional != notional.to_integral_value():
            raise ValueError(
                f"market table: {self.market} {self.symbol}: tick*step below 1e-{self.quote_decimals} "
                "(give the row a larger quote_decimals)"
            )
        s = object.__setattr__
        s(self, "price_unit", price_unit)
        s(self, "qty_unit", qty_unit)
        s(self, "notional_unit", int(notional))
        s(self, "quote_scale", fine // AMOUNT_SCALE)
        s(self, "min_price_ticks", int(self.min_price / self.tick_size))
        s(self, "max_price_ticks", int(self.max_price / self.tick_size))
        s(self, "min_qty_lots", int(self.min_qty / self.step_size))
        s(self, "max_qty_lots", int(self.max_qty / self.step_size))
        s(self, "market_max_lots", int(self.market_max_qty / self.step_size))
        s(self, "min_notional_units", int(self.min_notional * fine))
        s(self, "max_notional_units", int(self.max_notional * fine))
        # wire string -> ticks / lots for strings that passed every filter (plain attributes: not fields,
        # so equality, hashing and repr of the spec are unchanged)
        s(self, "price_cache", {})
        s(self, "qty_cache", {})
        # identity, precomputed (read on every order): USD-M perpetual?, margin asset, the book key
        s(self, "is_futures", self.market == USDM)
        s(self, "margin_asset", self.quote_asset)
        s(self, "key", (self.market, self.symbol))

    # ---- parsing (wire -> ints) -----------------------------------------------------------------
    def parse_price(self, value: str | Decimal, name: str = "price") -> int:
        """Price string -> int ticks. -1013 PRICE_FILTER if off-tick or outside [minPrice, maxPrice]."""
        cache: dict[str, int] = self.price_cache  # type: ignore[attr-defined]
        hit = cache.get(value) if value.__class__ is str else None  # type: ignore[arg-type]
        if hit is not None:
            return hit
        d = parse_decimal(name, value)
        if d <= 0:
            raise ExchangeError(-1013, "Invalid price.") if name == "price" else bad_param(name, value)
        t = d / self.tick_size
        if t != t.to_integral_value():
            raise filter_failure("PRICE_FILTER")
        ticks = int(t)
        if ticks < self.min_price_ticks or ticks > self.max_price_ticks:
            raise filter_failure("PRICE_FILTER")
        if value.__class__ is str:
            if len(cache) >= PARSE_CACHE_SIZE:
                cache.clear()
            cache[value] = ticks  # type: ignore[index]
        return ticks

    def parse_qty(self, value: str | Decimal, name: str = "quantity", market_order: bool = False) -> int:
        """Quantity string -> int lots. -1013 LOT_SIZE (or MARKET_LOT_SIZE) on off-step or out of range."""
        cache: dict[str, int] = self.qty_cache  # type: ignore[attr-defined]
        n = cache.get(value) if value.__class__ is str else None  # type: ignore[arg-type]
        if n is not None:
            if market_order and n > self.market_max_lots:
                raise filter_failure("MARKET_LOT_SIZE")
            return n
        d = parse_decimal(name, value)
        if d <= 0:
            raise ExchangeError(-1013, "Invalid quantity.")
        lots = d / self.step_size
        if lots != lots.to_integral_value():
            raise filter_failure("LOT_SIZE")
        n = int(lots)
        if n < self.min_qty_lots or n > self.max_qty_lots:
            raise filter_failure("LOT_SIZE")
        if value.__class__ is str:
            if len(cache) >= PARSE_CACHE_SIZE:
                cache.clear()
            cache[value] = n  # type: ignore[index]
        if market_order and n > self.market_max_lots:
            raise filter_failure("MARKET_LOT_SIZE")
        return n

    # ---- settlement of fine quote values (see the module docstring) -----------------------------
    def settled_quote(self, fine: int) -> int:
        """The 1e-8 amount a fill of ``fine`` quote units moves from buyer to seller: truncated."""
        return fine // self.quote_scale

    def lock_quote(self, fine: int) -> int:
        """The 1e-8 amount a buy of ``fine`` quote units locks: rounded up (covers the truncated fills)."""
        return -(-fine // self.quote_scale)

    def price_of(self, ticks: int) -> Decimal:
        """Int ticks -> exact Decimal price."""
        return self.tick_size * ticks

    def qty_of(self, lots: int) -> Decimal:
        """Int lots -> exact Decimal quantity."""
        return self.step_size * lots

    # ---- formatting (ints -> wire) --------------------------------------------------------------
    def fmt_price(self, ticks: int) -> str:
        """Price like Binance: spot 8 decimals ('50000.01000000'), futures pricePrecision ('50000.10')."""
        return fmt_scaled(
            ticks * self.price_unit, AMOUNT_DECIMALS, AMOUNT_DECIMALS if self.market == SPOT else self.price_precision
        )

    def fmt_qty(self, lots: int) -> str:
        """Quantity like Binance: spot 8 decimals, futures quantityPrecision ('0.001')."""
        return fmt_scaled(
            lots * self.qty_unit, AMOUNT_DECIMALS, AMOUNT_DECIMALS if self.market == SPOT else self.quantity_precision
        )

    def fmt_amount(self, units: int) -> str:
        """Quote/base amount (1e-8 units) with 8 decimals (cummulativeQuoteQty, commission, balances)."""
        return fmt_scaled(units, AMOUNT_DECIMALS)

    def fmt_avg_price(self, quote_units: int, lots: int) -> str:
        """Average fill price = quote / qty, exact to 8 decimals (truncated), '0.00000000' when no fill."""
        if lots == 0:
            return fmt_scaled(0, AMOUNT_DECIMALS, AMOUNT_DECIMALS if self.market == SPOT else 5)
        # price in 1e-8 units = quote_units / (lots * qty_unit) * 1e8
        v = quote_units * AMOUNT_SCALE // (lots * self.qty_unit)
        return fmt_scaled(v, AMOUNT_DECIMALS)

    def fmt_filter(self, d: Decimal) -> str:
        """A filter value like Binance spot exchangeInfo ('0.01000000') or futures ('0.10')."""
        if self.market == SPOT:
            return f"{d:.8f}"
        return format(d.normalize(), "f") if d == d.to_integral_value() else str(d)

    def bracket_for(self, notional_units: int) -> Bracket:
        """The leverage bracket for a position notional (amount units)."""
        for b in self.brackets:
            if notional_units < b.notional_cap:
                return b
        return self.brackets[-1]

    def max_leverage_for(self, notional_units: int) -> int:
        """Highest leverage allowed at this notional."""
        return self.bracket_for(notional_units).initial_leverage if self.brackets else 1


def _brackets(rows: tuple[tuple[str, int, str], ...]) -> tuple[Bracket, ...]:
    out: list[Bracket] = []
    floor = 0
    cum = Decimal(0)
    prev_mmr = Decimal(0)
    for i, (cap, lev, mmr) in enumerate(rows, 1):
        mmr_d = Decimal(mmr)
        cum += Decimal(floor) / AMOUNT_SCALE * (mmr_d - prev_mmr)
        cap_units = int(Decimal(cap) * AMOUNT_SCALE)
        if cap_units <= floor:
            raise ValueError("market table: brackets must ascend")
        out.append(Bracket(i, lev, cap_units, floor, mmr_d, cum))
        floor, prev_mmr = cap_units, mmr_d
    return tuple(out)


def _decimals(d: Decimal) -> int:
    """Number of decimals of a step like 0.001 (3)."""
    return max(0, -int(d.normalize().as_tuple().exponent))


def spec_from_row(row: dict[str, object]) -> SymbolSpec:
    """Build one ``SymbolSpec`` from a market-table row (see ``market_table.MARKETS``)."""
    market = str(row["market"])
    if market not in MARKET_KINDS:
        raise ValueError(f"market table: unknown market {market!r} (expected spot or usdm)")
    tick = Decimal(str(row["tick"]))
    step = Decimal(str(row["step"]))
    default_types = SPOT_ORDER_TYPES if market == SPOT else USDM_ORDER_TYPES
    return SymbolSpec(
        market=market,
        symbol=str(row["symbol"]),
        base_asset=str(row["base"]),
        quote_asset=str(row["quote"]),
        tick_size=tick,
        min_price=Decimal(str(row["min_price"])),
        max_price=Decimal(str(row["max_price"])),
        step_size=step,
        min_qty=Decimal(str(row["min_qty"])),
        max_qty=Decimal(str(row["max_qty"])),
        market_max_qty=Decimal(str(row["market_max_qty"])),
        min_notional=Decimal(str(row["min_notional"])),
        max_notional=Decimal(str(row["max_notional"])),
        order_types=tuple(row.get("order_types", default_types)),  # type: ignore[arg-type]
        price_precision=int(row.get("price_precision", _decimals(tick))),  # type: ignore[call-overload]
        quantity_precision=int(row.get("quantity_precision", _decimals(step))),  # type: ignore[call-overload]
        path=str(row.get("path", row["symbol"])),
        brackets=_brackets(row.get("brackets", ())),  # type: ignore[arg-type]
        max_num_orders=int(row.get("max_num_orders", 200)),  # type: ignore[call-overload]
        max_num_algo_orders=int(row.get("max_num_algo_orders", 5 if market == SPOT else 10)),  # type: ignore[call-overload]
        quote_decimals=int(row.get("quote_decimals", FINE_QUOTE_DECIMALS.get(str(row["quote"]), AMOUNT_DECIMALS))),  # type: ignore[call-overload]
    )


def default_specs() -> list[SymbolSpec]:
    """All markets of ``market_table.MARKETS``."""
    return [spec_from_row(r) for r in MARKETS]
