"""A money unit per quote currency: BTC-quoted markets (ETHBTC: tick 0.00001 x lot 0.0001 = 1e-9 BTC, below the
1e-8 of USDT) hold their orders, fills, positions and PnL exactly, from Binance's real ETHBTC filters through
both connectors' instrument parsers (python-binance's exchangeInfo wire structs, ccxt's own ``parse_market``)
into the positions kernel."""

from __future__ import annotations

from decimal import Decimal

import ccxt
import pytest

from kernels import codes as C
from kernels.positions import apply_fill, fee_for, transfer, update_mark
from kernels.state import A_CASH, KernelState
from oms.model import Instrument, InstrumentSpec, Market
from oms.model.units import QUOTE_MONEY_DECIMALS, money_decimals_of, money_from_units, money_to_units
from oms.venues.binance import wire_rest as wr
from oms.venues.binance.symbols import SymbolTable
from oms.venues.ccxt.parse import instrument_spec

# Binance's exchangeInfo entry for ETHBTC (filters as Binance publishes them)
ETHBTC_INFO = {
    "symbol": "ETHBTC", "status": "TRADING", "baseAsset": "ETH", "baseAssetPrecision": 8, "quoteAsset": "BTC",
    "quotePrecision": 8, "quoteAssetPrecision": 8, "baseCommissionPrecision": 8, "quoteCommissionPrecision": 8,
    "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT",
                   "TAKE_PROFIT_LIMIT"],
    "icebergAllowed": True, "ocoAllowed": True, "isSpotTradingAllowed": True, "isMarginTradingAllowed": True,
    "permissions": [], "permissionSets": [["SPOT", "MARGIN"]], "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
    "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
    "filters": [
        {"filterType": "PRICE_FILTER", "minPrice": "0.00001000", "maxPrice": "922327.00000000",
         "tickSize": "0.00001000"},
        {"filterType": "LOT_SIZE", "minQty": "0.00010000", "maxQty": "100000.00000000", "stepSize": "0.00010000"},
        {"filterType": "ICEBERG_PARTS", "limit": 10},
        {"filterType": "MARKET_LOT_SIZE", "minQty": "0.00000000", "maxQty": "2037.61250000",
         "stepSize": "0.00000000"},
        {"filterType": "TRAILING_DELTA", "minTrailingAboveDelta": 10, "maxTrailingAboveDelta": 2000,
         "minTrailingBelowDelta": 10, "maxTrailingBelowDelta": 2000},
        {"filterType": "PERCENT_PRICE_BY_SIDE", "bidMultiplierUp": "5", "bidMultiplierDown": "0.2",
         "askMultiplierUp": "5", "askMultiplierDown": "0.2", "avgPriceMins": 5},
        {"filterType": "NOTIONAL", "minNotional": "0.00010000", "applyMinToMarket": True,
         "maxNotional": "9000000.00000000", "applyMaxToMarket": False, "avgPriceMins": 5},
        {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": 200},
        {"filterType": "MAX_NUM_ALGO_ORDERS", "maxNumAlgoOrders": 5},
    ],
}  # fmt: skip
PICO = 10**12  # money units in one BTC


def binance_ethbtc() -> Instrument:
    info = wr.convert({"timezone": "UTC", "serverTime": 0, "rateLimits": [], "symbols": [ETHBTC_INFO]}, wr.ExchangeInfo)
    table = SymbolTable.from_exchange_info(info, Market.SPOT)
    assert table.unusable == {}
    return table.instruments["ETH/BTC"]


def test_the_money_unit_follows_the_quote_currency():
    assert money_decimals_of("USDT") == 8 and money_decimals_of("btc") == QUOTE_MONEY_DECIMALS["BTC"] == 12
    eth = binance_ethbtc()
    assert (eth.money_decimals, eth.tick, eth.lot, eth.mult) == (12, 1, 1, 1000)  # 1e-9 BTC = 1000 x 1e-12
    assert eth.min_notional == 100_000_000  # 0.0001 BTC
    btc = Instrument(InstrumentSpec("BTC/USDT", quote_asset="USDT"))
    assert (btc.money_decimals, btc.mult) == (8, 10)  # unchanged: 0.01 x 0.00001 = 1e-7 USDT
    synthetic = Instrument(InstrumentSpec("ETH/BTC", tick_size="0.00001", step_size="0.0001"))
    assert synthetic.money_decimals == 12  # the quote read from the unified symbol
    own = Instrument(InstrumentSpec("ETH/BTC", tick_size="0.00001", step_size="0.0001", money_decimals=9))
    assert own.mult == 1
    with pytest.raises(ValueError, match=r"not a whole number of money units \(0.00000001 USDT\).*money_decimals"):
        Instrument(InstrumentSpec("X/USDT", tick_size="0.00001", step_size="0.0001", quote_asset="USDT"))
    with pytest.raises(ValueError, match="money_decimals must be an int in"):
        Instrument(InstrumentSpec("ETH/BTC", money_decimals=40))


def test_an_ethbtc_order_and_its_notional_are_exact():
    eth = binance_ethbtc()
    eth.check_order("0.03512", "0.0029")  # 0.000101848 BTC: above the 0.0001 minimum
    assert eth.notional_str("0.03512", "0.0029") == "0.000101848"
    with pytest.raises(ValueError, match=r"ETH/BTC notional 0.00007024: outside \[0.00010000"):
        eth.check_order("0.03512", "0.002")
    with pytest.raises(ValueError, match="not a multiple of 0.00001"):
        eth.check_order("0.035125", "0.01")
    n = eth.notional(eth.price("0.03512"), eth.qty("0.0001"))
    assert eth.money_str(n) == "0.000003512" and eth.money("0.000003512") == n
    assert money_from_units(n, 12) == Decimal("0.000003512") and money_to_units("0.000003512", decimals=12) == n
    with pytest.raises(ValueError, match="ETH/BTC commission: 0.0000000000001 is not a multiple of 0.000000000001"):
        eth.money("1E-13", "commission")


def test_ccxt_parses_the_same_ethbtc_instrument():
    exchange = ccxt.binance()
    exchange.options.update(crossMarginPairsData=[], isolatedMarginPairsData=[])  # what fetch_markets sets first
    market = exchange.parse_market(ETHBTC_INFO)
    inst = Instrument(instrument_spec("binance", market, exchange.precisionMode))
    ref = binance_ethbtc()
    assert (inst.symbol, inst.spec.venue_symbol, inst.spec.quote_asset) == ("ETH/BTC", "ETHBTC", "BTC")
    assert (inst.tick_size, inst.step_size, inst.mult, inst.min_notional, inst.money_decimals) == (
        ref.tick_size, ref.step_size, ref.mult, ref.min_notional, ref.money_decimals,
    )  # fmt: skip


def test_an_ethbtc_position_and_its_pnl_are_exact_in_the_kernel():
    eth = binance_ethbtc()
    ks = KernelState(1, 1)
    ks.set_instrument(0, eth)
    transfer(*ks.blocks, 0, 1 * PICO)  # 1 BTC of cash, in the account's (BTC) money unit
    b = ks.blocks
    buy_fee = fee_for(eth.notional(eth.price("0.03512"), eth.qty("1.2345")), 1000)  # 0.1% in ppm
    assert apply_fill(*b, 0, 0, C.BUY, C.POS_BOTH, eth.price("0.03512"), eth.qty("1.2345"), buy_fee) == C.OK
    assert eth.money_str(ks.position(0, 0)["cost"]) == "0.04335564"  # 1.2345 x 0.03512, exactly
    assert eth.money_str(buy_fee) == "0.00004335564"
    assert apply_fill(*b, 0, 0, C.SELL, C.POS_BOTH, eth.price("0.03519"), eth.qty("0.6"), 0) == C.OK
    p = ks.position(0, 0)
    # realised: 0.6 x (0.03519 - 0.03512) = 0.000042 BTC; the rest keeps its cost at the entry price
    assert eth.money_str(p["realised"]) == "0.000042" and eth.qty_str(p["qty"]) == "0.6345"
    assert Decimal(eth.money_str(p["cost"])) == Decimal("0.6345") * Decimal("0.03512")
    update_mark(*b, 0, eth.price("0.03601"))
    cash = (
        Decimal(1)
        - Decimal("1.2345") * Decimal("0.03512")
        - Decimal("0.00004335564")
        + Decimal("0.6") * Decimal("0.03519")
    )
    assert Decimal(eth.money_str(ks.acc[A_CASH, 0])) == cash
    assert Decimal(eth.money_str(ks.equity(0))) == cash + Decimal("0.6345") * Decimal("0.03601")
