"""Archive benchmarks: the PnL report over 200 accounts x 30 days x 1,000 fills per account-day, and the
market-data import from CSV, each beside a DuckDB baseline measured in the same run.

Run with ``make bench`` (``pytest -q -s tests/bench``). Targets from issue 13 are printed next to the
figures; a miss is a warning, never a failure (the machine is shared). Policy: the data is generated
first (not timed), each figure is the best of 3 runs, on a fresh DuckDB connection each time.

Synthetic data from the real price path: the real hourly BTC closes of ``datasets/market`` (Coinbase,
2017-07 to 2019-10), 720 consecutive hours (30 days from 2017-12-01, the run-up to and fall from the
all-time high), interpolated linearly to each fill's time. Each fill's price is that path price plus a
spread of up to +-0.05%, rounded to the cent; sides are random with each account's own buy bias,
quantities 0.001-0.1 BTC, fees 0.04% of the notional, every account pays funding three times a day.
The import files are aggTrades daily CSVs (Binance Spot format, no header; ms and µs timestamps) whose
prices walk the same real path.
"""

from __future__ import annotations

import hashlib
import os
import time
import warnings
import zipfile
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pytest

from oms.archive.charts import equity_charts
from oms.archive.layout import Layout
from oms.archive.market import DEFAULT_DATASETS, read_coinbase
from oms.archive.market_import import MarketImporter
from oms.archive.pnl import materialize
from oms.archive.pnl_fast import materialize_fast
from oms.archive.pnl_report import write_month
from oms.archive.schema import ensure_placeholders
from oms.archive.views import connect

pytestmark = pytest.mark.bench

ACCOUNTS, DAYS, FILLS = 200, 30, 1_000
START = date(2017, 12, 1)
DAY_NS = 86_400 * 10**9


def real_path_cents(start: date, hours: int) -> tuple[np.ndarray, np.ndarray]:
    """(open time ns, close in cents) of ``hours`` real hourly BTC bars from ``start``."""
    bars, _ = read_coinbase(DEFAULT_DATASETS / "Coinbase_BTCUSD_1h.csv")
    t0 = int(datetime(start.year, start.month, start.day, tzinfo=UTC).timestamp()) * 1000
    sel = [b for b in bars if b.open_ms >= t0][: hours + 1]
    assert len(sel) == hours + 1, "the real path does not cover the benchmark's period"
    return (
        np.array([b.open_ms * 10**6 for b in sel], dtype=np.int64),
        np.array([round(float(b.close) * 100) for b in sel], dtype=np.int64),
    )


def generate_fills(layout: Layout) -> int:
    """6 million fills as compacted Parquet (one file a day, sorted by account), and the funding log's."""
    path_t, path_c = real_path_cents(START, DAYS * 24)
    rng = np.random.default_rng(13)
    t0 = int(path_t[0])
    layout.parquet.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    n_day = ACCOUNTS * FILLS
    bias = rng.uniform(0.4, 0.6, ACCOUNTS)
    for d in range(DAYS):
        acct = np.repeat(np.arange(ACCOUNTS), FILLS)
        t = t0 + d * DAY_NS + np.sort(rng.integers(0, DAY_NS, (ACCOUNTS, FILLS)), axis=1).ravel()
        path = np.interp(t, path_t, path_c)
        cents = np.round(path * (1 + rng.uniform(-0.0005, 0.0005, n_day))).astype(np.int64)
        qty_m = rng.integers(1, 101, n_day)  # 0.001 .. 0.1 BTC in 1e-3 units
        buy = rng.random(n_day) < bias[acct]
        fee_u = cents * qty_m * 4  # 0.04% of notional, in 1e-10 USDT
        table = pa.table(
            {
                "account": pa.array([f"binance/sub_{a:03d}" for a in range(ACCOUNTS)])
                .take(pa.array(acct))
                .dictionary_encode()
                .cast(pa.string()),
                "symbol": pa.array(["BTC/USDT:USDT"] * n_day),
                "trade_id": pa.array(np.arange(n_day) + d * n_day).cast(pa.string()),
                "side": pa.array(np.where(buy, "buy", "sell")),
                "price_c": cents,
                "qty_m": qty_m,
                "fee_u": fee_u,
                "event_ns": t,
            }
        )
        con.register("gen", table)
        day = START.toordinal() + d
        con.execute(
            f"""COPY (SELECT DATE '{date.fromordinal(day)}' AS date, account, symbol,
                   'c' || trade_id AS client_order_id,
                   'v' || trade_id AS venue_order_id, trade_id, side,
                   CAST(CAST(price_c AS DECIMAL(20,0)) * 0.01 AS DECIMAL(38,12)) AS price,
                   CAST(CAST(qty_m AS DECIMAL(20,0)) * 0.001 AS DECIMAL(38,12)) AS qty,
                   CAST(CAST(fee_u AS DECIMAL(20,0)) * 0.0000000001 AS DECIMAL(38,12)) AS commission,
                   'USDT' AS commission_asset, 'taker' AS liquidity, 'both' AS position_side,
                   NULL::DECIMAL(38,12) AS realized_pnl, event_ns, 0::BIGINT AS recv_ns,
                   NULL::DECIMAL(38,12) AS reference_price, NULL::DECIMAL(38,12) AS slippage_bps
                FROM gen ORDER BY account, event_ns) TO '{layout.table_dir("trades")}'
                (FORMAT parquet, COMPRESSION zstd, PARTITION_BY (date), OVERWRITE_OR_IGNORE true,
                 ROW_GROUP_SIZE 2048, FILENAME_PATTERN 'part-{{i}}')"""
        )
        con.unregister("gen")
    # funding three times a day per account
    con.execute(
        f"""COPY (SELECT CAST(to_timestamp(ft / 1e9) AS DATE) AS date, 'binance/sub_' || lpad(a::VARCHAR, 3, '0')
               AS account, 'BTC/USDT:USDT' AS symbol, 'USDT' AS asset, CAST(-0.01 * (1 + a % 5) AS DECIMAL(38,12))
               AS amount, NULL::DECIMAL(38,12) AS rate, NULL::DECIMAL(38,12) AS mark_price,
               NULL::DECIMAL(38,12) AS position_qty, '' AS venue_id, ft AS event_ns
            FROM range({ACCOUNTS}) r(a), range({t0}, {t0 + DAYS * DAY_NS}, {8 * 3600 * 10**9}) f(ft)
            ORDER BY account, event_ns)
            TO '{layout.table_dir("funding")}' (FORMAT parquet, PARTITION_BY (date), OVERWRITE_OR_IGNORE true)"""
    )
    con.close()
    return ACCOUNTS * DAYS * FILLS


def cpu_of(fn) -> float:
    """The CPU time (every thread of the process) of one call: less sensitive to a loaded machine."""
    t = time.process_time()
    fn()
    return time.process_time() - t


def best_of(n: int, fn) -> float:
    best = float("inf")
    for _ in range(n):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


@pytest.mark.timeout(1800)  # 6 M fills generated, three reports, 201 charts, the SQL stages on a tenth
def test_pnl_report_200_accounts_30_days(tmp_path: Path) -> None:
    """The pnl-report flow's work for one month: every account's daily and monthly rows and the total
    (``write_month``: the FIFO pass of ``oms.archive.pnl_fast``, the DuckDB views, one CSV per account), then
    the 201 equity PNGs (first drawing, and a redraw where nothing changed), beside a DuckDB group-by of the
    same fills and the exact SQL stages (``pnl.materialize``) on a tenth of the accounts."""
    layout = Layout(tmp_path / "data")
    ensure_placeholders(layout)
    n = generate_fills(layout)
    reports = tmp_path / "reports"

    def report() -> None:
        rep = write_month(layout, reports, START)
        assert len(rep.files) == ACCOUNTS + 1 and len(rep.monthly) == ACCOUNTS + 1

    def baseline() -> None:  # one scan-and-aggregate of the same fills: the floor of any daily report
        con = connect(layout)
        rows = con.execute(
            "SELECT account, date, sum(price * qty), sum(commission), count(*) FROM trades GROUP BY ALL"
        ).fetchall()
        assert len(rows) == ACCOUNTS * DAYS
        con.close()

    con = connect(layout)
    assert con.execute("SELECT count(*) FROM trades").fetchone()[0] == n
    assert materialize_fast(con), "the benchmark's fills must take the fast path"
    con.close()
    load = os.getloadavg()[0]
    t_report = best_of(3, report)
    t_base = best_of(3, baseline)
    cpu_report, cpu_base = cpu_of(report), cpu_of(baseline)
    print(f"\nPnL report {t_report:.2f} s, baseline {t_base:.2f} s", flush=True)
    rep = write_month(layout, reports, START)
    jobs = {rep.files[a].parent / "equity.png": (a, {a: rep.equity[a]}) for a in rep.files}
    t = time.perf_counter()
    drawn = equity_charts(jobs)
    t_charts = time.perf_counter() - t
    t = time.perf_counter()
    again = equity_charts(jobs)
    t_again = time.perf_counter() - t
    assert len(drawn) == ACCOUNTS + 1 and again == []
    print(f"equity PNGs: {len(drawn)} drawn in {t_charts:.2f} s, unchanged redraw {t_again:.3f} s", flush=True)

    def sql_tenth() -> None:  # the exact SQL stages on 20 of the 200 accounts
        con = connect(layout)
        con.execute("CREATE TEMP VIEW trades AS SELECT * FROM memory.main.trades WHERE account < 'binance/sub_020'")
        materialize(con)
        con.execute("SELECT count(*) FROM pnl_daily").fetchall()
        con.close()

    t_sql = best_of(1, sql_tenth)
    print(
        f"\nPnL report (daily per account and total, monthly, {ACCOUNTS + 1} CSVs) {n:,} fills, {ACCOUNTS} accounts x "
        f"{DAYS} days: {t_report:.2f} s ({n / t_report / 1e6:.2f} M fills/s)  target: < 5 s\n"
        f"  baseline, DuckDB group-by sum over the same fills:  {t_base:.2f} s  "
        f"(report / baseline x{t_report / t_base:.1f})\n"
        f"  CPU time (all threads), one run each: report {cpu_report:.2f} s, baseline {cpu_base:.2f} s "
        f"(x{cpu_report / cpu_base:.1f}); load average {load:.1f} at the start, {os.getloadavg()[0]:.1f} now\n"
        f"  the exact SQL stages alone on 20 accounts (a tenth): {t_sql:.2f} s "
        f"(x{t_sql * 10 / t_report:.0f} the report, scaled)\n"
        f"  equity PNGs: {len(drawn)} drawn in {t_charts:.2f} s (process pool), unchanged redraw {t_again:.3f} s"
    )
    if t_report >= 5:
        warnings.warn(f"benchmark below target: PnL report {t_report:.2f} s >= 5 s", stacklevel=1)


def write_agg_csvs(folder: Path, files: int, rows: int) -> list[Path]:
    """Daily Spot aggTrades CSVs (no header) walking the real path: ms before 2025, µs after."""
    path_t, path_c = real_path_cents(START, files * 24)
    rng = np.random.default_rng(7)
    con = duckdb.connect()
    out = []
    days = [date(2024, 12, 30), date(2025, 1, 2), date(2024, 12, 31), date(2025, 1, 3)]
    for i in range(files):
        d = days[i % len(days)]
        us = d.year >= 2025  # Binance Spot: µs from 2025-01-01
        t_in_day = np.sort(rng.integers(0, DAY_NS, rows))
        price = np.round(np.interp(path_t[0] + i * DAY_NS + t_in_day, path_t, path_c)).astype(np.int64)
        day0 = int(datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp()) * 10**9
        ts = (day0 + t_in_day) // (1000 if us else 1_000_000)
        ids = np.arange(rows, dtype=np.int64) + i * rows + 10**9
        table = pa.table(
            {
                "a": ids,
                "p": price,
                "q": rng.integers(1, 10**6, rows),
                "f": ids * 3,
                "l": ids * 3 + 2,
                "t": ts,
                "m": rng.random(rows) < 0.5,
            }
        )
        con.register("gen", table)
        p = folder / "spot" / "daily" / "aggTrades" / "BTCUSDT" / f"BTCUSDT-aggTrades-{d}.csv"
        p.parent.mkdir(parents=True, exist_ok=True)
        con.execute(
            f"""COPY (SELECT a, CAST(CAST(p AS DECIMAL(18,2)) / 100 AS DECIMAL(18,8)),
                   CAST(CAST(q AS DECIMAL(18,8)) / 100000000 AS DECIMAL(18,8)), f, l, t,
                   CASE WHEN m THEN 'True' ELSE 'False' END, 'True' FROM gen)
                TO '{p}' (FORMAT csv, HEADER false, QUOTE '')"""
        )
        con.unregister("gen")
        out.append(p)
    con.close()
    return out


def zip_with_checksums(csvs: list[Path], folder: Path) -> list[Path]:
    """The same files as Binance publishes them: one zip each with its ``.CHECKSUM`` beside it."""
    out = []
    for p in csvs:
        z = folder / p.relative_to(p.parents[4]).with_suffix(".zip")
        z.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
            zf.write(p, p.name)
        digest = hashlib.sha256(z.read_bytes()).hexdigest()
        z.with_name(z.name + ".CHECKSUM").write_text(f"{digest}  {z.name}\n")
        out.append(z)
    return out


def test_market_import_rows_per_second(tmp_path: Path) -> None:
    """``oms data import``'s importer (``MarketImporter``: every check, Parquet zstd in the hive layout) over
    four daily Spot aggTrades CSVs of a million rows each, beside DuckDB's own ``read_csv`` of the same files
    into a table and into one Parquet file (no checks), and the same files zipped with ``.CHECKSUM`` files (as
    Binance publishes them: the checksum verified, the CSV read from the zip)."""
    files, rows = 4, 1_000_000
    csvs = write_agg_csvs(tmp_path / "src", files, rows)
    zips = zip_with_checksums(csvs, tmp_path / "zipped")
    n = files * rows
    cols = (
        "{'agg_trade_id': 'BIGINT', 'price': 'DECIMAL(18,8)', 'quantity': 'DECIMAL(38,8)', 'first_trade_id': "
        "'BIGINT', 'last_trade_id': 'BIGINT', 'transact_time': 'BIGINT', 'is_buyer_maker': 'BOOLEAN', "
        "'is_best_match': 'BOOLEAN'}"
    )
    listing = "[" + ", ".join(f"'{p}'" for p in csvs) + "]"

    def ours(paths: list[Path]):
        def run() -> None:
            layout = Layout(tmp_path / f"data{time.perf_counter_ns()}")
            with MarketImporter(layout) as imp:
                rep = imp.import_paths(paths)
            assert rep.clean and rep.rows == n, [str(r) for r in rep.rejections[:5]]

        return run

    def duck_read() -> None:
        con = duckdb.connect()
        con.execute(f"CREATE TABLE t AS SELECT * FROM read_csv({listing}, header=false, columns={cols})")
        assert con.execute("SELECT count(*) FROM t").fetchone()[0] == n
        con.close()

    def duck_parquet() -> None:
        con = duckdb.connect()
        out = tmp_path / f"duck{time.perf_counter_ns()}.parquet"
        con.execute(
            f"COPY (SELECT * FROM read_csv({listing}, header=false, columns={cols})) TO '{out}' "
            "(FORMAT parquet, COMPRESSION zstd)"
        )
        con.close()

    load = os.getloadavg()[0]
    t_ours = best_of(3, ours(csvs))
    t_read = best_of(3, duck_read)
    t_pq = best_of(3, duck_parquet)
    t_zip = best_of(3, ours(zips))
    cpu_ours, cpu_read = cpu_of(ours(csvs)), cpu_of(duck_read)
    mb = sum(p.stat().st_size for p in csvs) / 1e6
    print(
        f"\nmarket-data import, aggTrades CSV ({files} daily files, {n:,} rows, {mb:.0f} MB): "
        f"{n / t_ours / 1e6:.2f} M rows/s  target: >= 2 M rows/s\n"
        f"  baseline DuckDB read_csv into a table:               {n / t_read / 1e6:.2f} M rows/s "
        f"(import/read x{t_read / t_ours:.2f})\n"
        f"  baseline DuckDB read_csv -> Parquet zstd (no checks): {n / t_pq / 1e6:.2f} M rows/s "
        f"(import/copy x{t_pq / t_ours:.2f})\n"
        f"  the same files zipped, .CHECKSUM verified:           {n / t_zip / 1e6:.2f} M rows/s\n"
        f"  CPU time (all threads), one run each: import {cpu_ours:.2f} s, DuckDB read_csv {cpu_read:.2f} s "
        f"(x{cpu_ours / cpu_read:.2f}); load average {load:.1f} at the start, {os.getloadavg()[0]:.1f} now"
    )
    if n / t_ours < 2e6:
        warnings.warn(f"benchmark below target: import {n / t_ours / 1e6:.2f} M rows/s < 2", stacklevel=1)
