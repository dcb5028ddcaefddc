"""The benchmark's SMA 10/30 cross in nautilus_trader, run by tests/bench/test_backtest_bench.py in .venv-nautilus.

nautilus_trader cannot share the project's .venv (it needs pandas < 3, vectorbt needs pandas >= 3), so the bench
runs this file as a subprocess in its own venv (tests/bench/nautilus_venv.py). It imports nothing of the project.

    python nautilus_sma.py BARS.csv FAST SLOW CASH FEE

BARS.csv: the bench's bars, one a line ``t0_ns,open,high,low,close,volume`` in the engine's integer units (prices in
0.01 USDT, volume in 0.00001 BTC), read from datasets/market by the project's own loader. Prints one JSON object:
``fills`` ([bar, side (+1 buy / -1 sell), price, lots of 0.00001 BTC]), ``trades`` (round trips), ``final_equity``
(USDT cash plus BTC held at the last close), ``wall_s``/``cpu_s`` (the engine's run alone, without building data).

The rule, as everywhere in the bench: on closes, the fast average crosses above the slow one (the sign of
fast - slow goes from < 0 on the previous bar to > 0 on this one): buy with all cash at the next bar's open, 0.1%
taker fee included, in whole 0.00001 BTC lots; crossing below: sell everything at the next open. The averages
are nautilus's SimpleMovingAverage over the bars.

Next-open fills in nautilus: a market order fills at once against the current market, which after a bar is that
bar's close. So every bar is given as two data points: a trade tick at the bar's open (at its open time) and the
bar itself (at its close time less 1 ns, so it sorts before the next bar's open tick). The strategy decides on the
bar and sends the market order on the next open tick, where it fills at that open. nautilus fills a market order
only up to the size of the last trade (an order larger than the bar's volume fills in part), while the other
engines ignore volume: so the open tick carries a depth of 1,000,000 BTC and only the open price decides a fill.
"""

from __future__ import annotations

import json
import sys
import time
from decimal import Decimal

import nautilus_trader
import numpy as np
from nautilus_trader.backtest.engine import BacktestEngine, BacktestEngineConfig
from nautilus_trader.config import LoggingConfig
from nautilus_trader.indicators import SimpleMovingAverage
from nautilus_trader.model.currencies import BTC, USDT
from nautilus_trader.model.data import Bar, BarType, TradeTick
from nautilus_trader.model.enums import AccountType, AggressorSide, OmsType, OrderSide, TimeInForce
from nautilus_trader.model.identifiers import InstrumentId, Symbol, TradeId, Venue
from nautilus_trader.model.instruments import CurrencyPair
from nautilus_trader.model.objects import Money, Price, Quantity
from nautilus_trader.trading.strategy import Strategy, StrategyConfig

VENUE = Venue("SIM")
LOT = 100_000  # lots per BTC
PX = 100  # price units per USDT
MONEY = 100_000_000  # money units (1e-8 USDT) per USDT
DEPTH = Quantity(1_000_000, 5)  # BTC at each open (see above)


class CrossConfig(StrategyConfig, frozen=True):
    instrument_id: InstrumentId
    bar_type: BarType
    fast: int
    slow: int
    fee_ppm: int


class Cross(Strategy):
    def __init__(self, config: CrossConfig) -> None:
        super().__init__(config)
        self.fast = SimpleMovingAverage(config.fast)
        self.slow = SimpleMovingAverage(config.slow)
        self.prev = 0
        self.pending = 0  # +1 buy / -1 sell at the next open
        self.held = 0  # lots
        self.bars = 0  # bars seen; the next open tick is bar `self.bars`
        self.fills: list[list[int]] = []

    def on_start(self) -> None:
        self.instrument = self.cache.instrument(self.config.instrument_id)
        self.register_indicator_for_bars(self.config.bar_type, self.fast)
        self.register_indicator_for_bars(self.config.bar_type, self.slow)
        self.subscribe_bars(self.config.bar_type)
        self.subscribe_trade_ticks(self.config.instrument_id)

    def on_bar(self, bar: Bar) -> None:
        self.bars += 1
        if not self.slow.initialized:
            return
        d = self.fast.value - self.slow.value
        sign = 1 if d > 0 else (-1 if d < 0 else 0)
        if self.bars > self.config.slow:  # the first full window has no previous comparison
            if self.prev < 0 and sign > 0 and self.held == 0:
                self.pending = 1
            elif self.prev > 0 and sign < 0 and self.held > 0:
                self.pending = -1
        self.prev = sign

    def on_trade_tick(self, tick: TradeTick) -> None:
        if self.pending == 0:
            return
        p = int(tick.price.as_decimal() * PX)
        fee = self.config.fee_ppm
        if self.pending > 0:
            cash = int(self.portfolio.account(VENUE).balance_total(USDT).as_decimal() * MONEY)
            # the largest whole number of lots whose cost and fee (rounded up to 1e-8 USDT) the cash covers
            q = cash // (p * 10 + p * 10 * fee // 1_000_000 + 1)
            while (q + 1) * p * 10 + -(-(q + 1) * p * 10 * fee // 1_000_000) <= cash:
                q += 1
            while q > 0 and q * p * 10 + -(-q * p * 10 * fee // 1_000_000) > cash:
                q -= 1
            side, qty = OrderSide.BUY, q
        else:
            side, qty = OrderSide.SELL, self.held
        self.pending = 0
        if qty > 0:
            order = self.order_factory.market(
                self.config.instrument_id, side, Quantity(Decimal(qty) / LOT, 5), time_in_force=TimeInForce.IOC
            )
            self.submit_order(order)

    def on_order_filled(self, event) -> None:
        lots = int(event.last_qty.as_decimal() * LOT)
        side = 1 if event.order_side == OrderSide.BUY else -1
        self.held += side * lots
        price = int(event.last_px.as_decimal() * PX)
        # the fill's bar: the open tick it traded on belongs to bar `self.bars` (0-based)
        self.fills.append([self.bars, side, price, lots])


def main(path: str, fast: int, slow: int, cash: int, fee: Decimal) -> None:
    rows = np.loadtxt(path, delimiter=",", dtype=np.int64, ndmin=2)
    t0, opn, high, low, close, volume = rows.T
    hour = int(t0[1] - t0[0])
    inst_id = InstrumentId(Symbol("BTCUSDT"), VENUE)
    pair = CurrencyPair(
        inst_id, Symbol("BTCUSDT"), BTC, USDT, 2, 5, Price.from_str("0.01"), Quantity.from_str("0.00001"), 0, 0,
        maker_fee=fee, taker_fee=fee,
    )  # fmt: skip
    bar_type = BarType.from_str("BTCUSDT.SIM-1-HOUR-LAST-EXTERNAL")
    data: list = []
    for k in range(len(rows)):
        size = Quantity(Decimal(int(max(volume[k], 1))) / LOT, 5)
        ts = int(t0[k])
        data.append(TradeTick(inst_id, Price(Decimal(int(opn[k])) / PX, 2), DEPTH, AggressorSide.NO_AGGRESSOR,
                              TradeId(str(k)), ts, ts))  # fmt: skip
        data.append(Bar(bar_type, Price(Decimal(int(opn[k])) / PX, 2), Price(Decimal(int(high[k])) / PX, 2),
                        Price(Decimal(int(low[k])) / PX, 2), Price(Decimal(int(close[k])) / PX, 2), size,
                        ts + hour - 1, ts + hour - 1))  # fmt: skip
    engine = BacktestEngine(BacktestEngineConfig(logging=LoggingConfig(log_level="ERROR")))
    engine.add_venue(VENUE, OmsType.NETTING, AccountType.CASH, [Money(cash, USDT), Money(0, BTC)],
                     base_currency=None, bar_execution=True, trade_execution=True)  # fmt: skip
    engine.add_instrument(pair)
    engine.add_data(data)
    strategy = Cross(CrossConfig(instrument_id=inst_id, bar_type=bar_type, fast=fast, slow=slow,
                                 fee_ppm=int(fee * 1_000_000)))  # fmt: skip
    engine.add_strategy(strategy)
    w, c = time.perf_counter(), time.thread_time()
    engine.run()
    cpu, wall = time.thread_time() - c, time.perf_counter() - w
    account = engine.portfolio.account(VENUE)
    usdt = account.balance_total(USDT).as_decimal()
    btc = account.balance_total(BTC).as_decimal() if account.balance_total(BTC) is not None else Decimal(0)
    final = usdt + btc * Decimal(int(close[-1])) / PX
    buys = sum(1 for f in strategy.fills if f[1] > 0)
    out = {"fills": strategy.fills, "trades": buys, "final_equity": str(final), "wall_s": wall, "cpu_s": cpu,
           "bars": len(rows), "btc_held": str(btc), "version": nautilus_trader.__version__}  # fmt: skip
    engine.dispose()
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), Decimal(sys.argv[5]))
