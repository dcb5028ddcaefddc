"""Golden file of the user-data decode path: frames in, encoded model events out, byte for byte.

``tests/venues/payloads/binance/order_events.expected.jsonl`` holds one case a line: the market, a name, the
frame as Binance sends it, and the model codec's bytes of the ``OrderEvent`` the connector makes of it (as a
JSON string, so the bytes are exact). The cases are the recorded ``executionReport`` / ``ORDER_TRADE_UPDATE``
frames and variants of them: partial fills, cancels (Spot's cancel id in ``c``, the order's in ``C``), rejects,
expiries, self-trade prevention, liquidation fills, amendments, maker fills with commission in another asset.

Each frame goes through every way a frame arrives (its bytes, and the dict python-binance hands on) and must
give the stored bytes: the decoders can be made faster, never different. The two ways do not always give the
same bytes: the model omits a field at its default, and msgspec's ``omit_defaults`` tests a string default by
identity, so a ``"0"`` that ``json.loads`` interned (the dict) is omitted while one msgspec decoded from bytes is
written. Both decode to equal events; where the bytes differ, ``event_from_dict`` stores the dict path's. ``python -m
tests.venues.binance.test_binance_golden_events`` rewrites the file from the current code (review the diff).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import orjson
import pytest

from oms.model import InstrumentKind, InstrumentSpec, Market, decode, encode
from oms.venues.binance import parse
from oms.venues.binance import wire_user as wu
from oms.venues.binance.symbols import SymbolTable

PAYLOADS = Path(__file__).resolve().parents[1] / "payloads" / "binance"
GOLDEN = PAYLOADS / "order_events.expected.jsonl"
ACCOUNT = "binance/sub_mm"
RECV_NS = 1_796_114_149_700_000_123


def _spec(base: str, quote: str, tick: str, step: str, perp: bool) -> InstrumentSpec:
    return InstrumentSpec(
        symbol=f"{base}/{quote}:{quote}" if perp else f"{base}/{quote}",
        kind=InstrumentKind.PERP if perp else InstrumentKind.SPOT,
        tick_size=tick, step_size=step, venue_symbol=base + quote,
        base_asset=base, quote_asset=quote, settle_asset=quote if perp else "",
    )  # fmt: skip


TABLES = {
    "spot": SymbolTable(
        Market.SPOT,
        [_spec("BTC", "USDT", "0.01", "0.00001", False), _spec("ETH", "BTC", "0.00000001", "0.0001", False)],
    ),
    "usdm": SymbolTable(Market.USDM, [_spec("BTC", "USDT", "0.1", "0.001", True)]),
}


def event_bytes(market: str, frame: bytes | dict) -> bytes:
    """The encoded model event of one frame, as the user-data stream makes it (``user_data.handle``)."""
    table = TABLES[market]
    if market == "spot":
        ev = wu.convert_spot_user(frame) if isinstance(frame, dict) else wu.decode_spot_user(frame)
        return encode(parse.parse_to_order_event(ev, ACCOUNT, table, RECV_NS))  # type: ignore[arg-type]
    fev = wu.convert_futures_user(frame) if isinstance(frame, dict) else wu.decode_futures_user(frame)
    return encode(parse.parse_to_futures_order_event(fev, ACCOUNT, table, RECV_NS))  # type: ignore[arg-type]


def _recorded(channel: str) -> list[dict]:
    return [row["frame"] for row in json.loads((PAYLOADS / f"{channel}.json").read_text())]


def cases() -> list[tuple[str, str, dict]]:
    """(market, name, frame): the recorded frames and variants of them."""
    er = _recorded("executionReport")
    otu = _recorded("ORDER_TRADE_UPDATE")
    trade, cancel = er[2], er[4]
    out = [("spot", f"recorded executionReport {i} {f['x']}", f) for i, f in enumerate(er)]
    limit_new = {**er[3]}
    out += [
        (
            "spot",
            "partial fill, maker, commission in BNB",
            {
                **limit_new,
                "x": "TRADE",
                "X": "PARTIALLY_FILLED",
                "l": "0.00400000",
                "z": "0.00400000",
                "L": "6589.34000000",
                "n": "0.00001234",
                "N": "BNB",
                "t": 77,
                "m": True,
                "T": limit_new["E"] + 5,
                "E": limit_new["E"] + 6,
                "w": True,
                "Z": "26.35736000",
                "Y": "26.35736000",
            },
        ),
        (
            "spot",
            "last fill of a partly filled order, taker, commission in USDT",
            {
                **limit_new,
                "x": "TRADE",
                "X": "FILLED",
                "l": "0.00600000",
                "z": "0.01000000",
                "L": "6589.33000000",
                "n": "0.03953598",
                "N": "USDT",
                "t": 78,
                "m": False,
                "T": limit_new["E"] + 9,
                "E": limit_new["E"] + 10,
            },
        ),
        ("spot", "cancel: the order's id in C", cancel),
        ("spot", "cancel of a partly filled order", {**cancel, "z": "0.00400000", "Z": "26.35736000"}),
        (
            "spot",
            "reject with a reason",
            {
                **limit_new,
                "x": "REJECTED",
                "X": "REJECTED",
                "r": "INSUFFICIENT_BALANCES",
            },
        ),
        ("spot", "IOC expired", {**limit_new, "f": "IOC", "x": "EXPIRED", "X": "EXPIRED"}),
        (
            "spot",
            "self-trade prevention",
            {
                **limit_new,
                "x": "TRADE_PREVENTION",
                "X": "EXPIRED_IN_MATCH",
                "V": "EXPIRE_MAKER",
            },
        ),
        ("spot", "amended in place (keepPriority)", {**limit_new, "x": "REPLACED", "q": "0.00500000"}),
        (
            "spot",
            "market sell, price 0 (none), commission in ETH",
            {
                **trade,
                "S": "SELL",
                "n": "0.00010000",
                "N": "ETH",
            },
        ),
        (
            "spot",
            "stop-limit new with stop price",
            {
                **limit_new,
                "o": "STOP_LOSS_LIMIT",
                "P": "6500.00000000",
            },
        ),
        ("spot", "unknown extra fields ignored", {**trade, "zz": [1, {"a": None}], "M": True}),
    ]
    out += [("usdm", f"recorded ORDER_TRADE_UPDATE {i} {f['o']['x']}", f) for i, f in enumerate(otu)]
    base = otu[1]
    o = base["o"]
    out += [
        ("usdm", "partial fill, maker, commission in BNB, hedge LONG, realised pnl", {
            **base, "E": base["E"] + 3, "o": {
                **o, "x": "TRADE", "X": "PARTIALLY_FILLED", "l": "0.010", "z": "0.010", "L": o["p"] if o["p"]
                .strip("0.") else "7343.40", "ap": "7343.40000", "N": "BNB", "n": "0.00012345", "t": 901,
                "m": True, "ps": "LONG", "rp": "-1.25000000", "T": base["T"] + 2,
            },
        }),
        ("usdm", "cancel of a partly filled order", {
            **base, "o": {**o, "x": "CANCELED", "X": "CANCELED", "z": "0.010", "ap": "7343.40000"},
        }),
        ("usdm", "expired (GTX would have taken)", {**base, "o": {**o, "f": "GTX", "x": "EXPIRED", "X": "EXPIRED"}}),
        ("usdm", "liquidation fill (CALCULATED)", {
            **base, "o": {
                **o, "o": "LIQUIDATION", "c": "autoclose-1796114149", "x": "CALCULATED", "X": "FILLED",
                "l": o["q"], "z": o["q"], "L": "7000.00", "ap": "7000.00", "t": 902, "n": "0", "N": "USDT",
            },
        }),
        ("usdm", "amendment", {**base, "o": {**o, "x": "AMENDMENT", "p": "7300.00" if o["p"].strip("0.") else "0"}}),
        ("usdm", "short side, reduce only, realised profit", {
            **otu[2], "o": {**otu[2]["o"], "S": "SELL", "ps": "SHORT", "R": True, "rp": "3.50000000"},
        }),
    ]  # fmt: skip
    return out


def _load() -> list[dict]:
    """The stored cases (none when the file is missing: ``test_golden_file_matches_the_cases`` then fails)."""
    text = GOLDEN.read_text() if GOLDEN.exists() else ""
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_golden_file_matches_the_cases() -> None:
    rows = _load()
    assert [(r["market"], r["name"], r["frame"]) for r in rows] == cases()
    names = " ".join(r["name"] for r in rows)
    for word in ("partial fill", "cancel", "reject", "expired", "BNB", "liquidation"):
        assert word in names


@pytest.mark.parametrize("row", _load(), ids=lambda r: f"{r['market']}: {r['name']}")
def test_frame_gives_the_stored_event_bytes(row: dict) -> None:
    want = row["event"].encode()
    want_dict = row.get("event_from_dict", row["event"]).encode()
    frame = row["frame"]
    assert event_bytes(row["market"], orjson.dumps(frame)) == want
    assert event_bytes(row["market"], json.dumps(frame, indent=1).encode()) == want  # whitespace
    assert event_bytes(row["market"], json.loads(orjson.dumps(frame))) == want_dict  # as python-binance hands it
    assert event_bytes(row["market"], json.loads(json.dumps(dict(reversed(frame.items()))))) == want_dict
    assert decode(want) == decode(want_dict)


def _write() -> None:
    lines = []
    for market, name, frame in cases():
        row = {
            "market": market,
            "name": name,
            "frame": frame,
            "event": event_bytes(market, orjson.dumps(frame)).decode(),
        }
        from_dict = event_bytes(market, json.loads(orjson.dumps(frame))).decode()
        if from_dict != row["event"]:
            row["event_from_dict"] = from_dict
        lines.append(json.dumps(row))
    GOLDEN.write_text("\n".join(lines) + "\n")
    print(f"wrote {len(lines)} cases to {GOLDEN}", file=sys.stderr)


if __name__ == "__main__":
    _write()
