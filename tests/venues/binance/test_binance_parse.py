"""Recorded Binance payloads (``tests/venues/payloads/binance/<channel>.json``) replayed into the wire structs
and the ``parse_to_*`` functions; every model event they give is valid under the model's own codec.

Bad input: garbage and truncated frames, a missing or mistyped field, an unknown symbol, over-precise and
non-numeric decimals all raise typed errors that name what was wrong.
"""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from oms.model import (
    BalanceEvent,
    InstrumentKind,
    InstrumentSpec,
    Market,
    OrderEvent,
    OrderEventKind,
    OrderStatus,
    PositionEvent,
    Side,
    validate,
)
from oms.venues.binance import parse, symbols
from oms.venues.binance import wire_market as wm
from oms.venues.binance import wire_rest as wr
from oms.venues.binance import wire_user as wu
from oms.venues.binance.symbols import BadDecimal, SymbolTable, UnknownSymbol, check_decimal, decimals

PAYLOADS = Path(__file__).resolve().parents[1] / "payloads" / "binance"
ACCOUNT = "binance/sub_mm"


def frames(channel: str) -> list[dict]:
    return [row["frame"] for row in json.loads((PAYLOADS / f"{channel}.json").read_text())]


def _spec(base: str, quote: str, tick: str, step: str, perp: bool) -> InstrumentSpec:
    return InstrumentSpec(
        symbol=f"{base}/{quote}:{quote}" if perp else f"{base}/{quote}",
        kind=InstrumentKind.PERP if perp else InstrumentKind.SPOT,
        tick_size=tick,
        step_size=step,
        venue_symbol=base + quote,
        base_asset=base,
        quote_asset=quote,
        settle_asset=quote if perp else "",
    )


SPOT = SymbolTable(
    Market.SPOT,
    [
        _spec("BTC", "USDT", "0.01", "0.00001", False),
        _spec("ETH", "BTC", "0.00000001", "0.0001", False),
        _spec("BNB", "BTC", "0.0000001", "0.01", False),
        _spec("BNB", "USDT", "0.0001", "0.01", False),
    ],
)
USDM = SymbolTable(
    Market.USDM,
    [_spec("BTC", "USDT", "0.1", "0.001", True), _spec("BNB", "USDT", "0.0001", "0.01", True)],
)


def raw(frame: dict) -> bytes:
    return json.dumps(frame).encode()


def test_every_payload_file_has_frames_from_localex_or_binance_docs():
    files = sorted(PAYLOADS.glob("*.json"))
    assert len(files) >= 20
    for f in files:
        rows = json.loads(f.read_text())
        assert rows, f.name
        assert all(r["source"].startswith(("localex", "binance-docs")) for r in rows), f.name


def test_execution_reports_become_valid_order_events_with_their_fills():
    events = [parse.parse_to_order_event(wu.decode_spot_user(raw(f)), ACCOUNT, SPOT) for f in frames("executionReport")]
    for ev in events:
        assert validate(ev) == ev
    docs = events[0]
    assert (docs.symbol, docs.kind, docs.status, docs.side) == ("ETH/BTC", OrderEventKind.ACCEPTED, "new", Side.BUY)
    assert docs.event_ns == 1499405658658 * 1_000_000 and docs.fill is None
    fills = [e for e in events if e.fill is not None]
    assert fills and all(e.kind in (OrderEventKind.FILL, OrderEventKind.PARTIAL_FILL) for e in fills)
    assert fills[0].fill.price == "7343.45000000" and fills[0].fill.trade_id == "1"
    # the last TRADE of an order says FILLED and carries its trade; nothing reports the fill a second time
    assert any(e.kind is OrderEventKind.FILL and e.status is OrderStatus.FILLED for e in fills)
    assert not [e for e in events if e.kind in (OrderEventKind.FILL, OrderEventKind.PARTIAL_FILL) and e.fill is None]
    assert any(e.kind is OrderEventKind.CANCELED for e in events)


def test_a_trade_event_without_a_trade_is_refused():
    frame = {**frames("executionReport")[0], "x": "TRADE", "X": "FILLED", "t": -1, "l": "0.00000000"}
    with pytest.raises(ValueError, match="without a trade"):
        parse.parse_to_order_event(wu.decode_spot_user(raw(frame)), ACCOUNT, SPOT)


def test_spot_cancel_names_the_original_client_order_id():
    frame = {**frames("executionReport")[0], "x": "CANCELED", "X": "CANCELED", "c": "cancel-req-1", "C": "orig-1"}
    ev = parse.parse_to_order_event(wu.decode_spot_user(raw(frame)), ACCOUNT, SPOT)
    assert ev.client_order_id == "orig-1" and ev.kind is OrderEventKind.CANCELED


def test_order_trade_updates_become_valid_order_events():
    events = [
        parse.parse_to_futures_order_event(wu.decode_futures_user(raw(f)), ACCOUNT, USDM)
        for f in frames("ORDER_TRADE_UPDATE")
    ]
    for ev in events:
        assert validate(ev) == ev
    assert events[0].symbol == "BTC/USDT:USDT" and events[0].order_type == "trailing_stop_market"
    fill = next(e.fill for e in events if e.fill is not None)
    assert fill.realized_pnl is not None and fill.position_side == "both"


def test_account_updates_and_balances():
    for f in frames("ACCOUNT_UPDATE"):
        balances, positions = parse.parse_to_futures_account_events(wu.decode_futures_user(raw(f)), ACCOUNT, USDM)
        assert isinstance(balances, BalanceEvent) and isinstance(positions, PositionEvent)
        validate(balances)
        validate(positions)
    docs = parse.parse_to_futures_account_events(
        wu.decode_futures_user(raw(frames("ACCOUNT_UPDATE")[0])), ACCOUNT, USDM
    )
    assert [p.position_side for p in docs[1].positions] == ["both", "long"]
    assert docs[1].positions[1].margin_type == "isolated"
    for f in frames("outboundAccountPosition"):
        ev = parse.parse_to_spot_balance_event(wu.decode_spot_user(raw(f)), ACCOUNT)
        assert validate(ev) == ev and ev.balances


def test_other_user_events_decode_to_their_structs():
    assert isinstance(wu.decode_spot_user(raw(frames("balanceUpdate")[0])), wu.BalanceUpdate)
    assert isinstance(wu.decode_spot_user(raw(frames("eventStreamTerminated")[0])), wu.EventStreamTerminated)
    expired = wu.decode_futures_user(raw(frames("listenKeyExpired")[0]))
    assert isinstance(expired, wu.ListenKeyExpired) and expired.E == "1736996475556"
    # python-binance hands Spot events on as dicts: the same structs through msgspec.convert
    assert isinstance(wu.convert_spot_user(frames("executionReport")[1]), wu.ExecutionReport)


@pytest.mark.parametrize(
    ("channel", "market"),
    [
        ("spot_trade", "spot"),
        ("usdm_trade", "usdm"),
        ("spot_aggTrade", "spot"),
        ("usdm_aggTrade", "usdm"),
        ("spot_bookTicker", "spot"),
        ("usdm_bookTicker", "usdm"),
        ("spot_depth", "spot"),
        ("usdm_depth", "usdm"),
        ("spot_kline", "spot"),
        ("usdm_kline", "usdm"),
        ("usdm_markPrice", "usdm"),
    ],
)
def test_market_payloads_become_valid_model_events(channel: str, market: str):
    table = SPOT if market == "spot" else USDM
    kind = channel.split("_", 1)[1]
    decoder = wm.decoder_for("x@" + kind)
    fn = {
        "trade": parse.parse_to_trade,
        "aggTrade": parse.parse_to_trade,
        "bookTicker": parse.parse_to_quote,
        "depth": parse.parse_to_depth_diff,
        "kline": parse.parse_to_kline,
        "markPrice": parse.parse_to_mark_price,
    }[kind]
    out = [fn(decoder.decode(raw(f)), "binance", table) for f in frames(channel)]
    for ev in out:
        assert validate(ev) == ev
    if kind == "depth":
        assert all(d.first_update_id <= d.last_update_id for d in out)
        assert (out[0].prev_update_id is None) == (market == "spot")


def test_rest_bodies_become_orders_fills_and_snapshots():
    for f in frames("spot_order_response"):
        validate(parse.parse_to_order(wr.convert(f, wr.SpotOrder), ACCOUNT, SPOT))
    for f in frames("usdm_order_response"):
        validate(parse.parse_to_order(wr.convert(f, wr.FuturesOrder), ACCOUNT, USDM))
    for f in frames("spot_my_trades"):
        validate(parse.parse_to_fill(wr.convert(f, wr.SpotTrade), ACCOUNT, SPOT))
    for f in frames("usdm_user_trades"):
        validate(parse.parse_to_fill(wr.convert(f, wr.FuturesTrade), ACCOUNT, USDM))
    snap = wm.SNAPSHOT_DECODER.decode(raw(frames("spot_depth_snapshot")[0]))
    book = parse.parse_to_book_snapshot(snap, "binance", "BTC/USDT", SPOT, 1)
    assert validate(book) == book and book.bids and book.asks


# ---- bad input -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "frame",
    [b"", b"{", b"not json", b'{"e":"executionReport","E":1', b"[1,2,3]", b'{"e":"nonsense","E":1}', b"\xff\xfe"],
)
def test_garbage_and_truncated_frames_raise_msgspec_errors(frame: bytes):
    with pytest.raises((msgspec.DecodeError, msgspec.ValidationError)):
        wu.decode_spot_user(frame)


def test_a_missing_or_mistyped_field_names_the_field():
    good = frames("executionReport")[1]
    missing = {k: v for k, v in good.items() if k != "q"}
    with pytest.raises(msgspec.ValidationError, match="q"):
        wu.decode_spot_user(raw(missing))
    with pytest.raises(msgspec.ValidationError, match=r"\$\.i"):
        wu.decode_spot_user(raw({**good, "i": "not-an-int"}))
    with pytest.raises(msgspec.ValidationError, match=r"\$\.o\.q"):
        wu.decode_futures_user(
            raw({**frames("ORDER_TRADE_UPDATE")[1], "o": {**frames("ORDER_TRADE_UPDATE")[1]["o"], "q": 1}})
        )


def test_unknown_symbols_raise_unknown_symbol_naming_it():
    frame = {**frames("executionReport")[1], "s": "DOGEUSDT"}
    with pytest.raises(UnknownSymbol, match="DOGEUSDT"):
        parse.parse_to_order_event(wu.decode_spot_user(raw(frame)), ACCOUNT, SPOT)
    with pytest.raises(UnknownSymbol):
        SPOT.venue("DOGE/USDT")


def test_over_precise_and_non_numeric_decimals_are_refused():
    frame = {**frames("executionReport")[2], "L": "7343.455"}  # BTCUSDT tick is 0.01
    with pytest.raises(BadDecimal, match="L .*more than the 2 decimals"):
        parse.parse_to_order_event(wu.decode_spot_user(raw(frame)), ACCOUNT, SPOT)
    assert check_decimal("7343.45000000", 2, "p") == "7343.45000000"  # zero padding is not precision
    for bad in ("1e5", "NaN", "", "1.2.3", "--1", "١٢"):
        with pytest.raises(BadDecimal):
            check_decimal(bad, 8, "x")
    assert check_decimal("-0.5", 1, "x") == "-0.5"
    assert [decimals(s) for s in ("0.01000000", "1", "0.1", "1.00000000", "10")] == [2, 0, 1, 0, 0]


def test_order_events_in_any_order_are_valid_structs_the_state_machine_judges():
    """FILLED before NEW and duplicates parse fine: the status machine (not the parser) decides."""
    rows = frames("executionReport")[1:3]  # a market order: NEW, then its TRADE that fills it
    events = [parse.parse_to_order_event(wu.decode_spot_user(raw(f)), ACCOUNT, SPOT) for f in reversed(rows)]
    assert [e.status for e in events][0] is OrderStatus.FILLED
    assert all(isinstance(e, OrderEvent) for e in events)


@given(
    st.one_of(
        st.from_regex(r"\A-?[0-9]{1,12}(\.[0-9]{0,12})?\Z"),
        st.sampled_from(["", "-", ".", "5.", ".5", "--1", "1e5", "١٢", " 1", "1.2.3", "0.10000000", "-0.0"]),
        st.text(max_size=8),
    ),
    st.integers(0, 20),
)
def test_check_decimal_remembers_nothing_but_its_answers(value, places):
    # the fast path and the values it remembers answer exactly as the plain rule (message included)
    def outcome(fn):
        try:
            return fn(value, places, "what")
        except BadDecimal as exc:
            return str(exc)

    expected = outcome(symbols._check_decimal_slowly)
    assert outcome(check_decimal) == expected and outcome(check_decimal) == expected
