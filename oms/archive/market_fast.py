"""The fast path of the market-data import: trade files (aggTrades, trades) streamed from CSV to Parquet.

A Binance trade file is a few million rows that are almost always clean, so the usual case should cost what
parsing and writing cost, nothing more: pyarrow's CSV reader parses it (on every core; a file over 512 MB is
streamed in blocks; a zip is extracted first, in 1 MB reads: parsing from the zip stream itself is several
times slower), the decimal columns as text that a compiled loop turns into int64 fixed point (pyarrow's own
decimal conversion was 60% of the read; anything but a plain ``123.45678901`` goes to the careful path), each
block is checked with NumPy (ids strictly increasing, also across blocks; times inside the file's day or
month and not in the future; prices and quantities positive; no empty or unparsable field), timestamps are
scaled to ns, and a second thread writes the block with pyarrow's Parquet writer (zstd level 1; ids and times
delta-encoded, which is smaller and cheaper than dictionaries for increasing integers; 18-digit decimals
stored as int64, as DuckDB writes them) while the next block parses.

Whatever the fast path cannot judge alone raises ``NeedsCarefulPath`` before anything is put in place (its
partial files are removed): an unparsable row, a NULL, a row that breaks a check, another source file's rows
in the same partitions. The caller then runs the careful path (``oms.archive.market_import``), which finds
each bad row, reports it with its line and leaves it out.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from numba import njit

from oms.archive.binance_files import AMOUNT, CSV_TYPES, KEY_COLUMN, PRICE, TIME_COLUMNS, BinanceFile, CsvShape
from oms.archive.schema import MARKET_COLUMNS

FAST_KINDS = ("aggTrades", "trades")
BLOCK_BYTES = 32 << 20  # one parsed block (~400k trade rows) of a streamed file
WHOLE_BYTES = 512 << 20  # files up to this size are parsed at once, on every core (a daily file, mostly)
BATCH_ROWS = 1 << 20  # rows per checked and written block (a Parquet row group)
DAY_NS = 86_400 * 10**9
ARROW_TYPES = {"BIGINT": pa.int64(), PRICE: pa.decimal128(18, 8), AMOUNT: pa.decimal128(38, 8), "BOOLEAN": pa.bool_()}
POSITIVE = {"aggTrades": ("price", "quantity"), "trades": ("price", "qty")}


DECIMAL_SCALE = 8  # every Binance decimal column is stored with 8 decimals (PRICE, AMOUNT)
INT_DIGITS = 10  # integer digits the compiled decimal parse takes (10**10 * 10**8 fits int64); more: careful path


class NeedsCarefulPath(Exception):
    """The file has something the fast path does not judge alone (the message says what)."""


@njit(cache=True, nogil=True)
def _parse_fixed(offsets, data, out):
    """Plain decimals (``123.45678901``: digits, at most one point, at most 8 decimals, at most 10 integer
    digits) as int64 at scale 10**-8 into ``out``; returns -1, or the index of the first value that is not
    one (a sign, an exponent, a space, more digits: the careful path judges those)."""
    for i in range(out.shape[0]):
        a, z = offsets[i], offsets[i + 1]
        v = 0
        int_digits = 0
        frac = -1  # decimals seen after the point; -1: no point yet
        for j in range(a, z):
            c = data[j]
            if c >= 48 and c <= 57:
                v = v * 10 + (c - 48)
                if frac < 0:
                    int_digits += 1
                else:
                    frac += 1
            elif c == 46 and frac < 0:
                frac = 0
            else:
                return i
        if int_digits + max(frac, 0) == 0 or int_digits > INT_DIGITS or frac > DECIMAL_SCALE:
            return i
        for _ in range(DECIMAL_SCALE - max(frac, 0)):
            v *= 10
        out[i] = v
    return -1


def _fixed_values(arr: pa.Array) -> np.ndarray | None:
    """A binary column of plain decimals as int64 at scale 10**-8, or None when a value is not plain."""
    n = len(arr)
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int32)[arr.offset : arr.offset + n + 1]
    data_buf = arr.buffers()[2]
    data = np.frombuffer(data_buf, dtype=np.uint8) if data_buf is not None else np.zeros(0, dtype=np.uint8)
    out = np.empty(n, dtype=np.int64)
    return out if _parse_fixed(offsets, data, out) < 0 else None


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

    def check(self, batch: pa.RecordBatch, fixed: dict[str, np.ndarray]) -> np.ndarray:
        """The block's timestamps in ns; raises NeedsCarefulPath naming the first problem found. ``fixed``: the
        decimal columns' values (int64 at scale 10**-8), parsed from the block's text."""
        for name, col in zip(batch.schema.names, batch.columns, strict=True):
            if col.null_count:
                raise NeedsCarefulPath(f"empty values in column {name}")
        key = batch.column(self.key).to_numpy()
        if len(key) > 1 and not bool(np.all(key[1:] > key[:-1])):
            raise NeedsCarefulPath(f"{self.key} not strictly increasing")
        if self.last_key is not None and len(key) and key[0] <= self.last_key:
            raise NeedsCarefulPath(f"{self.key} not strictly increasing across blocks")
        if len(key):
            self.last_key = int(key[-1])
        t = batch.column(self.time).to_numpy()
        if len(t) and (int(t.min()) < self.lo or int(t.max()) >= self.hi):
            raise NeedsCarefulPath("a time outside the file's period")
        if len(t) and int(t.max()) > self.now:
            raise NeedsCarefulPath("a time in the future")
        for name in POSITIVE[self.kind]:
            if len(fixed[name]) and int(fixed[name].min()) <= 0:
                raise NeedsCarefulPath(f"a {name} that is not positive")
        return t * self.scale


def _batches(csv_path: Path, options: dict) -> Iterator[pa.RecordBatch]:
    """The CSV's rows in blocks: a file up to ``WHOLE_BYTES`` parsed at once on every core (pyarrow's threaded
    reader), a larger one streamed block by block (memory stays a few blocks whatever the file's size)."""
    if csv_path.stat().st_size <= WHOLE_BYTES:
        yield from pacsv.read_csv(csv_path, **options).to_batches(max_chunksize=BATCH_ROWS)
        return
    with csv_path.open("rb") as fh:
        yield from pacsv.open_csv(fh, **options)


def import_fast(bf: BinanceFile, csv_path: Path, shape: CsvShape, now_ns: int, base: Path) -> tuple[int, list[str]]:
    """Import one trade file (its CSV at ``csv_path``) into ``base`` (the symbol's folder): (rows, the Parquet
    files written). Raises NeedsCarefulPath, leaving nothing behind."""
    if bf.kind not in FAST_KINDS:
        raise NeedsCarefulPath(f"{bf.kind} files take the careful path")
    schema = _schema(bf.table)
    read_columns = list(shape.columns)
    types = {c: ARROW_TYPES[CSV_TYPES[c]] for c in read_columns}
    # decimals are read as text and parsed by _parse_fixed: pyarrow's decimal conversion was 60% of the read
    decimals = {c: t for c, t in types.items() if pa.types.is_decimal(t)}
    if any(t.scale != DECIMAL_SCALE for t in decimals.values()):
        raise NeedsCarefulPath("a decimal column not at scale 8")
    types.update(dict.fromkeys(decimals, pa.binary()))
    checker = _Checker(bf, shape, now_ns)
    outputs = _Outputs(base, bf.stem, schema)
    rows = 0
    pending: Future | None = None
    try:
        options = {
            "read_options": pacsv.ReadOptions(
                column_names=read_columns, skip_rows=1 if shape.header else 0, block_size=BLOCK_BYTES
            ),
            "parse_options": pacsv.ParseOptions(delimiter=",", quote_char=False, escape_char=False),
            "convert_options": pacsv.ConvertOptions(column_types=types, strings_can_be_null=False),
        }
        with ThreadPoolExecutor(max_workers=1) as pool:
            for batch in _batches(csv_path, options):
                if batch.num_rows == 0:
                    continue
                fixed = {}
                for name in decimals:
                    values = _fixed_values(batch.column(name))
                    if values is None:
                        raise NeedsCarefulPath(f"a {name} that is not a plain decimal with at most 8 decimals")
                    fixed[name] = values
                t_ns = checker.check(batch, fixed)
                cols = {name: batch.column(name) for name in read_columns}
                cols.update({name: _decimal_array(fixed[name], t) for name, t in decimals.items()})
                cols[checker.time] = pa.array(t_ns)
                if "is_best_match" not in cols:
                    cols["is_best_match"] = pa.nulls(batch.num_rows, pa.bool_())
                out = pa.RecordBatch.from_arrays([cols[f.name] for f in schema], schema=schema)
                rows += out.num_rows
                if pending is not None:
                    pending.result()
                pending = pool.submit(_write_days, outputs, out, t_ns)
            if pending is not None:
                pending.result()
    except (pa.ArrowInvalid, pa.ArrowTypeError, ValueError) as exc:
        outputs.discard()
        raise NeedsCarefulPath(f"a row pyarrow cannot parse ({str(exc).splitlines()[0][:200]})") from None
    except BaseException:
        outputs.discard()
        raise
    return rows, outputs.commit() if rows else []


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
