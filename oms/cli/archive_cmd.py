"""`oms archive import-market` and `oms archive query SQL`: the file archives, through DuckDB."""

from __future__ import annotations

import argparse
from pathlib import Path

import duckdb
from rich.table import Table

from oms.archive.market import DEFAULT_ARCHIVE, DEFAULT_DATASETS, import_datasets
from oms.archive.query import connect
from oms.cli.common import CommandError, console, write


def run_import(args: argparse.Namespace) -> int:
    report = import_datasets(Path(args.datasets), Path(args.archive))
    for (symbol, interval), count in sorted(report.bars.items()):
        write(f"{symbol} {interval}: {count} bars")
    write(f"{len(report.files)} files under {args.archive}; {report.rejected} malformed rows skipped")
    return 0


def run_query(args: argparse.Namespace) -> int:
    con = connect(Path(args.archive))
    try:
        rel = con.sql(args.sql)
    except duckdb.Error as exc:
        raise CommandError(f"query failed: {exc}") from exc
    if rel is None:
        return 0
    table = Table()
    for col in rel.columns:
        table.add_column(col)
    for row in rel.limit(args.limit).fetchall():
        table.add_row(*("" if v is None else str(v) for v in row))
    console.print(table)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "archive",
        help="import and query the file archives (DuckDB)",
        description="Market data in Binance's public-archive layout under data/market, "
        "queried with DuckDB (view `klines`).",
    )
    asub = parser.add_subparsers(dest="archive_cmd", required=True, metavar="COMMAND")
    imp = asub.add_parser("import-market", help="import datasets/market/*.csv into data/market (kline CSVs)")
    imp.add_argument("--datasets", default=str(DEFAULT_DATASETS), help="source folder")
    imp.add_argument("--archive", default=str(DEFAULT_ARCHIVE), help="archive folder")
    imp.set_defaults(func=run_import)
    q = asub.add_parser(
        "query",
        help="run SQL over the archive views (klines)",
        description='Example: oms archive query "select symbol, interval, count(*) from klines group by all"',
    )
    q.add_argument("sql")
    q.add_argument("--archive", default=str(DEFAULT_ARCHIVE), help="archive folder")
    q.add_argument("--limit", type=int, default=50, help="rows to print (default 50)")
    q.set_defaults(func=run_query)
