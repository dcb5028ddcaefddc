"""The one codec: every message type round-trips; bad input is a DecodeError naming where, never a crash."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from oms.model import MESSAGE_TYPES, DecodeError, Fill, decode, decode_lines, encode, encode_lines, validate
from tests.model.samples import FILL, SAMPLES, XFER


def test_samples_cover_every_message_type():
    assert {type(s) for s in SAMPLES} == set(MESSAGE_TYPES)


@pytest.mark.parametrize("msg", SAMPLES, ids=[type(s).__name__ for s in SAMPLES])
def test_round_trip(msg):
    data = encode(msg)
    assert data.startswith(b'{"type":"' + msg.__struct_config__.tag.encode() + b'"')
    assert decode(data) == msg
    assert decode(data, type(msg)) == msg
    assert validate(msg) == msg


def test_decimals_are_strings_and_times_ints():
    raw = msgspec.json.decode(encode(FILL))
    assert raw["price"] == "64250.1" and raw["event_ns"] == 1_764_547_200_000_000_000
    assert "recv_ns" not in raw  # defaults are omitted


@pytest.mark.parametrize(
    ("payload", "where"),
    [
        (b'{"type":"fill","account":"binance/x"', "truncated"),
        (b"\x00\xff garbage", "malformed|invalid"),
        (b'{"type":"nope"}', "Invalid value 'nope'"),
        (encode(FILL).replace(b'"0.002"', b"0.002"), r"\$\.qty"),
        (encode(FILL).replace(b'"0.002"', b'"2e-3"'), r"\$\.qty"),
        (encode(FILL).replace(b'"binance/sub_mm"', b'"binance"'), r"\$\.account"),
        (encode(FILL).replace(b'"BTC/USDT:USDT"', b'"BTCUSDT"'), r"\$\.symbol"),
        (encode(FILL).replace(b'"side":"buy"', b'"side":"BUY"'), r"\$\.side"),
        (encode(XFER).replace(b'"binance/main"', b'"bybit/main"'), "different exchanges"),
    ],
)
def test_bad_payloads(payload, where):
    with pytest.raises(DecodeError, match=where):
        decode(payload)


@given(st.binary(max_size=200))
def test_garbage_never_escapes_as_another_error(data):
    try:
        decode(data)
    except DecodeError:
        pass


def test_json_lines_with_counted_bad_lines():
    data = encode_lines(SAMPLES[:3]) + b"not json\n\n" + encode_lines([FILL])
    errors: list[DecodeError] = []
    got = list(decode_lines(data, errors=errors))
    assert got == [*SAMPLES[:3], FILL]
    assert len(errors) == 1 and str(errors[0]).startswith("line 4: bad model message")
    with pytest.raises(DecodeError, match="line 4"):
        list(decode_lines(data))
    assert decode(encode(FILL), Fill) == FILL
