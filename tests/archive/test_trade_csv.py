"""The compiled reader of Binance's CSVs (``oms.archive.trade_csv``): layouts, blocks, zip members."""

from __future__ import annotations

import io
import zipfile
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from oms.archive.binance_files import CSV_COLUMNS, sniff_head
from oms.archive.layout import Layout
from oms.archive.market_import import MarketImporter
from oms.archive.trade_csv import ZipMember, column_kinds, extract_member, iter_blocks, parse
from tests.archive.binance_fixtures import HEADERS, agg_trades_rows, day_ms, klines_rows, write_archive_file

NOW = day_ms(date(2026, 12, 1)) * 10**6


def test_klines_layout_with_header_and_crlf_lines() -> None:
    rows = klines_rows(date(2024, 3, 1), 5, 60_000, us=True)
    text = (HEADERS["klines"] + "\r\n" + "\r\n".join(rows) + "\r\n").encode()
    shape = sniff_head(text, "klines")
    assert shape.header and shape.time_scale == 1_000 and shape.columns == CSV_COLUMNS["klines"]
    out, bad, _ = parse(text, column_kinds(shape.columns), True)
    assert bad == -1 and out.shape == (len(shape.columns), 5)
    first = rows[0].split(",")
    assert out[0, 0] == int(first[0]) and out[8, 0] == int(first[8])  # open_time, count
    assert out[1, 0] == round(float(first[1]) * 10**8)  # open, at scale 1e-8
    assert out[11].tolist() == [0] * 5  # ignore: read over, not stored


def test_spot_trades_booleans_in_any_case_and_the_first_bad_field_named() -> None:
    kinds = column_kinds(CSV_COLUMNS["trades"])  # id, price, qty, quote_qty, time, is_buyer_maker, is_best_match
    good = b"7,1.5,2,3,1700000000000,true,FALSE\n8,1.5,2,3,1700000000001,True,False"  # no final newline
    out, bad, _ = parse(good, kinds, False)
    assert bad == -1 and out[5].tolist() == [1, 1] and out[6].tolist() == [0, 0]
    cases = [
        (b"9,1.5,2,3,1700000000002,yes,True", 5),
        (b"9,1.5,2,,1700000000002,True,True", 3),
        (b"9,1.5,2,3,1700000000002,True", -1),  # a column missing
        (b"9,1.5,2,3,1700000000002,True,True,x", -1),  # one too many
        (b'9,"1.5",2,3,1700000000002,True,True', 1),
        (b"9,1.5 ,2,3,1700000000002,True,True", 1),
    ]
    for line, col in cases:
        _, bad, which = parse(good + b"\n" + line + b"\n", kinds, False)
        assert (bad, which) == (2, col), line


@pytest.mark.parametrize("block", [64, 4096, 1 << 20])
def test_blocks_are_whole_lines_and_parts_parse_as_one(block: int) -> None:
    from concurrent.futures import ThreadPoolExecutor

    rows = agg_trades_rows(date(2024, 12, 31), 3000, us=False, best_match=True)
    data = ("\n".join(rows) + "\n").encode()
    blocks = [bytes(b) for b in iter_blocks(io.BytesIO(data), block)]
    assert b"".join(blocks) == data and all(b.endswith(b"\n") for b in blocks)
    kinds = column_kinds(CSV_COLUMNS["aggTrades"])
    whole, bad, _ = parse(data, kinds, False)
    with ThreadPoolExecutor(3) as pool:
        split, bad_split, _ = parse(data, kinds, False, pool)
    assert bad == bad_split == -1 and whole.shape == (8, 3000) and np.array_equal(whole, split)
    assert whole[0].tolist() == [int(r.split(",")[0]) for r in rows]


def test_zip_members_inflate_with_isal_and_a_damaged_member_is_refused(tmp_path: Path) -> None:
    data = ("\n".join(agg_trades_rows(date(2024, 12, 31), 20_000, us=False, best_match=True)) + "\n").encode()
    for method in (zipfile.ZIP_DEFLATED, zipfile.ZIP_STORED):
        z = tmp_path / f"X-aggTrades-2024-12-31-{method}.zip"
        with zipfile.ZipFile(z, "w", method) as zf:
            zf.writestr("X-aggTrades-2024-12-31.csv", data)
        with ZipMember(z) as m:
            assert b"".join(iter(lambda m=m: m.read(1 << 16), b"")) == data
        assert extract_member(z, tmp_path).read_bytes() == data
    raw = bytearray(z.read_bytes())  # the stored one: flip a byte of the member's data
    raw[len(raw) // 3] ^= 0x01
    z.write_bytes(bytes(raw))
    with pytest.raises(zipfile.BadZipFile, match="CRC"), ZipMember(z) as m:
        while m.read(1 << 16):
            pass


def test_a_damaged_zip_is_reported_and_leaves_nothing(tmp_path: Path) -> None:
    src = tmp_path / "src"
    z = write_archive_file(src, market="spot", period="daily", kind="aggTrades", symbol="BTCUSDT",
                           stamp="2024-12-31", rows=agg_trades_rows(date(2024, 12, 31), 2000, us=False,
                                                                    best_match=True), checksum=False)  # fmt: skip
    with zipfile.ZipFile(z) as zf:
        info = zf.infolist()[0]
    raw = bytearray(z.read_bytes())
    raw[info.header_offset + 30 + len(info.filename) + info.compress_size // 2] ^= 0xFF  # inside the deflate data
    z.write_bytes(bytes(raw))
    layout = Layout(tmp_path / "data")
    with MarketImporter(layout, now_ns=NOW) as imp:
        rep = imp.import_paths([src])
    assert rep.rows == 0 and not rep.clean
    assert any("unreadable zip" in str(r) for r in rep.rejections), [str(r) for r in rep.rejections]
    assert not [p for p in layout.root.rglob("*BTCUSDT-aggTrades*")], "nothing of the damaged file is kept"
