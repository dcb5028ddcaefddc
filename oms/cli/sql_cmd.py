"""`oms sql "SELECT ..."`: DuckDB over the archive views, printed as a table that fits the terminal, or
written as CSV, JSON (Lines) or Parquet."""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
from rich.table import Table

from oms.archive.layout import Layout
from oms.archive.views import connect
from oms.cli.common import CommandError, console, data_dir_from

FORMATS = ("table", "csv", "json", "jsonl", "parquet")


def _plain(v: Any) -> Any:
    if isinstance(v, Decimal):
        return format(v.normalize(), "f")
    if isinstance(v, dt.datetime | dt.date | dt.time):
        return v.isoformat()
    if isinstance(v, bytes):
        return v.hex()
    return v


def _cell(v: Any) -> str:
    if v is None:
        return ""
    return str(_plain(v))


def run_sql(args: argparse.Namespace) -> int:
    layout = Layout(data_dir_from(args))
    con = connect(layout)
    try:
        if args.format == "parquet":
            if not args.output:
                raise CommandError("--format parquet needs --output FILE")
            con.execute(f"COPY ({args.sql}) TO '{Path(args.output)}' (FORMAT parquet, COMPRESSION zstd)")
            n = con.execute(f"SELECT count(*) FROM read_parquet('{Path(args.output)}')").fetchone()[0]
            sys.stderr.write(f"{n} rows written to {args.output}\n")
            return 0
        if args.format == "table":
            rel = con.sql(args.sql)
            if rel is not None:
                _print_table(rel, args.limit)
        else:
            cur = con.execute(args.sql)
            out = Path(args.output).open("w", newline="") if args.output else sys.stdout
            try:
                _write_rows(cur, args.format, out)
            finally:
                if args.output:
                    out.close()
    except duckdb.Error as exc:
        raise CommandError(f"query failed: {exc}") from exc
    finally:
        con.close()
    return 0


def _print_table(rel: duckdb.DuckDBPyRelation, limit: int) -> None:
    rows = rel.limit(limit + 1).fetchall()
    table = Table(show_lines=False, pad_edge=False, expand=False)
    for col, typ in zip(rel.columns, rel.types, strict=True):
        numeric = str(typ).upper().startswith(("DECIMAL", "BIGINT", "INTEGER", "DOUBLE", "HUGEINT", "FLOAT", "SMALL"))
        table.add_column(col, justify="right" if numeric else "left", overflow="fold")
    for row in rows[:limit]:
        table.add_row(*(_cell(v) for v in row))
    console.print(table)
    if len(rows) > limit:
        console.print(f"(first {limit} rows; --limit N for more, --format csv for all)")


def _write_rows(rel: duckdb.DuckDBPyConnection, fmt: str, out: Any) -> None:
    cols = [d[0] for d in rel.description or ()]
    if fmt == "csv":
        w = csv.writer(out, lineterminator="\n")
        w.writerow(cols)
        while batch := rel.fetchmany(10_000):
            w.writerows([["" if v is None else _plain(v) for v in r] for r in batch])
        return
    first = True
    if fmt == "json":
        out.write("[")
    while batch := rel.fetchmany(10_000):
        for r in batch:
            obj = json.dumps({c: _plain(v) for c, v in zip(cols, r, strict=True)}, default=str)
            if fmt == "json":
                out.write(("" if first else ",") + "\n" + obj)
            else:
                out.write(obj + "\n")
            first = False
    if fmt == "json":
        out.write("\n]\n")


def add_sql_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("sql", help="DuckDB SQL over the views (trades, orders, klines, pnl_daily, ...)")
    p.add_argument("--format", "-f", choices=FORMATS, default="table", help="output format (default: table)")
    p.add_argument("--output", "-o", metavar="FILE", help="write to FILE (needed for parquet)")
    p.add_argument("--limit", type=int, default=50, help="rows to print as a table (default 50)")
    p.add_argument("--data", metavar="DIR", help="data folder (default: the configured one, OMS_DATA_DIR)")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sql",
        help="run DuckDB SQL over the archive (table, CSV, JSON or Parquet)",
        description="Views: trades, orders, funding, parents, transfers, snapshots, klines, agg_trades, market_trades, "
        "positions, pnl_daily, pnl_daily_total, pnl_monthly, pnl_monthly_total, pnl_fills. "
        'Example: oms sql "select date, account, net_pnl from pnl_daily order by date"',
    )
    add_sql_arguments(p)
    p.set_defaults(func=run_sql)
