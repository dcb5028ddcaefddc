"""Risk limits across quote currencies: a notional in BTC (ETH/BTC) checked against limits set in USDT.

``risk.yaml``'s money limits are in USDT (``max_order_notional_usdt``, ``max_position_notional_usdt``) and the
risk kernel compares them with an order's notional in the instrument's own money unit: right for every
USDT-quoted instrument, wrong for one quoted in another asset (ETH/BTC's notional is in 1e-12 BTC). For those
instruments ``QuoteLimits.check`` (the gateway's ``quote_check`` hook, before the kernel, for placements, amends
and cancel-replaces alike: ``stream.amend.gate``) converts the notional
into USDT with the live mark of the quote's USDT pair on the same exchange (``BTC/USDT``, or the pair named in
``risk.yaml`` ``quote_rates``) and applies the two limits exactly as the kernel does:

* an order that does not only reduce its position: its notional (the limit price, or the mark for a market or
  stop order) must not exceed ``max_order_notional_usdt``;
* the worst case on its side (position plus every open order on that side plus this one), at the mark, must
  not exceed ``max_position_notional_usdt``.

USDT values are rounded up to the 1e-8 unit (a conversion never lets an order through by rounding). When the
conversion pair is not among the daemon's instruments, or has no mark yet, such an order is refused
(``risk:NO_QUOTE_RATE``, naming the pair): it is never passed unchecked. An order that only reduces its
position needs no money limit and is left to the kernel. USDT-quoted instruments cost one dict lookup.

The rest of the account's money (cash moves, position value, gross exposure, perpetual cost: so the gross
exposure, leverage, daily-loss and drawdown checks, per account and global, and the circuit breaker's PnL) is
converted in the kernels at each instrument's rate (``kernels.quote_rates``). ``push_rates()`` writes every
cross instrument's rate (its pair's mark x the units' ratio, or 0 while there is none) into the kernel state;
the risk controls call it on their timer and before each breaker tick, and ``check`` first brings its own
instrument's rate up to the live mark, so this check and the kernel's always use the same rate. Nothing is
computed per order for USDT-quoted instruments.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from fractions import Fraction

from kernels import codes as C
from kernels.quote_rates import LIMIT_CURRENCY, set_quote_rate
from kernels.state import (
    A_POS_MODE,
    I_MARK,
    I_MULT,
    I_RATE_DEN,
    I_RATE_NUM,
    L_MAX_ORDER_NOTIONAL,
    L_MAX_POSITION_NOTIONAL,
    P_OPEN_BUY,
    P_OPEN_SELL,
    P_QTY,
    KernelState,
)
from oms.model import OrderType
from oms.model.units import money_unit
from stream.instruments import InstrumentTable, UnknownInstrument, quote_of

LIMIT_UNIT = money_unit(8)  # the kernel's limits: 1e-8 USDT
NO_QUOTE_RATE = "risk:NO_QUOTE_RATE"
_LIMIT_PRICED = frozenset(
    C.ORDER_TYPE_CODES[t]
    for t in (OrderType.LIMIT, OrderType.LIMIT_MAKER, OrderType.STOP_LIMIT, OrderType.TAKE_PROFIT_LIMIT)
)
_SAME = None  # per instrument: quoted in the limit currency, nothing to convert


class _Cross:
    """One instrument quoted in another asset: its conversion pair and the factor to 1e-8 USDT."""

    __slots__ = ("symbol", "quote", "pair", "rate_i", "num", "den")

    def __init__(self, symbol: str, quote: str, pair: str, rate_i: int, factor: Fraction):
        self.symbol, self.quote, self.pair, self.rate_i = symbol, quote, pair, rate_i
        self.num, self.den = factor.numerator, factor.denominator

    def usdt(self, units: int, rate_mark: int) -> int:
        """``units`` of the instrument's money at the pair's mark, in 1e-8 USDT, rounded up."""
        return -(-units * rate_mark * self.num // self.den)

    def rate(self, rate_mark: int) -> tuple[int, int]:
        """The kernel's rate (``I_RATE_NUM``, ``I_RATE_DEN``) at the pair's mark: (0, 1) without a mark."""
        return (rate_mark * self.num, self.den) if rate_mark > 0 else (0, 1)


def _show(units: int) -> str:
    return f"{Decimal(units) * LIMIT_UNIT:f}"


class QuoteLimits:
    """The order-notional and position-notional limits, in USDT, for instruments quoted in another asset."""

    def __init__(self, state: KernelState, instruments: InstrumentTable, rates: Mapping[str, str] | None = None):
        self.state = state
        self.instruments = instruments
        self.rates = dict(rates or {})  # quote asset -> its USDT pair's unified symbol (default "{asset}/USDT")
        self._plans: dict[int, _Cross | str | None] = {}  # instrument -> _SAME, a _Cross, or why there is no pair
        self._blocks = tuple(state.blocks)
        self.refused = 0
        self.pushes = 0  # rates changed in the kernel state

    def push_rates(self) -> int:
        """Every cross-quoted instrument's rate into the kernel state (``kernels.quote_rates``), at its pair's
        mark now; 0 (no rate: entries refused) for one whose pair is not an instrument or has no mark. Returns
        how many rates changed."""
        changed = 0
        for i in range(len(self.instruments)):
            plan = self._plans.get(i, 0)
            if plan is _SAME:
                continue
            if plan == 0:
                plan = self._plan(i)
                if plan is _SAME:
                    self._plans[i] = _SAME
                    continue
            changed += self._sync(i, plan)
        return changed

    def _sync(self, i: int, plan: _Cross | str) -> int:
        """Instrument i's kernel rate as the plan says now; 1 when it changed."""
        ins = self.state.ins
        num, den = plan.rate(int(ins[I_MARK, plan.rate_i])) if isinstance(plan, _Cross) else (0, 1)
        if ins[I_RATE_NUM, i] == num and ins[I_RATE_DEN, i] == den:
            return 0
        set_quote_rate(*self._blocks, i, num, den)
        self.pushes += 1
        return 1

    def pair_of(self, quote: str) -> str:
        return self.rates.get(quote, f"{quote}/{LIMIT_CURRENCY}")

    def _plan(self, i: int) -> _Cross | str | None:
        exchange, ins = self.instruments.instrument(i)
        quote = quote_of(ins)
        if quote in ("", LIMIT_CURRENCY):  # "": a synthetic name (kernel set-ups), money taken as USDT
            return _SAME
        pair = self.pair_of(quote)
        try:
            rate_i, rate = self.instruments.lookup(exchange, pair)
        except UnknownInstrument:
            # not cached: the pair may be loaded later
            return (
                f"{ins.symbol}'s notional is in {quote} and the limits in {LIMIT_CURRENCY}: {pair} is not an "
                f"instrument of this daemon on {exchange} (stream it: stream.yaml daemon.markets, or name the "
                f"pair in risk.yaml quote_rates)"
            )
        if quote_of(rate) != LIMIT_CURRENCY:
            return f"{pair}, the conversion pair of {quote}, is not quoted in {LIMIT_CURRENCY}"
        # instrument money units -> quote asset -> x (rate ticks x rate price unit) -> 1e-8 USDT
        factor = Fraction(ins.money_unit) * Fraction(rate.price_unit) / Fraction(LIMIT_UNIT)
        plan = self._plans[i] = _Cross(ins.symbol, quote, pair, rate_i, factor)
        return plan

    def check(
        self, a: int, i: int, side: int, otype: int, price: int, qty: int, reduce_only: bool, pos_side: int
    ) -> tuple[str, str] | None:
        """None when the kernel's own check is right for the order (USDT-quoted, or it only reduces), or the
        order passes the converted limits; else a refusal ``(code, reason)``."""
        plan = self._plans.get(i, 0)
        if plan is _SAME:
            return None
        if plan == 0:
            plan = self._plan(i)
            if plan is _SAME:
                self._plans[i] = _SAME
                return None
        self._sync(i, plan)  # the kernel converts this order's instrument at the same rate as here
        s = self.state
        slot = 1 if pos_side == C.POS_SHORT else 0
        q = int(s.pos[P_QTY, a, i, slot])
        if s.acc[A_POS_MODE, a] == C.HEDGE:
            reduces = (pos_side == C.POS_LONG) == (side == C.SELL) and qty <= abs(q)
        else:
            reduces = q != 0 and (q > 0) == (side == C.SELL) and qty <= abs(q)
        if reduces:
            return None  # no money limit applies (the kernel's rule); the kernel still gates it
        if isinstance(plan, str):
            return self._refuse(NO_QUOTE_RATE, plan)
        rate_mark = int(s.ins[I_MARK, plan.rate_i])
        if rate_mark <= 0:
            return self._refuse(
                NO_QUOTE_RATE,
                f"no {plan.pair} mark yet to convert {plan.symbol}'s {plan.quote} notional into {LIMIT_CURRENCY}",
            )
        mark = int(s.ins[I_MARK, i])
        if mark <= 0:
            return None  # the kernel refuses it: NO_MARK_PRICE
        mult = int(s.ins[I_MULT, i])
        at = price if otype in _LIMIT_PRICED else mark
        notional = plan.usdt(at * qty * mult, rate_mark)
        limit = int(s.lim[L_MAX_ORDER_NOTIONAL, a])
        if notional > limit:
            return self._refuse(
                f"risk:{C.reason_name(C.MAX_ORDER_NOTIONAL)}",
                f"order notional {_show(notional)} {LIMIT_CURRENCY} ({plan.symbol} at the {plan.pair} mark) is above "
                f"the account's max_order_notional_usdt {_show(limit)}",
            )
        if side == C.BUY:
            worst = q + int(s.pos[P_OPEN_BUY, a, i, slot]) + qty
        else:
            worst = int(s.pos[P_OPEN_SELL, a, i, slot]) + qty - q
        limit = int(s.lim[L_MAX_POSITION_NOTIONAL, a])
        if worst > 0 and (value := plan.usdt(mark * worst * mult, rate_mark)) > limit:
            return self._refuse(
                f"risk:{C.reason_name(C.MAX_POSITION)}",
                f"position with open orders {_show(value)} {LIMIT_CURRENCY} ({plan.symbol} at the {plan.pair} mark) "
                f"would be above the account's max_position_notional_usdt {_show(limit)}",
            )
        return None

    def _refuse(self, code: str, reason: str) -> tuple[str, str]:
        self.refused += 1
        return code, reason
