"""Binance public-archive files (data.binance.vision): what a file is from its name and first line.

Names and folders, as Binance publishes them::

    data/{spot|futures/um}/{daily|monthly}/klines/{SYMBOL}/{interval}/{SYMBOL}-{interval}-{YYYY-MM[-DD]}.zip
    data/{spot|futures/um}/{daily|monthly}/aggTrades/{SYMBOL}/{SYMBOL}-aggTrades-{YYYY-MM[-DD]}.zip
    data/{spot|futures/um}/{daily|monthly}/trades/{SYMBOL}/{SYMBOL}-trades-{YYYY-MM[-DD]}.zip

each with a ``.zip.CHECKSUM`` beside it (``<sha256 hex>  <file name>``). A zip holds one CSV of the same
stem. Spot CSVs have no header; USD-M files from mid-2022 have one. Spot timestamps are microseconds from
2025-01-01, milliseconds before; USD-M files carry no ``is_best_match`` column. All of that is read from
the file, not assumed from its date.
"""

from __future__ import annotations

import hashlib
import re
import zipfile
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

KINDS = ("klines", "aggTrades", "trades")
# the view / Parquet table each kind lands in
TABLES = {"klines": "klines", "aggTrades": "agg_trades", "trades": "market_trades"}
KLINE_INTERVALS = ("1s", "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "3d", "1w", "1mo")

_NAME = re.compile(
    r"^(?P<symbol>[A-Z0-9]+)-(?P<what>aggTrades|trades|\d+(?:s|m|h|d|w|mo))-"
    r"(?P<year>\d{4})-(?P<month>\d{2})(?:-(?P<day>\d{2}))?\.(?P<ext>csv|zip)$"
)

# Source CSV columns per kind, in file order. The last column of aggTrades/trades (is_best_match) is absent
# from USD-M files; `ignore` ends every kline row.
CSV_COLUMNS = {
    "klines": (
        "open_time",
        "open",
        "high",
        "low",
        "close",
        "volume",
        "close_time",
        "quote_volume",
        "count",
        "taker_buy_volume",
        "taker_buy_quote_volume",
        "ignore",
    ),
    "aggTrades": (
        "agg_trade_id",
        "price",
        "quantity",
        "first_trade_id",
        "last_trade_id",
        "transact_time",
        "is_buyer_maker",
        "is_best_match",
    ),
    "trades": ("id", "price", "qty", "quote_qty", "time", "is_buyer_maker", "is_best_match"),
}
PRICE = "DECIMAL(18,8)"
AMOUNT = "DECIMAL(38,8)"
CSV_TYPES = {
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
    "ignore": "VARCHAR",
    "agg_trade_id": "BIGINT",
    "price": PRICE,
    "quantity": AMOUNT,
    "first_trade_id": "BIGINT",
    "last_trade_id": "BIGINT",
    "transact_time": "BIGINT",
    "is_buyer_maker": "BOOLEAN",
    "is_best_match": "BOOLEAN",
    "id": "BIGINT",
    "qty": AMOUNT,
    "quote_qty": AMOUNT,
    "time": "BIGINT",
}
TIME_COLUMNS = {"klines": ("open_time", "close_time"), "aggTrades": ("transact_time",), "trades": ("time",)}
# the column whose value must strictly increase down a file (Binance ids, kline open times)
KEY_COLUMN = {"klines": "open_time", "aggTrades": "agg_trade_id", "trades": "id"}
MARKETS = {"spot": "spot", "um": "um"}  # Spot and USD-M futures (path `futures/um`)


class NotABinanceFile(ValueError):
    """A file name that is not one of Binance's public-archive names."""


@dataclass(frozen=True, slots=True)
class BinanceFile:
    """What a public-archive file holds, from its path: kind, market, symbol, interval and period."""

    path: Path
    kind: str  # klines | aggTrades | trades
    market: str  # spot | um
    symbol: str
    interval: str | None  # klines only
    year: int
    month: int
    day: int | None  # None: a monthly file

    @property
    def table(self) -> str:
        return TABLES[self.kind]

    @property
    def stem(self) -> str:
        return self.path.name.rsplit(".", 1)[0]

    @property
    def period(self) -> str:
        return "daily" if self.day else "monthly"

    def period_ns(self) -> tuple[int, int]:
        """[start, end) of the file's day or month, ns UTC."""
        start = datetime(self.year, self.month, self.day or 1, tzinfo=UTC)
        if self.day:
            end = start.timestamp() + 86_400
        else:
            ny, nm = (self.year + 1, 1) if self.month == 12 else (self.year, self.month + 1)
            end = datetime(ny, nm, 1, tzinfo=UTC).timestamp()
        return int(start.timestamp()) * 10**9, int(end) * 10**9

    def first_day(self) -> date:
        return date(self.year, self.month, self.day or 1)

    def archive_path(self, root: Path) -> Path:
        """Where Binance keeps this file, under ``root`` (``data/market/binance``)."""
        market = "spot" if self.market == "spot" else "futures/um"
        folder = root / market / self.period / self.kind / self.symbol
        if self.interval:
            folder = folder / self.interval
        return folder / self.path.name


def parse_name(path: Path, market: str | None = None) -> BinanceFile:
    """Recognise a Binance archive file from its name; the market from its folders (`futures/um`) or `market`."""
    m = _NAME.match(path.name)
    if not m:
        raise NotABinanceFile(
            f"{path.name}: not a Binance public-archive name (SYMBOL-aggTrades|trades|INTERVAL-YYYY-MM[-DD].zip|csv)"
        )
    what = m["what"]
    kind = what if what in ("aggTrades", "trades") else "klines"
    if kind == "klines" and what not in KLINE_INTERVALS:
        raise NotABinanceFile(f"{path.name}: unknown kline interval {what!r}")
    parts = path.parts
    if market is None:
        market = "um" if any(a == "futures" and b == "um" for a, b in zip(parts, parts[1:], strict=False)) else "spot"
        if "cm" in parts and "futures" in parts:
            raise NotABinanceFile(f"{path}: COIN-M futures files are not supported (Spot and USD-M only)")
    if market not in MARKETS:
        raise NotABinanceFile(f"{path}: unknown market {market!r} (spot or um)")
    day = int(m["day"]) if m["day"] else None
    year, month = int(m["year"]), int(m["month"])
    try:
        date(year, month, day or 1)
    except ValueError as exc:
        raise NotABinanceFile(f"{path.name}: invalid date ({exc})") from None
    return BinanceFile(path, kind, market, m["symbol"], what if kind == "klines" else None, year, month, day)


@dataclass(frozen=True, slots=True)
class CsvShape:
    """What the first line of a CSV says: header or not, the columns present, the time unit."""

    header: bool
    columns: tuple[str, ...]
    time_scale: int  # multiply a file timestamp by this to get ns (ms: 1e6, µs: 1e3)


SNIFF_BYTES = 65536


def sniff_csv(csv_path: Path, kind: str) -> CsvShape:
    """Header, column count and ms/µs timestamps from the first lines of a Binance CSV."""
    with csv_path.open("rb") as fh:
        return sniff_head(fh.read(SNIFF_BYTES), kind)


def sniff_head(data: bytes, kind: str) -> CsvShape:
    """``sniff_csv`` of a CSV's first bytes (a zip member read without extracting it)."""
    head = data.decode("utf-8", errors="replace").splitlines()
    lines = [ln for ln in head if ln.strip()]
    if not lines:
        raise ValueError("empty file")
    header = not lines[0].lstrip()[:1].isdigit() and not lines[0].lstrip().startswith("-")
    data = lines[1] if header and len(lines) > 1 else (None if header else lines[0])
    names = CSV_COLUMNS[kind]
    n = len((data or lines[0]).split(","))
    if kind != "klines" and n == len(names) - 1:
        columns = names[:-1]  # USD-M: no is_best_match
    else:
        columns = names
    scale = 1_000_000
    if data is not None:
        fields = data.split(",")
        tcol = TIME_COLUMNS[kind][0]
        idx = names.index(tcol)
        try:
            t = int(fields[idx])
            scale = 1_000 if t >= 10**14 else 1_000_000  # µs timestamps have 16 digits, ms 13
        except (ValueError, IndexError):
            pass  # the row itself is rejected by the reader, with its line
    return CsvShape(header, columns, scale)


def read_checksum(path: Path) -> str | None:
    """The SHA-256 from ``{path}.CHECKSUM`` beside the file, or None when there is none."""
    ck = path.with_name(path.name + ".CHECKSUM")
    if not ck.exists():
        return None
    text = ck.read_text().strip().split()
    if not text or not re.fullmatch(r"[0-9a-fA-F]{64}", text[0]):
        raise ValueError(f"{ck.name}: not a SHA-256 checksum file")
    return text[0].lower()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def zip_member(zf: zipfile.ZipFile) -> str:
    """The name of the one CSV inside a Binance zip."""
    names = [n for n in zf.namelist() if n.endswith(".csv")]
    if len(names) != 1:
        raise ValueError(f"expected one CSV inside, found {len(names)}")
    return names[0]
