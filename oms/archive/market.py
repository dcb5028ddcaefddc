"""Market-data archive: import CryptoDataDownload CSVs into Binance's public-archive kline layout, load paths.

Layout (as Binance's public data archive):
``data/market/binance/spot/monthly/klines/{SYMBOL}/{interval}/{SYMBOL}-{interval}-{YYYY-MM}.csv`` with the
columns open_time,open,high,low,close,volume,close_time,quote_volume,count,taker_buy_volume,
taker_buy_quote_volume,ignore (ms timestamps, no header, like Binance's files).

Sources (``datasets/market``): Coinbase hourly/daily (banner line, header, newest-first rows, dates
``2019-10-17 09-AM`` or ``2019-10-17``) and the Bitstamp wide daily file (BTC/ETH/LTC columns). USD
instruments map to USDT symbols (BTC-USD -> BTCUSDT). Prices are kept as the exact decimal strings.
"""

from __future__ import annotations

import csv
import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

from oms.archive.pricepath import CrossPath, PricePath

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DATASETS = REPO_ROOT / "datasets" / "market"
DEFAULT_ARCHIVE = REPO_ROOT / "data" / "market"
INTERVAL_MS = {"1h": 3_600_000, "1d": 86_400_000}
COINBASE_FILES = {"Coinbase_BTCUSD_1h.csv": ("BTCUSDT", "1h"), "Coinbase_BTCUSD_d.csv": ("BTCUSDT", "1d")}
BITSTAMP_FILE = "bitstamp_BTC_ETH_LTC_USD_d.csv"
BITSTAMP_COINS = {"BTC": "BTCUSDT", "ETH": "ETHUSDT", "LTC": "LTCUSDT"}
# the hourly Coinbase file is preferred for BTC; Bitstamp gives ETH and LTC (daily)
SOURCE_PREFERENCE = {"BTCUSDT": ("1h", "1d"), "ETHUSDT": ("1d",), "LTCUSDT": ("1d",)}
CROSS_PATHS = {"ETHBTC": ("ETHUSDT", "BTCUSDT")}  # cross -> (base leg, quote leg), both quoted in USDT


@dataclass(frozen=True, slots=True)
class Bar:
    """One OHLCV bar: open time in ms UTC, decimal-string prices and volumes."""

    open_ms: int
    open: str
    high: str
    low: str
    close: str
    volume: str
    quote_volume: str


@dataclass
class ImportReport:
    """What an import did: bars written per (symbol, interval), rows rejected, files written."""

    bars: dict[tuple[str, str], int]
    rejected: int
    files: list[Path]


def parse_cdd_date(text: str) -> int:
    """CryptoDataDownload date -> ms UTC: '2019-10-17 09-AM', '2019-10-17 12-PM', '2019-10-17'."""
    text = text.strip()
    if " " in text:
        day, hour = text.split(" ", 1)
        h, ampm = hour.split("-")
        hh = int(h) % 12 + (12 if ampm.upper() == "PM" else 0)
        dt = datetime.strptime(day, "%Y-%m-%d").replace(hour=hh, tzinfo=UTC)
    else:
        dt = datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
    return int(dt.timestamp()) * 1000


def _num(s: str) -> str:
    d = Decimal(s.strip())
    if not d.is_finite() or d < 0:
        raise InvalidOperation(s)
    return format(d.normalize(), "f")


def _bar(open_ms: int, o: str, h: str, lo: str, c: str, vol: str, quote: str | None) -> Bar:
    oo, hh, ll, cc = _num(o), _num(h), _num(lo), _num(c)
    do, dh, dl, dc = Decimal(oo), Decimal(hh), Decimal(ll), Decimal(cc)
    if not (dl <= min(do, dc) and dh >= max(do, dc) and dl > 0):
        raise InvalidOperation(f"inconsistent OHLC {o},{h},{lo},{c}")
    v = _num(vol)
    q = _num(quote) if quote not in (None, "") else format((Decimal(v) * dc).normalize(), "f")
    return Bar(open_ms, oo, hh, ll, cc, v, q)


def read_coinbase(path: Path) -> tuple[list[Bar], int]:
    """Bars of a Coinbase CryptoDataDownload file (oldest first) and the count of rejected rows."""
    bars: list[Bar] = []
    rejected = 0
    with path.open(newline="") as fh:
        lines = fh.read().splitlines()
    start = 1 if lines and not lines[0].lower().startswith("date,") else 0
    for row in csv.DictReader(lines[start:]):
        try:
            bars.append(
                _bar(
                    parse_cdd_date(row["date"]),
                    row["open"],
                    row["high"],
                    row["low"],
                    row["close"],
                    row["volume_btc"],
                    row.get("volume"),
                )
            )
        except (InvalidOperation, ValueError, KeyError, TypeError, AttributeError):
            rejected += 1
            log.warning("market import: %s: rejected row %r", path.name, row)
    bars.sort(key=lambda b: b.open_ms)
    return _dedupe(bars), rejected


def read_bitstamp(path: Path) -> tuple[dict[str, list[Bar]], int]:
    """Per coin (BTC/ETH/LTC) daily bars of the Bitstamp wide file; empty cells before a coin's start."""
    out: dict[str, list[Bar]] = defaultdict(list)
    rejected = 0
    with path.open(newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        for row in reader:
            if not row or not row[0].strip():
                continue
            try:
                t = parse_cdd_date(row[0])
            except ValueError:
                rejected += 1
                continue
            cells = dict(zip(header, row, strict=False))
            for coin in BITSTAMP_COINS:
                vals = [cells.get(f"{coin}:{k}", "") for k in ("open", "high", "low", "close", "volume")]
                if not any(v.strip() for v in vals):
                    continue
                try:
                    out[coin].append(_bar(t, *vals, None))
                except (InvalidOperation, ValueError):
                    rejected += 1
                    log.warning("market import: %s: rejected %s row of %s", path.name, coin, row[0])
    return {c: _dedupe(sorted(b, key=lambda x: x.open_ms)) for c, b in out.items()}, rejected


def _dedupe(bars: list[Bar]) -> list[Bar]:
    out: list[Bar] = []
    for b in bars:
        if out and out[-1].open_ms == b.open_ms:
            continue
        out.append(b)
    return out


def is_dataset_file(path: Path) -> bool:
    """One of the CryptoDataDownload files of ``datasets/market`` (not a Binance archive file)."""
    return path.name in COINBASE_FILES or path.name == BITSTAMP_FILE


def kline_path(root: Path, symbol: str, interval: str, year: int, month: int) -> Path:
    """The archive file of one symbol, interval and month."""
    return kline_dir(root, symbol, interval) / f"{symbol}-{interval}-{year:04d}-{month:02d}.csv"


def kline_dir(root: Path, symbol: str, interval: str) -> Path:
    """The folder of a symbol's monthly kline files, as in Binance's archive (``spot/monthly/klines/...``)."""
    return root / "binance" / "spot" / "monthly" / "klines" / symbol / interval


def write_klines(root: Path, symbol: str, interval: str, bars: list[Bar]) -> list[Path]:
    """Write bars as monthly Binance kline CSVs (replacing those months' files). Returns files written."""
    iv = INTERVAL_MS[interval]
    months: dict[tuple[int, int], list[Bar]] = defaultdict(list)
    for b in bars:
        d = datetime.fromtimestamp(b.open_ms / 1000, tz=UTC)
        months[(d.year, d.month)].append(b)
    files = []
    for (y, m), rows in sorted(months.items()):
        p = kline_path(root, symbol, interval, y, m)
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_suffix(".csv.tmp")
        with tmp.open("w", newline="") as fh:
            w = csv.writer(fh, lineterminator="\n")
            for b in rows:
                w.writerow(
                    [
                        b.open_ms,
                        b.open,
                        b.high,
                        b.low,
                        b.close,
                        b.volume,
                        b.open_ms + iv - 1,
                        b.quote_volume,
                        0,
                        0,
                        0,
                        0,
                    ]
                )
        tmp.replace(p)
        files.append(p)
    return files


def import_datasets(datasets: Path = DEFAULT_DATASETS, archive: Path = DEFAULT_ARCHIVE) -> ImportReport:
    """Import every known dataset file into the archive (idempotent: months are rewritten)."""
    report = ImportReport({}, 0, [])
    series: dict[tuple[str, str], list[Bar]] = {}
    for name, (symbol, interval) in COINBASE_FILES.items():
        p = datasets / name
        if p.exists():
            bars, rej = read_coinbase(p)
            series[(symbol, interval)] = bars
            report.rejected += rej
    p = datasets / BITSTAMP_FILE
    if p.exists():
        coins, rej = read_bitstamp(p)
        report.rejected += rej
        for coin, bars in coins.items():
            key = (BITSTAMP_COINS[coin], "1d")
            if key not in series:  # Coinbase daily BTC stays the BTC daily source
                series[key] = bars
    for (symbol, interval), bars in sorted(series.items()):
        report.files += write_klines(archive, symbol, interval, bars)
        report.bars[(symbol, interval)] = len(bars)
    return report


def read_archive(archive: Path, symbol: str, interval: str) -> list[Bar]:
    """All archived bars of a symbol and interval, oldest first (empty if none)."""
    d = kline_dir(archive, symbol, interval)
    bars: list[Bar] = []
    for f in sorted(d.glob(f"{symbol}-{interval}-*.csv")):
        with f.open(newline="") as fh:
            for row in csv.reader(fh):
                if row and row[0].isdigit():
                    bars.append(Bar(int(row[0]), row[1], row[2], row[3], row[4], row[5], row[7]))
    return _dedupe(sorted(bars, key=lambda b: b.open_ms))


def load_bars(
    symbol: str, interval: str | None = None, archive: Path = DEFAULT_ARCHIVE, datasets: Path = DEFAULT_DATASETS
) -> tuple[str, list[Bar]]:
    """Bars of ``symbol`` from the archive, or straight from the dataset files when it is empty.

    ``interval`` None picks the finest available (BTCUSDT 1h, ETH/LTC 1d). Returns (interval, bars).
    """
    choices = (interval,) if interval else SOURCE_PREFERENCE.get(symbol, ("1h", "1d"))
    for iv in choices:
        bars = read_archive(archive, symbol, iv)
        if bars:
            return iv, bars
    for iv in choices:
        for name, (sym, fiv) in COINBASE_FILES.items():
            if sym == symbol and fiv == iv and (datasets / name).exists():
                return iv, read_coinbase(datasets / name)[0]
        if iv == "1d" and (datasets / BITSTAMP_FILE).exists():
            coins, _ = read_bitstamp(datasets / BITSTAMP_FILE)
            for coin, sym in BITSTAMP_COINS.items():
                if sym == symbol and coin in coins:
                    return iv, coins[coin]
    raise FileNotFoundError(f"no market data for {symbol} {interval or ''} in {archive} or {datasets}")


def load_price_path(
    symbol: str, interval: str | None = None, archive: Path = DEFAULT_ARCHIVE, datasets: Path = DEFAULT_DATASETS
) -> PricePath:
    """A replayable ``PricePath`` for ``symbol`` (see ``load_bars``)."""
    iv, bars = load_bars(symbol, interval, archive, datasets)
    rows = [(b.open_ms, b.open, b.high, b.low, b.close) for b in bars]
    return PricePath.from_rows(symbol, INTERVAL_MS[iv], rows)


def load_default_paths(
    archive: Path = DEFAULT_ARCHIVE, datasets: Path = DEFAULT_DATASETS
) -> dict[str, PricePath | CrossPath]:
    """Paths for BTCUSDT, ETHUSDT and LTCUSDT (those that have data) and the crosses of ``CROSS_PATHS`` whose
    legs have data (ETHBTC = ETHUSDT / BTCUSDT)."""
    out: dict[str, PricePath | CrossPath] = {}
    legs: dict[str, PricePath] = {}
    for sym in SOURCE_PREFERENCE:
        try:
            legs[sym] = out[sym] = load_price_path(sym, None, archive, datasets)
        except FileNotFoundError:
            log.warning("market data: no path for %s", sym)
    for cross, (base, quote) in CROSS_PATHS.items():
        if base in legs and quote in legs:
            out[cross] = CrossPath(cross, legs[base], legs[quote])
        else:
            log.warning("market data: no path for %s (needs %s and %s)", cross, base, quote)
    return out
