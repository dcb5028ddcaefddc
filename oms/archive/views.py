"""DuckDB views over the whole archive, in memory or in the database file ``data/oms.duckdb``.

Views: ``trades``, ``orders``, ``funding``, ``parents`` (compacted Parquet plus the raw JSONL of days not
compacted yet), ``transfers``, ``snapshots``, ``klines``, ``agg_trades``, ``market_trades``, and the PnL views
``positions`` and ``pnl_daily`` (``oms.archive.pnl``). Every view reads its files when queried, so new files
show up without re-creating anything; a filter on ``date``/``account`` (or ``market``/``symbol``) reads only
the matching files (hive partitions for Parquet, the folder names for JSONL). An empty placeholder per table
(``_schema/``) keeps a view typed before its first file exists.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb

from oms.archive.layout import HIVE_TYPES, LOG_KINDS, MARKET_TABLES, PARTITIONS, Layout
from oms.archive.pnl import PNL_VIEWS
from oms.archive.records import LOG_COLUMN_DEFS, TRANSFER_COLUMNS, json_columns_arg, typed_select
from oms.archive.schema import MARKET_COLUMNS, ensure_placeholders

VIEWS = (*LOG_KINDS, "transfers", "snapshots", *MARKET_TABLES, *PNL_VIEWS)
TIME_COLUMN = {"klines": "open_time", "agg_trades": "transact_time", "market_trades": "time"}


def _q(s: str | Path) -> str:
    return "'" + str(s).replace("'", "''") + "'"


def _hive(table: str) -> str:
    return "{" + ", ".join(f"'{k}': '{HIVE_TYPES[k]}'" for k in PARTITIONS[table]) + "}"


def _parquet(layout: Layout, table: str) -> str:
    """The table's Parquet parts, columns matched by name: a part written before a column was added reads with
    it NULL (the placeholder always has today's columns)."""
    files = f"[{_q(layout.table_glob(table))}, {_q(layout.placeholder(table))}]"
    return (
        f"read_parquet({files}, hive_partitioning=true, hive_types={_hive(table)}, union_by_name=true, "
        f"allow_empty=true)"
    )


def _path_part(n: int) -> str:
    return f"split_part(filename, '/', {n})"


def compacted_through(layout: Layout) -> dict[str, str]:
    """The last day compacted per log kind (``{"trades": "2026-11-30"}``); raw days after it are read raw."""
    p = layout.compaction_state
    if not p.exists():
        return {}
    return {k: v["through"] for k, v in json.loads(p.read_text()).items() if "through" in v}


def log_view_sql(layout: Layout, kind: str, through: str | None) -> str:
    cols = LOG_COLUMN_DEFS[kind]
    names = ", ".join(f'"{c.name}"' for c in cols if c.name != "account")
    raw_date = (
        f"make_date(try_cast({_path_part(-6)} AS INTEGER), try_cast({_path_part(-5)} AS INTEGER), "
        f"try_cast({_path_part(-4)} AS INTEGER))"
    )
    raw_account = f"{_path_part(-3)} || '/' || {_path_part(-2)}"
    raw = (
        f"SELECT {raw_date} AS date, {typed_select([c for c in cols if c.name != 'account'])}, "
        f"{raw_account} AS account FROM read_json([{_q(layout.log_glob(kind))}, {_q(layout.log_placeholder(kind))}], "
        f"columns={json_columns_arg(cols)}, format='newline_delimited', filename=true, ignore_errors=true, "
        f"allow_empty=true)"
    )
    if through:
        raw = f"SELECT * FROM ({raw}) WHERE date > DATE {_q(through)}"
    compacted = f"SELECT date, account, {names} FROM {_parquet(layout, kind)}"  # account: a column, sorted
    return (
        f"SELECT *, make_timestamptz(event_ns // 1000) AS ts FROM ({compacted} UNION ALL "
        f"SELECT date, account, {names} FROM ({raw}))"
    )


def transfers_sql(layout: Layout) -> str:
    cols = json_columns_arg(TRANSFER_COLUMNS)
    fields = ("transfer_id", "from_account", "to_account", "asset", "from_market", "to_market", "kind")
    flat = ", ".join(f"transfer->>'{f}' AS {f}" for f in fields)
    return (
        f"SELECT {flat}, CAST(transfer->>'amount' AS DECIMAL(38,12)) AS amount, status, venue_transfer_id, code, "
        f"reason, event_ns, make_timestamptz(event_ns // 1000) AS ts, "
        f"make_date(try_cast({_path_part(-3)} AS INTEGER), try_cast({_path_part(-2)} AS INTEGER), 1) AS month "
        f"FROM read_json([{_q(layout.transfers_glob())}, {_q(layout.log_placeholder('transfers'))}], columns={cols}, "
        f"format='newline_delimited', filename=true, ignore_errors=true, allow_empty=true)"
    )


def snapshots_sql(layout: Layout) -> str:
    hour = (
        f"make_timestamptz(try_cast({_path_part(-7)} AS INTEGER), try_cast({_path_part(-6)} AS INTEGER), "
        f"try_cast({_path_part(-5)} AS INTEGER), try_cast({_path_part(-4)} AS INTEGER), 0, 0, 'UTC')"
    )
    return (
        f"SELECT {hour} AS hour, {_path_part(-3)} || '/' || {_path_part(-2)} AS account, json AS state, filename "
        f"FROM read_json_objects([{_q(layout.snapshot_glob())}, {_q(layout.log_placeholder('snapshots'))}], "
        f"filename=true, allow_empty=true)"
    )


def market_sql(layout: Layout, table: str) -> str:
    keys = ", ".join(PARTITIONS[table])
    cols = ", ".join(f'"{c}"' for c in MARKET_COLUMNS[table])
    t = TIME_COLUMN[table]
    return f"SELECT {keys}, {cols}, make_timestamptz({t} // 1000) AS ts FROM {_parquet(layout, table)}"


def create_views(con: duckdb.DuckDBPyConnection, layout: Layout, only: tuple[str, ...] | None = None) -> None:
    """Create (or replace) every view of the archive in ``con``; ``only``: just these log views (``trades``,
    ``orders``, ``funding``), for a job that reads nothing else (binding the nested PnL views costs most of a
    second on a month of fills, each one expanding ``trades`` again)."""
    ensure_placeholders(layout)
    through = compacted_through(layout)
    if only is not None:
        unknown = set(only) - set(LOG_KINDS)
        if unknown:
            raise ValueError(f"create_views(only=...): {sorted(unknown)} are not log views ({', '.join(LOG_KINDS)})")
    for kind in LOG_KINDS if only is None else only:
        con.execute(f"CREATE OR REPLACE VIEW {kind} AS {log_view_sql(layout, kind, through.get(kind))}")
    if only is not None:
        return
    con.execute(f"CREATE OR REPLACE VIEW transfers AS {transfers_sql(layout)}")
    con.execute(f"CREATE OR REPLACE VIEW snapshots AS {snapshots_sql(layout)}")
    for table in MARKET_TABLES:
        con.execute(f"CREATE OR REPLACE VIEW {table} AS {market_sql(layout, table)}")
    for name, sql in PNL_VIEWS.items():
        con.execute(f"CREATE OR REPLACE VIEW {name} AS {sql}")


def connect(
    data_dir: Path | Layout, database: str | Path = ":memory:", only: tuple[str, ...] | None = None
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with every archive view (in memory by default); ``only``: just these log views."""
    layout = data_dir if isinstance(data_dir, Layout) else Layout(Path(data_dir))
    con = duckdb.connect(str(database))
    create_views(con, layout, only)
    return con


class DatabaseLocked(RuntimeError):
    """The database file is open for writing in another process (e.g. a `duckdb` shell)."""


def write_database(data_dir: Path | Layout) -> Path:
    """(Re)create ``data/oms.duckdb`` with every view, for ``duckdb data/oms.duckdb``. Idempotent."""
    layout = data_dir if isinstance(data_dir, Layout) else Layout(Path(data_dir))
    layout.root.mkdir(parents=True, exist_ok=True)
    try:
        con = connect(layout, layout.database)
    except duckdb.IOException as exc:
        raise DatabaseLocked(f"cannot write {layout.database}: {exc}") from exc
    con.close()
    return layout.database
