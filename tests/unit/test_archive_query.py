"""The market archive imported from the real datasets, queried through DuckDB's `klines` view and the CLI."""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal
from pathlib import Path

from oms.archive.query import connect

from oms.archive.market import import_datasets

OMS = str(Path(sys.executable).parent / "oms")


def test_klines_view_over_imported_archive(tmp_path):
    report = import_datasets(archive=tmp_path)
    assert report.bars[("BTCUSDT", "1h")] == 20111
    con = connect(tmp_path)
    rows = con.sql("select symbol, interval, count(*), max(high) from klines group by all order by all").fetchall()
    assert rows[1] == ("BTCUSDT", "1h", 20111, Decimal("19891.99"))  # the 2017-12-17 all-time high
    day = con.execute(
        "select low from klines where symbol='BTCUSDT' and interval='1d' and ts = '2018-02-06 00:00:00+00'"
    ).fetchone()
    assert Decimal("5800") < day[0] < Decimal("6000")


def test_empty_archive_gives_an_empty_view(tmp_path):
    assert connect(tmp_path).execute("select count(*) from klines").fetchone() == (0,)


def test_cli_query_prints_rows_and_explains_bad_sql(tmp_path):
    import_datasets(archive=tmp_path)
    ok = subprocess.run(
        [
            OMS,
            "archive",
            "query",
            "--archive",
            str(tmp_path),
            "select count(*) as n from klines where symbol = 'ETHUSDT'",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ok.returncode == 0 and "788" in ok.stdout
    bad = subprocess.run(
        [OMS, "archive", "query", "--archive", str(tmp_path), "select nope from klines"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 1 and "query failed: Binder Error" in bad.stderr and "Traceback" not in bad.stderr
