"""``WsSigner``: the WebSocket-API signature is Binance's rule (hex HMAC-SHA256 of the params sorted by name,
``k=v`` joined by ``&``), equal to the standard library's HMAC for any secret and message, and to what
python-binance computes for the same params."""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import urlencode

import orjson
from hypothesis import given
from hypothesis import strategies as st

from oms.model import InstrumentKind, InstrumentSpec, Market, OrderType, PlaceOrder, Side
from oms.venues.binance.orders import place_params
from oms.venues.binance.signing import WsSigner
from oms.venues.binance.symbols import SymbolTable


@given(st.text(max_size=150), st.binary(max_size=300))
def test_the_signature_is_hmac_sha256(secret, message):
    assert WsSigner("key", secret).hexdigest(message) == hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


names = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1, max_size=12)
values = st.one_of(st.integers(0, 2**62), st.booleans(), st.from_regex(r"\A[A-Za-z0-9._-]{0,20}\Z"))


@given(st.dictionaries(names, values, max_size=12), st.integers(0, 2**45))
def test_params_are_signed_sorted_as_binance_verifies(params, ts):
    params = {k: v for k, v in params.items() if k not in ("apiKey", "timestamp", "signature")}
    signed = WsSigner("K" * 64, "S" * 64).sign(dict(params), ts)
    text = {k: ("true" if v is True else "false" if v is False else v) for k, v in signed.items() if k != "signature"}
    query = urlencode(sorted(text.items()))  # python-binance's way for these ASCII values
    assert signed["signature"] == hmac.new(b"S" * 64, query.encode(), hashlib.sha256).hexdigest()
    assert (signed["apiKey"], signed["timestamp"]) == ("K" * 64, ts)
    again = WsSigner("K" * 64, "S" * 64).sign(dict(reversed(list(params.items()))), ts)  # another order of names
    assert again["signature"] == signed["signature"]


@given(st.dictionaries(st.sampled_from(["a%b", "x{y}", 'q"', "b\\", "c'd", "plain", "e f"]), values, min_size=1))
def test_names_that_are_not_plain_words_are_signed_as_written(params):
    # (the signer's compiled f-string serves names of [A-Za-z0-9_] only; any other name is formatted instead)
    signed = WsSigner("K" * 64, "S" * 64).sign(dict(params), 7)
    text = {k: ("true" if v is True else "false" if v is False else v) for k, v in signed.items() if k != "signature"}
    query = "&".join(f"{k}={v}" for k, v in sorted(text.items()))
    assert signed["signature"] == hmac.new(b"S" * 64, query.encode(), hashlib.sha256).hexdigest()


# The tick-to-order path's frames (tests/bench/test_tick_to_order_bench.py) for fixed inputs, byte for byte as
# a69e8d3 made them: two quotes of one kind (the second from place_params' and the signer's templates), a
# third of another quantity, and a cancel.
GOLDEN_FRAMES = [
    b'{"id":"x-mm-0","method":"order.place","params":{"symbol":"BTCUSDT","side":"BUY","type":"LIMIT","quantity":"0.033","newClientOrderId":"x-mm-0","newOrderRespType":"RESULT","recvWindow":5000,"price":"29990.1","timeInForce":"GTX","apiKey":"kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk","timestamp":1700000000123,"signature":"496adecf0fa4034116b0da6b952ac9927ef706ad9e7f5474f8c3901ab30751d0"}}',
    b'{"id":"x-mm-1","method":"order.place","params":{"symbol":"BTCUSDT","side":"SELL","type":"LIMIT","quantity":"0.033","newClientOrderId":"x-mm-1","newOrderRespType":"RESULT","recvWindow":5000,"price":"30010.2","timeInForce":"GTX","apiKey":"kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk","timestamp":1700000000124,"signature":"62c0934e0bdf64fafae7d130a7918e403503ecb37221070076700e5f9c7edcdb"}}',
    b'{"id":"x-mm-2","method":"order.place","params":{"symbol":"BTCUSDT","side":"BUY","type":"LIMIT","quantity":"0.034","newClientOrderId":"x-mm-2","newOrderRespType":"RESULT","recvWindow":5000,"price":"29990.1","timeInForce":"GTX","apiKey":"kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk","timestamp":1700000000125,"signature":"25786c80c7c5a68014c1ae494cde5e3bed521cd4d645523b819a277e45c2a656"}}',
    b'{"id":"x-mm-0","method":"order.cancel","params":{"symbol":"BTCUSDT","origClientOrderId":"x-mm-0","recvWindow":5000,"apiKey":"kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk","timestamp":1700000000200,"signature":"75d68458e8c14e3fcf6a167aa445dd9031d54a42ff63e1186bc87dd32f2645f2"}}',
]


def test_the_quoting_frames_are_byte_for_byte_the_golden_ones():
    spec = InstrumentSpec(
        symbol="BTC/USDT:USDT", kind=InstrumentKind.PERP, tick_size="0.10", step_size="0.001", min_qty="0.001",
        max_qty="1000", min_notional="5", venue_symbol="BTCUSDT", base_asset="BTC", quote_asset="USDT",
        settle_asset="USDT",
    )  # fmt: skip
    symbols, signer = SymbolTable(Market.USDM, [spec]), WsSigner("k" * 64, "s" * 64)
    quotes = [(Side.BUY, "0.033", "29990.1"), (Side.SELL, "0.033", "30010.2"), (Side.BUY, "0.034", "29990.1")]
    for _ in range(2):  # the second time every kind is a template filled in
        frames = []
        for k, (side, qty, price) in enumerate(quotes):
            cmd = PlaceOrder(account="binance/mm", symbol="BTC/USDT:USDT", side=side, order_type=OrderType.LIMIT,
                             qty=qty, price=price, post_only=True, client_order_id=f"x-mm-{k}")  # fmt: skip
            params = signer.sign(place_params(cmd, Market.USDM, symbols, 5000), 1700000000123 + k)
            frames.append(orjson.dumps({"id": cmd.client_order_id, "method": "order.place", "params": params}))
        cancel = signer.sign({"symbol": "BTCUSDT", "origClientOrderId": "x-mm-0", "recvWindow": 5000}, 1700000000200)
        frames.append(orjson.dumps({"id": "x-mm-0", "method": "order.cancel", "params": cancel}))
        assert frames == GOLDEN_FRAMES
    for frame in GOLDEN_FRAMES:  # and each is Binance's rule, by the standard library
        params = orjson.loads(frame)["params"]
        query = "&".join(f"{k}={v}" for k, v in sorted(params.items()) if k != "signature")
        assert hmac.new(b"s" * 64, query.encode(), hashlib.sha256).hexdigest() == params["signature"]
