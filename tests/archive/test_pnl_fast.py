"""The compiled FIFO pass of the PnL report (``oms.archive.pnl_fast``) gives exactly the SQL stages' numbers
(``oms.archive.pnl``, DECIMAL throughout) on random fill sequences (hypothesis), and steps aside for data it
cannot reproduce exactly (fills at the same nanosecond, too many decimals)."""

from __future__ import annotations

import tempfile
from decimal import Decimal
from pathlib import Path

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oms.archive.layout import Layout
from oms.archive.logs import LogWriter
from oms.archive.pnl import materialize
from oms.archive.pnl_fast import materialize_fast
from oms.archive.records import Funding
from oms.archive.views import connect
from tests.flows.conftest import DAY, PERP, T0, fill

QUERIES = (
    "SELECT * FROM pnl_daily ORDER BY account, date",
    "SELECT * FROM pnl_daily_total ORDER BY date",
    "SELECT * FROM pnl_monthly ORDER BY account, month",
    "SELECT * FROM pnl_book_daily ORDER BY account, symbol, position_side, date",
)

fills_st = st.lists(
    st.tuples(
        st.sampled_from(["binance/sub_a", "binance/sub_b"]),
        st.sampled_from([PERP, "ETH/USDT:USDT"]),
        st.sampled_from(["buy", "sell"]),
        st.integers(1, 20_000),  # price in cents
        st.integers(1, 5_000),  # quantity in 1e-3
        st.integers(0, 3 * DAY - 1),  # time in the three days
        st.sampled_from(["USDT", "BNB", ""]),
    ),
    min_size=1,
    max_size=40,
    unique_by=lambda f: (f[0], f[1], f[5]),  # a book never has two fills at one nanosecond here
)


def both(folder: Path) -> tuple[list, list, bool]:
    layout = Layout(folder)
    fast_con = connect(layout)
    took_fast = materialize_fast(fast_con)
    fast = [fast_con.execute(q).fetchall() for q in QUERIES]
    sql_con = connect(layout)
    materialize(sql_con)
    exact = [sql_con.execute(q).fetchall() for q in QUERIES]
    return fast, exact, took_fast


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fills=fills_st, funding=st.integers(-500, 500))
def test_the_fast_pass_equals_the_sql_stages(fills, funding) -> None:
    with tempfile.TemporaryDirectory() as d:
        layout = Layout(Path(d))
        with LogWriter(layout) as w:
            for i, (acct, sym, side, cents, milli, t, asset) in enumerate(fills):
                fee = f"{cents * milli / 1e7:.7f}"
                f = fill(acct, i, side, f"{cents / 100:.2f}", f"{milli / 1000:.3f}", T0 + t, fee, sym)
                w.append(msgspec.structs.replace(f, commission_asset=asset))
            w.append(Funding(account="binance/sub_a", symbol=PERP, asset="USDT", amount=f"{funding / 100:.2f}",
                             event_ns=T0 + DAY + 3))  # fmt: skip
        fast, exact, took_fast = both(Path(d))
        assert took_fast
        assert fast == exact


def test_fills_at_one_nanosecond_take_the_sql_stages(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    with LogWriter(layout) as w:
        w.extend([fill("binance/sub_a", 1, "buy", "100", "1", T0 + 5, "0"),
                  fill("binance/sub_a", 2, "sell", "101", "1", T0 + 5, "0")])  # fmt: skip
    fast, exact, took_fast = both(tmp_path)
    assert not took_fast and fast == exact


def test_too_many_decimals_take_the_sql_stages(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    with LogWriter(layout) as w:
        w.extend([fill("binance/sub_a", 1, "buy", "100.1234567", "0.12345678", T0 + 5, "0"),
                  fill("binance/sub_a", 2, "sell", "101.7654321", "0.12345678", T0 + 6, "0")])  # fmt: skip
    fast, exact, took_fast = both(tmp_path)
    assert not took_fast and fast == exact


def test_the_key_table_grows_and_keeps_every_tuple(tmp_path: Path, monkeypatch) -> None:
    """The scan meets each (book, commission asset) tuple's hash for the first time on its own day and grows
    its key table (from 4 slots here) as it goes; the tuples are read back from those days only."""
    import oms.archive.pnl_fast as pnl_fast

    monkeypatch.setattr(pnl_fast, "_FIRST_SLOTS", 4)
    layout = Layout(tmp_path)
    with LogWriter(layout) as w:
        i = 0
        for day in range(3):
            for acct in ("binance/sub_a", "binance/sub_b", f"binance/sub_d{day}"):
                for sym, asset in ((PERP, "USDT"), ("ETH/USDT:USDT", "BNB"), (PERP, "")):
                    for side, price in (("buy", "100.5"), ("sell", "101.25")):
                        i += 1
                        f = fill(acct, i, side, price, "0.5", T0 + day * DAY + i, "0.01", sym)
                        w.append(msgspec.structs.replace(f, commission_asset=asset))
    fast, exact, took_fast = both(tmp_path)
    assert took_fast and fast == exact
    con = connect(layout)
    keys, fills = pnl_fast.read_fills(con)
    assert keys.table.num_rows == 5 * 3 and len(keys.books) == 5 * 2  # 5 accounts, 2 symbols
    assert len(fills.book) == i
    con.close()


def test_two_accounts_filling_a_symbol_at_one_nanosecond_mark_at_the_higher_price(tmp_path: Path) -> None:
    """The symbol's mark is its last fill price; two accounts' fills at the same nanosecond (hypothesis found
    one: the fast pass marked at 0.01, the SQL stages at 15.34, by scan order) mark at the higher price in both
    passes, whatever order the scan meets them in."""
    layout = Layout(tmp_path)
    with LogWriter(layout) as w:
        w.extend([fill("binance/sub_a", 1, "buy", "15.34", "0.001", T0, "0", "ETH/USDT:USDT"),
                  fill("binance/sub_b", 2, "buy", "0.01", "0.001", T0, "0", "ETH/USDT:USDT"),
                  fill("binance/sub_c", 3, "buy", "7.5", "0.001", T0, "0", "ETH/USDT:USDT")])  # fmt: skip
    fast, exact, took_fast = both(tmp_path)
    assert took_fast and fast == exact
    marks = {row[0]: row[12] for row in fast[3]}  # pnl_book_daily: account, ..., mark
    assert set(marks.values()) == {Decimal("15.34")}, marks
