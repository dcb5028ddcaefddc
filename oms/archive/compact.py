"""Daily compaction of the raw JSONL logs into hive-partitioned Parquet (zstd), with retention.

For every log file (``trades``, ``orders``, ``funding``, ``parents``) of a day that ended more than ``grace``
ago: each line is decoded with the model codec (a bad or truncated line is reported with file and line, and left
out), a row whose time is not on the file's day or whose key repeats (duplicate fill) is reported and left
out, and the day's rows of every account are written to ``parquet/{kind}/date=D/part-0.parquet``, sorted by
account, symbol and time in small row groups (so that a query for one account and day reads one file and
only that account's row groups: one file per account-day would mean 73,000 small files a year for 200
accounts, which costs every query more than it saves); the Parquet file's row count is checked against the
accepted lines before the day counts as compacted. A file changed after its
compaction (late lines) is compacted again on the next run; a file dated in the future is refused.

``parquet/_compacted.json`` records what was compacted; the views read raw JSONL only for days after the
last compacted day (``through``), so no row is counted twice. Retention deletes raw files of compacted days
older than ``raw_days`` and Parquet partitions older than ``parquet_days`` (None keeps them).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb

from oms.archive.layout import LOG_KINDS, Layout
from oms.archive.logs import iter_log
from oms.archive.records import LOG_COLUMN_DEFS, LOG_KEYS, json_columns_arg, typed_select
from oms.archive.report import FileResult, Report
from oms.archive.schema import ensure_placeholders
from oms.model import codec

DAY_NS = 86_400 * 10**9
ROW_GROUP_ROWS = 2048  # one account-day of fills spans one or a few row groups: they prune by account


@dataclass(frozen=True)
class Retention:
    """How long files are kept: raw JSONL days after compaction, and compacted Parquet (None: forever)."""

    raw_days: int | None = 7
    parquet_days: int | None = None
    grace: timedelta = timedelta(hours=1)  # a day is compacted once it ended this long ago

    def __post_init__(self) -> None:
        for name in ("raw_days", "parquet_days"):
            v = getattr(self, name)
            if v is not None and v < 0:
                raise ValueError(f"retention {name} must be >= 0 or None, got {v}")


@dataclass
class CompactionResult:
    report: Report
    compacted: list[str]  # raw files compacted this run
    deleted_raw: list[str]
    deleted_parquet: list[str]
    through: dict[str, str]


class RowCountMismatch(RuntimeError):
    """The Parquet file of a day does not hold the rows accepted from its JSONL."""


def _day_of_path(p: Path) -> date | None:
    try:
        y, m, d = (int(x) for x in p.parts[-6:-3])
        return date(y, m, d)
    except (ValueError, IndexError):
        return None


def _load_state(layout: Layout) -> dict[str, dict]:
    p = layout.compaction_state
    return json.loads(p.read_text()) if p.exists() else {}


def _save_state(layout: Layout, state: dict[str, dict]) -> None:
    p = layout.compaction_state
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=1, sort_keys=True))
    tmp.replace(p)


def _day_start(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()) * 10**9


def _changed(seen: dict | None, raw: Path) -> bool:
    if not seen:
        return True
    st = raw.stat()
    return seen["size"] != st.st_size or seen["mtime_ns"] != st.st_mtime_ns


def typed_select_empty(cols: list) -> str:
    return "SELECT " + ", ".join(f'NULL::{c.sql_type} AS "{c.name}"' for c in cols) + " WHERE false"


class Compactor:
    def __init__(self, layout: Layout, retention: Retention | None = None, now_ns: int | None = None):
        self.layout = layout
        self.retention = retention or Retention()
        self.now_ns = now_ns if now_ns is not None else time.time_ns()
        self.con = duckdb.connect()
        ensure_placeholders(layout, self.con)

    def close(self) -> None:
        self.con.close()

    def run(self, kinds: tuple[str, ...] = LOG_KINDS) -> CompactionResult:
        state = _load_state(self.layout)
        report = Report()
        compacted: list[str] = []
        today = datetime.fromtimestamp(self.now_ns / 1e9, tz=UTC).date()
        cutoff_ns = self.now_ns - int(self.retention.grace.total_seconds() * 1e9)
        for kind in kinds:
            ks = state.setdefault(kind, {"files": {}})
            files = ks["files"]
            pending_days: set[date] = set()
            by_day: dict[date, list[Path]] = {}
            for raw in sorted(self.layout.logs.glob(f"*/*/*/*/*/{kind}.jsonl")):
                day = _day_of_path(raw)
                if day is None:
                    continue
                if day > today:
                    res = FileResult(str(raw), kind)
                    res.reject(None, f"dated {day}, in the future: not compacted", "file from the future")
                    report.files.append(res)
                    continue
                if _day_start(day) + DAY_NS > cutoff_ns:
                    pending_days.add(day)
                    continue
                by_day.setdefault(day, []).append(raw)
            for day, raws in sorted(by_day.items()):
                changed = [r for r in raws if _changed(files.get(self._rel(r)), r)]
                if not changed:
                    continue
                results = self._compact_day(kind, day, raws)
                report.files += results
                if any(r.skipped for r in results):
                    pending_days.add(day)
                    continue
                for raw, res in zip(raws, results, strict=True):
                    st = raw.stat()
                    rel = self._rel(raw)
                    files[rel] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "rows": res.rows, "day": str(day)}
                    if raw in changed:
                        compacted.append(rel)
            done = sorted(date.fromisoformat(v["day"]) for v in files.values())
            through = max(done) if done else None
            if pending_days and through is not None:
                through = min(through, min(pending_days) - timedelta(days=1))
            if through is not None:
                ks["through"] = through.isoformat()
        deleted_raw, deleted_parquet = self._retention(state, today)
        _save_state(self.layout, state)
        through_all = {k: v["through"] for k, v in state.items() if "through" in v}
        return CompactionResult(report, compacted, deleted_raw, deleted_parquet, through_all)

    def _rel(self, raw: Path) -> str:
        return str(raw.relative_to(self.layout.root))

    def _accept(self, kind: str, raw: Path, day: date) -> tuple[FileResult, list[bytes]]:
        """The valid, unique lines of one raw file (re-encoded), every other line reported."""
        res = FileResult(str(raw), kind)
        account = f"{raw.parts[-3]}/{raw.parts[-2]}"
        lo = _day_start(day)
        keys = LOG_KEYS[kind]
        seen: dict[tuple, int] = {}
        good: list[bytes] = []
        for number, msg in iter_log(raw, kind, res):
            if getattr(msg, "account", account) != account:
                res.reject(number, f"account {msg.account} is not the folder's {account}", "wrong account")
                continue
            if not lo <= msg.event_ns < lo + DAY_NS:
                res.reject(number, f"event time {msg.event_ns} ns is not on {day}", "wrong day")
                continue
            key = tuple(getattr(msg, k) for k in keys)
            if key in seen:
                res.reject(number, f"duplicate of line {seen[key]} ({', '.join(map(str, key))})", "duplicate")
                continue
            seen[key] = number
            good.append(codec.encode(msg))
        res.rows = len(good)
        return res, good

    def _compact_day(self, kind: str, day: date, raws: list[Path]) -> list[FileResult]:
        """All raw files of one day into ``parquet/{kind}/date=D/part-0.parquet`` (sorted by account, symbol,
        time; small row groups so that one account's rows are a few row groups). Accounts whose raw file is
        gone (retention) keep their rows from the day's previous Parquet file."""
        results, lines = [], []
        for raw in raws:
            res, good = self._accept(kind, raw, day)
            results.append(res)
            lines += good
        accounts = sorted({f"{r.parts[-3]}/{r.parts[-2]}" for r in raws})
        out_dir = self.layout.table_dir(kind) / f"date={day.isoformat()}"
        target = out_dir / "part-0.parquet"
        cols = LOG_COLUMN_DEFS[kind]
        work = Path(tempfile.mkdtemp(dir=self.layout.root))
        try:
            src = work / "rows.jsonl"
            src.write_bytes(b"\n".join(lines) + (b"\n" if lines else b""))
            kept = ""
            kept_n = 0
            if target.exists():
                acc = "[" + ", ".join(f"'{a}'" for a in accounts) + "]"
                old = f"read_parquet('{target}')"
                kept_n = self.con.execute(
                    f"SELECT count(*) FROM {old} WHERE NOT list_contains({acc}, account)"
                ).fetchone()[0]
                names = ", ".join(f'"{c.name}"' for c in cols)
                kept = f" UNION ALL SELECT {names} FROM {old} WHERE NOT list_contains({acc}, account)"
            expected = len(lines) + kept_n
            if expected == 0:
                if target.exists():
                    target.unlink()
                return results
            out_dir.mkdir(parents=True, exist_ok=True)
            tmp = work / "part.parquet"
            fresh = (
                f"SELECT {typed_select(cols)} FROM read_json('{src}', columns={json_columns_arg(cols)}, "
                f"format='newline_delimited')"
                if lines
                else f"SELECT * FROM ({typed_select_empty(cols)})"
            )
            self.con.execute(
                f"COPY (SELECT * FROM ({fresh}{kept}) ORDER BY account, symbol, event_ns) TO '{tmp}' "
                f"(FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE {ROW_GROUP_ROWS})"
            )
            n = self.con.execute(f"SELECT count(*) FROM read_parquet('{tmp}')").fetchone()[0]
            if n != expected:
                raise RowCountMismatch(f"{out_dir}: {expected} rows accepted but the Parquet file holds {n}")
            os.replace(tmp, target)
        except (duckdb.Error, RowCountMismatch, OSError) as exc:
            for res in results:
                res.reject(None, f"compaction of {day} failed, raw files kept: {exc}", "compaction failed")
            return results
        finally:
            shutil.rmtree(work, ignore_errors=True)
        for res in results:
            res.outputs.append(str(target))
        return results

    def _retention(self, state: dict[str, dict], today: date) -> tuple[list[str], list[str]]:
        deleted_raw: list[str] = []
        deleted_parquet: list[str] = []
        r = self.retention
        for kind, ks in state.items():
            files = ks.get("files", {})
            if r.raw_days is not None:
                for rel, info in list(files.items()):
                    day = date.fromisoformat(info["day"])
                    p = self.layout.root / rel
                    if (today - day).days > r.raw_days and p.exists():
                        st = p.stat()
                        if st.st_size == info["size"] and st.st_mtime_ns == info["mtime_ns"]:
                            p.unlink()
                            deleted_raw.append(rel)
                            info["raw_deleted"] = True
                            _prune_empty(p.parent, self.layout.logs)
            if r.parquet_days is not None:
                for d in sorted(self.layout.table_dir(kind).glob("date=*")):
                    try:
                        day = date.fromisoformat(d.name.split("=", 1)[1])
                    except ValueError:
                        continue
                    if (today - day).days > r.parquet_days:
                        shutil.rmtree(d)
                        deleted_parquet.append(str(d.relative_to(self.layout.root)))
        return deleted_raw, deleted_parquet


def _prune_empty(folder: Path, stop: Path) -> None:
    while folder != stop and folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
        folder = folder.parent


def compact(
    layout: Layout, retention: Retention | None = None, now_ns: int | None = None, kinds: tuple[str, ...] = LOG_KINDS
) -> CompactionResult:
    """Compact, check row counts and apply retention (what the archive-compact flow calls)."""
    c = Compactor(layout, retention, now_ns)
    try:
        return c.run(kinds)
    finally:
        c.close()
