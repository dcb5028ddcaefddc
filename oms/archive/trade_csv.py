"""A compiled reader of Binance's archive CSVs: blocks of raw bytes straight into int64 columns.

Binance's files are plain: no quotes, no spaces, ``,`` between fields, ``\\n`` (or ``\\r\\n``) after each row,
integers, decimals like ``65000.10000000``, ``True``/``False``. ``parse_block`` (Numba, no GIL) reads one
block of whole lines into an int64 array per column by the column's kind:

* ``INT``: an integer (a sign allowed), at most 18 digits;
* ``FIXED``: a plain decimal (digits, at most one point, at most 8 decimals, at most 10 integer digits) as
  int64 at scale 10**-8, as the archive stores ``DECIMAL(18,8)``/``DECIMAL(38,8)`` values;
* ``BOOL``: ``True``/``False`` in any case, as 1/0;
* ``SKIP``: any text up to the next separator (klines' ``ignore``), not stored.

It stops at the first field it cannot read (an empty field, a stray character, a missing or extra column) and
says which row: the importer's careful path then finds and reports every bad row with its line, so nothing is
judged here but "plain or not". ``iter_blocks`` cuts a byte stream (a file, or a zip member inflated by
``open_member`` with ISA-L, its CRC-32 checked at the end) into blocks of ``BLOCK_BYTES`` ending on a newline.
The layouts (Spot and USD-M trades, aggTrades, klines; with or without a header; ms or µs timestamps) come
from ``binance_files.sniff_head``: this module only needs each column's kind.
"""

from __future__ import annotations

import struct
import zipfile
from collections.abc import Iterator
from concurrent.futures import Executor
from pathlib import Path
from typing import BinaryIO

import numpy as np
from isal import isal_zlib
from numba import njit

from oms.archive.binance_files import CSV_TYPES, zip_member

INT, FIXED, BOOL, SKIP = 0, 1, 2, 3
BLOCK_BYTES = 16 << 20
DECIMALS = 8
INT_DIGITS = 10  # 10**10 * 10**8 fits int64
POW10 = np.array([10**k for k in range(DECIMALS + 1)], dtype=np.int64)
KIND_OF_TYPE = {"BIGINT": INT, "DECIMAL(18,8)": FIXED, "DECIMAL(38,8)": FIXED, "BOOLEAN": BOOL, "VARCHAR": SKIP}


def column_kinds(columns: tuple[str, ...]) -> np.ndarray:
    """Each CSV column's kind for ``parse_block``, from the archive's column types."""
    return np.array([KIND_OF_TYPE[CSV_TYPES[c]] for c in columns], dtype=np.int64)


@njit(cache=True, nogil=True)
def count_lines(buf):
    """Newlines in ``buf``, plus one (room for a last line without its newline)."""
    n = 1
    for x in buf:
        n += x == 10
    return n


@njit(cache=True, nogil=True)
def parse_block(buf, start, kinds, out):  # noqa: C901 - one flat loop, everything inline: about 1 GB/s a core
    """Rows of ``buf[start:]`` (whole lines; the last may lack its newline) into ``out[column, row]``.

    Returns ``(rows, bad, column)``: the rows read, and -1 when every line was read, else the index (from 0
    in this block) of the first row that is not plain and the column whose field is not (-1: a column
    missing or one too many). ``out`` must have room for every line."""
    n = buf.shape[0]
    last = kinds.shape[0] - 1
    cap = out.shape[1]
    i = start
    r = 0
    while i < n:
        if r >= cap:
            return r, r, -1
        for c in range(last + 1):
            k = kinds[c]
            v = 0
            ch = buf[i] if i < n else 10
            if k <= 1:  # INT or FIXED
                neg = ch == 45 and k == 0
                if neg:
                    i += 1
                d0 = i
                while i < n:
                    d = buf[i] - 48
                    if d > 9 or d < 0:
                        break
                    v = v * 10 + d
                    i += 1
                digits = i - d0
                if k == 1:
                    f = 0
                    if i < n and buf[i] == 46:
                        i += 1
                        f0 = i
                        while i < n:
                            d = buf[i] - 48
                            if d > 9 or d < 0:
                                break
                            v = v * 10 + d
                            i += 1
                        f = i - f0
                    if digits + f == 0 or digits > INT_DIGITS or f > DECIMALS:
                        return r, r, c
                    v *= POW10[DECIMALS - f]
                else:
                    if digits == 0 or digits > 18:
                        return r, r, c
                    if neg:
                        v = -v
            elif k == 2:  # BOOL
                ch = ch | 32
                if (
                    ch == 116
                    and i + 4 <= n
                    and (buf[i + 1] | 32) == 114
                    and (buf[i + 2] | 32) == 117
                    and (buf[i + 3] | 32) == 101
                ):
                    v = 1
                    i += 4
                elif (
                    ch == 102
                    and i + 5 <= n
                    and (buf[i + 1] | 32) == 97
                    and (buf[i + 2] | 32) == 108
                    and (buf[i + 3] | 32) == 115
                    and (buf[i + 4] | 32) == 101
                ):
                    i += 5
                else:
                    return r, r, c
            else:  # SKIP
                while i < n and buf[i] != 44 and buf[i] != 10 and buf[i] != 13:
                    i += 1
            out[c, r] = v
            if c < last:
                if i >= n or buf[i] != 44:  # a stray character after the field, or a column missing
                    return r, r, c if i < n and buf[i] != 10 and buf[i] != 13 else -1
                i += 1
        if i < n and buf[i] == 13:
            i += 1
        if i < n:
            if buf[i] != 10:  # one column too many, or a stray character after the last field
                return r, r, -1 if buf[i] == 44 else last
            i += 1
        r += 1
    return r, -1, -1


def parse(
    data: bytes | bytearray | memoryview, kinds: np.ndarray, skip_header: bool, pool: Executor | None = None
) -> tuple[np.ndarray, int, int]:
    """One block of whole lines: (the columns, ``(len(kinds), rows)``; the first bad row of the block or -1;
    its bad column or -1).
    With ``pool``, the block is cut at newlines into one part per worker, parsed side by side (no GIL)."""
    buf = np.frombuffer(data, dtype=np.uint8)
    start = 0
    if skip_header:
        nl = bytes(buf[:65536]).find(b"\n")
        start = nl + 1 if nl >= 0 else len(buf)
    parts = getattr(pool, "_max_workers", 1) if pool is not None else 1
    cuts = [start]
    for k in range(1, parts):
        at = start + (len(buf) - start) * k // parts
        nl = bytes(buf[at : at + (1 << 20)]).find(b"\n")
        cuts.append(max(at + nl + 1 if nl >= 0 else len(buf), cuts[-1]))
    cuts.append(len(buf))
    pieces = [buf[a:b] for a, b in zip(cuts[:-1], cuts[1:], strict=True)]
    lines = [count_lines(p) for p in pieces]
    out = np.empty((len(kinds), sum(lines)), dtype=np.int64)
    offs = np.cumsum([0, *lines])
    views = [out[:, offs[k] : offs[k + 1]] for k in range(len(pieces))]
    if pool is None or len(pieces) == 1:
        results = [parse_block(p, 0, kinds, v) for p, v in zip(pieces, views, strict=True)]
    else:
        futures = [pool.submit(parse_block, p, 0, kinds, v) for p, v in zip(pieces, views, strict=True)]
        results = [f.result() for f in futures]
    done = 0
    for k, (rows, bad, col) in enumerate(results):
        if bad >= 0:
            return out[:, :0], done + bad, col
        if k and rows:  # close the gap a part's unused room (a last line without newline) left
            out[:, done : done + rows] = views[k][:, :rows]
        done += rows
    return out[:, :done], -1, -1


def iter_blocks(src: BinaryIO | Prefixed | ZipMember, block_bytes: int | None = None) -> Iterator[memoryview]:
    """``src``'s bytes in blocks of whole lines (about ``block_bytes``, default ``BLOCK_BYTES``, each; the last
    may lack its newline). The blocks are views of one buffer, valid until the next is asked for: a file is
    read into it (``readinto``), a stream's chunks copied in; the partial line at a block's end moves to the
    front for the next."""
    size = block_bytes or BLOCK_BYTES
    buf = bytearray(2 * size)
    have = 0  # bytes of an unfinished line at the front
    readinto = getattr(src, "readinto", None)
    while True:
        if have + size > len(buf):  # a line longer than a block: more room
            buf = buf[:have] + bytearray(2 * size)
        view = memoryview(buf)
        if readinto is not None:
            got = readinto(view[have : have + size])
        else:
            chunk = src.read(size)
            got = len(chunk)
            view[have : have + got] = chunk
        if not got:
            if have:
                yield view[:have]
            return
        end = have + got
        cut = buf.rfind(b"\n", have, end) + 1
        if cut == 0:
            have = end
            continue
        yield view[:cut]
        tail = end - cut
        view[:tail] = view[cut:end]
        have = tail
        view.release()


class Prefixed:
    """``head`` (bytes already read from ``src``, to sniff the layout) and then the rest of ``src``."""

    def __init__(self, head: bytes, src: BinaryIO | ZipMember):
        self.head, self.src = head, src
        if hasattr(src, "readinto"):  # a file: read into the caller's buffer, no copy
            self.readinto = self._readinto

    def _readinto(self, into: memoryview) -> int:
        if self.head:
            n = min(len(into), len(self.head))
            into[:n] = self.head[:n]
            self.head = self.head[n:]
            return n
        return self.src.readinto(into)

    def read(self, n: int) -> bytes:
        if self.head:
            out, self.head = self.head, b""
            return out
        return self.src.read(n)


class ZipMember:
    """The one CSV of a Binance zip as a readable stream, inflated with ISA-L (raw deflate, or stored), its
    CRC-32 and size checked against the zip's directory when the end is reached (``zipfile.BadZipFile``)."""

    def __init__(self, zip_path: Path):
        with zipfile.ZipFile(zip_path) as zf:
            info = zf.getinfo(zip_member(zf))
        if info.compress_type not in (zipfile.ZIP_DEFLATED, zipfile.ZIP_STORED) or info.flag_bits & 0x1:
            raise zipfile.BadZipFile(f"{info.filename}: compression {info.compress_type} not supported")
        self.info = info
        self.fh = zip_path.open("rb")
        self.fh.seek(info.header_offset)
        local = self.fh.read(30)
        if len(local) != 30 or local[:4] != b"PK\x03\x04":
            raise zipfile.BadZipFile(f"{info.filename}: bad local file header")
        name_len, extra_len = struct.unpack("<HH", local[26:30])
        self.fh.seek(name_len + extra_len, 1)
        self.left = info.compress_size
        self.inflate = isal_zlib.decompressobj(-15) if info.compress_type == zipfile.ZIP_DEFLATED else None
        self.crc = 0
        self.size = 0
        self.done = False

    def read(self, n: int) -> bytes:
        """About ``n`` inflated bytes (fewer, or more, as the deflate stream gives them); b"" at the end."""
        while not self.done:
            if self.left:
                raw = self.fh.read(min(max(n // 4, 1 << 20), self.left))
                if not raw:
                    raise zipfile.BadZipFile(f"{self.info.filename}: truncated")
                self.left -= len(raw)
                out = self.inflate.decompress(raw) if self.inflate is not None else raw
            else:
                out = self.inflate.flush() if self.inflate is not None else b""
                self.done = True
            if out:
                self.crc = isal_zlib.crc32(out, self.crc)
                self.size += len(out)
            if self.done:
                self._check()
            if out:
                return out
        return b""

    def _check(self) -> None:
        if self.size != self.info.file_size or self.crc != self.info.CRC:
            raise zipfile.BadZipFile(f"{self.info.filename}: CRC-32 or size differs from the zip's directory")

    def close(self) -> None:
        self.fh.close()

    def __enter__(self) -> ZipMember:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def extract_member(zip_path: Path, into: Path) -> Path:
    """The zip's one CSV written into ``into`` (inflated with ISA-L, CRC checked), for the careful path."""
    with ZipMember(zip_path) as src:
        target = into / Path(src.info.filename).name
        with target.open("wb") as dst:
            while chunk := src.read(4 << 20):
                dst.write(chunk)
    return target
