"""The operation frame: every public operation runs between ``_begin`` (charges the funding due) and ``_end``
(flushes the changed books into depth, book ticker and kline events, triggers stops, emits account events).
"""

from __future__ import annotations

from .event_types import AccountEvent, BookTickerEvent, DepthEvent, KlineEvent
from .funding import Funding
from .types import Balance


class OperationFrame(Funding):
    """``_begin`` / ``_end`` and what ``_end`` flushes."""

    # ================================================================================ operation frame
    def _begin(self) -> None:
        if not self._depth:
            self._settle_due()
        self._depth += 1

    def _end(self) -> None:
        self._depth -= 1
        if self._depth:
            return
        m = self.matcher
        dirty = m.dirty
        stops = m.stops
        em = self.em
        if len(dirty) == 1 and not em.active:
            # the usual operation: one book changed, nobody listens (same steps as the loop below)
            key = next(iter(dirty))
            if not stops[key]:
                dirty.clear()
                self.clock()
                book = m.books[key]
                book.bids.changed.clear()
                book.asks.changed.clear()
                m.md[key].flush_quiet()
                book.update_id += 1
                if em.touched:
                    em.touched.clear()
                return
        for _ in range(100):
            if not dirty:
                break
            keys = sorted(dirty)  # a fixed order: events must not depend on string hashing
            self._flush_books(keys)
            for key in keys:
                if stops[key]:
                    m.check_stops(key)
        if em.active and em.touched:
            self._flush_accounts()
        elif em.touched:
            em.touched.clear()

    def _flush_books(self, keys: list[tuple[str, str]]) -> None:
        m = self.matcher
        em = self.em
        if len(keys) == 1:
            m.dirty.clear()
        else:
            m.dirty.difference_update(keys)
        now = self.clock()
        if not em.active:
            # without listeners the update id still advances so snapshots stay comparable
            for key in keys:
                book = m.books[key]
                book.bids.changed.clear()
                book.asks.changed.clear()
                m.md[key].flush_quiet()
                book.update_id += 1
            return
        for key in keys:
            self._book_events(key, now)

    def _book_events(self, key: tuple[str, str], now: int) -> None:
        """Depth diff, book ticker and kline events of one book at the end of an operation.

        Kinds nobody wants (``set_interest``) are not built; the state they follow (update ids, the last
        published top of book, the klines) moves exactly as if they were.
        """
        m = self.matcher
        em = self.em
        book = m.books[key]
        md = m.md[key]
        bids = book.bids.take_changes()
        asks = book.asks.take_changes()
        if bids or asks:
            prev = book.update_id
            book.update_id = prev + len(bids) + len(asks)
            if em.want_depth:
                em.emit(DepthEvent(key[0], key[1], prev + 1, book.update_id, prev, bids, asks, now))
            bb, ba = book.bids.best(), book.asks.best()
            top = (bb, book.bids.qty.get(bb, 0), ba, book.asks.qty.get(ba, 0))
            if self._depth_prev.get(key) != top:
                self._depth_prev[key] = top
                if em.want_ticker:
                    em.emit(BookTickerEvent(key[0], key[1], book.update_id, *top, now))
        if not em.want_kline:
            md.flush_quiet()  # nobody wants kline events: fold lazily, as without listeners
            return
        touched = md.flush()
        if touched:
            now_ms = now // 1_000_000
            market, symbol = key
            emit = em.emit
            wanted = em.kline_intervals
            for interval, k in touched:
                if wanted is None or interval in wanted:
                    emit(KlineEvent(market, symbol, interval, k, k.close_time_ms < now_ms, now))

    def _flush_accounts(self) -> None:
        em = self.em
        if not em.active or not em.touched:
            em.touched.clear()
            return
        touched, reasons, deltas = em.take_touched()
        now = self.clock()
        for (account_id, wallet), (assets, positions) in touched.items():
            acc = self.ledger.accounts.get(account_id)
            if acc is None or acc.internal:
                continue
            w = acc.wallet(wallet)
            bals = [Balance(a, w[a].free, w[a].locked) if a in w else Balance(a) for a in sorted(assets)]
            pos = [acc.positions[p].snapshot() for p in sorted(positions) if p in acc.positions]
            em.emit(
                AccountEvent(
                    account_id,
                    wallet,
                    reasons.get((account_id, wallet), "ORDER"),
                    bals,
                    pos,
                    deltas.get((account_id, wallet), {}),
                    now,
                )
            )
