"""The one file layout under ``data/`` (documented in ``data/README.md``): where every kind of record lives.

Raw records, as written::

    logs/YYYY/MM/DD/{account}/trades.jsonl        fills (model Fill events, the model codec's JSON, one a line)
    logs/YYYY/MM/DD/{account}/orders.jsonl        order events (model order events)
    logs/YYYY/MM/DD/{account}/funding.jsonl       funding payments (model funding events)
    logs/YYYY/MM/DD/{account}/parents.jsonl       parent-order steps (model ParentEvent: TWAP, OCO, ...)
    snapshots/YYYY/MM/DD/HH/{account}/state.json  hourly state of an account
    transfers/YYYY/MM/transfers.jsonl             transfers between accounts
    market/binance/{spot|futures/um}/{daily|monthly}/{klines|aggTrades|trades}/...   Binance's archive layout

Compacted, hive-partitioned Parquet (zstd), which DuckDB and Polars prune by partition::

    parquet/{trades|orders|funding|parents}/date=YYYY-MM-DD/part-0.parquet   (every account; sorted by account)
    parquet/klines/market={spot|um}/symbol={SYMBOL}/interval={iv}/month=YYYY-MM/*.parquet
    parquet/{agg_trades|market_trades}/market={spot|um}/symbol={SYMBOL}/date=YYYY-MM-DD/*.parquet

``_schema/`` holds one empty file per table so that a view over a table with no data yet is empty and
typed instead of failing; ``oms.duckdb`` is the DuckDB database of views over all of it. ``{account}`` is the
model's account id ``exchange/name`` (two folders: ``binance/sub_mm``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

ACCOUNT = re.compile(r"^[a-z][a-z0-9_]{0,31}/[A-Za-z0-9_\-]{1,64}$")  # the model's account id, exchange/name
LOG_KINDS = ("trades", "orders", "funding", "parents")
MARKET_TABLES = ("klines", "agg_trades", "market_trades")
# hive partition keys of each compacted table, outermost first
PARTITIONS: dict[str, tuple[str, ...]] = {
    "trades": ("date",),
    "orders": ("date",),
    "funding": ("date",),
    "parents": ("date",),
    "klines": ("market", "symbol", "interval", "month"),
    "agg_trades": ("market", "symbol", "date"),
    "market_trades": ("market", "symbol", "date"),
}
HIVE_TYPES = {"date": "DATE", "account": "VARCHAR", "market": "VARCHAR", "symbol": "VARCHAR", "interval": "VARCHAR"}
HIVE_TYPES["month"] = "VARCHAR"


def account_path(account: str) -> str:
    """The folders of an account: its id ``exchange/name`` itself (``binance/sub_mm``), checked."""
    if not ACCOUNT.match(account):
        raise ValueError(f"account {account!r} is not an account id exchange/name (e.g. binance/sub_mm)")
    return account


@dataclass(frozen=True)
class Layout:
    """Paths of every archive file under one data folder."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root).resolve())

    # raw records -------------------------------------------------------------------------------------------
    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def log(self, kind: str, day: date, account: str) -> Path:
        """``logs/YYYY/MM/DD/{account}/{kind}.jsonl`` (kind: one of ``LOG_KINDS``)."""
        if kind not in LOG_KINDS:
            raise ValueError(f"unknown log kind {kind!r} (one of {', '.join(LOG_KINDS)})")
        return self.logs / f"{day:%Y/%m/%d}" / account_path(account) / f"{kind}.jsonl"

    def log_glob(self, kind: str) -> str:
        return str(self.logs / "*" / "*" / "*" / "*" / "*" / f"{kind}.jsonl")

    def snapshot(self, hour: datetime, account: str) -> Path:
        """``snapshots/YYYY/MM/DD/HH/{account}/state.json`` for the UTC hour of ``hour``."""
        h = hour.astimezone(UTC)
        return self.root / "snapshots" / f"{h:%Y/%m/%d/%H}" / account_path(account) / "state.json"

    def snapshot_glob(self) -> str:
        return str(self.root / "snapshots" / "*" / "*" / "*" / "*" / "*" / "*" / "state.json")

    def transfers(self, year: int, month: int) -> Path:
        """``transfers/YYYY/MM/transfers.jsonl``."""
        return self.root / "transfers" / f"{year:04d}" / f"{month:02d}" / "transfers.jsonl"

    def transfers_glob(self) -> str:
        return str(self.root / "transfers" / "*" / "*" / "transfers.jsonl")

    @property
    def market_raw(self) -> Path:
        """Binance public-archive files as downloaded: ``market/binance/...``."""
        return self.root / "market" / "binance"

    # compacted ---------------------------------------------------------------------------------------------
    @property
    def parquet(self) -> Path:
        return self.root / "parquet"

    def table_dir(self, table: str) -> Path:
        return self.parquet / table

    def partition_dir(self, table: str, **values: str) -> Path:
        """The folder of one partition: ``parquet/{table}/k1=v1/k2=v2/...`` in the table's key order."""
        keys = PARTITIONS[table]
        if set(values) != set(keys):
            raise ValueError(f"partition of {table} needs {keys}, got {tuple(values)}")
        d = self.table_dir(table)
        for k in keys:
            d = d / f"{k}={values[k]}"
        return d

    def table_glob(self, table: str) -> str:
        return str(self.table_dir(table).joinpath(*(["*"] * len(PARTITIONS[table]))) / "*.parquet")

    @property
    def schema_dir(self) -> Path:
        return self.root / "_schema"

    def placeholder(self, table: str) -> Path:
        """An empty file of ``table`` at a hive path that no real partition has (keeps empty views typed)."""
        d = self.schema_dir / table
        for k in PARTITIONS[table]:
            d = d / f"{k}={'1970-01-01' if k == 'date' else '_'}"
        return d / "empty.parquet"

    def log_placeholder(self, kind: str) -> Path:
        return self.schema_dir / "logs" / f"{kind}.jsonl"

    @property
    def database(self) -> Path:
        return self.root / "oms.duckdb"

    @property
    def compaction_state(self) -> Path:
        """What has been compacted (``{"trades": "YYYY-MM-DD", ...}``): raw days after it are read raw."""
        return self.parquet / "_compacted.json"
