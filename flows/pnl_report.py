"""The ``pnl-report`` flow: daily and monthly PnL per account and for all accounts, from the archive.

Tasks: ``compute-and-write-csv`` (``oms.archive.pnl_report``: DuckDB over the archive's PnL views, every
account in one pass, ``reports/YYYY/MM/{account}/pnl.csv`` and ``reports/YYYY/MM/total/pnl.csv``),
``equity-charts`` (``oms.archive.charts``: ``equity.png`` per account and ``reports/YYYY/MM/equity.png``
of every account, drawn in a process pool and only where the data changed). The flow then publishes a
table artifact (the month per account and in total) and a markdown artifact (totals, the daily total, best
and worst accounts). Scheduled daily (``prefect.yaml``): the report of the month of yesterday (UTC), so the
first run of a month closes the previous one.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from oms.archive.charts import equity_charts
from oms.archive.layout import Layout
from oms.archive.pnl_report import TOTAL, MonthReport, month_bounds, write_month
from oms.config import load_config

# OMS_REPORTS_DIR moves the reports (a test's platform keeps them in its own folder)
DEFAULT_REPORTS = Path(os.environ.get("OMS_REPORTS_DIR") or Path(__file__).resolve().parents[1] / "reports")


@task(name="compute-and-write-csv", cache_policy=NO_CACHE, persist_result=False, retries=2, retry_delay_seconds=[2, 10])
def compute_and_write(layout: Layout, reports: Path, month: str) -> MonthReport:
    return write_month(layout, reports, month)


@task(name="equity-charts", cache_policy=NO_CACHE, persist_result=False, retries=1)
def charts(rep: MonthReport, reports: Path) -> list[str]:
    folder = reports / f"{rep.month:%Y}" / f"{rep.month:%m}"
    jobs = {
        rep.files[a].parent / "equity.png": (f"{a}: equity {rep.month:%Y-%m}", {a: rep.equity[a]})
        for a in rep.files
        if rep.equity[a][0]
    }
    every = {a: rep.equity[a] for a in rep.accounts if rep.equity[a][0]}
    if every:
        jobs[folder / "equity.png"] = (f"every account: equity {rep.month:%Y-%m}", every)
    return [str(p) for p in equity_charts(jobs)]


def _markdown(rep: MonthReport, drawn: list[str]) -> str:
    total = next((r for r in rep.monthly if r["account"] == TOTAL), None)
    lines = [f"# PnL {rep.month:%Y-%m}", "", f"{len(rep.accounts)} account(s); {len(drawn)} chart(s) redrawn.", ""]
    if total:
        lines += ["| | total |", "|---|---|"]
        lines += [f"| {k} | {v} |" for k, v in total.items() if k != "account"]
        lines.append("")
    accounts = [r for r in rep.monthly if r["account"] != TOTAL]
    if accounts:
        ranked = sorted(accounts, key=lambda r: float(r["net_pnl"] or 0), reverse=True)
        lines += ["## Best and worst accounts (net PnL)", "", "| account | net PnL | max drawdown | win rate |",
                  "|---|---|---|---|"]  # fmt: skip
        shown = ranked if len(ranked) <= 10 else ranked[:5] + ranked[-5:]
        lines += [f"| {r['account']} | {r['net_pnl']} | {r['max_drawdown']} | {r['win_rate']} |" for r in shown]
        lines.append("")
    if rep.daily_total:
        lines += ["## Every day, all accounts", "", "| date | realised | unrealised | fees | funding | net | equity |",
                  "|---|---|---|---|---|---|---|"]  # fmt: skip
        lines += [f"| {d['date']} | {d['realised_pnl']} | {d['unrealised_pnl']} | {d['fees']} | {d['funding']} | "
                  f"{d['net_pnl']} | {d['equity']} |" for d in rep.daily_total]  # fmt: skip
    if TOTAL in rep.files:
        lines += ["", f"Files: `{rep.files[TOTAL].parent.parent}`"]
    return "\n".join(lines)


@flow(name="pnl-report", log_prints=True)
def pnl_report(
    month: str | None = None,
    data_dir: str | None = None,
    reports_dir: str = str(DEFAULT_REPORTS),
    charts_enabled: bool = True,
) -> dict:
    """The PnL report of ``month`` (``YYYY-MM``; default: the month of yesterday, UTC)."""
    month = month or (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m")
    month_bounds(month)  # a bad month fails here, naming it
    layout = Layout(Path(data_dir) if data_dir else load_config().data_dir())
    reports = Path(reports_dir)
    rep = compute_and_write(layout, reports, month)
    drawn = charts(rep, reports) if charts_enabled and rep.files else []
    key = f"pnl-{month}"
    create_table_artifact(rep.monthly or [{"account": "(no fills or funding in the archive)"}], key=key,
                          description=f"PnL {month} per account and in total")  # fmt: skip
    create_markdown_artifact(_markdown(rep, drawn), key=f"{key}-summary", description=f"PnL {month}: summary")
    print(f"pnl-report {month}: {len(rep.accounts)} account(s), {len(drawn)} chart(s) redrawn")
    return {"month": month, "files": {a: str(p) for a, p in rep.files.items()}, "monthly": rep.monthly,
            "charts": drawn}  # fmt: skip
