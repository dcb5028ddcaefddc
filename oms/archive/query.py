"""DuckDB over the archive: views whose columns come from the file layout, for ad-hoc queries."""

from __future__ import annotations

from pathlib import Path

import duckdb

from oms.archive.market import DEFAULT_ARCHIVE

KLINE_COLUMNS = {
    "open_time": "BIGINT",
    "open": "DECIMAL(38,8)",
    "high": "DECIMAL(38,8)",
    "low": "DECIMAL(38,8)",
    "close": "DECIMAL(38,8)",
    "volume": "DECIMAL(38,8)",
    "close_time": "BIGINT",
    "quote_volume": "DECIMAL(38,8)",
    "count": "BIGINT",
    "taker_buy_volume": "DECIMAL(38,8)",
    "taker_buy_quote_volume": "DECIMAL(38,8)",
    "ignore": "VARCHAR",
}


def connect(archive: Path = DEFAULT_ARCHIVE) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with a `klines` view over `{archive}/binance/spot/klines/**.csv`.

    `klines` has Binance's kline columns plus `symbol`, `interval` (from the path) and `ts` (open time
    as a UTC timestamp). The view is empty, not missing, when nothing was imported yet.
    """
    con = duckdb.connect()
    files = sorted((Path(archive) / "binance" / "spot" / "klines").glob("*/*/*.csv"))
    if not files:
        cols = ", ".join(f"NULL::{t} AS {c}" for c, t in KLINE_COLUMNS.items())
        con.execute(
            f"CREATE VIEW klines AS SELECT {cols}, NULL::VARCHAR AS symbol, NULL::VARCHAR AS interval, "
            "NULL::TIMESTAMPTZ AS ts WHERE false"
        )
        return con
    glob = str(Path(archive) / "binance" / "spot" / "klines" / "*" / "*" / "*.csv")
    columns = "{" + ", ".join(f"'{c}': '{t}'" for c, t in KLINE_COLUMNS.items()) + "}"
    con.execute(f"""
        CREATE VIEW klines AS
        SELECT * EXCLUDE (filename),
               split_part(filename, '/', -3) AS symbol,
               split_part(filename, '/', -2) AS interval,
               make_timestamptz(open_time * 1000) AS ts
        FROM read_csv('{glob}', header=false, columns={columns}, filename=true)
    """)
    return con
