"""Identifiers: parsing both ways, and the deterministic client order id."""

from __future__ import annotations

import re

import msgspec
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from oms.model import AccountId, ClientOrderId, ExchangeId, InstrumentId, Market, PlaceOrder
from oms.model.ids import CLIENT_ORDER_ID_RE


def test_account_id():
    a = AccountId.parse("binance/sub_mm")
    assert (a.exchange, a.name, str(a)) == ("binance", "sub_mm", "binance/sub_mm")
    assert a == AccountId("binance", "sub_mm") and hash(a) == hash(AccountId("binance", "sub_mm"))
    for bad in ("binance", "Binance/x", "binance/a.b", "binance/", "/x"):
        with pytest.raises(ValueError, match="account|exchange"):
            AccountId.parse(bad)
    with pytest.raises(ValueError, match="lower-case"):
        ExchangeId("Bin ance")


@pytest.mark.parametrize(
    ("text", "market", "binance"),
    [("BTC/USDT", Market.SPOT, "BTCUSDT"), ("BTC/USDT:USDT", Market.USDM, "BTCUSDT"),
     ("1000SHIB/USDC:USDC", Market.USDM, "1000SHIBUSDC"), ("ETH/BTC", Market.SPOT, "ETHBTC"),
     ("BNB/FDUSD", Market.SPOT, "BNBFDUSD")],
)  # fmt: skip
def test_instrument_both_ways(text, market, binance):
    i = InstrumentId.parse(text)
    assert (str(i), i.market, i.binance_symbol) == (text, market, binance)
    assert InstrumentId.from_binance(binance, market) == i
    assert InstrumentId.from_binance(binance, market.value).symbol == text


def test_instrument_errors():
    for bad in ("BTCUSDT", "BTC/", "/USDT", "BTC/USDT:", "BTC.X/USDT"):
        with pytest.raises(ValueError, match="symbol|asset"):
            InstrumentId.parse(bad)
    with pytest.raises(ValueError, match="inverse"):
        InstrumentId.parse("BTC/USD:BTC")
    with pytest.raises(ValueError, match="dated futures"):
        InstrumentId.parse("BTC/USDT:USDT-250328")
    with pytest.raises(ValueError, match="dated futures"):
        InstrumentId.from_binance("BTCUSDT_250328", "usdm")
    with pytest.raises(ValueError, match="no known quote"):
        InstrumentId.from_binance("FOOBAR", "spot")
    with pytest.raises(ValueError, match="'coinm' is not a valid Market"):
        InstrumentId.from_binance("BTCUSD", "coinm")
    assert InstrumentId.from_binance("FOOBAR", "spot", quotes=("BAR",)) == InstrumentId("FOO", "BAR")


def _order(**kw):
    base = dict(account="binance/sub_mm", symbol="BTC/USDT", side="buy", order_type="limit", qty="0.01", price="100")
    return PlaceOrder(**(base | kw))


def test_client_order_id_is_deterministic_and_valid():
    a = _order().with_client_order_id()
    assert a.client_order_id == _order().with_client_order_id().client_order_id
    assert re.fullmatch(r"oms-[a-z2-7]{26}", a.client_order_id) and len(a.client_order_id) == 30
    assert _order(intent="2").with_client_order_id().client_order_id != a.client_order_id
    assert _order(price="101").with_client_order_id().client_order_id != a.client_order_id
    # a given id is kept; a derived one ignores the field itself
    assert _order(client_order_id="mine").with_client_order_id().client_order_id == "mine"
    assert ClientOrderId.derive(a) == a.client_order_id
    # the prefix is at most 9 characters: the id stays within Binance's 36
    longest = _order().with_client_order_id("abcdefghi").client_order_id
    assert len(longest) == 36 and CLIENT_ORDER_ID_RE.match(longest)
    with pytest.raises(ValueError, match="prefix"):
        _order().with_client_order_id("abcdefghij")
    # enum members and their strings hash alike
    assert _order(side=msgspec.json.decode(b'"buy"')).with_client_order_id() == a


@given(st.text(min_size=0, max_size=40))
@example("0\n")  # "$" matches before a trailing newline: found by hypothesis
def test_client_order_id_validation(text):
    ok = re.fullmatch(r"[\.A-Z\:/a-z0-9_-]{1,36}", text) is not None
    if ok:
        assert ClientOrderId.validate(text) == text
    else:
        with pytest.raises(ValueError, match="client order id"):
            ClientOrderId.validate(text)


def test_client_order_id_is_pinned():
    # The ids orders already carry must not change by accident: a changed digest would let a replayed
    # command through as a new order. Changing the rule is a decision, made here.
    assert _order().with_client_order_id().client_order_id == PINNED_ID
    assert ClientOrderId.derive(msgspec.structs.replace(_order(), client_order_id="x")) == PINNED_ID


PINNED_ID = "oms-ibfs7i4jydip73sr3zq7ahqnqh"


class _Untagged(msgspec.Struct):
    a: int
    b: str = "x"


@given(st.integers(min_value=0, max_value=2**62), st.text(max_size=20))
def test_client_order_id_of_any_struct_is_valid_and_follows_its_content(a, b):
    one = ClientOrderId.derive(_Untagged(a, b))
    assert re.fullmatch(r"oms-[a-z2-7]{26}", one) and one == ClientOrderId.derive(_Untagged(a, b))
    assert one != ClientOrderId.derive(_Untagged(a + 1, b))


@given(st.text(max_size=20), st.sampled_from(["oms", "abcdefghi", "x1"]), st.booleans())
def test_a_deriver_gives_the_ids_derive_gives(intent, prefix, given_id):
    derive = ClientOrderId.deriver(prefix)
    cmd = _order(intent=intent, client_order_id="mine" if given_id else None)
    assert derive(cmd) == ClientOrderId.derive(cmd, prefix)  # a given id is ignored by both
    assert ClientOrderId.deriver(prefix, PlaceOrder)(_order(intent=intent)) == ClientOrderId.derive(cmd, prefix)
    assert derive(_Untagged(len(intent), intent)) == ClientOrderId.derive(_Untagged(len(intent), intent), prefix)


def test_a_deriver_refuses_a_bad_prefix_at_once():
    assert ClientOrderId.deriver()(_order()) == PINNED_ID
    with pytest.raises(ValueError, match="prefix"):
        ClientOrderId.deriver("abcdefghij")
    with pytest.raises(TypeError, match="_Untagged is not a tagged model message"):
        ClientOrderId.deriver("oms", _Untagged)
