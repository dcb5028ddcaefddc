"""PnL from the trade and funding logs (the DuckDB views the pnl-report flow uses), hand-checked on a small
known sequence of fills with fees and funding: FIFO realised PnL, unrealised at the day's last price, win
rate, equity, drawdown, monthly roll-up, totals over accounts, open positions."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from oms.archive.layout import Layout
from oms.archive.logs import LogWriter
from oms.archive.records import Funding
from oms.archive.views import connect
from oms.model import Fill

DAY = 86_400 * 10**9
T0 = int(datetime(2026, 11, 29, tzinfo=UTC).timestamp()) * 10**9  # 29, 30 Nov, 1 Dec: a month boundary
PERP = "BTC/USDT:USDT"


def fill(acct: str, i: int, side: str, price: str, qty: str, t: int, fee: str, sym: str = PERP) -> Fill:
    return Fill(
        account=acct,
        symbol=sym,
        client_order_id=f"c{i}",
        venue_order_id=f"v{i}",
        trade_id=str(i),
        side=side,
        price=price,
        qty=qty,
        commission=fee,
        commission_asset="USDT",
        event_ns=t,
    )


@pytest.fixture
def con(tmp_path: Path):
    layout = Layout(tmp_path / "data")
    with LogWriter(layout) as w:
        a = "binance/sub_a"
        # day 1: buy 2 @ 100, buy 1 @ 110                       -> long 3, mark 110: unrealised 2*10 = 20
        # day 2: sell 2 @ 120 (closes the 2 @ 100: +40), sell 2 @ 90 (closes 1 @ 110: -20, opens short 1 @ 90)
        #        funding -0.5                                    -> short 1, mark 90: unrealised 0
        # day 3: buy 1 @ 80 (closes the short: +10)              -> flat
        w.extend(
            [
                fill(a, 1, "buy", "100", "2", T0 + 1, "0.2"),
                fill(a, 2, "buy", "110", "1", T0 + 2, "0.11"),
                fill(a, 3, "sell", "120", "2", T0 + DAY + 1, "0.24"),
                fill(a, 4, "sell", "90", "2", T0 + DAY + 2, "0.18"),
                fill(a, 5, "buy", "80", "1", T0 + 2 * DAY, "0.08"),
                # account b: one long left open; its mark is the symbol's last price of the day (any account)
                fill("binance/sub_b", 1, "buy", "95", "1", T0, "0.095"),
            ]
        )
        w.append(Funding(account=a, symbol=PERP, asset="USDT", amount="-0.5", rate="0.0001", event_ns=T0 + DAY + 5))
    return connect(layout)


def test_fills_get_fifo_realised_pnl(con) -> None:
    rows = con.execute(
        "SELECT trade_id, realised_pnl, closed_qty FROM pnl_fills WHERE account = 'binance/sub_a' ORDER BY seq"
    ).fetchall()
    assert [(t, float(r), float(q)) for t, r, q in rows] == [
        ("1", 0, 0),
        ("2", 0, 0),
        ("3", 40, 2),
        ("4", -20, 1),
        ("5", 10, 1),
    ]


def test_daily_pnl_hand_checked(con) -> None:
    rows = con.execute(
        "SELECT date, realised_pnl, unrealised_pnl, fees, funding, net_pnl, turnover, closes, wins, win_rate, "
        "equity, drawdown, max_drawdown FROM pnl_daily WHERE account = 'binance/sub_a' ORDER BY date"
    ).fetchall()
    D = Decimal
    assert [r[0] for r in rows] == [date(2026, 11, 29), date(2026, 11, 30), date(2026, 12, 1)]
    # day 1: equity = -0.31 fees + 20 unrealised
    assert rows[0][1:9] == (D(0), D(20), D("0.31"), D(0), D("19.69"), D(310), 0, 0)
    assert rows[0][9] is None and rows[0][10:] == (D("19.69"), D(0), D(0))
    # day 2: realised 40 - 20, fees 0.42, funding -0.5, unrealised back to 0
    assert rows[1][1:9] == (D(20), D(0), D("0.42"), D("-0.5"), D("-0.92"), D(420), 2, 1)
    assert rows[1][9] == 0.5 and rows[1][10:] == (D("18.77"), D("0.92"), D("0.92"))
    # day 3: the short closes +10, fee 0.08
    assert rows[2][1:9] == (D(10), D(0), D("0.08"), D(0), D("9.92"), D(80), 1, 1)
    assert rows[2][9] == 1.0 and rows[2][10:] == (D("28.69"), D(0), D("0.92"))
    # totals: realised 30 - fees 0.81 + funding -0.5 = 28.69 when flat
    assert sum(r[5] for r in rows) == D("28.69")


def test_total_monthly_and_positions(con) -> None:
    D = Decimal
    b = con.execute(
        "SELECT date, unrealised_pnl, equity FROM pnl_daily WHERE account = 'binance/sub_b' ORDER BY date"
    ).fetchall()
    # b's long 1 @ 95 is marked at the symbol's last fill of each day: 110 (day 1), 90 (day 2), 80 (day 3)
    assert b == [
        (date(2026, 11, 29), D(15), D("14.905")),
        (date(2026, 11, 30), D(-5), D("-5.095")),
        (date(2026, 12, 1), D(-15), D("-15.095")),
    ]
    total = con.execute("SELECT date, equity, max_drawdown FROM pnl_daily_total ORDER BY date").fetchall()
    assert total == [
        (date(2026, 11, 29), D("34.595"), D(0)),
        (date(2026, 11, 30), D("13.675"), D("20.92")),
        (date(2026, 12, 1), D("13.595"), D("21.000")),
    ]
    months = con.execute(
        "SELECT month, realised_pnl, unrealised_pnl, fees, funding, net_pnl, closes, wins, equity, max_drawdown "
        "FROM pnl_monthly WHERE account = 'binance/sub_a' ORDER BY month"
    ).fetchall()
    assert months == [
        (date(2026, 11, 1), D(20), D(0), D("0.73"), D("-0.5"), D("18.77"), 2, 1, D("18.77"), D("0.92")),
        (date(2026, 12, 1), D(10), D(0), D("0.08"), D(0), D("9.92"), 1, 1, D("28.69"), D(0)),
    ]
    pos = con.execute("SELECT account, symbol, qty, entry_price, mark, unrealised_pnl FROM positions").fetchall()
    assert pos == [("binance/sub_b", PERP, D(1), D(95), D(80), D(-15))]


def test_materialized_stages_give_the_same_report(con) -> None:
    from oms.archive.pnl import materialize

    q = "SELECT * FROM pnl_daily ORDER BY account, date"
    before = con.execute(q).fetchall()
    materialize(con)
    assert con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE temporary AND table_name = 'pnl_fill_realised'"
    ).fetchone()[0]
    assert con.execute(q).fetchall() == before
    assert con.execute("SELECT count(*) FROM positions").fetchone()[0] == 1
