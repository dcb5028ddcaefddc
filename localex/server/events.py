"""Engine events -> Binance stream payloads and user-data events.

The engine calls :meth:`EventRouter.on_event` synchronously while it works; the router only queues the
event and formats everything once the engine call has returned (listeners may not call back into the
engine, and order placement stays fast).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Protocol

from localex.engine.event_types import (
    AccountEvent,
    AggTradeEvent,
    BalanceDeltaEvent,
    BookTickerEvent,
    DepthEvent,
    KlineEvent,
    OrderEvent,
    TradeEvent,
)
from localex.engine.markets import SymbolSpec
from localex.server import routes_algo, wire
from localex.server.routes_spot import new_client_id

if TYPE_CHECKING:
    from localex.server.depth import DepthPublisher
    from localex.server.state import ServerState

log = logging.getLogger(__name__)


class UserSession(Protocol):
    """A WebSocket API session holding spot user-data subscriptions."""

    def push_event(self, subscription_id: int, event: dict[str, object]) -> None:
        """Deliver one user-data event."""
        ...


class EventRouter:
    """Queues engine events and publishes them to stream and user-data subscribers."""

    def __init__(self, state: ServerState, depth: DepthPublisher) -> None:
        self.state = state
        self.depth = depth
        self._pending: list[object] = []
        self._scheduled = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self.published = 0
        self._agg_sent: dict[tuple[str, str], int] = {}

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Deliver queued events on ``loop`` (the server's loop)."""
        self._loop = loop

    def on_event(self, event: object) -> None:
        """Engine listener: queue the event, schedule one flush."""
        self._pending.append(event)
        if not self._scheduled and self._loop is not None:
            self._scheduled = True
            self._loop.call_soon(self.flush)

    def flush(self) -> None:
        """Publish every queued event (in engine order)."""
        self._scheduled = False
        pending, self._pending = self._pending, []
        traded: set[tuple[str, str]] = set()
        for event in pending:
            try:
                if isinstance(event, TradeEvent):
                    traded.add((event.market, event.symbol))
                self._publish(event)
            except Exception:
                log.exception("failed to publish %s", type(event).__name__)
        for market, symbol in traded:
            try:
                self._agg_trades(market, symbol)
            except Exception:
                log.exception("failed to publish aggTrades of %s %s", market, symbol)
        self.published += len(pending)

    def _publish(self, event: object) -> None:
        if isinstance(event, OrderEvent):
            self._order(event)
        elif isinstance(event, AccountEvent):
            self._account(event)
        elif isinstance(event, BalanceDeltaEvent):
            if event.wallet == "SPOT":
                self._spot_user(event.account_id, wire.balance_update(event.asset, event.delta, event.time_ns))
        elif isinstance(event, DepthEvent):
            self.depth.on_depth(event)  # pushed on the stream's clock (``depth``), not per event
        else:
            self._market(event)

    def _spec(self, market: str, symbol: str):
        return self.state.exchange.spec(market, symbol)

    def _market(self, event: object) -> None:
        hub = self.state.hub
        if isinstance(event, TradeEvent):
            stream = f"{event.symbol.lower()}@trade"
            if hub.has_subscribers(event.market, stream):
                hub.publish(event.market, stream, wire.trade_event(event, self._spec(event.market, event.symbol)))
        elif isinstance(event, AggTradeEvent):
            self._agg_trade(event)
        elif isinstance(event, BookTickerEvent):
            streams = [
                s for s in (f"{event.symbol.lower()}@bookTicker", "!bookTicker") if hub.has_subscribers(event.market, s)
            ]
            if streams:
                body = wire.book_ticker_event(event, self._spec(event.market, event.symbol))
                for stream in streams:
                    hub.publish(event.market, stream, body)
        elif isinstance(event, KlineEvent):
            stream = f"{event.symbol.lower()}@kline_{event.interval}"
            if hub.has_subscribers(event.market, stream):
                hub.publish(event.market, stream, wire.kline_event(event, self._spec(event.market, event.symbol)))

    def _agg_trade(self, event: AggTradeEvent) -> None:
        key = (event.market, event.symbol)
        if event.agg_id <= self._agg_sent.get(key, 0):
            return
        self._agg_sent[key] = event.agg_id
        stream = f"{event.symbol.lower()}@aggTrade"
        if self.state.hub.has_subscribers(event.market, stream):
            self.state.hub.publish(
                event.market, stream, wire.agg_trade_event(event, self._spec(event.market, event.symbol))
            )

    def _agg_trades(self, market: str, symbol: str) -> None:
        """Publish aggregate trades completed by the engine call just finished (read after the call)."""
        key = (market, symbol)
        last = self._agg_sent.get(key)
        if last is None:
            last = 0
        for agg in self.state.exchange.agg_trades(market, symbol, from_id=last + 1, limit=1000):
            self._agg_trade(agg)

    # ---- user data -------------------------------------------------------------------------------------
    def _spot_user(self, account_id: str, payload: dict[str, object]) -> None:
        for session, sub_id in list(self.state.user_subscriptions.get(account_id, ())):
            session.push_event(sub_id, payload)  # type: ignore[attr-defined]

    def _futures_user(self, account_id: str, payload: dict[str, object]) -> None:
        key = self.state.listen_keys.by_account.get(account_id)
        if key is not None:
            self.state.hub.publish_user([key], payload)

    def _order(self, event: OrderEvent) -> None:
        order = event.order
        spec = self._spec(order.market, order.symbol)
        if order.market == "spot":
            cancel_id = None
            if event.exec_type == "CANCELED":  # the cancel request's own id (``routes_spot.cancel``), or a new one
                cancel_id = self.state.cancel_client_ids.pop((event.account_id, order.order_id), None)
            if event.account_id in self.state.user_subscriptions:
                if event.exec_type == "CANCELED" and cancel_id is None:
                    cancel_id = new_client_id()
                self._spot_user(event.account_id, wire.execution_report(event, spec, cancel_id))
        elif event.account_id in self.state.listen_keys.by_account:
            if routes_algo.is_algo(order):
                self._algo(event, spec)
            else:
                self._futures_user(event.account_id, wire.order_trade_update(event, spec))

    def _algo(self, event: OrderEvent, spec: SymbolSpec) -> None:
        """An algo order's events: ``ALGO_UPDATE`` while it waits (NEW, CANCELED, EXPIRED); once triggered
        (the engine's NEW of the working order) ``ALGO_UPDATE`` TRIGGERED, then its order's
        ``ORDER_TRADE_UPDATE``s, and ``ALGO_UPDATE`` FINISHED after the one that closes it."""
        order, account = event.order, event.account_id
        if not order.is_working:
            self._futures_user(account, routes_algo.algo_update(order, event.time_ns, spec))
            return
        if event.exec_type == "NEW":
            self._futures_user(account, routes_algo.algo_update(order, event.time_ns, spec))
        self._futures_user(account, wire.order_trade_update(event, spec))
        if routes_algo.algo_status(order) == "FINISHED":
            self._futures_user(account, routes_algo.algo_update(order, event.time_ns, spec))

    def _account(self, event: AccountEvent) -> None:
        if event.wallet == "SPOT":
            if event.account_id in self.state.user_subscriptions:
                self._spot_user(event.account_id, wire.outbound_account_position(event))
            return
        if event.account_id not in self.state.listen_keys.by_account:
            return
        ex = self.state.exchange
        positions = []
        for p in event.positions:
            spec = self._spec("usdm", p.symbol)
            positions.append(
                wire.position_fields(p, spec, ex.mark_price(p.symbol), ex.margin_type(event.account_id, p.symbol))
            )
        self._futures_user(event.account_id, wire.account_update(event, positions))
