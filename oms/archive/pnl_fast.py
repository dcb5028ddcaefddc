"""The PnL report's heavy stage in one vectorised pass: FIFO realised PnL per fill and the per book-day sums,
exact in int64 fixed point, then DuckDB SQL for the rest (``oms.archive.pnl``'s daily and monthly views).

The SQL stages of ``oms.archive.pnl`` compute FIFO by window scans and joins over DECIMAL(38,12) (128-bit)
values: exact, but about 30 µs a fill. Here the same numbers come from one compiled walk per book (account,
symbol, position side) over its fills in time order, matching each sell against the oldest open buys (and
each buy against the oldest open sells): FIFO, as the SQL's segments.

Where the time goes, and why the pass reads what it reads (measured on 6 M fills): the scan of the three
DECIMAL columns dominates (it is what DuckDB's own group-by of the same fills costs), so everything else
stays off the fill rows:

* one DuckDB scan of the fills, as seven narrow columns (the hash of (account, symbol, position side,
  commission asset), date, time, side, price, quantity, commission), streamed in record batches with
  insertion order off; no strings cross into Python;
* one compiled ingest per batch reads the 128-bit decimals in place from the Arrow buffers (no
  ``combine_chunks``), checks each fits in int64, tracks the fewest decimals every value has, looks the
  hash up in a small open-addressing table (inserting a hash seen for the first time, with its day), and
  drops rows with no positive quantity;
* the distinct tuples behind those hashes come from a second, small query that reads only the days where a
  hash first appeared (hive partition pruning: one day's file of a month, usually); the quote-asset fee
  rule (``LIKE``) is evaluated there, once per tuple instead of once per fill (a separate full scan of the
  four string columns cost a quarter of the report);
* one compiled FIFO pass gives the per book-day sums, and only those few thousand rows go back to DuckDB.

Two tuples sharing a 64-bit hash are refused (the SQL stages then run) when both appear on those days; one
seen only on other days would go unnoticed (about n**2 / 2**65 for n tuples: 10**-13 for a thousand books).

Exactness: DECIMAL(38,12) arrives as 128-bit integers; prices, quantities and commissions are rescaled to the
fewest decimals every value has, and used only when every product and running sum fits in int64 and the
scales add up to at most 12 decimals (what the SQL rounds to). Otherwise, when a value is NULL, or when two
fills of a book share a timestamp (the SQL orders those by trade id), ``materialize_fast`` returns False and
the caller uses the SQL stages, which give the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import numpy as np
import pyarrow as pa
from numba import njit

from oms.archive.pnl import _QUOTE_FEE, book_daily_sql

INT64_SAFE = 2**62  # bound on any product or running sum (a margin under 2**63)
BATCH_ROWS = 1 << 17  # 9 MB Arrow batches: the allocator reuses their memory (1 M-row ones were fresh pages each)

_KEY = "hash(account, symbol, position_side, commission_asset)"
# the distinct (book, commission asset) tuples of some days: their fee kind is decided here, once per tuple
_KEYS = f"""
SELECT key, hash(account, symbol, position_side) AS book, account, symbol, position_side,
       coalesce({_QUOTE_FEE}, false) AS quote_fee, coalesce(NOT ({_QUOTE_FEE}), false) AS other_fee
FROM (SELECT DISTINCT {_KEY} AS key, account, symbol, position_side, commission_asset
      FROM trades WHERE date IN ({{days}}))
"""
_READ = (
    f"SELECT {_KEY} AS key, date, event_ns, CAST(side = 'buy' AS TINYINT) AS buy, price, qty, commission FROM trades"
)

# each book-day's last fill; across books at the same nanosecond the higher price, as ``pnl._MARKS`` (a
# book's own fills never share a nanosecond here), so both give the same mark whatever the scan order
_MARKS_FAST = (
    "SELECT k.symbol, d.date, arg_max(d.last_price, (d.last_ns, d.last_price)) AS mark "
    "FROM pnl_book_day d JOIN pnl_books k USING (book) GROUP BY ALL"
)

# the ingested columns: key index, day, time, buy, price, qty, fee (scale 10**-12)
_DTYPES = (np.int32, np.int32, np.int64, np.int8, np.int64, np.int64, np.int64)
# ingest return codes
_OK, _BEYOND_INT64, _GROW = 0, 1, 2
_FIRST_SLOTS = 1024  # the key table's first size (slots; grown x4 when half full)


class NotExact(Exception):
    """The int64 fixed-point pass cannot reproduce the DECIMAL result exactly for this data."""


class DataChanged(Exception):
    """The two queries disagree on the (book, fee asset) tuples: the archive changed between them."""


def _buffer(arr: pa.Array, dtype: type, width: int = 1) -> np.ndarray:
    """The values of a primitive Arrow array without a copy (``width`` values per row); NULLs refused."""
    if arr.null_count:
        raise NotExact(f"NULL values in a {arr.type} column")
    flat = np.frombuffer(arr.buffers()[1], dtype=dtype)
    return flat[width * arr.offset : width * (arr.offset + len(arr))]


def _decimal_words(arr: pa.Array) -> np.ndarray:
    """A DECIMAL(38,12) array's 128-bit values as int64 words (low, high, low, high, ...), in place."""
    if not pa.types.is_decimal128(arr.type) or arr.type.scale != 12:
        raise NotExact(f"expected DECIMAL(38,12), got {arr.type}")
    return _buffer(arr, np.int64, 2)


@njit(cache=True, nogil=True)
def _lookup_table(keys, size):
    """An open-addressing table (``size`` slots, a power of two; linear probing) of the distinct uint64
    ``keys`` -> their index; ``-1`` marks a free slot. Returns (slot keys, slot values)."""
    sk = np.zeros(size, dtype=np.uint64)
    sv = np.full(size, -1, dtype=np.int64)
    mask = np.uint64(size - 1)
    for i in range(keys.shape[0]):
        h = keys[i] & mask
        while sv[h] >= 0:
            h = (h + np.uint64(1)) & mask
        sk[h] = keys[i]
        sv[h] = i
    return sk, sv


@njit(cache=True, inline="always")
def _pow10_divides(v, j):
    """``10**j`` divides ``v`` (0 <= j <= 12), with constant divisors (multiply-and-shift, not a division)."""
    if j == 12:
        return v % 1000000000000 == 0
    if j == 11:
        return v % 100000000000 == 0
    if j == 10:
        return v % 10000000000 == 0
    if j == 9:
        return v % 1000000000 == 0
    if j == 8:
        return v % 100000000 == 0
    if j == 7:
        return v % 10000000 == 0
    if j == 6:
        return v % 1000000 == 0
    if j == 5:
        return v % 100000 == 0
    if j == 4:
        return v % 10000 == 0
    if j == 3:
        return v % 1000 == 0
    if j == 2:
        return v % 100 == 0
    if j == 1:
        return v % 10 == 0
    return True


@njit(cache=True, nogil=True)
def _ingest(key, date, ns, buy, pw, qw, fw, sk, sv, seen, first_day, start, at, out_key, out_day, out_t, out_buy,
            out_p, out_q, out_f, zeros):  # fmt: skip
    """Copy one batch's rows from ``start`` with a positive quantity into the ``out_*`` arrays from position
    ``at``, the decimals' low words checked to hold the whole value; a key hash seen for the first time gets
    the next index (``seen[0]`` of them so far) and its row's day in ``first_day``; ``zeros`` (price, qty, fee)
    shrinks to the most trailing decimal zeros (of 12) every value seen has. Returns (code, the next free
    position, the next row): ``_GROW`` when the key table is half full (the caller grows it and goes on)."""
    mask = np.uint64(sk.shape[0] - 1)
    n = at
    jp, jq, jc = zeros[0], zeros[1], zeros[2]
    for i in range(start, key.shape[0]):
        q = qw[2 * i]
        if qw[2 * i + 1] != (q >> 63):
            zeros[0], zeros[1], zeros[2] = jp, jq, jc
            return _BEYOND_INT64, n, i
        h = key[i] & mask
        while sv[h] >= 0 and sk[h] != key[i]:
            h = (h + np.uint64(1)) & mask
        k = sv[h]
        if k < 0:  # every tuple is known, also one whose fills have no positive quantity (as the SQL's)
            if 2 * (seen[0] + 1) > sk.shape[0]:
                zeros[0], zeros[1], zeros[2] = jp, jq, jc
                return _GROW, n, i
            k = seen[0]
            sk[h] = key[i]
            sv[h] = k
            first_day[k] = date[i]
            seen[0] += 1
        if q <= 0:
            continue
        p, f = pw[2 * i], fw[2 * i]
        if pw[2 * i + 1] != (p >> 63) or fw[2 * i + 1] != (f >> 63):
            zeros[0], zeros[1], zeros[2] = jp, jq, jc
            return _BEYOND_INT64, n, i
        while not _pow10_divides(p, jp):
            jp -= 1
        while not _pow10_divides(q, jq):
            jq -= 1
        while not _pow10_divides(f, jc):
            jc -= 1
        out_key[n] = k
        out_day[n] = date[i]
        out_t[n] = ns[i]
        out_buy[n] = buy[i]
        out_p[n] = p
        out_q[n] = q
        out_f[n] = f
        n += 1
    zeros[0], zeros[1], zeros[2] = jp, jq, jc
    return _OK, n, key.shape[0]


@njit(cache=True, nogil=True)
def _order(book, day, t, n_books, n_days):
    """The rows by (book, day) with a counting sort, then by time within a day where the scan's order was not
    (a day's rows of a book come in file order, sorted by time unless the scan interleaved files); returns
    the permutation and each (book, day) group's first position."""
    n = book.shape[0]
    groups = n_books * n_days
    start = np.zeros(groups + 1, dtype=np.int64)
    for i in range(n):
        start[book[i] * n_days + day[i] + 1] += 1
    for g in range(groups):
        start[g + 1] += start[g]
    fill = start[:-1].copy()
    perm = np.empty(n, dtype=np.int64)
    for i in range(n):
        g = book[i] * n_days + day[i]
        perm[fill[g]] = i
        fill[g] += 1
    for g in range(groups):
        a, z = start[g], start[g + 1]
        for r in range(a + 1, z):
            if t[perm[r]] < t[perm[r - 1]]:
                seg = perm[a:z]
                perm[a:z] = seg[np.argsort(t[seg], kind="mergesort")]
                break
    return perm, start


@njit(cache=True, nogil=True)
def _fifo(book, day, t, buy, pv, qv, fv, fee_kind, n_books, n_days, dp, dq, dc, out, last_ns):
    """FIFO per book over the rows in (book, time) order; per book-day sums into ``out`` (int64 columns:
    realised, fees, other_fee_fills, turnover, cash, dqty, fills, closes, wins, last_price) and ``last_ns``.
    ``fee_kind``: 1 a quote-asset commission, 2 another asset's, 0 neither (no asset known). Returns 0, or 2
    when two fills of a book share a nanosecond (the SQL orders those by trade id)."""
    perm, start = _order(book, day, t, n_books, n_days)
    longest = 0  # the open lots of a book are at most its fills (fresh pages are dear: not one slot per fill)
    for b in range(n_books):
        longest = max(longest, start[(b + 1) * n_days] - start[b * n_days])
    lot_q = np.empty(longest, dtype=np.int64)
    lot_p = np.empty(longest, dtype=np.int64)
    for b in range(n_books):
        lo, hi = start[b * n_days], start[(b + 1) * n_days]
        head = 0
        tail = 0
        long_side = True  # the side of the open lots (when tail > head)
        prev_t = np.iinfo(np.int64).min
        for r in range(lo, hi):
            i = perm[r]
            if t[i] <= prev_t:
                return 2
            prev_t = t[i]
            price = pv[i] // dp
            q = qv[i] // dq
            fee = fv[i] // dc
            g = b * n_days + day[i]
            is_buy = buy[i] == 1
            notional = price * q
            realised = 0
            left = q
            if tail > head and long_side != is_buy:
                while left > 0 and head < tail:
                    take = min(left, lot_q[head])
                    realised += take * (price - lot_p[head]) if long_side else take * (lot_p[head] - price)
                    lot_q[head] -= take
                    left -= take
                    if lot_q[head] == 0:
                        head += 1
            if left > 0:
                if head == tail:
                    head = 0
                    tail = 0
                    long_side = is_buy
                lot_q[tail] = left
                lot_p[tail] = price
                tail += 1
            out[g, 0] += realised
            if fee_kind[i] == 1:
                out[g, 1] += fee
            elif fee_kind[i] == 2 and fee != 0:
                out[g, 2] += 1
            out[g, 3] += notional
            out[g, 4] += -notional if is_buy else notional
            out[g, 5] += q if is_buy else -q
            out[g, 6] += 1
            if left < q:
                out[g, 7] += 1
            if realised > 0:
                out[g, 8] += 1
            out[g, 9] = price
            last_ns[g] = t[i]
    return 0


@dataclass
class Fills:
    """Every fill with a positive quantity, as int64 fixed point at scale 10**-12 (``zeros``: the most trailing
    decimal zeros every price, quantity and commission has), by book index (into ``books``)."""

    books: np.ndarray  # the sorted distinct book hashes
    book: np.ndarray
    day: np.ndarray  # days since 1970-01-01
    t: np.ndarray
    buy: np.ndarray
    price: np.ndarray
    qty: np.ndarray
    fee: np.ndarray
    fee_kind: np.ndarray
    zeros: np.ndarray  # (price, qty, fee)

    @property
    def scales(self) -> dict[str, int]:
        """The fewest decimals every price, quantity and commission has."""
        return {name: 12 - int(z) for name, z in zip(("price", "qty", "fee"), self.zeros, strict=True)}


@dataclass
class Keys:
    """The distinct (book, commission asset) tuples of the fills, in the order the scan met them."""

    table: pa.Table  # key, book, account, symbol, position_side, quote_fee, other_fee
    books: np.ndarray  # the sorted distinct book hashes
    key_book: np.ndarray  # per tuple: its book's index into books
    key_fee: np.ndarray  # per tuple: 1 quote-asset commission, 2 another asset's, 0 no asset known


def _days_sql(days: np.ndarray) -> str:
    return ", ".join(f"DATE '{np.datetime64(int(d), 'D')}'" for d in days)


def resolve_keys(con: duckdb.DuckDBPyConnection, hashes: np.ndarray, first_day: np.ndarray) -> Keys:
    """The tuples behind the scan's key ``hashes`` (index order), read from the days they first appear on."""
    if not len(hashes):
        empty = con.sql(_KEYS.format(days="NULL")).to_arrow_table()
        return Keys(empty, np.zeros(0, np.uint64), np.zeros(0, np.int32), np.zeros(0, np.int8))
    table = con.sql(_KEYS.format(days=_days_sql(np.unique(first_day)))).to_arrow_table()
    got = np.ascontiguousarray(table.column("key").to_numpy())
    if len(np.unique(got)) != len(got):
        raise NotExact("two (book, commission asset) tuples share a 64-bit hash")
    order = np.argsort(got)
    pos = np.searchsorted(got, hashes, sorter=order)
    if len(got) != len(hashes) or not bool(np.all(got[order[np.minimum(pos, len(got) - 1)]] == hashes)):
        raise DataChanged("the tuples of the fills' first days are not the ones the scan met")
    table = table.take(pa.array(order[pos]))  # in the scan's index order
    book_hash = table.column("book").to_numpy()
    books = np.unique(book_hash)
    quote = table.column("quote_fee").to_numpy(zero_copy_only=False)
    other = table.column("other_fee").to_numpy(zero_copy_only=False)
    return Keys(
        table=table,
        books=books,
        key_book=np.searchsorted(books, book_hash).astype(np.int32),
        key_fee=np.where(quote, 1, np.where(other, 2, 0)).astype(np.int8),
    )


def read_fills(con: duckdb.DuckDBPyConnection) -> tuple[Keys, Fills]:
    """The scan and the tuples' query (see the module doc); raises NotExact or DataChanged."""
    size = _FIRST_SLOTS
    sk, sv = _lookup_table(np.zeros(0, np.uint64), size)
    first_day = np.zeros(size // 2, dtype=np.int32)
    seen = np.zeros(1, dtype=np.int64)
    zeros = np.array([12, 12, 12], dtype=np.int64)
    # one output array per column, sized by a count (Parquet footers; cheap): per-batch arrays joined at the
    # end cost a fifth of the pass in fresh pages and copies
    cap = int(con.execute("SELECT count(*) FROM trades").fetchall()[0][0]) + 1024  # a few appended fills fit
    out = tuple(np.empty(cap, dtype) for dtype in _DTYPES)
    n = 0
    for batch in con.sql(_READ).to_arrow_reader(BATCH_ROWS):
        if batch.num_rows == 0:
            continue
        if n + batch.num_rows > cap:
            raise DataChanged("fills were appended to the archive during the scan")
        cols = [batch.column(i) for i in range(7)]
        key = _buffer(cols[0], np.uint64)
        date = _buffer(cols[1], np.int32)
        ns = _buffer(cols[2], np.int64)
        buy = _buffer(cols[3], np.int8)
        pw, qw, fw = (_decimal_words(c) for c in cols[4:7])
        row = 0
        while True:
            code, n, row = _ingest(key, date, ns, buy, pw, qw, fw, sk, sv, seen, first_day, row, n, *out, zeros)
            if code == _BEYOND_INT64:
                raise NotExact("a value beyond int64")
            if code != _GROW:
                break
            size *= 4  # rebuild the key table larger, keeping every index
            known = np.zeros(int(seen[0]), dtype=np.uint64)
            known[sv[sv >= 0]] = sk[sv >= 0]
            sk, sv = _lookup_table(known, size)
            first_day = np.concatenate([first_day, np.zeros(size // 2 - len(first_day), np.int32)])
    n_keys = int(seen[0])
    hashes = np.zeros(n_keys, dtype=np.uint64)
    hashes[sv[sv >= 0]] = sk[sv >= 0]
    keys = resolve_keys(con, hashes, first_day[:n_keys])
    cols = [a[:n] for a in out]
    book, fee_kind = keys.key_book[cols[0]], keys.key_fee[cols[0]]
    return keys, Fills(keys.books, book, *cols[1:], fee_kind, zeros)  # type: ignore[call-arg]


def book_days(fills: Fills) -> tuple[pa.Table, dict[str, int]]:
    """Per book and day: realised PnL, fees, turnover, cash, quantity change, counts, the last fill (int64 at
    the returned scales). Raises NotExact when it cannot be exact."""
    k = fills.scales
    if k["price"] + k["qty"] > 12:
        raise NotExact("price x quantity needs more than 12 decimals")
    dp, dq, dc = (10 ** int(z) for z in fills.zeros)
    n = len(fills.book)
    if n:
        bound = (float(np.abs(fills.price).max()) / dp) * (float(np.abs(fills.qty).sum()) / dq)
        if bound >= INT64_SAFE or float(np.abs(fills.fee).sum()) / dc >= INT64_SAFE:
            raise NotExact("products or sums beyond int64")
    d0 = int(fills.day.min()) if n else 0
    n_days = int(fills.day.max()) - d0 + 1 if n else 1
    day = fills.day - np.int32(d0)
    n_books = len(fills.books)
    out = np.zeros((n_books * n_days, 10), dtype=np.int64)
    last_ns = np.zeros(n_books * n_days, dtype=np.int64)
    rc = _fifo(fills.book, day, fills.t, fills.buy, fills.price, fills.qty, fills.fee,
               fills.fee_kind, n_books, n_days, dp, dq, dc, out, last_ns)  # fmt: skip
    if rc:
        raise NotExact("two fills of a book at the same nanosecond")
    present = np.flatnonzero(out[:, 6])
    names = ("realised_pnl", "fees", "other_fee_fills", "turnover", "cash", "dqty", "fills", "closes", "wins",
             "last_price")  # fmt: skip
    cols = {
        "book": fills.books[present // n_days],
        "date": pa.array((present % n_days + d0).astype(np.int32)).cast(pa.date32()),
    }
    cols.update({name: out[present, j] for j, name in enumerate(names)})
    cols["last_ns"] = last_ns[present]
    return pa.table(cols), k


def _dec(col: str, k: int) -> str:
    """An int64 column at scale 10**-k as DECIMAL(38,12), exactly."""
    if k == 0:
        return f"CAST({col} AS DECIMAL(38,12))"
    return f"CAST(CAST({col} AS DECIMAL(38,0)) * CAST('{10.0**-k:.{k}f}' AS DECIMAL(38,{k})) AS DECIMAL(38,12))"


def materialize_fast(con: duckdb.DuckDBPyConnection) -> bool:
    """Create the temporary tables ``pnl_books`` and ``pnl_book_daily`` (what the daily and monthly views
    read) in one vectorised pass; False when the data needs the exact SQL stages (nothing created then)."""
    order = con.execute("SELECT current_setting('preserve_insertion_order')").fetchone()[0]
    con.execute("SET preserve_insertion_order = false")  # the pass orders the rows itself
    try:
        for attempt in (1, 2):
            try:
                keys, fills = read_fills(con)
                days, k = book_days(fills)
                break
            except DataChanged:
                if attempt == 2:
                    return False
            except NotExact:
                return False
    finally:
        con.execute(f"SET preserve_insertion_order = {str(order).lower()}")
    del fills
    con.register("pnl_keys_raw", keys.table)
    con.execute("CREATE OR REPLACE TEMP TABLE pnl_books AS "
                "SELECT DISTINCT book, account, symbol, position_side FROM pnl_keys_raw ORDER BY book")  # fmt: skip
    con.unregister("pnl_keys_raw")
    con.register("pnl_book_day_raw", days)
    n = k["price"] + k["qty"]
    con.execute(f"""CREATE OR REPLACE TEMP TABLE pnl_book_day AS
        SELECT book, date, {_dec('realised_pnl', n)} AS realised_pnl, {_dec('fees', k['fee'])} AS fees,
               other_fee_fills, {_dec('turnover', n)} AS turnover, {_dec('cash', n)} AS cash,
               {_dec('dqty', k['qty'])} AS dqty, fills, closes, wins, last_ns,
               {_dec('last_price', k['price'])} AS last_price
        FROM pnl_book_day_raw""")  # fmt: skip
    con.unregister("pnl_book_day_raw")
    day = ("SELECT book, date, realised_pnl, fees, other_fee_fills, turnover, cash, dqty, fills, closes, wins "
           "FROM pnl_book_day")  # fmt: skip
    con.execute(f"CREATE OR REPLACE TEMP TABLE pnl_book_daily AS {book_daily_sql(day, _MARKS_FAST)}")
    return True
