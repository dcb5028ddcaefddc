"""Binance public-archive files in their real formats, built from the real BTC price path (datasets/market):
klines, aggTrades and trades, Spot (no header; ms before 2025, µs from 2025) and USD-M (header, no
is_best_match), as CSV or zip with a ``.CHECKSUM`` beside it, in Binance's folder layout."""

from __future__ import annotations

import hashlib
import zipfile
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np

from oms.archive.market import DEFAULT_DATASETS, read_coinbase

HEADERS = {
    "klines": "open_time,open,high,low,close,volume,close_time,quote_volume,count,taker_buy_volume,"
    "taker_buy_quote_volume,ignore",
    "aggTrades": "agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker",
    "trades": "id,price,qty,quote_qty,time,is_buyer_maker",
}


def real_closes(n: int, offset: int = 0) -> np.ndarray:
    """``n`` BTC prices in cents, walking the real hourly Coinbase closes (2017-2019) by linear steps."""
    bars, _ = read_coinbase(DEFAULT_DATASETS / "Coinbase_BTCUSD_1h.csv")
    closes = np.array([round(float(b.close) * 100) for b in bars], dtype=np.int64)
    closes = np.roll(closes, -offset)
    x = np.linspace(0, len(closes) - 1, n)
    return np.round(np.interp(x, np.arange(len(closes)), closes)).astype(np.int64)


def day_ms(d: date) -> int:
    return int(datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp()) * 1000


def agg_trades_rows(d: date, n: int, *, us: bool, best_match: bool, first_id: int = 1000, offset: int = 0) -> list[str]:
    cents = real_closes(n, offset)
    rng = np.random.default_rng(n + offset)
    t0 = day_ms(d) * (1000 if us else 1)
    span = 86_400_000 * (1000 if us else 1)
    times = t0 + np.sort(rng.integers(0, span, n))
    qty = rng.integers(1, 200_000, n)  # 1e-5 BTC units
    rows = []
    for i in range(n):
        tid = first_id + i
        line = (
            f"{tid},{cents[i] // 100}.{cents[i] % 100:02d}000000,{qty[i] / 1e5:.8f},{tid * 2},{tid * 2 + 1},"
            f"{times[i]},{'True' if qty[i] % 2 else 'False'}"
        )
        rows.append(line + (",True" if best_match else ""))
    return rows


def trades_rows(d: date, n: int, *, us: bool, best_match: bool, first_id: int = 5000) -> list[str]:
    out = []
    for r in agg_trades_rows(d, n, us=us, best_match=False, first_id=first_id):
        tid, price, qty, _, _, t, maker = r.split(",")
        quote = f"{float(price) * float(qty):.8f}"
        out.append(f"{tid},{price},{qty},{quote},{t},{maker.lower()}" + (",True" if best_match else ""))
    return out


def klines_rows(start: date, n: int, interval_ms: int, *, us: bool) -> list[str]:
    cents = real_closes(n + 1)
    scale = 1000 if us else 1
    rows = []
    for i in range(n):
        o, c = cents[i], cents[i + 1]
        h, lo = max(o, c) + 50, min(o, c) - 50
        t = (day_ms(start) + i * interval_ms) * scale
        p = [f"{x // 100}.{x % 100:02d}" for x in (o, h, lo, c)]
        rows.append(f"{t},{p[0]},{p[1]},{p[2]},{p[3]},12.5,{t + interval_ms * scale - 1},250000.5,100,6.25,125000.25,0")
    return rows


def write_archive_file(
    root: Path,
    *,
    market: str,
    period: str,
    kind: str,
    symbol: str,
    stamp: str,
    rows: list[str],
    interval: str | None = None,
    header: bool = False,
    zipped: bool = True,
    checksum: bool = True,
) -> Path:
    """Write one file at Binance's path under ``root``; returns the zip (or csv)."""
    folder = root / ("spot" if market == "spot" else "futures/um") / period / kind / symbol
    what = interval if kind == "klines" else kind
    if interval:
        folder = folder / interval
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{symbol}-{what}-{stamp}"
    text = ((HEADERS[kind] + "\n") if header else "") + "\n".join(rows) + "\n"
    if zipped:
        path = folder / f"{name}.zip"
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(f"{name}.csv", text)
    else:
        path = folder / f"{name}.csv"
        path.write_text(text)
    if checksum:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        path.with_name(path.name + ".CHECKSUM").write_text(f"{digest}  {path.name}\n")
    return path
