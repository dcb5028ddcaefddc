"""PnL report files of one month: ``reports/YYYY/MM/{account}/pnl.csv`` per account and ``.../total/pnl.csv``.

Everything is computed over the PnL views (``oms.archive.pnl``), all accounts at once: the FIFO stage in one
compiled pass (``oms.archive.pnl_fast``; the exact SQL stages when the data needs them), then one query gives
the month's daily rows and the month's row of every account and of the total, already formatted; Python only
cuts the sorted result into one CSV per account (Arrow slices, no per-row work).

A CSV has one row per day of the month (``period`` ``day``) and a last row for the month (``period``
``month``, dated the month's first day): realised and unrealised PnL, fees, funding, net PnL, turnover,
fills, closing fills, wins, win rate, equity (cumulative since the first fill), drawdown and max drawdown.
Decimals are printed exactly, without trailing zeros. A month without fills or funding in the archive (a
report run before the first fill) still writes ``total/pnl.csv``, with its header only.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from oms.archive.layout import Layout, account_path
from oms.archive.pnl import PNL_DAILY, PNL_DAILY_TOTAL, materialize, monthly_sql
from oms.archive.pnl_fast import materialize_fast
from oms.archive.views import connect

PNL_SOURCES = ("trades", "funding")  # the only views the PnL stages read (oms.archive.pnl)
TOTAL = "total"  # the folder (and account column) of the all-accounts rows
COLUMNS = ("realised_pnl", "unrealised_pnl", "fees", "funding", "net_pnl", "turnover", "fills", "closes", "wins",
           "win_rate", "equity", "drawdown", "max_drawdown")  # fmt: skip
CSV_COLUMNS = ("period", "date", "account", *COLUMNS)  # a report CSV's columns, in order
_DECIMALS = {"realised_pnl", "unrealised_pnl", "fees", "funding", "net_pnl", "turnover", "equity", "drawdown",
             "max_drawdown"}  # fmt: skip


@dataclass
class MonthReport:
    """What one report wrote: the CSVs per account (and ``total``), and the rows the artifacts show."""

    month: date
    files: dict[str, Path] = field(default_factory=dict)
    monthly: list[dict] = field(default_factory=list)  # one row per account and the total, formatted
    daily_total: list[dict] = field(default_factory=list)
    equity: dict[str, tuple[list[date], list[float]]] = field(default_factory=dict)  # for the charts

    @property
    def accounts(self) -> list[str]:
        return [a for a in self.files if a != TOTAL]


def _fmt(col: str) -> str:
    if col in _DECIMALS:
        return (
            f"CASE WHEN {col} IS NULL THEN NULL WHEN {col} = 0 THEN '0' ELSE "
            f"rtrim(rtrim(CAST({col} AS VARCHAR), '0'), '.') END AS {col}"
        )
    if col == "win_rate":
        return "CAST(round(win_rate, 6) AS VARCHAR) AS win_rate"
    return f"CAST({col} AS BIGINT) AS {col}"  # counts (a sum of counts is a 128-bit integer in DuckDB)


def month_bounds(month: str | date) -> tuple[date, date]:
    """The first day of ``month`` (``YYYY-MM`` or a date in it) and of the next month."""
    if isinstance(month, str):
        try:
            y, m = (int(x) for x in month.split("-")[:2])
            first = date(y, m, 1)
        except ValueError:
            raise ValueError(f"month {month!r} is not YYYY-MM") from None
    else:
        first = month.replace(day=1)
    nxt = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return first, nxt


def _query(first: date, nxt: date) -> str:
    cols = ", ".join(_fmt(c) for c in COLUMNS)
    daily_cols = ", ".join(COLUMNS)
    month_cols = ", ".join(c if c != "drawdown" else "NULL AS drawdown" for c in COLUMNS)
    lo, hi = f"DATE '{first}'", f"DATE '{nxt}'"
    return f"""
WITH rows AS (
  SELECT 'day' AS period, date, account, {daily_cols} FROM pnl_daily_m WHERE date >= {lo} AND date < {hi}
  UNION ALL
  SELECT 'day', date, '{TOTAL}', {daily_cols} FROM pnl_daily_total_m WHERE date >= {lo} AND date < {hi}
  UNION ALL
  SELECT 'month', month, account, {month_cols} FROM pnl_monthly_m WHERE month = {lo}
  UNION ALL
  SELECT 'month', month, '{TOTAL}', {month_cols} FROM pnl_monthly_total_m WHERE month = {lo}
)
SELECT period, date, account, CAST(equity AS DOUBLE) AS equity_f, {cols}
FROM rows ORDER BY account = '{TOTAL}', account, period = 'month', date
"""


def compute(con: duckdb.DuckDBPyConnection, month: str | date) -> pa.Table:
    """The month's rows of every account and the total (sorted by account, days then the month row)."""
    first, nxt = month_bounds(month)
    if not materialize_fast(con):  # the data needs the exact 128-bit SQL stages (oms.archive.pnl_fast)
        materialize(con)
    # the daily views' SQL once (the monthly ones and the month filter read them): temp tables of their own,
    # bound against the materialised stages only (the connection needs no PnL views)
    con.execute(f"CREATE OR REPLACE TEMP TABLE pnl_daily_m AS {PNL_DAILY}")
    con.execute(f"CREATE OR REPLACE TEMP TABLE pnl_daily_total_m AS {PNL_DAILY_TOTAL}")
    monthly = {"pnl_monthly_m": "pnl_daily_m", "pnl_monthly_total_m": "pnl_daily_total_m"}
    for name, source in monthly.items():
        con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {monthly_sql(source)} ")
    return con.sql(_query(first, nxt)).to_arrow_table()


def _plain(x: Decimal | None) -> str:
    """An exact decimal without trailing zeros (``0`` for none)."""
    if not x:
        return "0"
    return format(x.normalize(), "f")


def realised_pnl(layout: Layout, day: date) -> dict[str, dict[str, str]]:
    """Per account: the FIFO realised PnL of its archived fills up to and including ``day`` (``total``) and of
    ``day`` alone (``day``), as exact decimals: the report's own pass (``pnl_fast``, or the SQL stages)."""
    con = connect(layout, only=PNL_SOURCES)
    try:
        if not materialize_fast(con):
            materialize(con)
        rows = con.execute(
            "SELECT account, sum(realised_pnl) FILTER (WHERE date <= ?), sum(realised_pnl) FILTER (WHERE date = ?) "
            "FROM pnl_book_daily GROUP BY account ORDER BY account",
            [day, day],
        ).fetchall()
    finally:
        con.close()
    return {account: {"total": _plain(total), "day": _plain(on_day)} for account, total, on_day in rows}


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _csv_lines(table: pa.Table) -> tuple[bytes, bytes, np.ndarray]:
    """The table as CSV in one pass: (header line, the rows' bytes, where each row's line ends). A row is one
    line: every value is a number, a date, a period or an account id (no quotes, commas or newlines)."""
    sink = pa.BufferOutputStream()
    pacsv.write_csv(table, sink, pacsv.WriteOptions(quoting_style="none", include_header=False))
    body = sink.getvalue().to_pybytes()
    ends = np.flatnonzero(np.frombuffer(body, dtype=np.uint8) == 10) + 1
    if len(ends) != table.num_rows:
        raise ValueError(f"the PnL CSV has {len(ends)} lines for {table.num_rows} rows")
    return (",".join(table.column_names) + "\n").encode(), body, ends


def write_month(layout: Layout, reports: Path, month: str | date) -> MonthReport:
    """Compute the month over the archive of ``layout`` and write its CSVs under ``reports``."""
    first, _ = month_bounds(month)
    con = connect(layout, only=PNL_SOURCES)
    try:
        table = compute(con, first)
    finally:
        con.close()
    out = MonthReport(first)
    folder = reports / f"{first:%Y}" / f"{first:%m}"
    if table.num_rows == 0:  # no fills or funding in the month: the total file still says so, header only
        path = folder / TOTAL / "pnl.csv"
        _write(path, (",".join(CSV_COLUMNS) + "\n").encode())
        out.files[TOTAL], out.equity[TOTAL] = path, ([], [])
        return out
    # the rows are sorted by account: one run of rows per account, one CSV serialisation for all of them
    runs = pc.run_end_encode(table.column("account").combine_chunks())
    ends = runs.run_ends.to_numpy()
    names = runs.values.to_pylist()
    header, body, line_ends = _csv_lines(table.select(list(CSV_COLUMNS)))
    starts = np.concatenate([[0], ends[:-1]])
    is_day = pc.equal(table.column("period"), "day").to_numpy(zero_copy_only=False)
    dates = table.column("date").to_pylist()
    equity = table.column("equity_f").to_numpy(zero_copy_only=False)
    for name, start, end in zip(names, starts.tolist(), ends.tolist(), strict=True):
        path = folder / (TOTAL if name == TOTAL else account_path(name)) / "pnl.csv"
        lo = int(line_ends[start - 1]) if start else 0
        _write(path, header + body[lo : int(line_ends[end - 1])])
        out.files[name] = path
        days = [i for i in range(start, end) if is_day[i]]
        out.equity[name] = ([dates[i] for i in days], [float(equity[i]) for i in days])
    month_rows = table.filter(pc.equal(table.column("period"), "month"))
    out.monthly = month_rows.select([c for c in ("account", *COLUMNS) if c != "drawdown"]).to_pylist()
    total = table.filter(pc.and_(pc.equal(table.column("account"), TOTAL), pc.equal(table.column("period"), "day")))
    out.daily_total = total.select(["date", "realised_pnl", "unrealised_pnl", "fees", "funding", "net_pnl", "equity",
                                    "drawdown"]).to_pylist()  # fmt: skip
    return out
