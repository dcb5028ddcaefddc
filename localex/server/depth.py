"""Depth streams on Binance's clock: diff depth windows and partial book snapshots.

Binance pushes depth on a clock, not per book change. Diff depth (``<symbol>@depth[@<n>ms]``: Spot every
1000 ms or 100 ms, USD-M every 250 ms, 500 ms or 100 ms) carries everything that changed during one
window: each changed level once with its final quantity (0 = removed), ``U`` the first and ``u`` the last
update id of the window, and on futures ``pu`` the ``u`` of the stream's previous push; a window without
changes pushes nothing. Windows of one stream are contiguous (``U`` = previous ``u`` + 1), so a client
syncs a local book from a REST snapshot plus the stream exactly as against Binance.

Partial depth (``<symbol>@depth<N>[@<n>ms]``) is a snapshot of the top N levels read from the engine when
the period comes round: Spot ``{"lastUpdateId", "bids", "asks"}`` every period (Binance documents it as
pushed every period), futures a ``depthUpdate`` with ``E``, ``T``, ``U``, ``u``, ``pu`` pushed only when the
book changed since the stream's previous push (``U`` = previous ``u`` + 1, as for the diff stream).

:class:`DepthPublisher` is fed the engine's ``DepthEvent`` s by the ``EventRouter`` (only the symbols with a
subscribed diff stream cost anything) and asked for payloads by the ``TickerPublisher``'s clock.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from localex.engine.errors import ExchangeError
from localex.server import wire
from localex.server.streams import is_diff_depth

if TYPE_CHECKING:
    from localex.engine.event_types import DepthEvent
    from localex.server.state import ServerState


class DepthWindow:
    """The changes of one diff depth stream since its previous push."""

    __slots__ = ("first", "last", "prev", "time_ns", "bids", "asks")

    def __init__(self) -> None:
        self.first = 0  # U of the window; 0 while the window is empty
        self.last = 0
        self.prev = 0  # pu: u before the window's first change (= u of the stream's previous push)
        self.time_ns = 0
        self.bids: dict[int, int] = {}
        self.asks: dict[int, int] = {}

    def add(self, event: DepthEvent) -> None:
        """Fold one engine diff into the window (later quantities replace earlier ones)."""
        if not self.first:
            self.first = event.first_update_id
            self.prev = event.prev_last_update_id
        self.last = event.last_update_id
        self.time_ns = event.time_ns
        bids = self.bids
        for price, qty in event.bids:
            bids[price] = qty
        asks = self.asks
        for price, qty in event.asks:
            asks[price] = qty

    def clear(self) -> None:
        """Start the next window."""
        self.first = 0
        self.bids = {}
        self.asks = {}


class DepthPublisher:
    """Aggregates depth events per subscribed diff stream; builds depth payloads when a period is due."""

    def __init__(self, state: ServerState) -> None:
        self.state = state
        self.windows: dict[tuple[str, str], DepthWindow] = {}  # (market, stream) -> its open window
        self._routes: dict[tuple[str, str], list[DepthWindow]] = {}  # (market, SYMBOL) -> its streams' windows
        self._partial_u: dict[tuple[str, str], int] = {}  # futures partial streams: u of the previous push
        self._version = -1

    def sync(self) -> None:
        """Follow the hub's subscriptions: open windows for new diff streams, forget unsubscribed ones."""
        hub = self.state.hub
        if self._version == hub.version:
            return
        self._version = hub.version
        windows: dict[tuple[str, str], DepthWindow] = {}
        routes: dict[tuple[str, str], list[DepthWindow]] = {}
        for market, stream in hub.periodic:
            symbol, _, channel = stream.partition("@")
            if not is_diff_depth(channel):
                continue
            window = self.windows.get((market, stream)) or DepthWindow()
            windows[(market, stream)] = window
            routes.setdefault((market, symbol.upper()), []).append(window)
        self.windows = windows
        self._routes = routes
        for key in [k for k in self._partial_u if k not in hub.periodic]:
            del self._partial_u[key]

    def on_depth(self, event: DepthEvent) -> None:
        """Engine depth diff: add it to the open window of each subscribed diff stream of its symbol."""
        if self._version != self.state.hub.version:
            self.sync()
        windows = self._routes.get((event.market, event.symbol))
        if windows:
            for window in windows:
                window.add(event)

    def payload(self, market: str, stream: str, now_ms: int) -> dict[str, object] | None:
        """The push of a depth stream whose period came round, or None when there is nothing to push."""
        symbol, _, channel = stream.partition("@")
        if is_diff_depth(channel):
            return self._diff(market, stream, now_ms)
        levels = int(channel[len("depth") :].partition("@")[0])
        return self._partial(market, stream, symbol.upper(), levels, now_ms)

    def _diff(self, market: str, stream: str, now_ms: int) -> dict[str, object] | None:
        window = self.windows.get((market, stream))
        if window is None or not window.first:
            return None  # nothing changed in this window: Binance pushes nothing
        symbol = stream.partition("@")[0].upper()
        spec = self.state.exchange.spec(market, symbol)
        bids = wire.levels(spec, sorted(window.bids.items(), reverse=True))
        asks = wire.levels(spec, sorted(window.asks.items()))
        if market == "spot":
            body: dict[str, object] = {
                "e": "depthUpdate",
                "E": now_ms,
                "s": symbol,
                "U": window.first,
                "u": window.last,
                "b": bids,
                "a": asks,
            }
        else:
            body = {
                "e": "depthUpdate",
                "E": now_ms,
                "T": min(wire.ms(window.time_ns), now_ms),
                "s": symbol,
                "U": window.first,
                "u": window.last,
                "pu": window.prev,
                "b": bids,
                "a": asks,
            }
        window.clear()
        return body

    def _partial(self, market: str, stream: str, symbol: str, levels: int, now_ms: int) -> dict[str, object] | None:
        ex = self.state.exchange
        try:
            spec = ex.spec(market, symbol)
        except ExchangeError:
            return None  # Binance accepts streams of unknown symbols and never pushes on them
        snap = ex.depth(market, symbol, levels)
        bids = wire.levels(spec, snap.bids)
        asks = wire.levels(spec, snap.asks)
        if market == "spot":
            return {"lastUpdateId": snap.last_update_id, "bids": bids, "asks": asks}
        key = (market, stream)
        u = snap.last_update_id
        prev = self._partial_u.get(key)
        if prev == u:
            return None  # the book did not change since the previous push
        self._partial_u[key] = u
        if prev is None:  # first push of the stream: it covers the book's latest change
            prev = max(u - 1, 0)
        return {
            "e": "depthUpdate",
            "E": now_ms,
            "T": now_ms,
            "s": symbol,
            "U": min(prev + 1, u),
            "u": u,
            "pu": prev,
            "b": bids,
            "a": asks,
        }
