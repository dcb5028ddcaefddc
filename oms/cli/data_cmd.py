"""`oms data import PATH|URL|URL-LIST...`: market data from Binance's public archive (and datasets/market)
into the archive's Parquet, with a progress bar and every refused row or file listed with where and why."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

from oms.archive.fetch import Fetched
from oms.archive.layout import Layout
from oms.archive.market import DEFAULT_DATASETS
from oms.archive.market_import import import_market_data
from oms.archive.report import Report
from oms.archive.views import DatabaseLocked, write_database
from oms.cli.common import CommandError, data_dir_from, err_console, write

SHOWN_REJECTIONS = 20


def print_report(report: Report, shown: int = SHOWN_REJECTIONS) -> int:
    """Summary and the first refused rows/files on stderr; exit status 1 when anything was refused."""
    write(report.summary())
    rejections = report.rejections
    for r in rejections[:shown]:
        err_console.print(f"[yellow]rejected[/] {r}", markup=True, soft_wrap=True, highlight=False)
    if len(rejections) > shown:
        err_console.print(f"... and {len(rejections) - shown} more (see the log)")
    for f in report.files:
        if f.rejected_rows:
            by = ", ".join(f"{n} {k}" for k, n in f.reasons.most_common())
            err_console.print(f"{f.source}: {f.rejected_rows} row(s) rejected ({by})", highlight=False, soft_wrap=True)
    return 0 if report.clean else 1


def run_import(args: argparse.Namespace) -> int:
    layout = Layout(data_dir_from(args))
    sources = args.sources or [str(DEFAULT_DATASETS)]
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=False,
    )
    tasks: dict[str, int] = {}

    def fetched(f: Fetched) -> None:
        if not f.source.startswith(("http://", "https://")):
            return
        if "fetch" not in tasks:
            tasks["fetch"] = progress.add_task("fetch", total=None)
        progress.advance(tasks["fetch"], 1)

    def plan(files: list[Path]) -> None:
        tasks["import"] = progress.add_task("import", total=sum(p.stat().st_size for p in files))

    def done(path: Path, size: int) -> None:
        progress.update(tasks["import"], advance=size, description=f"import {path.name}")

    with progress:
        report = import_market_data(sources, layout, market=args.market, on_fetched=fetched, on_file=done, on_plan=plan)
    status = print_report(report)
    try:
        write(f"views: {write_database(layout)}")
    except DatabaseLocked as exc:
        raise CommandError(f"{exc} (close the other DuckDB session, then run `oms archive views`)") from exc
    return status


def add_import_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "sources",
        nargs="*",
        metavar="PATH|URL|URL-LIST",
        help="Binance archive files or folders (zip or csv), http(s)/file URLs, or a .txt list of them "
        "(default: datasets/market)",
    )
    p.add_argument("--market", choices=("spot", "um"), help="market of files whose folders do not say (default spot)")
    p.add_argument("--data", metavar="DIR", help="data folder (default: the configured one, OMS_DATA_DIR)")


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("data", help="market data: import Binance public-archive files")
    dsub = parser.add_subparsers(dest="data_cmd", required=True, metavar="COMMAND")
    imp = dsub.add_parser(
        "import",
        help="import klines, aggTrades, trades (Spot, USD-M; zip or csv; URLs) into data/parquet",
        description="Checks .CHECKSUM files when present; rows that are corrupt, duplicated, outside the "
        "file's period or in the future are skipped and listed with file and line (exit status 1).",
    )
    add_import_arguments(imp)
    imp.set_defaults(func=run_import)
