"""The fast path of the market-data import: trade files (aggTrades, trades) streamed from CSV to Parquet.

A Binance trade file is a few million rows that are almost always clean, so the usual case should cost what
parsing and writing cost, nothing more: ``oms.archive.trade_csv`` (compiled, no GIL) parses 16 MB blocks of
the raw bytes straight into int64 columns (decimals at scale 10**-8; each block in parts side by side), read
from the file or from its zip member as ISA-L inflates it (nothing extracted to disk); anything but a plain
field (``123.45678901``, an integer, ``True``) goes to the careful path. Each block is checked with NumPy
(ids strictly increasing, also across blocks; times inside the file's day or month and not in the future;
prices and quantities positive), timestamps are scaled to ns, and a second thread writes the block with
pyarrow's Parquet writer (zstd level 1; ids and times delta-encoded, which is smaller and cheaper than
dictionaries for increasing integers; 18-digit decimals stored as int64, as DuckDB writes them) while the
next block parses.

Whatever the fast path cannot judge alone raises ``NeedsCarefulPath`` before anything is put in place (its
partial files are removed): an unparsable row, an empty field, a row that breaks a check, another source file's rows
in the same partitions. The caller then runs the careful path (``oms.archive.market_import``), which finds
each bad row, reports it with its line and leaves it out.
"""

from __future__ import annotations

import os
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from oms.archive import trade_csv
from oms.archive.binance_files import AMOUNT, CSV_TYPES, KEY_COLUMN, PRICE, TIME_COLUMNS, BinanceFile, CsvShape
from oms.archive.schema import MARKET_COLUMNS

FAST_KINDS = ("aggTrades", "trades")
PARSE_THREADS = max(1, min(4, os.cpu_count() or 1))  # each block is parsed in this many parts side by side
DAY_NS = 86_400 * 10**9
ARROW_TYPES = {"BIGINT": pa.int64(), PRICE: pa.decimal128(18, 8), AMOUNT: pa.decimal128(38, 8), "BOOLEAN": pa.bool_()}
POSITIVE = {"aggTrades": ("price", "quantity"), "trades": ("price", "qty")}


DECIMAL_SCALE = 8  # every Binance decimal column is stored with 8 decimals (PRICE, AMOUNT)


class NeedsCarefulPath(Exception):
    """The file has something the fast path does not judge alone (the message says what)."""


def _decimal_array(values: np.ndarray, type_: pa.DataType) -> pa.Array:
    """int64 values at the type's scale as a decimal128 array (the 128-bit words built in NumPy)."""
    words = np.empty((len(values), 2), dtype=np.int64)
    words[:, 0] = values
    words[:, 1] = values >> 63
    return pa.Array.from_buffers(type_, len(values), [None, pa.py_buffer(words)])


def _schema(table: str) -> pa.Schema:
    return pa.schema([(c, ARROW_TYPES[t]) for c, t in MARKET_COLUMNS[table].items()])


def _writer(path: Path, schema: pa.Schema) -> pq.ParquetWriter:
    ints = [f.name for f in schema if pa.types.is_int64(f.type)]
    return pq.ParquetWriter(
        path,
        schema,
        compression="zstd",
        compression_level=1,
        use_dictionary=False,
        column_encoding=dict.fromkeys(ints, "DELTA_BINARY_PACKED"),
        store_decimal_as_integer=True,
    )


class _Outputs:
    """The Parquet files of one source file, per day partition, written under temporary names."""

    def __init__(self, base: Path, stem: str, schema: pa.Schema):
        self.base, self.stem, self.schema = base, stem, schema
        self.writers: dict[int, tuple[pq.ParquetWriter, Path]] = {}

    def final(self, day: int) -> Path:
        d = datetime.fromtimestamp(day * 86_400, UTC).date()
        return self.base / f"date={d}" / f"{self.stem}_0.parquet"

    def write(self, day: int, batch: pa.RecordBatch) -> None:
        if day not in self.writers:
            final = self.final(day)
            final.parent.mkdir(parents=True, exist_ok=True)
            tmp = final.with_name(final.name + ".tmp")  # not matched by the views' *.parquet globs
            self.writers[day] = (_writer(tmp, self.schema), tmp)
        self.writers[day][0].write_batch(batch)

    def close(self) -> None:
        for w, _ in self.writers.values():
            w.close()

    def discard(self) -> None:
        self.close()
        for _, tmp in self.writers.values():
            tmp.unlink(missing_ok=True)

    def commit(self) -> list[str]:
        """Replace this source file's earlier output (a re-import) with the new files."""
        self.close()
        for old in self.base.glob(f"*/{self.stem}_*.parquet") if self.base.exists() else []:
            old.unlink()
        out = []
        for day, (_, tmp) in sorted(self.writers.items()):
            final = self.final(day)
            os.replace(tmp, final)
            out.append(str(final))
        return out


class _Checker:
    """The checks of one file, block by block (the key's order carries across blocks)."""

    def __init__(self, bf: BinanceFile, shape: CsvShape, now_ns: int):
        self.kind = bf.kind
        self.scale = shape.time_scale
        lo, hi = bf.period_ns()
        # a file's period starts and ends on whole seconds, so these bounds on raw timestamps are exact
        self.lo, self.hi, self.now = lo // self.scale, hi // self.scale, now_ns // self.scale
        self.key, self.time = KEY_COLUMN[bf.kind], TIME_COLUMNS[bf.kind][0]
        self.last_key: int | None = None

    def check(self, cols: dict[str, np.ndarray]) -> np.ndarray:
        """The block's timestamps in ns; raises NeedsCarefulPath naming the first problem found. ``cols``: the
        block's columns as int64 (decimals at scale 10**-8), as ``trade_csv`` parsed them."""
        key = cols[self.key]
        if len(key) > 1 and not bool(np.all(key[1:] > key[:-1])):
            raise NeedsCarefulPath(f"{self.key} not strictly increasing")
        if self.last_key is not None and len(key) and key[0] <= self.last_key:
            raise NeedsCarefulPath(f"{self.key} not strictly increasing across blocks")
        if len(key):
            self.last_key = int(key[-1])
        t = cols[self.time]
        if len(t) and (int(t.min()) < self.lo or int(t.max()) >= self.hi):
            raise NeedsCarefulPath("a time outside the file's period")
        if len(t) and int(t.max()) > self.now:
            raise NeedsCarefulPath("a time in the future")
        for name in POSITIVE[self.kind]:
            if len(cols[name]) and int(cols[name].min()) <= 0:
                raise NeedsCarefulPath(f"a {name} that is not positive")
        return t * self.scale


def import_fast(bf: BinanceFile, src: BinaryIO, shape: CsvShape, now_ns: int, base: Path) -> tuple[int, list[str]]:
    """Import one trade file (its CSV bytes from ``src``: the file, or its zip member inflating) into ``base``
    (the symbol's folder): (rows, the Parquet files written). Raises NeedsCarefulPath, leaving nothing behind."""
    if bf.kind not in FAST_KINDS:
        raise NeedsCarefulPath(f"{bf.kind} files take the careful path")
    schema = _schema(bf.table)
    columns = list(shape.columns)
    kinds = trade_csv.column_kinds(shape.columns)
    decimals = {c: t for c in columns if pa.types.is_decimal(t := ARROW_TYPES[CSV_TYPES[c]])}
    if any(t.scale != DECIMAL_SCALE for t in decimals.values()):
        raise NeedsCarefulPath("a decimal column not at scale 8")
    checker = _Checker(bf, shape, now_ns)
    outputs = _Outputs(base, bf.stem, schema)
    rows = 0
    pending: Future | None = None
    try:
        with ThreadPoolExecutor(max_workers=1) as pool, ThreadPoolExecutor(max_workers=PARSE_THREADS) as parse_pool:
            first = True
            for block in trade_csv.iter_blocks(src):
                parsed, bad, col = trade_csv.parse(block, kinds, shape.header and first, parse_pool)
                first = False
                if bad >= 0:
                    raise NeedsCarefulPath(f"{_not_plain(columns, col)} (row {rows + bad + 1} of the data)")
                n = parsed.shape[1]
                if n == 0:
                    continue
                cols = {name: parsed[i] for i, name in enumerate(columns)}
                t_ns = checker.check(cols)
                arrays = {}
                for name in columns:
                    type_ = ARROW_TYPES[CSV_TYPES[name]]
                    if name in decimals:
                        arrays[name] = _decimal_array(cols[name], type_)
                    elif pa.types.is_boolean(type_):
                        arrays[name] = pa.array(cols[name].astype(np.bool_))
                    else:
                        arrays[name] = pa.array(cols[name])
                arrays[checker.time] = pa.array(t_ns)
                if "is_best_match" not in arrays:
                    arrays["is_best_match"] = pa.nulls(n, pa.bool_())
                out = pa.RecordBatch.from_arrays([arrays[f.name] for f in schema], schema=schema)
                rows += n
                if pending is not None:
                    pending.result()
                pending = pool.submit(_write_days, outputs, out, t_ns)
            if pending is not None:
                pending.result()
    except BaseException:
        outputs.discard()
        raise
    return rows, outputs.commit() if rows else []


def _not_plain(columns: list[str], col: int) -> str:
    if col < 0:
        return "a row whose columns are not plain comma-separated fields"
    what = {"BIGINT": "an integer", "BOOLEAN": "True or False"}.get(CSV_TYPES[columns[col]])
    return f"a {columns[col]} that is not {what or 'a plain decimal with at most 8 decimals'}"


def _write_days(outputs: _Outputs, batch: pa.RecordBatch, t_ns: np.ndarray) -> None:
    """Write a block into its day partition(s); a monthly file's block may span days."""
    days = t_ns // DAY_NS
    first = int(days[0])
    if bool(np.all(days == first)):  # a daily file, or a block inside one day of a monthly file
        outputs.write(first, batch)
        return
    order = np.argsort(days, kind="stable")
    sorted_days = days[order]
    cuts = np.flatnonzero(np.diff(sorted_days)) + 1
    for idx in np.split(order, cuts):
        outputs.write(int(days[idx[0]]), batch.take(pa.array(idx)))
