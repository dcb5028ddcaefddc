"""The archive-compact flow on a real Prefect server: finished days of JSONL into hive Parquet (zstd), row
counts checked through the views, bad lines (corrupt, truncated, duplicate) and a file from the future
reported with file and line in the artifacts, retention applied, the DuckDB database written."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb

from oms.archive.layout import Layout
from oms.archive.logs import LogWriter
from oms.archive.views import connect
from tests.flows.conftest import artifacts, delete_runs_of, fill


def _day_ns(days_ago: int) -> int:
    d = (datetime.now(UTC) - timedelta(days=days_ago)).date()
    return int(datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp()) * 10**9


def test_the_flow_compacts_checks_and_reports_bad_lines(prefect_server, tmp_path: Path) -> None:
    from flows.archive_compact import archive_compact

    layout = Layout(tmp_path / "data")
    old, older = _day_ns(2), _day_ns(3)
    with LogWriter(layout) as w:
        for i in range(5):
            w.append(fill("binance/sub_a", i, "buy", "100", "1", older + 1000 + i, "0.1"))
            w.append(fill("binance/sub_b", 100 + i, "sell", "101", "2", old + 1000 + i, "0.2"))
        dup = w.append(fill("binance/sub_a", 4, "buy", "100", "1", older + 1004, "0.1"))  # the same fill again
    with dup.open("ab") as f:
        f.write(b'{"type": "fill", "account": "binance/sub_a", "symb\n')  # truncated
        f.write(b"not json at all\n")
    future = layout.log("trades", (datetime.now(UTC) + timedelta(days=3)).date(), "binance/sub_a")
    future.parent.mkdir(parents=True)
    future.write_text("")
    try:
        out = archive_compact(data_dir=str(layout.root), raw_days=None)
        assert out["rows"]["trades"] == 10 and out["rejected_rows"] == 3
        assert out["checked"] == {"trades": 10}
        assert len(out["compacted"]) == 2
        parts = sorted(layout.table_dir("trades").glob("date=*/part-0.parquet"))
        assert len(parts) == 2
        assert duckdb.execute(f"SELECT count(*) FROM read_parquet('{parts[0]}')").fetchone()[0] == 5
        con = connect(layout)
        assert con.execute("SELECT count(*) FROM trades").fetchone()[0] == 10  # none twice, none lost
        con.close()
        assert layout.database.exists()
        found = artifacts()
        summary = found["archive-compact-summary"].data
        assert "10 rows (trades 10)" in summary and "3 row(s) rejected, 1 file(s) skipped" in summary
        assert f"{dup}:6: duplicate of line 5" in summary
        assert f"{dup}:7:" in summary and f"{dup}:8:" in summary  # the truncated and the corrupt line
        assert "in the future" in summary
        assert found["archive-compact-files"].type == "table"

        again = archive_compact(data_dir=str(layout.root), raw_days=0)  # nothing new; raw files of compacted days go
        assert again["compacted"] == [] and sorted(again["deleted_raw"]) == sorted(out["compacted"])
        con = connect(layout)
        assert con.execute("SELECT count(*) FROM trades").fetchone()[0] == 10  # from Parquet alone now
        con.close()
    finally:
        delete_runs_of("archive-compact")
