"""The trade/order/funding logs written with the model codec, compacted to hive Parquet (row counts checked,
bad lines reported with file and line, retention), and the DuckDB views over both: pruning shown with
EXPLAIN ANALYZE, Polars reading the same data through Arrow, the database file, and `oms sql`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import polars as pl
import pytest

from oms.archive.compact import Retention, compact
from oms.archive.layout import Layout
from oms.archive.logs import LogWriter, write_snapshot
from oms.archive.views import VIEWS, connect, write_database
from oms.model import Fill, OrderEvent, OrderStatus, Transfer, TransferEvent, TransferStatus, encode
from oms.model.parents import ParentEvent

OMS = str(Path(sys.executable).parent / "oms")
DAY = 86_400 * 10**9
T0 = int(datetime(2026, 11, 1, tzinfo=UTC).timestamp()) * 10**9
ACCOUNTS = ("binance/main", "binance/sub_a", "binance/sub_b")


def fill(account: str, i: int, t: int, side: str = "buy", price: str = "100", qty: str = "1") -> Fill:
    return Fill(
        account=account,
        symbol="BTC/USDT",
        client_order_id=f"c{i}",
        venue_order_id=f"v{i}",
        trade_id=str(i),
        side=side,
        price=price,
        qty=qty,
        commission="0.1",
        commission_asset="USDT",
        event_ns=t,
    )


def write_days(layout: Layout, days: int = 3, per_day: int = 4) -> None:
    with LogWriter(layout) as w:
        for d in range(days):
            for a in ACCOUNTS:
                for k in range(per_day):
                    i = d * 100 + k
                    w.append(fill(a, i, T0 + d * DAY + k * 1000, "buy" if k % 2 == 0 else "sell", str(100 + d)))
                    w.append(
                        OrderEvent(
                            account=a,
                            symbol="BTC/USDT",
                            client_order_id=f"c{i}",
                            kind="fill",
                            status=OrderStatus.FILLED,
                            filled_qty="1",
                            event_ns=T0 + d * DAY + k * 1000,
                        )
                    )


def files_read(con: duckdb.DuckDBPyConnection, sql: str) -> list[str]:
    plan = con.execute("EXPLAIN ANALYZE " + sql).fetchall()[0][1]
    return [ln.strip(" │") for ln in plan.splitlines() if ("/logs/" in ln or "/parquet/" in ln) and "│" in ln]


@pytest.fixture
def layout(tmp_path: Path) -> Layout:
    lay = Layout(tmp_path / "data")
    write_days(lay)
    return lay


def test_raw_logs_are_model_json_and_views_prune_to_one_file(layout: Layout) -> None:
    raw = layout.log("trades", date(2026, 11, 2), "binance/sub_a")
    assert raw == layout.root / "logs/2026/11/02/binance/sub_a/trades.jsonl"
    assert json.loads(raw.read_text().splitlines()[0])["type"] == "fill"
    con = connect(layout)
    assert con.execute("SELECT count(*) FROM trades").fetchone()[0] == 36
    q = "SELECT count(*) FROM trades WHERE account = 'binance/sub_a' AND date = DATE '2026-11-02'"
    assert con.execute(q).fetchone()[0] == 4
    read = files_read(con, q)
    assert read == [str(raw)], read  # 1 of 9 raw files (the placeholders aside)


def test_compaction_then_views_read_parquet_once_and_prune(layout: Layout) -> None:
    now = T0 + 2 * DAY + 2 * 3600 * 10**9  # day 3, 02:00: days 1 and 2 are complete
    res = compact(layout, Retention(raw_days=None), now_ns=now)
    assert res.report.clean and res.report.rows_by_table() == {"trades": 24, "orders": 24}
    assert res.through == {"trades": "2026-11-02", "orders": "2026-11-02"}
    part = layout.table_dir("trades") / "date=2026-11-02" / "part-0.parquet"
    assert part.exists()
    con = connect(layout)
    # raw files of compacted days are still there, but counted once
    assert con.execute("SELECT count(*) FROM trades").fetchone()[0] == 36
    assert con.execute("SELECT count(DISTINCT (account, trade_id)) FROM trades").fetchone()[0] == 36
    q = "SELECT sum(qty) FROM trades WHERE account = 'binance/sub_a' AND date = DATE '2026-11-02'"
    assert con.execute(q).fetchone()[0] == 4
    assert files_read(con, q) == [str(part)]
    assert compact(layout, Retention(raw_days=None), now_ns=now).compacted == []  # nothing changed: nothing to do


def test_parquet_compacted_before_a_column_was_added_still_reads(layout: Layout) -> None:
    """A part written by an older release lacks the columns added since (a fill's ``reference_price`` and
    ``slippage_bps``): the views read it beside newer parts, the missing columns NULL."""
    now = T0 + 2 * DAY + 2 * 3600 * 10**9
    compact(layout, Retention(raw_days=None), now_ns=now)
    part = layout.table_dir("trades") / "date=2026-11-01" / "part-0.parquet"
    con = duckdb.connect()
    old = part.with_suffix(".old")
    con.execute(f"COPY (SELECT * EXCLUDE (reference_price, slippage_bps) FROM '{part}') TO '{old}' (FORMAT parquet)")
    old.replace(part)
    view = connect(layout)
    assert view.execute("SELECT count(*) FROM trades").fetchone()[0] == 36
    q = "SELECT date, count(*), count(reference_price) FROM trades WHERE date < DATE '2026-11-03' GROUP BY 1 ORDER BY 1"
    assert view.execute(q).fetchall() == [(date(2026, 11, 1), 12, 0), (date(2026, 11, 2), 12, 0)]


def test_parent_order_steps_are_logged_compacted_and_queried(tmp_path: Path) -> None:
    layout = Layout(tmp_path / "data")
    steps = [("accepted", "working", "0", ""), ("child_sent", "working", "0", "p1-0"),
             ("child_filled", "working", "0.002", "p1-0"), ("done", "done", "0.002", "")]  # fmt: skip
    with LogWriter(layout) as w:
        for seq, (kind, status, filled, child) in enumerate(steps, 1):
            path = w.append(
                ParentEvent(
                    account="binance/sub_a",
                    symbol="BTC/USDT",
                    parent_id="p1",
                    algo="twap",
                    kind=kind,
                    status=status,
                    side="buy",
                    qty="0.002",
                    filled_qty=filled,
                    child_client_order_id=child,
                    seq=seq,
                    event_ns=T0 + seq * 1000,
                )  # fmt: skip
            )
    assert path == layout.logs / "2026/11/01/binance/sub_a/parents.jsonl"
    q = "SELECT seq, kind, status, filled_qty FROM parents WHERE parent_id = 'p1' ORDER BY seq"
    want = [(n, k, s, Decimal(f)) for n, (k, s, f, _) in enumerate(steps, 1)]
    assert connect(layout).execute(q).fetchall() == want
    res = compact(layout, Retention(raw_days=None), now_ns=T0 + DAY + 3600 * 10**9, kinds=("parents",))
    assert res.report.clean and res.report.rows_by_table() == {"parents": 4}
    assert connect(layout).execute(q).fetchall() == want  # read once, from the Parquet part


def test_one_account_reads_only_its_row_groups_of_the_day(tmp_path: Path) -> None:
    layout = Layout(tmp_path / "data")
    with LogWriter(layout) as w:
        for a in ACCOUNTS:
            w.extend([fill(a, i, T0 + i * 1000) for i in range(3000)])
    compact(layout, Retention(raw_days=None), now_ns=T0 + DAY + 7200 * 10**9)
    con = connect(layout)
    q = "SELECT count(*) FROM trades WHERE account = 'binance/sub_a' AND date = DATE '2026-11-01'"
    assert con.execute(q).fetchone()[0] == 3000
    plan = con.execute("EXPLAIN ANALYZE " + q).fetchall()[0][1]
    groups = next(ln for ln in plan.splitlines() if "Row Groups Scanned" in ln).strip(" │").split(":")[1]
    scanned, total = (int(x) for x in groups.split("/"))
    assert total == 5 and scanned <= 3, plan  # 9,000 rows in groups of 2,048: sub_a's 3,000 span 2 or 3


def test_polars_reads_the_same_data_through_arrow(layout: Layout) -> None:
    compact(layout, Retention(raw_days=None), now_ns=T0 + 3 * DAY + 7200 * 10**9)
    con = connect(layout)
    arrow = con.sql("SELECT date, account, trade_id, price, qty FROM trades").to_arrow_table()
    df = pl.from_arrow(arrow)
    assert df.height == 36 and df["price"].dtype == pl.Decimal(38, 12)
    direct = pl.scan_parquet(layout.table_glob("trades"), hive_partitioning=True).collect()
    assert direct.height == 36
    assert sorted(direct["account"].unique().to_list()) == sorted(ACCOUNTS)
    assert direct["date"].dtype == pl.Date  # the hive key
    by = df.group_by("account").agg(pl.col("qty").sum()).sort("account")
    assert by["qty"].to_list() == direct.group_by("account").agg(pl.col("qty").sum()).sort("account")["qty"].to_list()


def test_bad_lines_duplicates_wrong_day_and_future_files_are_reported(layout: Layout) -> None:
    raw = layout.log("trades", date(2026, 11, 1), "binance/main")
    lines = raw.read_bytes().splitlines(keepends=True)
    lines.insert(1, b"this is not json\n")  # line 2
    lines.insert(3, lines[0])  # line 4: duplicate of line 1
    wrong_day = fill("binance/main", 999, T0 + DAY + 5)
    lines.append(encode(wrong_day) + b"\n")  # line 7: belongs to the next day
    lines.append(lines[2][:30])  # line 8: truncated last line
    raw.write_bytes(b"".join(lines))
    future = layout.log("trades", date(2027, 1, 1), "binance/main")
    future.parent.mkdir(parents=True)
    future.write_bytes(encode(fill("binance/main", 1, T0)) + b"\n")
    res = compact(layout, Retention(raw_days=None), now_ns=T0 + DAY + 7200 * 10**9, kinds=("trades",))
    f = next(r for r in res.report.files if r.source == str(raw))
    assert f.rows == 4 and f.rejected_rows == 4
    by_line = {r.line: r.reason for r in f.rejections}
    assert sorted(by_line) == [2, 4, 7, 8]
    assert "bad Fill message" in by_line[2]
    assert by_line[4].startswith("duplicate of line 1")
    assert "is not on 2026-11-01" in by_line[7]
    assert by_line[8].startswith("truncated line")
    fut = next(r for r in res.report.files if r.source == str(future))
    assert "in the future" in fut.skipped
    assert (
        connect(layout)
        .execute("SELECT count(*) FROM trades WHERE date = DATE '2026-11-01' AND account = 'binance/main'")
        .fetchone()[0]
        == 4
    )


def test_late_lines_recompact_and_retention_deletes_old_files(layout: Layout) -> None:
    now = T0 + 2 * DAY + 7200 * 10**9
    compact(layout, Retention(raw_days=None), now_ns=now, kinds=("trades",))
    raw = layout.log("trades", date(2026, 11, 1), "binance/sub_b")
    with LogWriter(layout) as w:
        w.append(fill("binance/sub_b", 77, T0 + 500))  # a fill of day 1 arriving late
    os.utime(raw, ns=(now, now))
    again = compact(layout, Retention(raw_days=None), now_ns=now, kinds=("trades",))
    assert again.compacted == [str(raw.relative_to(layout.root))]
    con = connect(layout)
    assert con.execute("SELECT count(*) FROM trades WHERE account='binance/sub_b'").fetchone()[0] == 13
    later = T0 + 20 * DAY
    res = compact(layout, Retention(raw_days=7, parquet_days=19), now_ns=later, kinds=("trades",))
    assert len(res.deleted_raw) == 9 and not raw.exists()
    assert res.deleted_parquet == ["parquet/trades/date=2026-11-01"]
    assert con.execute("SELECT count(DISTINCT date) FROM trades").fetchone()[0] == 2
    with pytest.raises(ValueError, match="raw_days must be >= 0"):
        Retention(raw_days=-2)


def test_transfers_snapshots_and_empty_views(tmp_path: Path) -> None:
    layout = Layout(tmp_path / "empty")
    con = connect(layout)
    for view in VIEWS:  # every view answers on an empty archive
        assert con.execute(f"SELECT count(*) FROM {view}").fetchone() == (0,), view
    assert con.execute("SELECT count(*) FROM pnl_daily").fetchone() == (0,)
    t = Transfer(
        transfer_id="t1", from_account="binance/main", to_account="binance/sub_a", asset="USDT", amount="250.5"
    )
    with LogWriter(layout) as w:
        w.append(TransferEvent(transfer=t, status=TransferStatus.DONE, venue_transfer_id="9", event_ns=T0))
    write_snapshot(layout, datetime(2026, 11, 1, 5, tzinfo=UTC), "binance/sub_a", {"balances": {"USDT": "10"}})
    assert con.execute("SELECT transfer_id, from_account, amount, status, month FROM transfers").fetchall() == [
        ("t1", "binance/main", Decimal("250.5"), "done", date(2026, 11, 1))
    ]
    snap = con.execute("SELECT hour, account, state->>'$.balances.USDT' FROM snapshots").fetchone()
    assert snap == (datetime(2026, 11, 1, 5, tzinfo=UTC), "binance/sub_a", "10")


def test_database_file_and_oms_sql_formats(layout: Layout, tmp_path: Path) -> None:
    db = write_database(layout)
    with duckdb.connect(str(db), read_only=True) as con:  # what `duckdb data/oms.duckdb` sees
        assert con.execute("SELECT count(*) FROM trades").fetchone()[0] == 36
        names = {r[0] for r in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()}
    assert {"trades", "orders", "positions", "snapshots", "transfers", "klines", "market_trades", "agg_trades"} <= names
    assert "pnl_daily" in names
    sql = "SELECT account, count(*) AS n, sum(qty) AS q FROM trades GROUP BY account ORDER BY account"

    def oms(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [OMS, "sql", "--data", str(layout.root), *args],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "COLUMNS": "60"},
        )

    table = oms(sql)
    assert table.returncode == 0 and "binance/sub_a" in table.stdout
    assert max(len(ln) for ln in table.stdout.splitlines()) <= 60  # fits the terminal
    csv_out = oms(sql, "--format", "csv")
    assert csv_out.stdout.splitlines() == [
        "account,n,q",
        "binance/main,12,12",
        "binance/sub_a,12,12",
        "binance/sub_b,12,12",
    ]
    js = json.loads(oms(sql, "--format", "json").stdout)
    assert js[0] == {"account": "binance/main", "n": 12, "q": "12"}
    out = tmp_path / "x.parquet"
    assert oms(sql, "--format", "parquet", "--output", str(out)).returncode == 0
    assert pl.read_parquet(out).height == 3
    bad = oms("SELECT nope FROM trades")
    assert bad.returncode == 1 and "query failed: Binder Error" in bad.stderr and "Traceback" not in bad.stderr
    old = subprocess.run(
        [OMS, "archive", "query", "--data", str(layout.root), "SELECT count(*) AS n FROM orders"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert old.returncode == 0 and "36" in old.stdout


def test_cli_compact_and_views(layout: Layout) -> None:
    run = subprocess.run(
        [OMS, "archive", "compact", "--data", str(layout.root), "--raw-days", "-1", "--grace-hours", "0"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert "compacted 18 file(s)" in run.stdout and "0 row(s) rejected" in run.stdout
    assert (layout.table_dir("trades") / "date=2026-11-03" / "part-0.parquet").exists()
    layout.database.unlink()
    views = subprocess.run([OMS, "archive", "views", "--data", str(layout.root)], capture_output=True, text=True)
    assert views.returncode == 0 and layout.database.exists()
    assert layout.log("trades", date(2026, 11, 1), "binance/main").exists()  # --raw-days -1: kept
