"""Timer-driven market streams: 24h tickers, mini tickers and mark prices, per symbol and for the market.

Binance pushes these on a clock, not per trade: Spot ``<symbol>@ticker`` / ``@miniTicker`` every 1000 ms,
USD-M futures every 500 ms, the all-market arrays ``!ticker@arr`` / ``!miniTicker@arr`` every 1000 ms (and
``!miniTicker@arr@<n>ms`` every n ms); USD-M ``<symbol>@markPrice`` and ``!markPrice@arr`` every 3 s, every
second with ``@1s``. The ticker arrays hold only the symbols whose statistics changed since the previous
push and are skipped when nothing changed; the mark price array always holds every symbol. The numbers
come from the engine's state, the same source as GET ``/api/v3/ticker/24hr``, ``/fapi/v1/ticker/24hr``
and ``/fapi/v1/premiumIndex``. Depth streams run on the same clock; their payloads come from the
:class:`~localex.server.depth.DepthPublisher` (diff windows, partial snapshots).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from localex.engine.errors import ExchangeError
from localex.server import wire
from localex.server.streams import is_diff_depth

if TYPE_CHECKING:
    from localex.engine.marketdata import Ticker24h
    from localex.engine.markets import SymbolSpec
    from localex.server.depth import DepthPublisher
    from localex.server.state import ServerState

TICK_S = 0.1  # the publisher's clock; every period is a multiple of 100 ms
_VOLATILE = ("E", "O", "C")  # fields that move with the clock alone; a change elsewhere is a real change


class TickerPublisher:
    """Publishes the subscribed timer-driven streams of ``state.hub.periodic`` when they are due."""

    def __init__(self, state: ServerState, depth: DepthPublisher) -> None:
        self.state = state
        self.depth = depth
        self._due: dict[tuple[str, str], int] = {}
        self._last: dict[tuple[str, str], dict[str, dict[str, object]]] = {}
        self.published = 0

    def tick(self, now_ms: int) -> int:
        """Publish every stream whose period has come round; return the number of payloads published."""
        periodic = self.state.hub.periodic
        for key in [k for k in self._due if k not in periodic]:  # unsubscribed since the last tick
            self._due.pop(key, None)
            self._last.pop(key, None)
        self.depth.sync()
        stats: dict[tuple[str, str], Ticker24h] = {}
        sent = 0
        for (market, stream), period in list(periodic.items()):
            due = self._due.get((market, stream))
            if due is None and is_diff_depth(stream.partition("@")[2]):
                # a diff stream's first window closes at its period's boundary, as every later one: pushed at
                # the first tick after subscribing, it came a fraction of a period before the next push
                self._due[(market, stream)] = now_ms - now_ms % period + period
                continue
            if now_ms < (due or 0):
                continue
            self._due[(market, stream)] = now_ms - now_ms % period + period
            payload = self._payload(market, stream, now_ms, stats)
            if payload is not None:
                self.state.hub.publish(market, stream, payload)
                sent += 1
        self.published += sent
        return sent

    def _stats(self, market: str, symbol: str, stats: dict[tuple[str, str], Ticker24h]) -> Ticker24h:
        key = (market, symbol)
        t = stats.get(key)
        if t is None:
            t = stats[key] = self.state.exchange.ticker_24h(market, symbol)
        return t

    def _ticker(
        self, market: str, symbol: str, now_ms: int, stats: dict[tuple[str, str], Ticker24h], mini: bool
    ) -> dict[str, object]:
        ex = self.state.exchange
        spec = ex.spec(market, symbol)
        t = self._stats(market, symbol, stats)
        if mini:
            return wire.mini_ticker_event(t, spec, now_ms)
        last = ex.recent_trades(market, symbol, 1)
        return wire.ticker_event(t, spec, ex.book_ticker(market, symbol), last[-1].qty if last else 0, now_ms)

    def _mark(self, spec: SymbolSpec, now_ms: int) -> dict[str, object]:
        ex = self.state.exchange
        rate, next_ms = ex.funding_info(spec.symbol)
        return wire.mark_price_event(spec, ex.mark_price(spec.symbol), rate, next_ms, now_ms)

    def _payload(self, market: str, stream: str, now_ms: int, stats: dict[tuple[str, str], Ticker24h]) -> object | None:
        if not stream.startswith("!"):
            symbol, _, channel = stream.partition("@")
            if channel.startswith("depth"):
                return self.depth.payload(market, stream, now_ms)
            try:
                if channel.startswith("markPrice"):
                    return self._mark(self.state.exchange.spec(market, symbol.upper()), now_ms)
                return self._ticker(market, symbol.upper(), now_ms, stats, channel == "miniTicker")
            except ExchangeError:
                return None  # Binance accepts streams of unknown symbols and never pushes on them
        if stream.startswith("!markPrice"):  # every symbol on each push, changed or not, as Binance does
            return [self._mark(spec, now_ms) for spec in self.state.exchange.specs(market)]
        mini = stream.startswith("!miniTicker")
        last = self._last.setdefault((market, stream), {})
        changed: list[dict[str, object]] = []
        for spec in self.state.exchange.specs(market):
            body = self._ticker(market, spec.symbol, now_ms, stats, mini)
            stable = {k: v for k, v in body.items() if k not in _VOLATILE}
            if last.get(spec.symbol) != stable:
                last[spec.symbol] = stable
                changed.append(body)
        return changed or None
