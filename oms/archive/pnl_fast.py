"""The PnL report's heavy stage in one vectorised pass: FIFO realised PnL per fill and the per book-day sums,
exact in int64 fixed point (NumPy over the Arrow columns DuckDB hands over), then DuckDB SQL for the rest.

The SQL stages of ``oms.archive.pnl`` compute FIFO by window scans and joins over DECIMAL(38,12) (128-bit)
values: exact, but about 30 µs a fill. Here the same numbers come from prefix sums: with ``B``/``S`` a book's
cumulative bought/sold quantity and ``CB(x)``/``CS(x)`` the cost of its first ``x`` units bought/sold, FIFO
matches the k-th unit bought with the k-th unit sold, so the realised PnL after a fill is
``CS(m) - CB(m)`` with ``m = min(B, S)``; a fill's realised PnL is the change of that, its closed quantity
the change of ``m``. ``CB(m)`` is one binary search over the cumulative buys (the buy whose range holds
``m``, priced within it), so the whole pass is sorts, prefix sums and searches over arrays: no per-fill or
per-account Python.

Exactness: DECIMAL(38,12) arrives as 128-bit integers; prices, quantities and commissions are rescaled to the
fewest decimals every value has, and used only when every product and running sum fits in int64 and the
scales add up to at most 12 decimals (what the SQL rounds to). Otherwise, or when two fills of a book share a
timestamp (the SQL orders those by trade id), ``materialize_fast`` returns False and the caller uses the SQL
stages, which give the same numbers.
"""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa
from numba import njit

from oms.archive.pnl import _BOOKS, _QUOTE_FEE, book_daily_sql

INT64_SAFE = 2**62  # bound on any product or running sum (a margin under 2**63)

_READ = f"""
SELECT hash(account, symbol, position_side) AS book, date, event_ns, side = 'buy' AS buy, price, qty, commission,
       coalesce({_QUOTE_FEE}, false) AS quote_fee, coalesce(NOT ({_QUOTE_FEE}), false) AS other_fee
FROM trades WHERE qty > 0
"""

_MARKS_FAST = (
    "SELECT k.symbol, d.date, arg_max(d.last_price, d.last_ns) AS mark "
    "FROM pnl_book_day d JOIN pnl_books k USING (book) GROUP BY ALL"
)


class NotExact(Exception):
    """The int64 fixed-point pass cannot reproduce the DECIMAL result exactly for this data."""


def _words(col: pa.ChunkedArray) -> np.ndarray:
    """A DECIMAL(38,12) column's 128-bit values as (low, high) int64 pairs."""
    arr = col.combine_chunks()
    if not pa.types.is_decimal128(arr.type) or arr.type.scale != 12:
        raise NotExact(f"expected DECIMAL(38,12), got {arr.type}")
    if arr.null_count:
        raise NotExact("null values")
    words = np.frombuffer(arr.buffers()[1], dtype=np.int64)[2 * arr.offset : 2 * (arr.offset + len(arr))]
    return words.reshape(-1, 2)


@njit(cache=True)
def _scale(words: np.ndarray) -> int:
    """The fewest decimals (0..12) every value has; -1 when one does not fit in int64."""
    k, p = 0, 10**12
    for i in range(words.shape[0]):
        lo = words[i, 0]
        if words[i, 1] != (lo >> 63):
            return -1
        while lo % p != 0:
            k += 1
            p //= 10
    return k


@njit(cache=True)
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


@njit(cache=True)
def _fifo(book, day, t, buy, pw, qw, fw, quote_fee, other_fee, n_books, n_days, dp, dq, dc, out, last_ns):
    """FIFO per book over the rows in (book, time) order; per book-day sums into ``out`` (int64 columns:
    realised, fees, other_fee_fills, turnover, cash, dqty, fills, closes, wins, last_price) and ``last_ns``.
    Returns 0, or 2 when two fills of a book share a nanosecond (the SQL orders those by trade id)."""
    n = book.shape[0]
    perm, start = _order(book, day, t, n_books, n_days)
    lot_q = np.empty(n, dtype=np.int64)
    lot_p = np.empty(n, dtype=np.int64)
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
            price = pw[i, 0] // dp
            q = qw[i, 0] // dq
            fee = fw[i, 0] // dc
            g = b * n_days + day[i]
            is_buy = buy[i]
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
            if quote_fee[i]:
                out[g, 1] += fee
            if other_fee[i] and fee != 0:
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


def book_days(table: pa.Table, books: np.ndarray) -> tuple[pa.Table, dict[str, int]]:
    """Per book and day: realised PnL, fees, turnover, cash, quantity change, counts, the last fill (int64 at
    the returned scales); ``books`` the sorted distinct book hashes. Raises NotExact when it cannot be exact."""
    pw, qw, fw = (_words(table.column(c)) for c in ("price", "qty", "commission"))
    kp, kq, kc = _scale(pw), _scale(qw), _scale(fw)
    if min(kp, kq, kc) < 0:
        raise NotExact("a value beyond int64")
    if kp + kq > 12:
        raise NotExact("price x quantity needs more than 12 decimals")
    n = table.num_rows
    dp, dq, dc = 10 ** (12 - kp), 10 ** (12 - kq), 10 ** (12 - kc)
    if n and (float(np.abs(pw[:, 0]).max()) / dp) * (float(np.abs(qw[:, 0]).sum()) / dq) >= INT64_SAFE:
        raise NotExact("products or sums beyond int64")
    book = np.searchsorted(books, table.column("book").to_numpy()).astype(np.int64)
    days = table.column("date").cast(pa.int32()).to_numpy()
    d0 = int(days.min()) if n else 0
    n_days = int(days.max()) - d0 + 1 if n else 1
    day = (days - d0).astype(np.int64)
    col = {c: np.ascontiguousarray(table.column(c).to_numpy(zero_copy_only=False))
           for c in ("buy", "quote_fee", "other_fee")}  # fmt: skip
    t = table.column("event_ns").to_numpy()
    out = np.zeros((len(books) * n_days, 10), dtype=np.int64)
    last_ns = np.zeros(len(books) * n_days, dtype=np.int64)
    rc = _fifo(book, day, t, col["buy"], pw, qw, fw, col["quote_fee"], col["other_fee"], len(books), n_days,
               dp, dq, dc, out, last_ns)  # fmt: skip
    if rc:
        raise NotExact("two fills of a book at the same nanosecond")
    present = np.flatnonzero(out[:, 6])
    names = ("realised_pnl", "fees", "other_fee_fills", "turnover", "cash", "dqty", "fills", "closes", "wins",
             "last_price")  # fmt: skip
    cols = {
        "book": books[present // n_days],
        "date": pa.array((present % n_days + d0).astype(np.int32)).cast(pa.date32()),
    }
    cols.update({name: out[present, j] for j, name in enumerate(names)})
    cols["last_ns"] = last_ns[present]
    return pa.table(cols), {"price": kp, "qty": kq, "fee": kc}


def _dec(col: str, k: int) -> str:
    """An int64 column at scale 10**-k as DECIMAL(38,12), exactly."""
    if k == 0:
        return f"CAST({col} AS DECIMAL(38,12))"
    return f"CAST(CAST({col} AS DECIMAL(38,0)) * CAST('{10.0**-k:.{k}f}' AS DECIMAL(38,{k})) AS DECIMAL(38,12))"


def materialize_fast(con: duckdb.DuckDBPyConnection) -> bool:
    """Create the temporary tables ``pnl_books`` and ``pnl_book_daily`` (what the daily and monthly views
    read) in one vectorised pass; False when the data needs the exact SQL stages (nothing created then)."""
    con.execute(f"CREATE OR REPLACE TEMP TABLE pnl_books AS {_BOOKS} ORDER BY book")
    books = con.sql("SELECT book FROM pnl_books").to_arrow_table().column(0).to_numpy()
    table = con.sql(_READ).to_arrow_table()
    try:
        days, k = book_days(table, books)
    except NotExact:
        con.execute("DROP TABLE pnl_books")
        return False
    del table
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
