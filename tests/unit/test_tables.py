"""Tables fit the terminal they are printed in (oms.cli.tables.fit) and the start status names each account's
strategies, legs included (oms.cli.up_report)."""

from __future__ import annotations

from rich.console import Console

import oms.cli.tables as tables
from oms.cli.up_report import strategies_by_account
from oms.config import load_config

ROWS = [("binance/sub_market_making", "active", "BTC/USDT 0.86164"), ("bybit/main", "not trading: no key", "flat")]
COLUMNS = ("account", "state", "positions")


def _printed(monkeypatch, width: int) -> str:
    console = Console(width=width, record=True, force_terminal=False)
    monkeypatch.setattr(tables, "console", console)
    monkeypatch.setattr(
        tables, "write", lambda text: console.print(text, markup=False, highlight=False, soft_wrap=True)
    )
    tables.fit("accounts", COLUMNS, ROWS)
    return console.export_text()


def test_a_wide_terminal_gets_a_table_with_every_cell_whole(monkeypatch):
    out = _printed(monkeypatch, 120)
    assert "┃ account" in out or "account" in out.splitlines()[1]
    assert all(cell in out for row in ROWS for cell in row) and "…" not in out
    assert max(len(line.rstrip()) for line in out.splitlines()) <= 120


def test_a_narrow_terminal_gets_one_line_per_row_nothing_cut(monkeypatch):
    out = _printed(monkeypatch, 40)
    lines = out.splitlines()
    assert lines[0] == "accounts:"
    assert "account: binance/sub_market_making  state: active  positions: BTC/USDT 0.86164" in out.replace("\n", " ")
    assert "…" not in out


def test_strategies_by_account_follows_legs_across_venues():
    by = strategies_by_account(load_config(env={}))
    assert by["binance/sub_market_making"] == ["market_making"]
    assert by["bybit/main"] == ["arbitrage"] and by["binance/sub_spot_arb"] == ["arbitrage"]
    assert by["binance/sub_futures_basis"] == ["basis"]
