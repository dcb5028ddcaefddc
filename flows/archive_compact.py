"""The ``archive-compact`` flow: the day's raw JSONL logs into hive-partitioned Parquet (zstd), retention, views.

Tasks: ``compact-logs`` (``oms.archive.compact``: every finished day of trades, orders and funding into
``parquet/{kind}/date=D/part-0.parquet``, the Parquet row count checked against the accepted JSONL lines
before a day counts as compacted, then retention of raw files and old partitions), ``check-row-counts``
(the views over the archive hold, for every compacted day, exactly the rows the compaction accepted: no day
lost or counted twice), ``write-views`` (``data/oms.duckdb``). Bad lines (corrupt, truncated, duplicate,
wrong day, files from the future) are reported with file and line in the artifacts, never silently counted;
a day whose compaction failed keeps its raw files and fails the run with a message naming the day.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from oms.archive.compact import CompactionResult, Retention, compact
from oms.archive.layout import LOG_KINDS, Layout
from oms.archive.views import DatabaseLocked, connect, write_database
from oms.config import load_config

MAX_LISTED = 50  # rejections listed in the markdown artifact (all are counted)


class CompactionFailed(RuntimeError):
    """A day could not be compacted (its raw files are kept), or its rows do not match."""


@task(name="compact-logs", cache_policy=NO_CACHE, persist_result=False, retries=2, retry_delay_seconds=[2, 10])
def compact_logs(layout: Layout, retention: Retention) -> CompactionResult:
    return compact(layout, retention)


@task(name="check-row-counts", cache_policy=NO_CACHE, persist_result=False)
def check_row_counts(layout: Layout, result: CompactionResult) -> dict[str, int]:
    """Rows per log kind in the views for the compacted days against what the compaction accepted."""
    accepted: Counter[str] = Counter()
    days: dict[str, set[str]] = {}
    for f in result.report.files:
        if not f.skipped and f.outputs:
            accepted[f.table] += f.rows
            days.setdefault(f.table, set()).add(Path(f.outputs[0]).parent.name.split("=", 1)[1])
    con = connect(layout)
    try:
        seen: dict[str, int] = {}
        for kind in LOG_KINDS:
            if kind not in days:
                continue
            listed = ", ".join(f"DATE '{d}'" for d in sorted(days[kind]))
            # every account of those days, compacted now or earlier: the files written this run hold them all
            n = con.execute(f"SELECT count(*) FROM {kind} WHERE date IN ({listed})").fetchone()[0]
            kept = sum(
                con.execute(f"SELECT count(*) FROM read_parquet('{p}')").fetchone()[0]
                for p in {o for f in result.report.files if f.table == kind for o in f.outputs}
            )
            if n != kept:
                raise CompactionFailed(f"{kind}: the views hold {n} rows for {sorted(days[kind])} but the Parquet "
                                       f"files {kept}: rows lost or counted twice")  # fmt: skip
            seen[kind] = n
        return seen
    finally:
        con.close()


@task(name="write-views", cache_policy=NO_CACHE, persist_result=False, retries=3, retry_delay_seconds=[2, 5, 10])
def write_views(layout: Layout) -> str:
    try:
        return str(write_database(layout))
    except DatabaseLocked as exc:  # a user's `duckdb data/oms.duckdb` shell: retried, then reported
        raise CompactionFailed(str(exc)) from exc


@flow(name="archive-compact", log_prints=True)
def archive_compact(
    data_dir: str | None = None,
    raw_days: int | None = 7,
    parquet_days: int | None = None,
    grace_minutes: int = 60,
) -> dict:
    """Compact every finished day's logs; keep raw JSONL ``raw_days`` days after compaction and Parquet
    ``parquet_days`` days (None: forever). Returns rows per table, the files compacted and deleted."""
    log = get_run_logger()
    layout = Layout(Path(data_dir) if data_dir else load_config().data_dir())
    retention = Retention(raw_days=raw_days, parquet_days=parquet_days, grace=timedelta(minutes=grace_minutes))
    result = compact_logs(layout, retention)
    rep = result.report
    failed = [f for f in rep.files if f.skipped and "compaction" in f.skipped]
    checked = check_row_counts(layout, result) if not failed else {}
    database = write_views(layout)
    rows = [
        {
            "file": f.source,
            "table": f.table,
            "rows": f.rows,
            "rejected": f.rejected_rows,
            "skipped": f.skipped or "",
            "output": ", ".join(f.outputs),
        }  # fmt: skip
        for f in rep.files
    ]
    create_table_artifact(rows or [{"file": "(nothing to compact)"}], key="archive-compact-files",
                          description="Raw log files compacted this run")  # fmt: skip
    lines = ["# Archive compaction", "", rep.summary(), "",
             f"Compacted {len(result.compacted)} raw file(s); retention deleted {len(result.deleted_raw)} raw "
             f"file(s) and {len(result.deleted_parquet)} Parquet partition(s).",
             "Compacted through: " + (", ".join(f"{k} {v}" for k, v in sorted(result.through.items())) or "nothing"),
             "Rows checked in the views: " + (", ".join(f"{k} {v:,}" for k, v in checked.items()) or "none"),
             f"Views: `{database}`", ""]  # fmt: skip
    rejections = rep.rejections
    if rejections:
        lines += [f"## Rejected ({len(rejections):,} listed of {rep.rejected_rows:,} rows, "
                  f"{len(rep.skipped_files)} file(s))", ""]  # fmt: skip
        lines += [f"- `{r}`" for r in rejections[:MAX_LISTED]]
    create_markdown_artifact("\n".join(lines), key="archive-compact-summary", description="Archive compaction")
    print(rep.summary())
    if failed:
        raise CompactionFailed("compaction failed (raw files kept): " + "; ".join(f"{f.source}: {f.skipped}"
                                                                                 for f in failed))  # fmt: skip
    for r in rejections[:MAX_LISTED]:
        log.warning("rejected %s", r)
    return {
        "rows": rep.rows_by_table(),
        "rejected_rows": rep.rejected_rows,
        "compacted": result.compacted,
        "deleted_raw": result.deleted_raw,
        "deleted_parquet": result.deleted_parquet,
        "through": result.through,
        "checked": checked,
    }
