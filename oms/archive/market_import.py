"""Import Binance public-archive CSVs (klines, aggTrades, trades; Spot and USD-M) into hive-partitioned Parquet.

Trade files (aggTrades, trades: the millions of rows) first try the fast path (``oms.archive.market_fast``:
the compiled reader ``oms.archive.trade_csv`` parses the file, or its zip member as ISA-L inflates it, in
blocks straight into columns, checks in NumPy, pyarrow's Parquet writer in a second thread), which hands any
file it cannot judge alone to the careful path below; both write the same rows.

Careful path: one DuckDB pass per file parses the CSV with fixed column types into a staging Parquet file
(rows that do not parse land in DuckDB's rejects table with their line); one cheap pass over the staging file
checks what a parser cannot: ids and open times strictly increasing (duplicates), times inside the file's
day or month and not in the future, positive prices, consistent OHLC. A clean file is then only moved into
place. A file with problems takes the slow path: each bad row is found, reported with its line, and left
out. Whole files are refused for a wrong ``.CHECKSUM``, a date in the future, or an unreadable zip.

Timestamps are stored as int64 ns UTC (ms and µs files alike); prices DECIMAL(18,8), amounts DECIMAL(38,8).
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import tempfile
import time
import uuid
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path

import duckdb

from oms.archive.binance_files import (
    CSV_TYPES,
    KEY_COLUMN,
    SNIFF_BYTES,
    TIME_COLUMNS,
    BinanceFile,
    NotABinanceFile,
    parse_name,
    read_checksum,
    sha256_file,
    sniff_csv,
    sniff_head,
)
from oms.archive.fetch import Fetched, fetch_all, is_url, read_url_list
from oms.archive.layout import Layout
from oms.archive.market import import_datasets, is_dataset_file
from oms.archive.market_fast import FAST_KINDS, NeedsCarefulPath, import_fast
from oms.archive.report import FileResult, Report
from oms.archive.schema import ensure_placeholders
from oms.archive.trade_csv import Prefixed, ZipMember, extract_member

log = logging.getLogger("oms.archive")

Progress = Callable[[Path, int], None]  # (file done, its size in bytes)


def _sql_str(s: str | Path) -> str:
    return "'" + str(s).replace("'", "''") + "'"


def find_files(paths: Iterable[Path]) -> list[Path]:
    """Archive files under the given files and folders (zip or csv; CHECKSUM files are read beside them)."""
    out: list[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            out += sorted(q for q in p.rglob("*") if q.is_file() and q.suffix in (".zip", ".csv"))
        else:
            out.append(p)
    return out


def _select_list(kind: str, columns: tuple[str, ...], scale: int) -> str:
    """Stored columns: time columns scaled to ns, `ignore` dropped, a missing is_best_match as NULL."""
    out = []
    for c in columns:
        if c == "ignore":
            continue
        out.append(f'"{c}" * {scale} AS "{c}"' if c in TIME_COLUMNS[kind] else f'"{c}"')
    if kind != "klines" and "is_best_match" not in columns:
        out.append("NULL::BOOLEAN AS is_best_match")
    return ", ".join(out)


def _row_problem(kind: str) -> str:
    """A CASE giving why a parsed row is refused, or NULL (prev: the previous key, lo/hi: the file's period)."""
    t = TIME_COLUMNS[kind][0]
    key = KEY_COLUMN[kind]
    what = "open time" if kind == "klines" else "trade id"
    checks = [
        (f"{key} <= prev", f"'duplicate or out of order: {what} ' || {key} || ' after ' || prev"),
        (f"{t} > now_ns", f"'time ' || {t} || ' ns is in the future'"),
        (f"{t} < lo OR {t} >= hi", f"'time ' || {t} || ' ns is outside the file''s period'"),
    ]
    if kind == "klines":
        checks.append(
            (
                "low <= 0 OR high < greatest(open, close, low) OR low > least(open, close) OR volume < 0",
                "'inconsistent OHLC or negative volume'",
            )
        )
    else:
        q = "quantity" if kind == "aggTrades" else "qty"
        checks.append((f"price <= 0 OR {q} <= 0", "'price and quantity must be positive'"))
    return "CASE " + " ".join(f"WHEN {c} THEN {r}" for c, r in checks) + " END"


class MarketImporter:
    """Imports archive files into ``{data}/parquet/{klines|agg_trades|market_trades}``; see the module doc."""

    def __init__(self, layout: Layout, now_ns: int | None = None, threads: int | None = None, fast: bool = True):
        """``fast``: trade files try the fast path first (``oms.archive.market_fast``); off, every file takes
        the careful path (the two write the same rows)."""
        self.layout = layout
        self.fast = fast
        self.now_ns = now_ns if now_ns is not None else time.time_ns()
        self.con = duckdb.connect()
        if threads:
            self.con.execute(f"SET threads = {int(threads)}")
        self.con.execute("SET preserve_insertion_order = true")
        ensure_placeholders(layout)
        self.staging = layout.parquet / "_staging"
        self.staging.mkdir(parents=True, exist_ok=True)

    def close(self) -> None:
        self.con.close()
        shutil.rmtree(self.staging, ignore_errors=True)

    def __enter__(self) -> MarketImporter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def import_paths(
        self, paths: Iterable[Path], market: str | None = None, progress: Progress | None = None
    ) -> Report:
        report = Report()
        for p in find_files(paths):
            report.files.append(self.import_file(p, market))
            if progress:
                progress(p, p.stat().st_size if p.exists() else 0)
        return report

    # one file ------------------------------------------------------------------------------------------------
    def import_file(self, path: Path, market: str | None = None) -> FileResult:
        try:
            bf = parse_name(path, market)
        except NotABinanceFile as exc:
            res = FileResult(str(path), "?")
            res.reject(None, str(exc), "unknown file name")
            return res
        res = FileResult(str(path), bf.table)
        if not self._file_ok(bf, res):
            return res
        work = Path(tempfile.mkdtemp(dir=self.staging))
        try:
            if self.fast and bf.kind in FAST_KINDS and self._fast(bf, path, res):
                return res  # read straight from the file, or from its zip member as it inflates
            csv_path = path
            if path.suffix == ".zip":  # the careful path reads a CSV file: the member inflated with ISA-L
                try:
                    csv_path = extract_member(path, work)
                except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
                    res.reject(None, f"unreadable zip: {exc}", "unreadable zip")
                    return res
            self._import_csv(bf, csv_path, work, res)
        except (duckdb.Error, ValueError, OSError) as exc:
            res.rows = 0
            res.reject(None, f"import failed: {exc}", "import failed")
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return res

    def _fast(self, bf: BinanceFile, path: Path, res: FileResult) -> bool:
        """The fast path (``oms.archive.market_fast``, parsing with ``oms.archive.trade_csv``); False when the
        file needs the careful path (which also reports an unreadable zip or an empty file)."""
        if self._other_sources(bf):
            return False  # rows of another source file (the month's, a day's) in these partitions: dedupe
        try:
            with ZipMember(path) if path.suffix == ".zip" else path.open("rb", buffering=0) as src:
                head = src.read(SNIFF_BYTES)
                shape = sniff_head(head[:SNIFF_BYTES], bf.kind)
                stream = Prefixed(head, src)
                res.rows, res.outputs = import_fast(bf, stream, shape, self.now_ns, self._symbol_dir(bf))
            return True
        except NeedsCarefulPath as exc:
            log.info("archive: %s takes the careful path: %s", bf.path, exc)
        except (ValueError, OSError, EOFError, zipfile.BadZipFile):
            pass  # the careful path reports it, naming the file
        return False

    def _file_ok(self, bf: BinanceFile, res: FileResult) -> bool:
        try:
            expected = read_checksum(bf.path)
        except ValueError as exc:
            res.reject(None, str(exc), "bad checksum file")
            return False
        if expected is not None:
            got = sha256_file(bf.path)
            if got != expected:
                res.reject(None, f"checksum mismatch: .CHECKSUM says {expected}, file is {got}", "checksum mismatch")
                return False
        start, _ = bf.period_ns()
        if start > self.now_ns:
            res.reject(None, f"dated {bf.first_day()}, in the future", "file from the future")
            return False
        return True

    def _import_csv(self, bf: BinanceFile, csv_path: Path, work: Path, res: FileResult) -> None:
        try:
            shape = sniff_csv(csv_path, bf.kind)
        except ValueError as exc:
            res.reject(None, str(exc), "empty file")
            return
        tag = uuid.uuid4().hex[:12]
        rejects, scans = f"rej_{tag}", f"scan_{tag}"
        columns = "{" + ", ".join(f"'{c}': '{CSV_TYPES[c]}'" for c in shape.columns) + "}"
        staged = work / "staged.parquet"
        self.con.execute(
            f"COPY (SELECT {_select_list(bf.kind, shape.columns, shape.time_scale)} FROM read_csv("
            f"{_sql_str(csv_path)}, header={str(shape.header).lower()}, auto_detect=false, delim=',', quote='', "
            f"escape='', columns={columns}, store_rejects=true, rejects_table='{rejects}', rejects_scan='{scans}')) "
            f"TO {_sql_str(staged)} (FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 1)"
        )
        bad_lines = self._csv_rejects(rejects, scans, res)
        lo, hi = bf.period_ns()
        key, t = KEY_COLUMN[bf.kind], TIME_COLUMNS[bf.kind][0]
        n, problems = self.con.execute(
            f"SELECT count(*), count_if({key} <= prev OR {t} > ? OR {t} < ? OR {t} >= ? OR bad) FROM ("
            f"SELECT {key}, {t}, lag({key}) OVER () AS prev, {self._bad_values(bf.kind)} AS bad "
            f"FROM read_parquet({_sql_str(staged)}))",
            [self.now_ns, lo, hi],
        ).fetchone()
        dup_sources = self._other_sources(bf)
        if problems or dup_sources:
            staged, n = self._slow_path(bf, csv_path, staged, shape.header, bad_lines, dup_sources, res)
        res.rows = n
        if n:
            self._place(bf, staged, res)

    @staticmethod
    def _bad_values(kind: str) -> str:
        if kind == "klines":
            return "(low <= 0 OR high < greatest(open, close, low) OR low > least(open, close) OR volume < 0)"
        q = "quantity" if kind == "aggTrades" else "qty"
        return f"(price <= 0 OR {q} <= 0)"

    def _csv_rejects(self, rejects: str, scans: str, res: FileResult) -> set[int]:
        rows = self.con.execute(
            f"SELECT line, any_value(error_type) AS et, string_agg(DISTINCT error_message, '; ') FROM {rejects} "
            "GROUP BY line ORDER BY line"
        ).fetchall()
        self.con.execute(f"DROP TABLE IF EXISTS {rejects}; DROP TABLE IF EXISTS {scans}")
        for line, etype, msg in rows:
            res.reject(int(line), f"unreadable row ({etype}): {msg}", f"unreadable row ({etype})")
        return {int(r[0]) for r in rows}

    def _other_sources(self, bf: BinanceFile) -> list[str]:
        """Parquet files of other source files in the partitions this file writes (monthly vs daily)."""
        base = self._symbol_dir(bf)
        if not base.exists():
            return []
        if bf.kind == "klines":
            dirs = [base / f"month={bf.year:04d}-{bf.month:02d}"]
        elif bf.day:
            dirs = [base / f"date={bf.year:04d}-{bf.month:02d}-{bf.day:02d}"]
        else:
            dirs = list(base.glob(f"date={bf.year:04d}-{bf.month:02d}-*"))
        return [
            str(f)
            for d in dirs
            if d.exists()
            for f in sorted(d.glob("*.parquet"))
            if not f.name.startswith(bf.stem + "_")
        ]

    def _symbol_dir(self, bf: BinanceFile) -> Path:
        d = self.layout.table_dir(bf.table) / f"market={bf.market}" / f"symbol={bf.symbol}"
        return d / f"interval={bf.interval}" if bf.interval else d

    def _slow_path(
        self,
        bf: BinanceFile,
        csv_path: Path,
        staged: Path,
        header: bool,
        bad_lines: set[int],
        others: list[str],
        res: FileResult,
    ) -> tuple[Path, int]:
        """Find each refused row of the staging file, report it with its CSV line, and write the rest."""
        key = KEY_COLUMN[bf.kind]
        lo, hi = bf.period_ns()
        src = f"read_parquet({_sql_str(staged)}, file_row_number=true)"
        dup_join, problem = "", _row_problem(bf.kind)
        if others:  # rows another source file (the month's, a day's) already put in these partitions
            files = "[" + ", ".join(_sql_str(o) for o in others) + "]"
            dup_join = f"LEFT JOIN (SELECT DISTINCT {key} AS dk FROM read_parquet({files})) d ON d.dk = s.{key} "
            dup = "WHEN d.dk IS NOT NULL THEN 'duplicate of a row already imported from another file' "
            problem = problem.replace("CASE ", "CASE " + dup, 1)
        self.con.execute(
            f"CREATE OR REPLACE TEMP TABLE judged AS SELECT s.*, {problem} AS problem FROM ("
            f"SELECT *, max({key}) OVER (ORDER BY file_row_number ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) "
            f"AS prev, {int(self.now_ns)}::BIGINT AS now_ns, {lo}::BIGINT AS lo, {hi}::BIGINT AS hi FROM {src}) s "
            f"{dup_join}"
        )
        bad = self.con.execute(
            "SELECT file_row_number, problem FROM judged WHERE problem IS NOT NULL ORDER BY file_row_number"
        ).fetchall()
        if bad:
            lines = _lines_of_rows(csv_path, header, bad_lines, [int(r[0]) for r in bad])
            for (_, problem), line in zip(bad, lines, strict=True):
                res.reject(line, problem, _reason_kind(problem))
        clean = staged.with_name("clean.parquet")
        self.con.execute(
            "COPY (SELECT * EXCLUDE (file_row_number, prev, now_ns, lo, hi, problem) FROM judged "
            f"WHERE problem IS NULL ORDER BY file_row_number) TO {_sql_str(clean)} "
            "(FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 1)"
        )
        n = self.con.execute("SELECT count(*) FROM judged WHERE problem IS NULL").fetchone()[0]
        self.con.execute("DROP TABLE judged")
        return clean, int(n)

    def _place(self, bf: BinanceFile, staged: Path, res: FileResult) -> None:
        """Move the checked rows into their partition(s); a monthly trades file is split by day."""
        base = self._symbol_dir(bf)
        for old in base.glob(f"*/{bf.stem}_*.parquet") if base.exists() else []:
            old.unlink()  # a re-import replaces the file's earlier output
        if bf.kind == "klines" or bf.day:
            part = f"month={bf.year:04d}-{bf.month:02d}" if bf.kind == "klines" else f"date={bf.first_day()}"
            target = base / part / f"{bf.stem}_0.parquet"
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staged, target)
            res.outputs.append(str(target))
            return
        t = TIME_COLUMNS[bf.kind][0]
        base.mkdir(parents=True, exist_ok=True)
        self.con.execute(
            f"COPY (SELECT *, strftime(make_timestamptz({t} // 1000), '%Y-%m-%d') AS date "
            f"FROM read_parquet({_sql_str(staged)})) TO {_sql_str(base)} (FORMAT parquet, COMPRESSION zstd, "
            f"PARTITION_BY (date), FILENAME_PATTERN '{bf.stem}_{{i}}', OVERWRITE_OR_IGNORE true)"
        )
        res.outputs += [str(p) for p in sorted(base.glob(f"*/{bf.stem}_*.parquet"))]


def _lines_of_rows(csv_path: Path, header: bool, reject_lines: set[int], rows: list[int]) -> list[int]:
    """CSV line numbers (1-based) of accepted data rows ``rows`` (0-based, ascending): skip header, blank
    lines and the lines the parser rejected."""
    out: list[int] = []
    want = iter(rows)
    target = next(want, None)
    k = -1
    with csv_path.open("rb") as fh:
        for ln, raw in enumerate(fh, start=1):
            if target is None:
                break
            if (header and ln == 1) or not raw.strip() or ln in reject_lines:
                continue
            k += 1
            while target is not None and k == target:
                out.append(ln)
                target = next(want, None)
    while len(out) < len(rows):
        out.append(0)  # not found (the file changed under us): reported without a line
    return out


def _reason_kind(problem: str) -> str:
    """The reason without its numbers, to count rejections by kind."""
    for kind in ("duplicate or out of order", "duplicate of a row", "in the future", "outside the file's period"):
        if kind in problem:
            return kind
    return problem


def expand_sources(sources: Iterable[str]) -> list[str]:
    """Paths and URLs, with URL-list files (``*.txt`` / ``*.list``, one URL or path a line) opened."""
    out: list[str] = []
    for s in sources:
        p = Path(s)
        if not is_url(s) and p.is_file() and p.suffix in (".txt", ".list", ".urls"):
            out += read_url_list(p)
        else:
            out.append(s)
    return out


def import_market_data(
    sources: Iterable[str],
    layout: Layout,
    market: str | None = None,
    now_ns: int | None = None,
    on_fetched: Callable[[Fetched], None] | None = None,
    on_file: Progress | None = None,
    on_plan: Callable[[list[Path]], None] | None = None,
) -> Report:
    """``oms data import``: fetch URLs, turn ``datasets/market`` files into kline CSVs, import all to Parquet.

    ``on_plan`` gets the local files about to be imported (for a progress total), ``on_file`` each file done.
    """
    report = Report()
    fetched = asyncio.run(fetch_all(expand_sources(sources), layout.market_raw, on_done=on_fetched))
    locals_: list[Path] = []
    for f in fetched:
        if f.path is None:
            res = FileResult(f.source, "?")
            res.reject(None, f.error or "download failed", "download failed")
            report.files.append(res)
            continue
        if not f.path.exists():
            res = FileResult(f.source, "?")
            res.reject(None, "no such file or folder", "missing")
            report.files.append(res)
            continue
        locals_.append(f.path)
    files: list[Path] = []
    dataset_dirs: set[Path] = set()
    for p in find_files(locals_):
        if is_dataset_file(p):
            dataset_dirs.add(p.parent)
        else:
            files.append(p)
    for d in sorted(dataset_dirs):
        rep = import_datasets(d, layout.root / "market")
        files += rep.files
    if on_plan:
        on_plan(files)
    with MarketImporter(layout, now_ns) as imp:
        for p in files:
            report.files.append(imp.import_file(p, market))
            if on_file:
                on_file(p, p.stat().st_size)
    return report
