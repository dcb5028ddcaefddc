"""The ccxt connector's pure parts: numbers, URL moving, the error sort, capabilities, event kinds."""

from __future__ import annotations

from decimal import Decimal

import aiohttp
import ccxt
import ccxt.pro as ccxt_pro
import pytest

from oms.model import Market, OrderEventKind, OrderStatus, OrderType, TimeInForce
from oms.venues.ccxt import parse
from oms.venues.ccxt.config import exchange_config, move_urls
from oms.venues.ccxt.errors import Kind, classify, to_venue_error, venue_code_and_message
from oms.venues.ccxt.metadata import capabilities_from, metadata_for, trigger_book
from oms.venues.errors import NetworkError, RateLimited, Rejected, UnknownOutcome


@pytest.mark.parametrize(
    ("value", "text"),
    [(0.001, "0.001"), (1e-05, "0.00001"), (100.0, "100"), (-0.0, "0"), (7336.3, "7336.3"), (12, "12"),
     ("0.0100", "0.01"), (1e21, "1000000000000000000000")],
)  # fmt: skip
def test_ccxt_numbers_become_their_decimal_strings(value, text) -> None:
    assert parse.dec(value, "x") == text


@pytest.mark.parametrize("bad", [None, True, float("nan"), float("inf"), "abc"])
def test_bad_numbers_raise_naming_the_field(bad) -> None:
    with pytest.raises(parse.BadValue, match="trade price"):
        parse.dec(bad, "trade price")


def test_local_urls_move_onto_the_endpoints_with_paths_kept() -> None:
    api = ccxt_pro.binance().urls["api"]
    moved = move_urls(api, "http://h:1", "ws://h:1/fstream", "ws://h:1/ws-fapi/v1")
    assert moved["fapiPrivate"] == "http://h:1/fapi/v1" and moved["public"] == "http://h:1/api/v3"
    assert moved["ws"]["linear"] == "ws://h:1/fstream/ws"
    assert moved["ws"]["ws-api"]["linear"] == "ws://h:1/ws-fapi/v1"
    spot = exchange_config("binance", "spot", "local", "http://h:1", "ws://h:1", "ws://h:1/ws-api/v3")
    assert spot["urls"]["api"]["ws"]["spot"] == "ws://h:1/stream/ws"  # ccxt.pro tells Spot by /stream
    assert spot["urls"]["api"]["ws"]["ws-api"]["spot"] == "ws://h:1/ws-api/v3"
    assert spot["options"]["fetchCurrencies"] is False and spot["options"]["defaultType"] == "spot"
    live = exchange_config("bybit", "usdm", "live", "https://api.bybit.com")
    assert "urls" not in live and live["options"]["defaultType"] == "swap"


def _cut() -> ccxt.ExchangeNotAvailable:
    try:
        raise ccxt.ExchangeNotAvailable("binance POST /api/v3/order") from aiohttp.ServerDisconnectedError()
    except ccxt.ExchangeNotAvailable as exc:
        return exc


def _refused() -> ccxt.ExchangeNotAvailable:
    key = aiohttp.client_reqrep.ConnectionKey("h", 1, False, True, None, None, None)
    try:
        raise ccxt.ExchangeNotAvailable("binance GET") from aiohttp.ClientConnectorError(key, OSError(111, "refused"))
    except ccxt.ExchangeNotAvailable as exc:
        return exc


@pytest.mark.parametrize(
    ("exc", "state_changing", "kind"),
    [
        (ccxt.RequestTimeout("binance POST"), True, Kind.UNKNOWN),
        (ccxt.RequestTimeout("binance GET"), False, Kind.NETWORK),
        (_cut(), True, Kind.UNKNOWN),
        (_refused(), True, Kind.NETWORK),  # the request never left
        (ccxt.DDoSProtection("binance 429"), True, Kind.RATE_LIMITED),
        (ccxt.RateLimitExceeded("binance"), False, Kind.RATE_LIMITED),
        (ccxt.InvalidNonce('binance {"code":-1021,"msg":"Timestamp"}'), True, Kind.CLOCK),
        (ccxt.PermissionDenied("binance"), False, Kind.AUTH),
        (ccxt.OrderNotFound('binance {"code":-2013,"msg":"Order does not exist."}'), False, Kind.NOT_FOUND),
        (ccxt.NotSupported("binance"), False, Kind.NOT_SUPPORTED),
        (ccxt.InsufficientFunds("binance"), True, Kind.REJECTED),
        (ccxt.BadSymbol("binance"), True, Kind.REJECTED),
        (ccxt.BadResponse("binance <html>"), True, Kind.UNKNOWN),
    ],
)
def test_every_ccxt_error_class_sorts_into_what_a_caller_can_do(exc, state_changing, kind) -> None:
    assert classify(exc, state_changing=state_changing).kind is kind


def test_venue_code_from_the_text_a_dict_repr_or_the_answer() -> None:
    assert venue_code_and_message(ccxt.InvalidOrder('binance {"code":-1013,"msg":"Filter failure: NOTIONAL"}')) == (
        "-1013",
        "Filter failure: NOTIONAL",
    )
    assert venue_code_and_message(ccxt.InvalidOrder("binance {'code': -1013, 'msg': 'x'}")) == ("-1013", "x")
    msg = "Order would immediately match and take."
    answer = {"code": -2010, "msg": msg}
    assert venue_code_and_message(ccxt.OrderImmediatelyFillable(f"binance {msg}"), answer) == ("-2010", msg)
    stale = {"code": -2010, "msg": "another request's error"}
    assert venue_code_and_message(ccxt.InvalidOrder("binance x"), stale) == (None, "binance x")


def test_typed_errors_name_action_order_and_account() -> None:
    err = to_venue_error(
        ccxt.InvalidOrder('binance {"code":-1013,"msg":"Filter failure: LOT_SIZE"}'),
        state_changing=True, action="place", account="bybit/sub_mm", order="oms-1",
    )  # fmt: skip
    assert isinstance(err, Rejected) and err.code == -1013
    assert str(err) == "failed to place order oms-1 for bybit/sub_mm: venue rejected (-1013): Filter failure: LOT_SIZE"
    unknown = to_venue_error(_cut(), state_changing=True, action="cancel", account="a/b", order="x")
    assert isinstance(unknown, UnknownOutcome) and str(unknown).startswith("failed to cancel order x for a/b: sent")
    assert isinstance(to_venue_error(_refused(), state_changing=True, action="place", account="a/b"), NetworkError)
    limited = to_venue_error(
        ccxt.DDoSProtection("binance 429 Too Many Requests"), state_changing=False, action="read balances",
        account="a/b", headers={"Retry-After": "7"},
    )  # fmt: skip
    assert isinstance(limited, RateLimited) and limited.retry_after_s == 7.0


def test_capabilities_from_has_and_features() -> None:
    ex = ccxt_pro.binance()
    spot = capabilities_from(ex.has, ex.features, Market.SPOT)
    perp = capabilities_from(ex.has, ex.features, Market.USDM)
    assert OrderType.STOP_LIMIT in spot.order_types and OrderType.LIMIT_MAKER in spot.order_types
    assert OrderType.STOP_MARKET in perp.order_types and OrderType.TRAILING_STOP_MARKET in perp.order_types
    assert OrderType.TAKE_PROFIT_LIMIT in perp.order_types and OrderType.LIMIT_MAKER in perp.order_types
    # USD-M trigger orders live in the Algo Order API's book: reached with ccxt's ``trigger`` flag
    assert trigger_book(ex.features, Market.USDM) and not trigger_book(ex.features, Market.SPOT)
    assert not spot.amend and perp.amend and perp.batch_orders and perp.max_batch == 5 and not spot.batch_orders
    assert perp.hedge_mode and perp.leverage and not spot.leverage and not perp.sub_account_transfer
    assert TimeInForce.GTX in perp.time_in_force
    meta = metadata_for("binance", "binance", "spot")
    # weights in ccxt's cost units (Binance: weight / 5), whose budget is 60000 / rateLimit per minute
    assert meta.weight("POST /api/v3/order").orders and meta.weight("GET /api/v3/account").weight == 4
    assert meta.rate_limits[0].limit == 1200  # 60000 / rateLimit 50 ms (= Binance's 6000 weight per minute)


def _order(**kw):
    o = {"id": "1", "clientOrderId": "c1", "symbol": "BTC/USDT", "side": "buy", "type": "limit", "amount": 0.01,
         "price": 5000.0, "filled": 0.0, "status": "open", "timestamp": 1}  # fmt: skip
    return parse.order("binance/main", {**o, **kw})


def test_event_kinds_from_what_changed() -> None:
    new = _order()
    assert parse.event_kind(None, new) is OrderEventKind.ACCEPTED
    assert parse.event_kind(new, new) is None  # a duplicate
    part = _order(filled=0.004)
    assert part.status is OrderStatus.PARTIALLY_FILLED and parse.event_kind(new, part) is OrderEventKind.PARTIAL_FILL
    assert parse.event_kind(part, _order(filled=0.01, status="closed")) is OrderEventKind.FILL
    assert parse.event_kind(new, _order(price=4999.0)) is OrderEventKind.AMENDED
    assert parse.event_kind(new, _order(status="canceled")) is OrderEventKind.CANCELED
    assert parse.event_kind(None, _order(status="closed", filled=0.01)) is OrderEventKind.FILL  # FILLED before NEW
    with pytest.raises(parse.BadValue, match="no client order id"):
        parse.order("binance/main", {"id": "9", "symbol": "BTC/USDT"})
    with pytest.raises(parse.BadValue, match="unknown status"):
        _order(status="weird")


def test_usdm_balance_keeps_the_model_rule_free_plus_locked_is_the_wallet():
    """ccxt's USD-M ``used`` is the initial margin and ``total`` the margin balance (both move with the mark);
    the model's ``free + locked`` is the wallet balance, read from the answer's ``walletBalance``."""
    answer = {
        "free": {"USDT": 99989.5}, "used": {"USDT": 10.3}, "total": {"USDT": 99999.2},
        "info": {"assets": [{"asset": "USDT", "walletBalance": "99999.8", "availableBalance": "99989.5"}]},
    }  # fmt: skip
    [b] = parse.balances("binance/x", Market.USDM, answer)
    assert (b.free, b.locked) == ("99989.5", "10.3") and Decimal(b.free) + Decimal(b.locked) == Decimal("99999.8")
    [spot] = parse.balances("binance/x", Market.SPOT, {"free": {"BTC": 1.5}, "used": {"BTC": 0.5}, "total": {}})
    assert (spot.free, spot.locked) == ("1.5", "0.5")
