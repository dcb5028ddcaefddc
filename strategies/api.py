"""The strategy API: the arrays a strategy reads and writes, and the helpers it calls.

A strategy is three Numba-compiled functions over its own int64 ``params`` and ``state`` arrays:

    on_market(params, state, events, k, acc, pos, out) -> int   # market event k
    on_fill(params, state, fill, acc, pos, out) -> int   # one fill (or rejection) of its orders
    on_timer(params, state, now, acc, pos, out) -> int   # every `timer_ns` of market time

Each returns how many order intents it wrote into ``out`` (rows of ``IN_FIELDS``, at most
``out.shape[0]``). The backtest engine (``backtest.engine``) calls the very same functions inside its
compiled loop; the daemon calls them one event at a time through ``strategies.host.StrategyHost``.

Everything is int64, in the units of ``kernels/instruments.py``: prices in price units, quantities in
quantity units, money in 1e-8 USDT, time in ns UTC. ``acc`` (accounts x ``A_FIELDS``) and ``pos``
(accounts x instruments, signed quantity units) are the engine's live view of the accounts and are
read-only for a strategy.
"""

from __future__ import annotations

from numba import njit

from kernels.codes import BUY as BUY  # re-exported: a strategy needs only this module
from kernels.codes import LIMIT as LIMIT
from kernels.codes import MARKET as MARKET
from kernels.codes import SELL as SELL


def kernel(fn=None, **options):
    """``@kernel``: how strategy callbacks and the engine are compiled: ``njit(cache=True)`` without NRT.

    Without Numba's reference counting a call that passes arrays costs nothing extra: with it, every
    array argument of a branching callback is increfed and decrefed per event (measured: 45 M calls/s
    with NRT, 850 M without). The price: no array may be allocated inside (Numba refuses to compile it).
    """
    options.setdefault("cache", True)
    options.setdefault("nogil", True)  # sweeps run backtests on several threads at once
    options["_nrt"] = False
    if fn is None:
        return njit(**options)
    return njit(**options)(fn)


# ------------------------------------------------------------------ market events: (EV_FIELDS, n) int64
# Field-major: a strategy reads ``events[EV_CLOSE, k]``; a loop touches only the fields it needs.
EV_TS = 0  # when the event is known: a bar's close time, a trade's time (ns UTC)
EV_T0 = 1  # a bar's open time (a trade: its time); orders arriving by then trade against the open
EV_KIND = 2
EV_INST = 3  # instrument index
EV_OPEN = 4  # price units; a trade has open = high = low = close = its price
EV_HIGH = 5
EV_LOW = 6
EV_CLOSE = 7  # a funding event: the mark price
EV_VOLUME = 8  # quantity units traded in the bar / by the trade
EV_AUX = 9  # a trade: +1 buyer was the taker, -1 seller; a funding event: the rate in 1e-8
EV_FIELDS = 10

BAR = 0
TRADE = 1
FUNDING = 2

# ------------------------------------------------------------------ order intents: (k, IN_FIELDS) int64
IN_ACCOUNT = 0
IN_INST = 1
IN_SIDE = 2  # BUY (+1) or SELL (-1); ignored by cancels
IN_TYPE = 3  # LIMIT, MARKET, CANCEL (the order with IN_TAG), CANCEL_ALL (every order on IN_INST)
IN_PRICE = 4  # limit price in price units (0 for market orders)
IN_QTY = 5  # quantity units; with QUOTE_QTY, money units to spend (fees included); ignored with CLOSE
IN_FLAGS = 6
IN_TAG = 7  # the strategy's own order id (>= 0), echoed in fills, used by CANCEL
IN_FIELDS = 8
MAX_INTENTS = 64  # rows of `out` the engine and the host give a strategy per call

CANCEL = 100
CANCEL_ALL = 101

# Emulated intents: worked by the platform, not sent as one order (the daemon's ``stream.emulation``, the backtest's
# ``backtest.emulation``, over the same execution kernels). Their fills reach ``on_fill`` with the intent's IN_TAG.
# A TWAP parent: IN_QTY in equal slices (``kernels.execution.split_twap``) over a duration, each an IOC limit at
# IN_PRICE (0: a market child); ``IN_FLAGS`` = slices | duration_s << 16 (``emit_twap``).
TWAP = 110
# A percent-of-volume parent: IN_QTY as IOC children (limit IN_PRICE, 0: market) of at most a share of the market's
# volume since it started, until done or its duration ends; ``IN_FLAGS`` = participation ppm | duration_s << 20
# (``emit_pov``).
POV = 111
# Managed exits of the position the strategy's fills build on (IN_ACCOUNT, IN_INST), as ``risk.yaml`` ``exits:``
# rules (``oms.config.exits.ExitRule``): the exit rows of one call make the instrument's rule (replacing the last).
STOP_LOSS = 120  # IN_PRICE: exit all this far against the entry, in ppm of the entry price
TRAILING_STOP = 121  # IN_PRICE: exit all after this retracement from the best price since entry, ppm
MAX_HOLD = 122  # IN_PRICE: exit all this many seconds after the position opened
TAKE_PROFIT = 123  # IN_PRICE: this far in favour (ppm of entry), exit IN_QTY ppm of the opening size; one row a level
EXIT_TAG = 1 << 62  # the tag of the managed exits' orders (their fills reach on_fill with it)
EMULATED_FIRST = TWAP
EMULATED_LAST = TAKE_PROFIT
TWAP_SLICES_BITS = 16
POV_PPM_BITS = 20

# intent flags (bits)
REDUCE_ONLY = 1
POST_ONLY = 2  # a limit that would take liquidity on arrival is rejected instead
IOC = 4  # a limit that does not fill on its first eligible event is cancelled
QUOTE_QTY = 8  # IN_QTY is money to spend (Binance quoteOrderQty): quantity sized at the fill price
CLOSE = 16  # close the account's whole position on IN_INST (Binance closePosition)

# ------------------------------------------------------------------ account view: (accounts, A_FIELDS)
A_CASH = 0  # money units (spot: free cash; futures: wallet balance = deposits + realised - fees + funding)
A_EQUITY = 1  # cash + value of positions at the last marks (futures: + unrealised PnL)
A_OPEN_ORDERS = 2
A_FEES = 3  # fees paid so far
A_FUNDING = 4  # funding received (negative: paid)
A_LIQUIDATED = 5  # number of liquidations
A_MARGIN = 6  # initial margin of the open futures positions at the last marks
A_REALISED = 7  # realised PnL of futures positions
A_FIELDS = 8

# ------------------------------------------------------------------ fills: (n, F_FIELDS) int64
F_TS = 0
F_ACCOUNT = 1
F_INST = 2
F_SIDE = 3
F_PRICE = 4
F_QTY = 5  # 0 for a rejection
F_FEE = 6  # money units; for a rejection: the reason code (backtest.codes)
F_TAG = 7
F_FLAGS = 8
F_EVENT = 9  # index of the market event it happened on
F_FIELDS = 10

# fill flags (bits)
MAKER = 1
LIQUIDATION = 2
REJECTED = 4
PARTIAL = 8  # the order has quantity left after this fill


@kernel(inline="always")
def emit(out, n, account, inst, side, otype, price, qty, flags, tag):
    """Write one intent at row ``n`` of ``out``; returns ``n + 1`` (or ``n`` when ``out`` is full)."""
    if n >= out.shape[0]:
        return n
    out[n, IN_ACCOUNT] = account
    out[n, IN_INST] = inst
    out[n, IN_SIDE] = side
    out[n, IN_TYPE] = otype
    out[n, IN_PRICE] = price
    out[n, IN_QTY] = qty
    out[n, IN_FLAGS] = flags
    out[n, IN_TAG] = tag
    return n + 1


@kernel(inline="always")
def emit_twap(out, n, account, inst, side, qty, price, slices, duration_s, tag):
    """A TWAP parent (``TWAP``): ``qty`` in ``slices`` (1..65535) over ``duration_s`` seconds, limit ``price`` (0:
    market children)."""
    return emit(out, n, account, inst, side, TWAP, price, qty, slices | (duration_s << TWAP_SLICES_BITS), tag)


@kernel(inline="always")
def emit_pov(out, n, account, inst, side, qty, price, participation_ppm, duration_s, tag):
    """A percent-of-volume parent (``POV``): ``qty`` at ``participation_ppm`` (1..1e6) of the volume over
    ``duration_s`` seconds, limit ``price`` (0: market children)."""
    return emit(out, n, account, inst, side, POV, price, qty, participation_ppm | (duration_s << POV_PPM_BITS), tag)


@kernel(inline="always")
def emit_exit(out, n, account, inst, kind, value, qty):
    """One part of the managed exit rule of (account, inst): ``kind`` STOP_LOSS / TRAILING_STOP / MAX_HOLD /
    TAKE_PROFIT with its ``value`` (and a take-profit level's ``qty``, ppm of the opening size)."""
    return emit(out, n, account, inst, 0, kind, value, qty, 0, 0)


@kernel(inline="always")
def no_fill(params, state, fill, acc, pos, out):
    """An ``on_fill`` for strategies that ignore their fills."""
    return 0


@kernel(inline="always")
def no_timer(params, state, now, acc, pos, out):
    """An ``on_timer`` for strategies without timers."""
    return 0
