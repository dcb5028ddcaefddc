"""PnL from the trade and funding logs, in DuckDB SQL: views the pnl-report flow and ad-hoc queries use.

Realised PnL is FIFO per book (account, symbol, position side). In a netting book FIFO matches the k-th unit
bought with the k-th unit sold, whichever came first, so with ``B``/``S`` the cumulative bought/sold
quantity the matches are the segments between the merged breakpoints of ``B`` and ``S``: each segment's
quantity times (sell price - buy price), realised when the later of its two fills happens and credited to
that (closing) fill. That is a sort and window scans, no per-fill loop, and exact: DECIMAL throughout.
Unrealised PnL at the end of a day is the book's mark-to-market (cash flow + position x mark) minus its
realised PnL; the mark is the last fill price of the symbol (any account) up to that day's end (of fills at
the same nanosecond, the highest price: never the scan's order). Fees are the
fills' commissions (quote-asset commissions; others are counted in ``other_fee_fills``), funding the
``funding`` log's signed amounts.

Views: ``pnl_fills`` (each fill with its realised PnL), ``pnl_book_daily``, ``pnl_daily`` (per account and
day: realised, unrealised, fees, funding, net, turnover, fills, closing fills, wins, win rate, equity,
drawdown, max drawdown), ``pnl_daily_total`` (all accounts), ``pnl_monthly``, ``pnl_monthly_total`` and
``positions`` (open quantity, FIFO entry price, mark and unrealised PnL per book).
"""

from __future__ import annotations

BOOK = "account, symbol, position_side"
D = "DECIMAL(38,12)"

_QUOTE_FEE = "(commission_asset = '' OR symbol LIKE '%/' || commission_asset OR symbol LIKE '%:' || commission_asset)"

# The books (account, symbol, position side) by their hash: the heavy stages carry only the hash.
_BOOKS = f"SELECT DISTINCT hash({BOOK}) AS book, {BOOK} FROM trades"

# One sort per book (by time) over narrow rows: the sequence number, and per side the cumulative quantity x
# and ordinal k.
_FILLS = f"""
SELECT book, date, event_ns, trade_id, side, price, qty, commission, quote_fee, seq,
       CASE WHEN side = 'buy' THEN xb ELSE xs END AS x, CASE WHEN side = 'buy' THEN kb ELSE ks END AS k
FROM (
  SELECT *,
    row_number() OVER w AS seq,
    sum(CASE WHEN side = 'buy' THEN qty ELSE 0 END) OVER w AS xb,
    sum(CASE WHEN side = 'sell' THEN qty ELSE 0 END) OVER w AS xs,
    sum(CASE WHEN side = 'buy' THEN 1 ELSE 0 END) OVER w AS kb,
    sum(CASE WHEN side = 'sell' THEN 1 ELSE 0 END) OVER w AS ks
  FROM (
    SELECT hash({BOOK}) AS book, date, event_ns, trade_id, side, price, qty, commission,
           {_QUOTE_FEE} AS quote_fee
    FROM trades WHERE qty > 0
  )
  WINDOW w AS (PARTITION BY book ORDER BY event_ns, trade_id ROWS UNBOUNDED PRECEDING)
)
"""

# The merged breakpoints in order of x (a second sort): the segment ending at a row is covered by buy number
# cb (+1 after a sell) and sell number cs (+1 after a buy); both looked up by (book, k).
_SEGMENTS = """
WITH f AS (SELECT book, side, x, k, seq, price FROM pnl_fill_seq),
m AS (
  SELECT book, x, side = 'sell' AS s,
    x - coalesce(lag(x) OVER w, 0) AS len,
    sum(CASE WHEN side = 'buy' THEN 1 ELSE 0 END) OVER wc AS cb,
    sum(CASE WHEN side = 'sell' THEN 1 ELSE 0 END) OVER wc AS cs
  FROM f
  WINDOW w AS (PARTITION BY book ORDER BY x, side = 'sell'),
         wc AS (PARTITION BY book ORDER BY x, side = 'sell' ROWS UNBOUNDED PRECEDING)
)
SELECT m.book, m.len, b.seq AS b_seq, b.price AS b_price, a.seq AS a_seq, a.price AS a_price
FROM m
LEFT JOIN (SELECT book, k, seq, price FROM f WHERE side = 'buy') b
  ON b.book = m.book AND b.k = m.cb + CASE WHEN m.s THEN 1 ELSE 0 END
LEFT JOIN (SELECT book, k, seq, price FROM f WHERE side = 'sell') a
  ON a.book = m.book AND a.k = m.cs + CASE WHEN m.s THEN 0 ELSE 1 END
WHERE m.len > 0
"""

# each fill with the realised PnL of the quantity it closed (the later fill of each matched pair)
_FILL_REALISED = f"""
WITH closes AS (
  SELECT book, greatest(b_seq, a_seq) AS seq,
         sum(CAST(len * (a_price - b_price) AS {D})) AS realised, sum(len) AS closed_qty
  FROM pnl_segments WHERE a_seq IS NOT NULL AND b_seq IS NOT NULL GROUP BY ALL
)
SELECT f.* EXCLUDE (x, k), coalesce(c.realised, 0::{D}) AS realised_pnl, coalesce(c.closed_qty, 0::{D}) AS closed_qty
FROM pnl_fill_seq f LEFT JOIN closes c USING (book, seq)
"""

PNL_FILLS = """
SELECT b.account, b.symbol, b.position_side, f.* EXCLUDE (book, quote_fee)
FROM pnl_fill_realised f JOIN pnl_books b USING (book)
"""

POSITIONS = f"""
WITH seg AS (SELECT * FROM pnl_segments),
open_lots AS (
  SELECT k.account, k.symbol, k.position_side,
         sum(CASE WHEN a_seq IS NULL THEN len ELSE -len END) AS qty,
         sum(CAST(len * coalesce(b_price, a_price) AS {D})) AS cost
  FROM seg JOIN pnl_books k USING (book) WHERE a_seq IS NULL OR b_seq IS NULL GROUP BY ALL
),
marks AS (SELECT symbol, arg_max(price, (event_ns, price)) AS mark FROM trades GROUP BY symbol)
SELECT o.account, o.symbol, o.position_side, o.qty,
       CAST(o.cost / abs(o.qty) AS {D}) AS entry_price, m.mark,
       CAST(o.qty * m.mark - sign(o.qty) * o.cost AS {D}) AS unrealised_pnl
FROM open_lots o JOIN marks m USING (symbol) WHERE o.qty <> 0
"""

# per book and day, from the fills with their realised PnL
_BOOK_DAY = f"""
  SELECT book, date,
  sum(realised_pnl) AS realised_pnl,
  sum(CASE WHEN quote_fee THEN commission ELSE 0 END) AS fees,
  count_if(commission <> 0 AND NOT quote_fee) AS other_fee_fills,
  sum(CAST(price * qty AS {D})) AS turnover,
  sum(CASE WHEN side = 'sell' THEN CAST(price * qty AS {D}) ELSE -CAST(price * qty AS {D}) END) AS cash,
  sum(CASE WHEN side = 'buy' THEN qty ELSE -qty END) AS dqty,
  count(*) AS fills, count_if(closed_qty > 0) AS closes, count_if(realised_pnl > 0) AS wins
FROM pnl_fill_realised GROUP BY ALL
"""

# the last fill price of each symbol up to a day's end (any account); fills of two accounts at the same
# nanosecond: the higher price, so that the mark never depends on the scan's order
_MARKS = "SELECT symbol, date, arg_max(price, (event_ns, price)) AS mark FROM trades GROUP BY ALL"


def book_daily_sql(day: str = _BOOK_DAY, marks: str = _MARKS) -> str:
    """Per book and calendar day (from its first fill to the archive's last day): the day's sums of ``day``
    (book, date, realised_pnl, fees, other_fee_fills, turnover, cash, dqty, fills, closes, wins), the position
    and the unrealised PnL at the mark of ``marks`` (symbol, date, mark)."""
    return f"""
WITH day AS ({day}),
marks AS ({marks}),
fund AS (SELECT date FROM funding),
span AS (SELECT max(date) AS hi FROM (SELECT date FROM day UNION ALL SELECT date FROM fund)),
firsts AS (SELECT book, min(date) AS first FROM day GROUP BY ALL),
spine AS (
  SELECT b.book, CAST(g.d AS DATE) AS date
  FROM firsts b, span, generate_series(b.first, span.hi, INTERVAL 1 DAY) g(d)
),
filled AS (
  SELECT s.book, s.date,
    coalesce(d.realised_pnl, 0) AS realised_pnl, coalesce(d.fees, 0) AS fees,
    coalesce(d.other_fee_fills, 0) AS other_fee_fills, coalesce(d.turnover, 0) AS turnover,
    coalesce(d.fills, 0) AS fills, coalesce(d.closes, 0) AS closes, coalesce(d.wins, 0) AS wins,
    sum(coalesce(d.cash, 0)) OVER bw AS cash_cum, sum(coalesce(d.dqty, 0)) OVER bw AS qty,
    sum(coalesce(d.realised_pnl, 0)) OVER bw AS realised_cum
  FROM spine s LEFT JOIN day d USING (book, date)
  WINDOW bw AS (PARTITION BY s.book ORDER BY s.date ROWS UNBOUNDED PRECEDING)
),
named AS (SELECT k.account, k.symbol, k.position_side, f.* FROM filled f JOIN pnl_books k USING (book)),
marked AS (
  SELECT f.*, m.mark FROM named f ASOF LEFT JOIN marks m ON f.symbol = m.symbol AND f.date >= m.date
)
SELECT account, symbol, position_side, date, realised_pnl, fees, other_fee_fills, turnover, fills, closes, wins,
       qty, mark, CAST(cash_cum + qty * mark - realised_cum AS {D}) AS unrealised_pnl
FROM marked
"""


PNL_BOOK_DAILY = book_daily_sql()

_BOOK_TOTALS = """
  SELECT account, date, sum(realised_pnl) AS realised_pnl, sum(unrealised_pnl) AS unrealised_pnl,
         sum(fees) AS fees, sum(turnover) AS turnover, sum(fills) AS fills, sum(closes) AS closes,
         sum(wins) AS wins, sum(other_fee_fills) AS other_fee_fills
  FROM pnl_book_daily GROUP BY ALL
"""


def _daily(group: str, source: str, funding: str) -> str:
    """Daily rows with net PnL, equity, drawdown per ``group`` (``account`` or a constant)."""
    return f"""
WITH b AS ({source}),
f AS ({funding}),
j AS (
  SELECT coalesce(b.account, f.account) AS account, coalesce(b.date, f.date) AS date,
    coalesce(b.realised_pnl, 0) AS realised_pnl, b.unrealised_pnl, coalesce(b.fees, 0) AS fees,
    coalesce(f.funding, 0) AS funding, coalesce(b.turnover, 0) AS turnover, coalesce(b.fills, 0) AS fills,
    coalesce(b.closes, 0) AS closes, coalesce(b.wins, 0) AS wins, coalesce(b.other_fee_fills, 0) AS other_fee_fills
  FROM b FULL JOIN f USING (account, date)
),
u AS (
  SELECT *, coalesce(unrealised_pnl, last_value(unrealised_pnl IGNORE NULLS) OVER aw, 0) AS unrealised
  FROM j WINDOW aw AS (PARTITION BY {group} ORDER BY date ROWS UNBOUNDED PRECEDING)
),
e AS (
  SELECT *, sum(realised_pnl - fees + funding) OVER aw + unrealised AS equity
  FROM u WINDOW aw AS (PARTITION BY {group} ORDER BY date ROWS UNBOUNDED PRECEDING)
),
d AS (
  SELECT *, greatest(0, max(equity) OVER aw) - equity AS drawdown,
         equity - coalesce(lag(equity) OVER (PARTITION BY {group} ORDER BY date), 0) AS net_pnl
  FROM e WINDOW aw AS (PARTITION BY {group} ORDER BY date ROWS UNBOUNDED PRECEDING)
)
SELECT date, account, realised_pnl, unrealised AS unrealised_pnl, fees, funding, net_pnl, turnover, fills,
       closes, wins, CASE WHEN closes > 0 THEN wins / closes END AS win_rate, equity, drawdown,
       max(drawdown) OVER (PARTITION BY {group} ORDER BY date ROWS UNBOUNDED PRECEDING) AS max_drawdown,
       other_fee_fills
FROM d
"""


PNL_DAILY = _daily("account", _BOOK_TOTALS, "SELECT account, date, sum(amount) AS funding FROM funding GROUP BY ALL")
PNL_DAILY_TOTAL = _daily(
    "account",
    "SELECT 'total' AS account, date, sum(realised_pnl) AS realised_pnl, sum(unrealised_pnl) AS unrealised_pnl, "
    "sum(fees) AS fees, sum(turnover) AS turnover, sum(fills) AS fills, sum(closes) AS closes, sum(wins) AS wins, "
    "sum(other_fee_fills) AS other_fee_fills FROM pnl_book_daily GROUP BY ALL",
    "SELECT 'total' AS account, date, sum(amount) AS funding FROM funding GROUP BY ALL",
)


def monthly_sql(source: str) -> str:
    """Monthly rows (per account, or the total) from the daily rows of ``source``."""
    return f"""
WITH d AS (SELECT *, CAST(date_trunc('month', date) AS DATE) AS month FROM {source}),
m AS (
  SELECT *, greatest(coalesce(first_value(equity) OVER mw - first_value(net_pnl) OVER mw, 0),
             max(equity) OVER (PARTITION BY account, month ORDER BY date ROWS UNBOUNDED PRECEDING)) - equity AS dd
  FROM d WINDOW mw AS (PARTITION BY account, month ORDER BY date ROWS UNBOUNDED PRECEDING)
)
SELECT month, account, sum(realised_pnl) AS realised_pnl, last(unrealised_pnl ORDER BY date) AS unrealised_pnl,
       sum(fees) AS fees, sum(funding) AS funding, sum(net_pnl) AS net_pnl, sum(turnover) AS turnover,
       sum(fills) AS fills, sum(closes) AS closes, sum(wins) AS wins,
       CASE WHEN sum(closes) > 0 THEN sum(wins) / sum(closes) END AS win_rate,
       last(equity ORDER BY date) AS equity, max(dd) AS max_drawdown
FROM m GROUP BY month, account
"""


# the views whose results the others reuse: ``materialize`` computes each once per connection
MATERIALIZED = ("pnl_books", "pnl_fill_seq", "pnl_segments", "pnl_fill_realised", "pnl_book_daily")


def materialize(con) -> None:  # type: ignore[no-untyped-def]
    """Compute the PnL stages once into temporary tables of the same names, which the views then read
    (DuckDB looks names up in the temp schema first): a report's many queries stop recomputing them."""
    for name in MATERIALIZED:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {PNL_VIEWS[name]}")


PNL_VIEWS = {
    "pnl_books": _BOOKS,
    "pnl_fill_seq": _FILLS,
    "pnl_segments": _SEGMENTS,
    "pnl_fill_realised": _FILL_REALISED,
    "pnl_fills": PNL_FILLS,
    "pnl_book_daily": PNL_BOOK_DAILY,
    "pnl_daily": PNL_DAILY,
    "pnl_daily_total": PNL_DAILY_TOTAL,
    "pnl_monthly": monthly_sql("pnl_daily"),
    "pnl_monthly_total": monthly_sql("pnl_daily_total"),
    "positions": POSITIONS,
}
