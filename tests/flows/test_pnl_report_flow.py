"""The pnl-report flow: CSVs per account and in total with hand-checked numbers (a known fill sequence with
fees and funding across a month boundary), PNG equity curves redrawn only when their data changed, and the
table and markdown artifacts on a real Prefect server."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from oms.archive.logs import LogWriter
from oms.archive.pnl_report import month_bounds, write_month
from tests.flows.conftest import DAY, T0, artifacts, delete_runs_of, fill, write_known_fills

HEADER = ["period", "date", "account", "realised_pnl", "unrealised_pnl", "fees", "funding", "net_pnl", "turnover",
          "fills", "closes", "wins", "win_rate", "equity", "drawdown", "max_drawdown"]  # fmt: skip


def rows(path: Path) -> list[list[str]]:
    with path.open() as f:
        return list(csv.reader(f))


def test_month_csvs_are_hand_checked(tmp_path: Path) -> None:
    layout = write_known_fills(tmp_path / "data")
    rep = write_month(layout, tmp_path / "reports", "2026-11")
    folder = tmp_path / "reports" / "2026" / "11"
    assert set(rep.files) == {"binance/sub_a", "binance/sub_b", "total"}
    a = rows(folder / "binance" / "sub_a" / "pnl.csv")
    assert a[0] == HEADER
    # day 1: long 3, marked at 110: unrealised 20, fees 0.31; day 2: realised 40 - 20, fees 0.42, funding -0.5
    assert a[1:] == [
        ["day", "2026-11-29", "binance/sub_a", "0", "20", "0.31", "0", "19.69", "310", "2", "0", "0", "", "19.69",
         "0", "0"],
        ["day", "2026-11-30", "binance/sub_a", "20", "0", "0.42", "-0.5", "-0.92", "420", "2", "2", "1", "0.5",
         "18.77", "0.92", "0.92"],
        ["month", "2026-11-01", "binance/sub_a", "20", "0", "0.73", "-0.5", "18.77", "730", "4", "2", "1", "0.5",
         "18.77", "", "0.92"],
    ]  # fmt: skip
    b = rows(folder / "binance" / "sub_b" / "pnl.csv")
    assert [r[3:8] + [r[13]] for r in b[1:]] == [
        ["0", "15", "0.095", "0", "14.905", "14.905"],  # long 1 @ 95 marked at 110
        ["0", "-5", "0", "0", "-20", "-5.095"],  # marked at 90
        ["0", "-5", "0.095", "0", "-5.095", "-5.095"],  # the month
    ]
    total = rows(folder / "total" / "pnl.csv")
    assert [(r[0], r[1], r[13], r[15]) for r in total[1:]] == [
        ("day", "2026-11-29", "34.595", "0"),
        ("day", "2026-11-30", "13.675", "20.92"),
        ("month", "2026-11-01", "13.675", "20.92"),
    ]
    # December: the short closes at 80 (+10, fee 0.08); equity carries over the month boundary
    dec = write_month(layout, tmp_path / "reports", "2026-12")
    d = rows(dec.files["binance/sub_a"])
    assert d[1][:8] == ["day", "2026-12-01", "binance/sub_a", "10", "0", "0.08", "0", "9.92"]
    assert d[1][13] == "28.69"
    assert {m["account"]: m["equity"] for m in dec.monthly} == {
        "binance/sub_a": "28.69",
        "binance/sub_b": "-15.095",
        "total": "13.595",
    }


def test_a_month_without_fills_writes_the_total_header_only(tmp_path: Path) -> None:
    # a report run before the first fill (oms up's run at start): the total file says the run found nothing
    layout = write_known_fills(tmp_path / "data")
    rep = write_month(layout, tmp_path / "reports", "2026-10")
    assert rep.files == {"total": tmp_path / "reports" / "2026" / "10" / "total" / "pnl.csv"}
    assert rows(rep.files["total"]) == [HEADER]
    assert rep.accounts == [] and rep.monthly == [] and rep.daily_total == []
    assert sorted(p.name for p in (tmp_path / "reports" / "2026" / "10").iterdir()) == ["total"]


def test_bad_month_is_refused_naming_it() -> None:
    with pytest.raises(ValueError, match="month '2026-13' is not YYYY-MM"):
        month_bounds("2026-13")


def test_the_flow_writes_csvs_charts_and_artifacts_on_a_real_prefect_server(prefect_server, tmp_path: Path) -> None:
    from flows.pnl_report import pnl_report

    layout = write_known_fills(tmp_path / "data")
    reports = tmp_path / "reports"
    try:
        out = pnl_report(month="2026-11", data_dir=str(layout.root), reports_dir=str(reports))
        folder = reports / "2026" / "11"
        pngs = [folder / "binance" / "sub_a" / "equity.png", folder / "binance" / "sub_b" / "equity.png",
                folder / "total" / "equity.png", folder / "equity.png"]  # fmt: skip
        assert sorted(out["charts"]) == sorted(map(str, pngs))
        for p in pngs:
            assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        found = artifacts()
        table, summary = found["pnl-2026-11"], found["pnl-2026-11-summary"]
        assert table.type == "table" and "binance/sub_a" in table.data and "18.77" in table.data
        assert "# PnL 2026-11" in summary.data and "| equity | 13.675 |" in summary.data

        again = pnl_report(month="2026-11", data_dir=str(layout.root), reports_dir=str(reports))
        assert again["charts"] == []  # nothing changed: no chart redrawn
        with LogWriter(layout) as w:  # sub_b trades another symbol on the 30th: sub_a's numbers stay
            w.append(fill("binance/sub_b", 9, "buy", "3000", "0.1", T0 + DAY + 7, "0.12", sym="ETH/USDT:USDT"))
        third = pnl_report(month="2026-11", data_dir=str(layout.root), reports_dir=str(reports))
        assert sorted(third["charts"]) == sorted(map(str, pngs[1:]))
    finally:
        delete_runs_of("pnl-report")


def test_the_flow_fails_clearly_on_a_bad_month(prefect_server, tmp_path: Path) -> None:
    from flows.pnl_report import pnl_report

    try:
        with pytest.raises(ValueError, match="month 'November' is not YYYY-MM"):
            pnl_report(month="November", data_dir=str(tmp_path / "data"), reports_dir=str(tmp_path / "r"))
    finally:
        delete_runs_of("pnl-report")
