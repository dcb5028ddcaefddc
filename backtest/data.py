"""Loading market data into tapes, with every bad row reported by file and row.

Sources:
- the project's market datasets (``datasets/market/``, read by ``oms.archive.market``) and its archive;
- Binance public-archive CSVs, zipped or not, with or without a header, ms or µs timestamps:
  klines ``open_time,open,high,low,close,volume,close_time,...``, aggTrades
  ``agg_trade_id,price,quantity,first_trade_id,last_trade_id,timestamp,is_buyer_maker[,is_best_match]``
  and trades ``trade_id,price,qty,quote_qty,time,is_buyer_maker[,is_best_match]``.

Prices and quantities become int64 units of the instrument exactly (a price finer than its unit is an
error, never rounded). Problems (short or truncated rows, NaN, empty or non-numeric cells, inconsistent
OHLC, duplicates, unsorted rows, gaps between bars, a corrupt zip) raise ``DataError`` naming the file,
the row and why, with the count of each kind; ``repair=True`` instead drops bad rows and exact
duplicates, sorts, accepts gaps, and lists all of it in the ``LoadReport``.
"""

from __future__ import annotations

import logging
import zipfile
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from backtest.tape import Tape, Venue
from kernels.instruments import Instrument
from oms.archive.market import DEFAULT_ARCHIVE, DEFAULT_DATASETS, INTERVAL_MS, load_bars
from strategies.api import (
    BAR,
    EV_CLOSE,
    EV_FIELDS,
    EV_HIGH,
    EV_INST,
    EV_KIND,
    EV_LOW,
    EV_OPEN,
    EV_T0,
    EV_TS,
    EV_VOLUME,
    TRADE,
)

log = logging.getLogger(__name__)
MS = 1_000_000  # ns per ms
US = 1_000  # ns per µs
KINDS = ("klines", "aggTrades", "trades")
_LAYOUT = {  # kind -> (columns at least, time column, price column, qty column, id column, maker column)
    "klines": (6, 0, 1, 5, None, None),
    "aggTrades": (7, 5, 1, 2, 0, 6),
    "trades": (6, 4, 1, 2, 0, 5),
}
MAX_LISTED = 20


@dataclass(frozen=True)
class Issue:
    file: str
    row: int  # 1-based line number in the file (0: the file as a whole)
    what: str

    def __str__(self) -> str:
        return f"{self.file}: row {self.row}: {self.what}" if self.row else f"{self.file}: {self.what}"


@dataclass
class LoadReport:
    file: str
    rows: int = 0
    events: int = 0
    issues: list[Issue] = field(default_factory=list)
    gaps: list[Issue] = field(default_factory=list)
    time_unit: str = ""

    def counts(self) -> dict[str, int]:
        return dict(Counter(i.what.split(":")[0] for i in self.issues + self.gaps))


class DataError(ValueError):
    """Bad market data: every problem with its file and row (the first ``MAX_LISTED`` listed)."""

    def __init__(self, issues: list[Issue]):
        self.issues = issues
        kinds = ", ".join(f"{n} {k}" for k, n in Counter(i.what.split(":")[0] for i in issues).items())
        listed = "\n".join(f"  {i}" for i in issues[:MAX_LISTED])
        more = f"\n  ... and {len(issues) - MAX_LISTED} more" if len(issues) > MAX_LISTED else ""
        super().__init__(f"{len(issues)} problem(s) in market data ({kinds}):\n{listed}{more}")


def _units(text: str, decimals: int) -> int:
    """A plain decimal string as an integer count of 10**-decimals, exactly, or ValueError."""
    s = text.strip()
    neg = s.startswith("-")
    if neg or s.startswith("+"):
        s = s[1:]
    whole, _, frac = s.partition(".")
    if not (whole or frac) or not (whole.isdigit() or whole == "") or not (frac.isdigit() or frac == ""):
        raise ValueError(f"{text!r} is not a decimal number")
    frac = frac.rstrip("0")
    if len(frac) > decimals:
        raise ValueError(f"{text!r} has more decimals than the unit allows ({decimals})")
    v = int(whole or "0") * 10**decimals + int((frac or "0").ljust(decimals, "0"))
    return -v if neg else v


def _decimals(unit) -> tuple[int, int]:
    """A unit such as Decimal('0.01') -> (decimals, step in those decimals): 0.05 -> (2, 5)."""
    exp = -unit.normalize().as_tuple().exponent
    d = max(int(exp), 0)
    return d, int(unit.scaleb(d))


class _Units:
    def __init__(self, ins: Instrument):
        self.pd, self.pstep = _decimals(ins.price_unit)
        self.qd, self.qstep = _decimals(ins.qty_unit)

    def price(self, s: str) -> int:
        v = _units(s, self.pd)
        if v % self.pstep:
            raise ValueError(f"price {s} is not a multiple of the price unit")
        if v <= 0:
            raise ValueError(f"price {s} is not positive")
        return v // self.pstep

    def qty(self, s: str) -> int:
        v = _units(s, self.qd)
        if v < 0:
            raise ValueError(f"quantity {s} is negative")
        if v % self.qstep:
            raise ValueError(f"quantity {s} is not a multiple of the quantity unit")
        return v // self.qstep


def _read_lines(path: Path) -> tuple[list[str], list[Issue]]:
    name = path.name
    try:
        if path.suffix == ".zip":
            with zipfile.ZipFile(path) as zf:
                members = [m for m in zf.namelist() if m.endswith(".csv")]
                if len(members) != 1:
                    return [], [Issue(name, 0, f"zip: expected one .csv inside, found {len(members)}")]
                data = zf.read(members[0])
        else:
            data = path.read_bytes()
    except (zipfile.BadZipFile, EOFError, zlib.error) as exc:
        return [], [Issue(name, 0, f"truncated or corrupt: {exc}")]
    except OSError as exc:
        return [], [Issue(name, 0, f"unreadable: {exc}")]
    text = data.decode("utf-8", errors="replace")
    issues = []
    if text and not text.endswith("\n"):
        issues.append(Issue(name, text.count("\n") + 1, "truncated: the last row has no line end"))
    return text.splitlines(), issues


def _time_unit(first_ts: int) -> tuple[int, str]:
    # ms since 1970 are ~1.7e12 today; µs ~1.7e15 (Binance Spot from 2025-01-01)
    return (US, "us") if first_ts >= 10**14 else (MS, "ms")


def _parse_rows(
    lines: list[str], start: int, kind: str, name: str, units: _Units, issues: list[Issue], report: LoadReport
) -> list[tuple]:
    """(time ns, id or time, open, high, low, close, volume, aux, row) per good row; bad rows to ``issues``."""
    mincols, tcol, pcol, qcol, idcol, mkcol = _LAYOUT[kind]
    rows: list[tuple] = []
    scale = None
    for ln in range(start, len(lines)):
        line = lines[ln]
        rowno = ln + 1
        if not line.strip():
            continue
        report.rows += 1
        cells = line.split(",")
        if len(cells) < mincols:
            issues.append(Issue(name, rowno, f"short row: {len(cells)} columns, need {mincols}"))
            continue
        try:
            if any(c.strip().lower() in ("", "nan", "null", "none", "inf", "-inf") for c in cells[:mincols]):
                raise ValueError("empty or NaN cell")
            t = int(cells[tcol])
            if scale is None:
                scale, report.time_unit = _time_unit(t)
            elif _time_unit(t)[0] != scale:
                raise ValueError(f"timestamp {t} is not in {report.time_unit} like the rows before")
            t *= scale
            if kind == "klines":
                o, h, lo, c = (units.price(x) for x in cells[1:5])
                v = units.qty(cells[5])
                if not (lo <= min(o, c) and h >= max(o, c)):
                    raise ValueError(f"inconsistent OHLC {','.join(cells[1:5])}")
                rows.append((t, t, o, h, lo, c, v, 0, rowno))
            else:
                p = units.price(cells[pcol])
                q = units.qty(cells[qcol])
                maker = cells[mkcol].strip().lower()
                if maker not in ("true", "false"):
                    raise ValueError(f"is_buyer_maker {cells[mkcol]!r} is not true/false")
                rows.append((t, int(cells[idcol]), p, p, p, p, q, -1 if maker == "true" else 1, rowno))
        except ValueError as exc:
            issues.append(Issue(name, rowno, f"bad value: {exc}"))
    return rows


def load_binance(
    path: str | Path,
    kind: str,
    instrument: Instrument,
    *,
    interval: str | None = None,
    inst_index: int = 0,
    repair: bool = False,
    venue: Venue | None = None,
) -> tuple[Tape, LoadReport]:
    """A Binance public-archive file (klines/aggTrades/trades) as a one-instrument tape and its report."""
    path = Path(path)
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    lines, issues = _read_lines(path)
    name = path.name
    report = LoadReport(name)
    units = _Units(instrument)
    if kind == "klines":
        if interval is None:
            raise ValueError("klines need their interval (e.g. '1h')")
        iv_ns = _interval_ns(interval)
    start = 1 if lines and lines[0] and not lines[0].split(",")[0].strip().lstrip("-").isdigit() else 0  # header
    rows = _parse_rows(lines, start, kind, name, units, issues, report)
    rows = _order(rows, kind, name, issues)
    gaps = _gaps(rows, kind, name, iv_ns if kind == "klines" else 0)
    report.gaps = gaps
    report.issues = issues
    if issues and not repair:
        raise DataError(issues)
    if gaps and not repair:
        raise DataError(gaps)
    for i in issues + gaps:
        log.warning("market data: %s", i)
    ev = np.zeros((len(rows), EV_FIELDS), dtype=np.int64)
    for r, (t, _ident, o, h, lo, c, v, aux, _) in enumerate(rows):
        if kind == "klines":
            ev[r] = (t + iv_ns, t, BAR, inst_index, o, h, lo, c, v, 0)
        else:
            ev[r] = (t, t, TRADE, inst_index, o, h, lo, c, v, aux)
    origin = np.array([(0, row[-1]) for row in rows], dtype=np.int64).reshape(-1, 2)
    report.events = len(ev)
    return Tape(ev, [instrument], [venue or Venue()], [name], origin), report


def _interval_ns(interval: str) -> int:
    units = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
    try:
        return int(interval[:-1]) * units[interval[-1]] * MS
    except (KeyError, ValueError) as exc:
        raise ValueError(f"interval {interval!r} is not like 1m, 1h, 1d") from exc


def _order(rows: list[tuple], kind: str, name: str, issues: list[Issue]) -> list[tuple]:
    """Sorted rows without duplicates; each unsorted row and duplicate reported."""
    key = (lambda r: r[0]) if kind == "klines" else (lambda r: r[1])
    for prev, r in zip(rows, rows[1:], strict=False):
        if key(r) < key(prev):
            issues.append(Issue(name, r[-1], f"unsorted: {key(r)} after {key(prev)} (row {prev[-1]})"))
    out: list[tuple] = []
    for r in sorted(rows, key=key):
        if out and key(out[-1]) == key(r):
            what = "duplicate" if out[-1][:-1] == r[:-1] else "duplicate with different values"
            issues.append(Issue(name, r[-1], f"{what}: {key(r)} already at row {out[-1][-1]}"))
            continue
        out.append(r)
    return out


def _gaps(rows: list[tuple], kind: str, name: str, iv_ns: int) -> list[Issue]:
    gaps = []
    for a, b in zip(rows, rows[1:], strict=False):
        if kind == "klines" and b[0] - a[0] != iv_ns and b[0] > a[0]:
            gaps.append(Issue(name, b[-1], f"gap: {(b[0] - a[0]) // iv_ns - 1} missing bar(s) before this row"))
        elif kind == "aggTrades" and b[1] - a[1] > 1:
            gaps.append(Issue(name, b[-1], f"gap: aggregate trade ids {a[1] + 1}..{b[1] - 1} missing"))
    return gaps


def load_dataset_bars(
    symbol: str,
    instrument: Instrument,
    interval: str | None = None,
    *,
    archive: Path = DEFAULT_ARCHIVE,
    datasets: Path = DEFAULT_DATASETS,
    inst_index: int = 0,
    venue: Venue | None = None,
    allow_gaps: bool = False,
) -> Tape:
    """The project's real bars of ``symbol`` (archive, else ``datasets/market``) as a tape, gaps refused."""
    iv, bars = load_bars(symbol, interval, archive, datasets)
    iv_ns = INTERVAL_MS[iv] * MS
    units = _Units(instrument)
    ev = np.zeros((len(bars), EV_FIELDS), dtype=np.int64)
    issues: list[Issue] = []
    source = f"{symbol} {iv} bars"
    for r, b in enumerate(bars):
        t = b.open_ms * MS
        if r and t - ev[r - 1, EV_T0] != iv_ns:
            issues.append(Issue(source, r + 1, f"gap: {(t - ev[r - 1, EV_T0]) // iv_ns - 1} missing bar(s)"))
        ev[r, EV_TS] = t + iv_ns
        ev[r, EV_T0] = t
        ev[r, EV_KIND] = BAR
        ev[r, EV_INST] = inst_index
        ev[r, EV_OPEN] = units.price(b.open)
        ev[r, EV_HIGH] = units.price(b.high)
        ev[r, EV_LOW] = units.price(b.low)
        ev[r, EV_CLOSE] = units.price(b.close)
        ev[r, EV_VOLUME] = units.qty(_trim(b.volume, units.qd))
    if issues and not allow_gaps:  # e.g. the daily Coinbase file's 2019-03-19..04-01 gap
        raise DataError(issues)
    for i in issues:
        log.warning("market data: %s (accepted: allow_gaps)", i)
    return Tape.single(ev, instrument, venue, source)


def _trim(volume: str, decimals: int) -> str:
    """Volumes finer than the quantity unit are floored to it (volume only bounds participation)."""
    whole, _, frac = volume.partition(".")
    return f"{whole}.{frac[:decimals]}" if frac else whole
