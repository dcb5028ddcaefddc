"""`oms archive ...`: the file archives. `query` is `oms sql`, `import-market` is `oms data import` of
datasets/market (both kept under their old names); `compact` and `views` maintain the archive."""

from __future__ import annotations

import argparse
from datetime import timedelta

from oms.archive.compact import Retention, compact
from oms.archive.layout import Layout
from oms.archive.market import DEFAULT_DATASETS
from oms.archive.views import DatabaseLocked, write_database
from oms.cli import data_cmd, sql_cmd
from oms.cli.common import CommandError, data_dir_from, write


def run_import_market(args: argparse.Namespace) -> int:
    args.sources = [args.datasets]
    args.market = None
    return data_cmd.run_import(args)


def run_compact(args: argparse.Namespace) -> int:
    layout = Layout(data_dir_from(args))
    try:
        retention = Retention(
            raw_days=None if args.raw_days < 0 else args.raw_days,
            parquet_days=None if args.parquet_days < 0 else args.parquet_days,
            grace=timedelta(hours=args.grace_hours),
        )
    except ValueError as exc:
        raise CommandError(str(exc)) from exc
    result = compact(layout, retention)
    status = data_cmd.print_report(result.report)
    write(f"compacted {len(result.compacted)} file(s); through {result.through or 'nothing yet'}")
    write(
        f"retention: {len(result.deleted_raw)} raw file(s), {len(result.deleted_parquet)} Parquet partition(s) deleted"
    )
    _views(layout)
    return status


def _views(layout: Layout) -> None:
    try:
        write(f"views: {write_database(layout)}")
    except DatabaseLocked as exc:
        raise CommandError(f"{exc} (close the other DuckDB session and retry)") from exc


def run_views(args: argparse.Namespace) -> int:
    _views(Layout(data_dir_from(args)))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "archive",
        help="the file archives: compact, views, query, import-market",
        description="Trade/order/funding logs, snapshots, transfers and market data under data/ "
        "(see data/README.md), queried with DuckDB.",
    )
    asub = parser.add_subparsers(dest="archive_cmd", required=True, metavar="COMMAND")
    imp = asub.add_parser("import-market", help="import datasets/market (same as `oms data import`)")
    imp.add_argument("--datasets", default=str(DEFAULT_DATASETS), help="source folder")
    imp.add_argument("--data", metavar="DIR", help="data folder (default: the configured one)")
    imp.set_defaults(func=run_import_market)
    q = asub.add_parser("query", help="run SQL over the archive views (same as `oms sql`)")
    sql_cmd.add_sql_arguments(q)
    q.set_defaults(func=sql_cmd.run_sql)
    c = asub.add_parser(
        "compact",
        help="compact raw JSONL logs into Parquet, check row counts, apply retention",
    )
    c.add_argument("--raw-days", type=int, default=7, help="keep raw JSONL this many days (-1: forever)")
    c.add_argument("--parquet-days", type=int, default=-1, help="keep Parquet this many days (-1: forever)")
    c.add_argument("--grace-hours", type=float, default=1.0, help="compact a day this long after it ended")
    c.add_argument("--data", metavar="DIR", help="data folder (default: the configured one)")
    c.set_defaults(func=run_compact)
    v = asub.add_parser("views", help="(re)write data/oms.duckdb with every view, for `duckdb data/oms.duckdb`")
    v.add_argument("--data", metavar="DIR", help="data folder (default: the configured one)")
    v.set_defaults(func=run_views)
