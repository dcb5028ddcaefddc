"""What the emulation reads of the market: the live book (through the book kernel's arrays) and the last trade.

``BookView`` is built over the daemon's market feeds: ``best(exchange, symbol)`` is the best bid and ask in
price units (0 for an empty side), ``last(i)`` the last trade's price units of instrument ``i`` (0 before the
first), ``depth_within`` the book's quantity on one side at prices at least as good as a limit, and
``reference(exchange, symbol, side)`` the price an order of ``side`` would pay now: the best ask to buy, the
best bid to sell (the mid's side when that side is empty, 0 without a book). ``volume_listeners`` hear the
others' volume change: public trades less the daemon's own fills (``on_own_fill``). Nothing here awaits.

A public trade is counted as the others' only ``grace_ns`` after it came (``release``, on the next trade and on
the parents' clock) unless the daemon's own fill of it came meanwhile: the user stream often reports an own fill
after the public stream reports its trade, and a pov parent must never trade on the daemon's own volume (seen in
a test: the liquidity parent's fills, counted for the moment before their reports came, let a pov parent finish
before anybody else traded). An own fill later than the grace is taken back, with the number of its count.
"""

from __future__ import annotations

import time
from collections import OrderedDict

from kernels import book as K
from kernels import codes as C
from oms.model import Instrument, Trade
from stream.instruments import InstrumentTable

_USABLE = (K.SNAPSHOT, K.SYNCED)  # a book with a snapshot (diffs applied or waiting for the first)
_RECENT = 20_000  # trade ids kept per instrument for matching own fills to public trades
OWN_FILL_GRACE_NS = 1_000_000_000  # how long a public trade waits for the daemon's own fill of it (see above)


def _remember(ids: OrderedDict, trade_id: str, value) -> None:
    ids[trade_id] = value
    if len(ids) > _RECENT:
        ids.popitem(last=False)


class BookView:
    def __init__(
        self,
        table: InstrumentTable,
        books: tuple,
        feeds: list,
        *,
        grace_ns: int = OWN_FILL_GRACE_NS,
        clock=time.monotonic_ns,
    ):
        self.table = table
        self.grace_ns = grace_ns
        self.clock = clock
        # public trades waiting out the grace: trade id -> (qty units, arrival ns), oldest first
        self._waiting: dict[int, OrderedDict[str, tuple[int, int]]] = {}
        self.lv, self.meta = books
        self.feeds = feeds
        self._last: dict[int, int] = {}
        self._volume: dict[int, int] = {}  # quantity units traded on the market since the start
        self.listeners: list = []  # (i, price units, qty units, event ns) per trade: the parents and exits
        # the others' volume: public trades that are not the daemon's own fills, matched by trade id whichever
        # of the two streams reports a trade first (recent ids only: both report it within moments)
        # public trades not matched to an own fill yet: trade id -> (qty units, the count's sequence number)
        self._public: dict[int, OrderedDict[str, tuple[int, int]]] = {}
        self._own: dict[int, OrderedDict[str, None]] = {}  # own fills whose public trade has not come yet
        # (i, change of the others' volume in qty units (< 0: taken back), the sequence number of the count it
        # adds or takes back): a listener that started after a count must not lose its take-back
        self.volume_listeners: list = []
        self.volume_seq = 0  # public trades counted so far

    def on_trade(self, i: int, ins: Instrument, trade: Trade) -> None:
        """A market trade (``MarketFeed.listeners``): the last price and the volume, then the listeners."""
        try:
            price, qty = ins.price(trade.price), ins.qty(trade.qty)
        except ValueError:
            return  # a price finer than the tick: the feed counts it
        self._last[i] = price
        self._volume[i] = self._volume.get(i, 0) + qty
        for listener in self.listeners:
            listener(i, price, qty, trade.event_ns)
        own = self._own.get(i)
        if own is not None and own.pop(trade.trade_id, 0) is None:
            return  # the daemon's own fill, reported first by the user stream
        now = self.clock()
        _remember(self._waiting.setdefault(i, OrderedDict()), trade.trade_id, (qty, now))
        self.release(now)

    def release(self, now: int | None = None) -> None:
        """Count the public trades whose grace is over and whose own fill did not come: the others' volume."""
        now = self.clock() if now is None else now
        for i, waiting in self._waiting.items():
            while waiting:
                trade_id, (qty, came) = next(iter(waiting.items()))
                if now - came < self.grace_ns:
                    break
                del waiting[trade_id]
                self.volume_seq += 1
                _remember(self._public.setdefault(i, OrderedDict()), trade_id, (qty, self.volume_seq))
                self._volume_changed(i, qty, self.volume_seq)

    def on_own_fill(self, i: int, trade_id: str, qty: int) -> None:
        """A fill of one of the daemon's accounts: not the others' volume (taken back if its public trade came
        first). Idempotent: a fill reported twice counts once."""
        waiting = self._waiting.get(i)
        if waiting is not None and waiting.pop(trade_id, None) is not None:
            return  # its public trade is still in its grace: never counted
        public = self._public.get(i)
        counted = public.pop(trade_id, None) if public is not None else None
        if counted is not None:
            self._volume_changed(i, -counted[0], counted[1])
        else:
            _remember(self._own.setdefault(i, OrderedDict()), trade_id, None)

    def _volume_changed(self, i: int, delta: int, seq: int) -> None:
        for listener in self.volume_listeners:
            listener(i, delta, seq)

    def number(self, exchange: str, symbol: str) -> tuple[int, Instrument]:
        return self.table.lookup(exchange, symbol)

    def best(self, i: int) -> tuple[int, int]:
        if int(self.meta[i, K.M_STATE]) not in _USABLE:
            return 0, 0
        return int(K.best(self.lv, self.meta, i, K.BID)[0]), int(K.best(self.lv, self.meta, i, K.ASK)[0])

    def last(self, i: int) -> int:
        """The last trade's price, else the book's mid, else 0."""
        p = self._last.get(i, 0)
        if p:
            return p
        bid, ask = self.best(i)
        return (bid + ask) // 2 if bid and ask else 0

    def price(self, i: int) -> int:
        """The price triggers watch: the book's mid (it moves with every depth update), else the last trade."""
        bid, ask = self.best(i)
        if bid and ask:
            return (bid + ask) // 2
        return self._last.get(i, 0)

    def volume(self, i: int) -> int:
        return self._volume.get(i, 0)

    def reference(self, i: int, side: int) -> int:
        """The price an order of ``side`` (kernel code) would pay now; 0 without a book."""
        bid, ask = self.best(i)
        if side == C.BUY:
            return ask or bid
        return bid or ask

    def depth_within(self, i: int, side: int, limit_price: int) -> int:
        """Quantity units an order of ``side`` could take at ``limit_price`` or better (the opposite side)."""
        if int(self.meta[i, K.M_STATE]) not in _USABLE:
            return 0
        book_side = K.ASK if side == C.BUY else K.BID
        return int(K.depth(self.lv, self.meta, i, book_side, 0, limit_price))
