"""`oms data import`: Binance public-archive files in every published variant into hive Parquet, bad input
refused with file and line, and http(s) URL lists fetched from a real aiohttp server on 127.0.0.1."""

from __future__ import annotations

import subprocess
import sys
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from aiohttp import web

from oms.archive.layout import Layout
from oms.archive.market_import import MarketImporter, import_market_data
from oms.archive.views import connect
from tests.archive.binance_fixtures import (
    agg_trades_rows,
    day_ms,
    klines_rows,
    trades_rows,
    write_archive_file,
)

OMS = str(Path(sys.executable).parent / "oms")
NOW = day_ms(date(2026, 12, 1)) * 10**6


@pytest.fixture
def layout(tmp_path: Path) -> Layout:
    return Layout(tmp_path / "data")


def _import(layout: Layout, *paths: Path, market: str | None = None):
    with MarketImporter(layout, now_ns=NOW) as imp:
        return imp.import_paths(list(paths), market)


def test_spot_daily_zip_ms_without_header(layout: Layout, tmp_path: Path) -> None:
    rows = agg_trades_rows(date(2024, 3, 1), 5000, us=False, best_match=True)
    f = write_archive_file(
        tmp_path / "src",
        market="spot",
        period="daily",
        kind="aggTrades",
        symbol="BTCUSDT",
        stamp="2024-03-01",
        rows=rows,
    )
    rep = _import(layout, f)
    assert rep.clean and rep.rows == 5000
    con = connect(layout)
    first = rows[0].split(",")
    got = con.execute(
        "SELECT agg_trade_id, price, quantity, transact_time, is_best_match, market, symbol, date FROM agg_trades "
        "ORDER BY agg_trade_id LIMIT 1"
    ).fetchone()
    assert got[:3] == (int(first[0]), Decimal(first[1]), Decimal(first[2]))
    assert got[3] == int(first[5]) * 1_000_000  # ms -> ns
    assert got[4:] == (True, "spot", "BTCUSDT", date(2024, 3, 1))
    assert Path(rep.files[0].outputs[0]).match("agg_trades/market=spot/symbol=BTCUSDT/date=2024-03-01/*.parquet")


def test_spot_microseconds_and_usdm_header_without_best_match(layout: Layout, tmp_path: Path) -> None:
    spot = write_archive_file(
        tmp_path / "src",
        market="spot",
        period="daily",
        kind="trades",
        symbol="ETHUSDT",
        stamp="2025-02-03",
        rows=trades_rows(date(2025, 2, 3), 300, us=True, best_match=True),
    )
    um_rows = agg_trades_rows(date(2024, 3, 1), 400, us=False, best_match=False)
    um = write_archive_file(
        tmp_path / "src",
        market="um",
        period="daily",
        kind="aggTrades",
        symbol="BTCUSDT",
        stamp="2024-03-01",
        rows=um_rows,
        header=True,
        zipped=False,
        checksum=False,
    )
    rep = _import(layout, tmp_path / "src")
    assert rep.clean and rep.rows_by_table() == {"market_trades": 300, "agg_trades": 400}
    con = connect(layout)
    t_us = int(trades_rows(date(2025, 2, 3), 300, us=True, best_match=True)[0].split(",")[4])
    assert con.execute("SELECT min(time) FROM market_trades").fetchone()[0] == t_us * 1000  # µs -> ns
    assert con.execute("SELECT min(ts)::DATE FROM market_trades").fetchone()[0] == date(2025, 2, 3)
    assert con.execute("SELECT market, count(*), count(is_best_match) FROM agg_trades GROUP BY market").fetchall() == [
        ("um", 400, 0)
    ]
    assert um.suffix == ".csv" and spot.suffix == ".zip"


def test_klines_daily_and_monthly_and_monthly_trades_split_by_day(layout: Layout, tmp_path: Path) -> None:
    src = tmp_path / "src"
    write_archive_file(
        src,
        market="um",
        period="monthly",
        kind="klines",
        symbol="BTCUSDT",
        interval="1h",
        stamp="2024-02",
        rows=klines_rows(date(2024, 2, 1), 29 * 24, 3_600_000, us=False),
        header=True,
    )
    write_archive_file(
        src,
        market="spot",
        period="daily",
        kind="klines",
        symbol="BTCUSDT",
        interval="1m",
        stamp="2025-01-02",
        rows=klines_rows(date(2025, 1, 2), 1440, 60_000, us=True),
    )
    monthly = agg_trades_rows(date(2024, 4, 1), 3000, us=False, best_match=True)
    # spread the month's trades over its first three days
    spread = []
    for i, r in enumerate(monthly):
        parts = r.split(",")
        parts[5] = str(day_ms(date(2024, 4, 1)) + i * 86_400_000 * 3 // 3000)
        spread.append(",".join(parts))
    write_archive_file(
        src, market="spot", period="monthly", kind="aggTrades", symbol="BTCUSDT", stamp="2024-04", rows=spread
    )
    rep = _import(layout, src)
    assert rep.clean, [str(r) for r in rep.rejections]
    con = connect(layout)
    assert con.execute("SELECT market, interval, month, count(*) FROM klines GROUP BY ALL ORDER BY ALL").fetchall() == [
        ("spot", "1m", "2025-01", 1440),
        ("um", "1h", "2024-02", 696),
    ]
    assert con.execute("SELECT max(close_time - open_time) FROM klines WHERE interval = '1m'").fetchone()[0] == (
        60_000 * 10**6 - 1000
    )
    assert con.execute("SELECT date, count(*) FROM agg_trades GROUP BY ALL ORDER BY ALL").fetchall() == [
        (date(2024, 4, 1), 1000),
        (date(2024, 4, 2), 1000),
        (date(2024, 4, 3), 1000),
    ]
    again = _import(layout, src)  # a re-import replaces, never doubles
    assert again.clean and con.execute("SELECT count(*) FROM agg_trades").fetchone()[0] == 3000


def test_bad_rows_are_refused_with_their_lines(layout: Layout, tmp_path: Path) -> None:
    rows = agg_trades_rows(date(2024, 3, 1), 20, us=False, best_match=True, first_id=100)
    rows[2] = rows[2].replace(rows[2].split(",")[1], "12x.5", 1)  # line 3: not a number
    rows[4] = ",".join(rows[4].split(",")[:3])  # line 5: truncated
    rows[6] = rows[5]  # line 7: the trade of line 6 again
    p = rows[8].split(",")
    p[5] = str(day_ms(date(2024, 3, 2)) + 5)
    rows[8] = ",".join(p)  # line 9: a time on the next day
    p = rows[10].split(",")
    p[1] = "-5.00000000"
    rows[10] = ",".join(p)  # line 11: negative price
    f = write_archive_file(
        tmp_path / "src",
        market="spot",
        period="daily",
        kind="aggTrades",
        symbol="BTCUSDT",
        stamp="2024-03-01",
        rows=rows,
    )
    rep = _import(layout, f)
    res = rep.files[0]
    assert res.rows == 15 and res.rejected_rows == 5 and not rep.clean
    lines = {r.line: r.reason for r in res.rejections}
    assert sorted(lines) == [3, 5, 7, 9, 11]
    assert "12x.5" in lines[3] and "CAST" in lines[3]
    assert "MISSING COLUMNS" in lines[5]
    assert lines[7].startswith("duplicate or out of order: trade id 105")
    assert "outside the file's period" in lines[9]
    assert "positive" in lines[11]
    assert str(res.rejections[0]).startswith(f"{f}:3: ")
    assert connect(layout).execute("SELECT count(*), count(DISTINCT agg_trade_id) FROM agg_trades").fetchone() == (
        15,
        15,
    )


def test_whole_files_refused_checksum_future_and_overlap(layout: Layout, tmp_path: Path) -> None:
    src = tmp_path / "src"
    good = write_archive_file(
        src,
        market="spot",
        period="daily",
        kind="aggTrades",
        symbol="BTCUSDT",
        stamp="2024-03-01",
        rows=agg_trades_rows(date(2024, 3, 1), 50, us=False, best_match=True),
    )
    bad = write_archive_file(
        src,
        market="spot",
        period="daily",
        kind="aggTrades",
        symbol="BTCUSDT",
        stamp="2024-03-02",
        rows=agg_trades_rows(date(2024, 3, 2), 50, us=False, best_match=True),
    )
    bad.with_name(bad.name + ".CHECKSUM").write_text("0" * 64 + f"  {bad.name}\n")
    future = write_archive_file(
        src,
        market="spot",
        period="daily",
        kind="aggTrades",
        symbol="BTCUSDT",
        stamp="2027-01-01",
        rows=agg_trades_rows(date(2027, 1, 1), 5, us=True, best_match=True),
    )
    junk = src / "notes.csv"
    junk.write_text("hello\n")
    rep = _import(layout, good, bad, future, junk)
    skipped = {Path(f.source).name: f.skipped for f in rep.skipped_files}
    assert "checksum mismatch" in skipped[bad.name]
    assert "in the future" in skipped[future.name]
    assert "not a Binance public-archive name" in skipped["notes.csv"]
    assert rep.rows == 50
    # the month's file overlapping the day already imported: its rows of that day are duplicates
    month = write_archive_file(
        src,
        market="spot",
        period="monthly",
        kind="aggTrades",
        symbol="BTCUSDT",
        stamp="2024-03",
        rows=agg_trades_rows(date(2024, 3, 1), 50, us=False, best_match=True),
    )
    rep2 = _import(layout, month)
    assert rep2.rows == 0 and rep2.rejected_rows == 50
    assert rep2.rejections[0].line == 1 and "already imported from another file" in rep2.rejections[0].reason
    assert connect(layout).execute("SELECT count(*) FROM agg_trades").fetchone()[0] == 50


@pytest.fixture
async def archive_server(tmp_path: Path):
    """A local stand-in for data.binance.vision serving real-format files (and one flaky answer)."""
    root = tmp_path / "served"
    files = [
        write_archive_file(
            root / "data",
            market="spot",
            period="daily",
            kind="aggTrades",
            symbol="BTCUSDT",
            stamp="2024-03-01",
            rows=agg_trades_rows(date(2024, 3, 1), 700, us=False, best_match=True),
        ),
        write_archive_file(
            root / "data",
            market="um",
            period="daily",
            kind="trades",
            symbol="BTCUSDT",
            stamp="2024-03-01",
            rows=trades_rows(date(2024, 3, 1), 300, us=False, best_match=False),
            header=True,
            checksum=False,
        ),
    ]
    hits: dict[str, int] = {}

    async def serve(request: web.Request) -> web.StreamResponse:
        rel = request.match_info["path"]
        hits[rel] = hits.get(rel, 0) + 1
        if rel.endswith("trades-2024-03-01.zip") and hits[rel] == 1:
            return web.Response(status=503)  # retried
        p = root / rel
        return web.FileResponse(p) if p.is_file() else web.Response(status=404)

    app = web.Application()
    app.router.add_get("/{path:.*}", serve)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    base = f"http://127.0.0.1:{port}"
    yield base, [f"{base}/{f.relative_to(root)}" for f in files], hits
    await runner.cleanup()


async def test_url_list_fetched_over_http_and_imported(archive_server, tmp_path: Path) -> None:
    base, urls, hits = archive_server
    layout = Layout(tmp_path / "data")
    lst = tmp_path / "urls.txt"
    lst.write_text(
        "# Binance files\n" + "\n".join(urls) + f"\n{base}/data/spot/daily/trades/X/X-trades-2024-03-01.zip\n"
    )
    import asyncio

    rep = await asyncio.to_thread(import_market_data, [str(lst)], layout, None, NOW)
    assert rep.rows_by_table() == {"agg_trades": 700, "market_trades": 300, "?": 0}
    missing = [f for f in rep.skipped_files]
    assert len(missing) == 1 and "HTTP 404" in missing[0].skipped
    kept = layout.market_raw / "spot/daily/aggTrades/BTCUSDT/BTCUSDT-aggTrades-2024-03-01.zip"
    assert kept.exists() and kept.with_name(kept.name + ".CHECKSUM").exists()
    assert hits["data/futures/um/daily/trades/BTCUSDT/BTCUSDT-trades-2024-03-01.zip"] == 2  # one 503, one retry


async def test_cli_import_from_url_list_and_file_urls(archive_server, tmp_path: Path) -> None:
    import asyncio

    _, urls, _ = archive_server
    lst = tmp_path / "urls.txt"
    lst.write_text(urls[0] + "\n")
    data = tmp_path / "data"
    local = write_archive_file(
        tmp_path / "local",
        market="spot",
        period="daily",
        kind="aggTrades",
        symbol="ETHUSDT",
        stamp="2024-03-01",
        rows=agg_trades_rows(date(2024, 3, 1), 10, us=False, best_match=True),
    )
    run = await asyncio.to_thread(
        subprocess.run,
        [OMS, "data", "import", "--data", str(data), str(lst), local.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert "710 rows" in run.stdout and "0 row(s) rejected" in run.stdout
    assert (data / "oms.duckdb").exists()


@pytest.mark.parametrize("streamed", [False, True], ids=["parsed-whole", "streamed-in-4k-blocks"])
def test_the_fast_path_writes_what_the_careful_path_writes(tmp_path: Path, monkeypatch, caplog,
                                                           streamed: bool) -> None:  # fmt: skip
    """Trade files through the compiled reader (the fast path, ``trade_csv``; in 16 MB blocks, or in 4 kB
    blocks so that files span many) and through DuckDB (the careful path): the same rows, types and partitions,
    for Spot ms/µs, USD-M with a header and no is_best_match, zipped or not, and a monthly file split by day."""
    import oms.archive.trade_csv as trade_csv

    if streamed:
        monkeypatch.setattr(trade_csv, "BLOCK_BYTES", 4096)
    src = tmp_path / "src"
    write_archive_file(src, market="spot", period="daily", kind="aggTrades", symbol="BTCUSDT", stamp="2024-12-31",
                       rows=agg_trades_rows(date(2024, 12, 31), 500, us=False, best_match=True))  # fmt: skip
    write_archive_file(src, market="spot", period="daily", kind="trades", symbol="BTCUSDT", stamp="2025-01-02",
                       rows=trades_rows(date(2025, 1, 2), 400, us=True, best_match=True), zipped=False)  # fmt: skip
    usdm = agg_trades_rows(date(2024, 3, 1), 300, us=False, best_match=False)
    write_archive_file(src, market="um", period="daily", kind="aggTrades", symbol="ETHUSDT", stamp="2024-03-01",
                       rows=usdm, header=True)  # fmt: skip
    monthly = trades_rows(date(2024, 4, 1), 900, us=False, best_match=True)
    spread = []
    for i, r in enumerate(monthly):  # over the month's first three days
        parts = r.split(",")
        parts[4] = str(day_ms(date(2024, 4, 1)) + i * 86_400_000 * 3 // 900)
        spread.append(",".join(parts))
    write_archive_file(src, market="spot", period="monthly", kind="trades", symbol="BTCUSDT", stamp="2024-04",
                       rows=spread)  # fmt: skip
    tables = ("agg_trades", "market_trades")
    seen = {}
    caplog.set_level("INFO", logger="oms.archive")
    for fast in (True, False):
        layout = Layout(tmp_path / f"data-{fast}")
        with MarketImporter(layout, now_ns=NOW, fast=fast) as imp:
            rep = imp.import_paths([src])
        assert rep.clean and rep.rows == 500 + 400 + 300 + 900, [str(r) for r in rep.rejections]
        con = connect(layout)
        seen[fast] = {
            t: (con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall(),
                con.execute(f"DESCRIBE SELECT * FROM {t}").fetchall())
            for t in tables
        }  # fmt: skip
        files = sorted(p.relative_to(layout.root).as_posix() for p in layout.parquet.rglob("*.parquet"))
        seen[fast]["files"] = [f for f in files if not f.startswith("_")]
        con.close()
    assert "takes the careful path" not in caplog.text  # every file went through the fast path
    assert seen[True] == seen[False]
    assert len(seen[True]["agg_trades"][0]) == 800 and len(seen[True]["market_trades"][0]) == 1300


def test_plain_decimals_on_the_fast_path_the_rest_on_the_careful_path(layout: Layout, tmp_path: Path,
                                                                       caplog) -> None:  # fmt: skip
    """The fast path's compiled decimal parse gives exactly DuckDB's DECIMAL(18,8) values for plain decimals;
    any other spelling (exponent, sign, more than 8 decimals) sends the file to the careful path, which
    imports it as before."""
    import numpy as np
    import pyarrow as pa

    from oms.archive.market_fast import _decimal_array
    from oms.archive.trade_csv import FIXED, parse

    kinds = np.array([FIXED], dtype=np.int64)
    plain = ["1", "0.5", "123.45678901", "9999999999.99999999", ".5", "5.", "00012.3400"]
    values, bad, _ = parse("\n".join(plain).encode() + b"\n", kinds, False)
    assert bad == -1 and values.shape == (1, len(plain))
    assert _decimal_array(values[0], pa.decimal128(18, 8)).to_pylist() == [Decimal(v) for v in plain]
    for other in ["", "-1", "+1", "1e5", " 1", "1.123456789", "12345678901", "1.2.3", "."]:
        assert parse(f"1\n{other}\n".encode(), kinds, False)[1] == 1, other
    rows = agg_trades_rows(date(2024, 12, 31), 20, us=False, best_match=True)
    parts = rows[7].split(",")
    parts[1] = "1.0123e4"  # DuckDB reads it; the fast path does not judge it
    rows[7] = ",".join(parts)
    src = tmp_path / "src"
    write_archive_file(src, market="spot", period="daily", kind="aggTrades", symbol="BTCUSDT", stamp="2024-12-31",
                       rows=rows)  # fmt: skip
    caplog.set_level("INFO", logger="oms.archive")
    rep = _import(layout, src)
    assert rep.clean and rep.rows == 20
    assert "takes the careful path: a price that is not a plain decimal" in caplog.text
    con = connect(layout)
    assert con.execute("SELECT price FROM agg_trades ORDER BY agg_trade_id").fetchall()[7] == (Decimal("10123"),)
    con.close()
