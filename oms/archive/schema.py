"""Column types of every archive table, and the empty placeholder files that keep views typed when empty.

The market tables' columns are Binance's (times as int64 ns UTC). The log tables' columns are derived from
the domain model's event structs (``oms.archive.records``), so the file schema has one source: the model.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from oms.archive.binance_files import AMOUNT, PRICE
from oms.archive.layout import LOG_KINDS, PARTITIONS, Layout
from oms.archive.records import LOG_COLUMNS

MARKET_COLUMNS: dict[str, dict[str, str]] = {
    "klines": {
        "open_time": "BIGINT",
        "open": PRICE,
        "high": PRICE,
        "low": PRICE,
        "close": PRICE,
        "volume": AMOUNT,
        "close_time": "BIGINT",
        "quote_volume": AMOUNT,
        "count": "BIGINT",
        "taker_buy_volume": AMOUNT,
        "taker_buy_quote_volume": AMOUNT,
    },
    "agg_trades": {
        "agg_trade_id": "BIGINT",
        "price": PRICE,
        "quantity": AMOUNT,
        "first_trade_id": "BIGINT",
        "last_trade_id": "BIGINT",
        "transact_time": "BIGINT",
        "is_buyer_maker": "BOOLEAN",
        "is_best_match": "BOOLEAN",
    },
    "market_trades": {
        "id": "BIGINT",
        "price": PRICE,
        "qty": AMOUNT,
        "quote_qty": AMOUNT,
        "time": "BIGINT",
        "is_buyer_maker": "BOOLEAN",
        "is_best_match": "BOOLEAN",
    },
}


def stored_columns(table: str) -> dict[str, str]:
    """Columns stored in a table's Parquet files (partition keys excluded)."""
    if table in MARKET_COLUMNS:
        return MARKET_COLUMNS[table]
    return LOG_COLUMNS[table]


def _empty_select(columns: dict[str, str]) -> str:
    return "SELECT " + ", ".join(f'NULL::{t} AS "{c}"' for c, t in columns.items()) + " WHERE false"


def ensure_placeholders(layout: Layout, con: duckdb.DuckDBPyConnection | None = None) -> None:
    """Write the empty file of every table under ``_schema/`` if missing or stale (idempotent)."""
    own = con is None
    con = con or duckdb.connect()
    try:
        for table in PARTITIONS:
            _write_placeholder(con, layout.placeholder(table), stored_columns(table))
        for kind in (*LOG_KINDS, "transfers", "snapshots"):
            p = layout.log_placeholder(kind)
            if not p.exists():
                p.parent.mkdir(parents=True, exist_ok=True)
                p.write_text("")
    finally:
        if own:
            con.close()


def _write_placeholder(con: duckdb.DuckDBPyConnection, path: Path, columns: dict[str, str]) -> None:
    if path.exists():
        have = con.execute(f"SELECT name FROM parquet_schema('{path}') WHERE name <> 'duckdb_schema'").fetchall()
        if [h[0] for h in have] == list(columns):
            return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    con.execute(f"COPY ({_empty_select(columns)}) TO '{tmp}' (FORMAT parquet)")
    tmp.replace(path)
