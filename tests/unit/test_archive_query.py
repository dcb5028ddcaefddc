"""The real datasets imported (`oms data import`, and the old `oms archive import-market`) and queried through
DuckDB's `klines` view (`oms sql`, and the old `oms archive query`)."""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal
from pathlib import Path

from oms.archive.layout import Layout
from oms.archive.market import DEFAULT_DATASETS
from oms.archive.market_import import import_market_data
from oms.archive.views import connect

OMS = str(Path(sys.executable).parent / "oms")


def test_klines_view_over_imported_datasets(tmp_path):
    layout = Layout(tmp_path)
    report = import_market_data([str(DEFAULT_DATASETS)], layout)
    assert report.clean and report.rows_by_table() == {"klines": 20111 + 1770 + 788 + 925}
    con = connect(layout)
    rows = con.sql("select symbol, interval, count(*), max(high) from klines group by all order by all").fetchall()
    assert rows[1] == ("BTCUSDT", "1h", 20111, Decimal("19891.99"))  # the 2017-12-17 all-time high
    day = con.execute(
        "select low from klines where symbol='BTCUSDT' and interval='1d' and ts = '2018-02-06 00:00:00+00'"
    ).fetchone()
    assert Decimal("5800") < day[0] < Decimal("6000")


def test_empty_archive_gives_an_empty_view(tmp_path):
    assert connect(tmp_path).execute("select count(*) from klines").fetchone() == (0,)


def test_old_command_names_still_work(tmp_path):
    imp = subprocess.run(
        [OMS, "archive", "import-market", "--data", str(tmp_path)], capture_output=True, text=True, timeout=300
    )
    assert imp.returncode == 0, imp.stderr
    ok = subprocess.run(
        [OMS, "archive", "query", "--data", str(tmp_path), "select count(*) as n from klines where symbol = 'ETHUSDT'"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ok.returncode == 0 and "788" in ok.stdout
    bad = subprocess.run(
        [OMS, "sql", "--data", str(tmp_path), "select nope from klines"], capture_output=True, text=True, timeout=60
    )
    assert bad.returncode == 1 and "query failed: Binder Error" in bad.stderr and "Traceback" not in bad.stderr
