"""WebSocket market streams: raw ``/ws/<stream>``, combined ``/stream?streams=``, SUBSCRIBE messages.

Spot streams live at ``/ws``, ``/stream`` and ``/stream/ws/...`` (ccxt.pro's Spot URL must contain
``/stream``); USD-M Futures streams under ``/fstream`` with ccxt.pro's ``/public``, ``/market`` and
``/private`` categories. ``?listenKey=`` (or a listenKey as a path segment) on a futures connection
attaches that account's user-data events.
"""

from __future__ import annotations

import itertools
import logging
import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import orjson
from aiohttp import WSMsgType, web

from oms.localex.server.counters import Counters
from oms.localex.server.outbox import Outbox

log = logging.getLogger(__name__)

STREAM_RE = re.compile(
    r"^[a-z0-9_\-.]{1,30}@(trade|aggTrade|bookTicker|depth|depth@100ms|depth@250ms|depth@500ms|"
    r"depth(5|10|20)(@100ms|@250ms|@500ms)?|kline_(1s|1m|3m|5m|15m|30m|1h|2h|4h|6h|8h|12h|1d|3d|1w|1M)|"
    r"ticker|miniTicker|markPrice|markPrice@1s)$"
)
MAX_STREAMS_PER_CONNECTION = 1024
CATEGORIES = ("public", "market", "private")


def normalise_stream(name: str) -> str | None:
    """Binance's canonical form of a stream name (symbol lower-cased), or None if it is not one."""
    if "@" not in name:
        return None
    symbol, _, channel = name.partition("@")
    canonical = f"{symbol.lower()}@{channel}"
    return canonical if STREAM_RE.match(canonical) else None


@dataclass(eq=False, slots=True)
class StreamConnection:
    """One client WebSocket on the market-stream endpoints."""

    market: str
    combined: bool
    outbox: Outbox
    streams: set[str] = field(default_factory=set)
    listen_key: str | None = None


def wanted_market_data(streams: Iterable[str]) -> tuple[set[str], set[str]]:
    """The engine event kinds and kline intervals that the given stream names need.

    aggTrade streams also need trades: aggregates are read from the engine after each traded call.
    markPrice events always flow from the engine, so they need nothing here.
    """
    kinds: set[str] = set()
    intervals: set[str] = set()
    for stream in streams:
        channel = stream.partition("@")[2]
        if channel.startswith("kline_"):
            kinds.add("kline")
            intervals.add(channel[len("kline_"):])
        elif channel.startswith("depth"):
            kinds.add("depth")
        elif channel == "trade":
            kinds.add("trade")
        elif channel == "aggTrade":
            kinds.update(("trade", "aggTrade"))
        elif channel == "bookTicker":
            kinds.add("bookTicker")
    return kinds, intervals


class StreamHub:
    """Who listens to which stream; fans each event out to its subscribers.

    ``on_interest(kinds, kline_intervals)``, when set, is called whenever the set of subscribed streams
    changes, so the engine builds only the market-data events somebody will receive.
    """

    def __init__(self, counters: Counters,
                 on_interest: Callable[[set[str], set[str]], None] | None = None) -> None:
        self.counters = counters
        self.on_interest = on_interest
        self._subs: dict[tuple[str, str], set[StreamConnection]] = defaultdict(set)
        self._by_listen_key: dict[str, set[StreamConnection]] = defaultdict(set)
        self.connections: set[StreamConnection] = set()
        self._ids = itertools.count(1)

    def has_subscribers(self, market: str, stream: str) -> bool:
        """True when some connection listens to ``stream`` on ``market``."""
        return bool(self._subs.get((market, stream)))

    def publish(self, market: str, stream: str, data: dict[str, object]) -> None:
        """Send one event to every subscriber of ``stream`` (raw or combined framing)."""
        subscribers = self._subs.get((market, stream))
        if not subscribers:
            return
        raw: str | None = None
        combined: str | None = None
        for conn in subscribers:
            if conn.combined:
                if combined is None:
                    combined = orjson.dumps({"stream": stream, "data": data}).decode()
                conn.outbox.send(combined)
            else:
                if raw is None:
                    raw = orjson.dumps(data).decode()
                conn.outbox.send(raw)

    def publish_user(self, listen_keys: list[str], data: dict[str, object]) -> int:
        """Send a futures user-data event to connections opened with any of ``listen_keys``."""
        sent = 0
        frame_raw: str | None = None
        for key in listen_keys:
            for conn in self._by_listen_key.get(key, ()):
                if conn.combined:
                    conn.outbox.send(orjson.dumps({"stream": key, "data": data}).decode())
                else:
                    if frame_raw is None:
                        frame_raw = orjson.dumps(data).decode()
                    conn.outbox.send(frame_raw)
                sent += 1
        return sent

    def close_listen_key(self, listen_key: str) -> None:
        """Forget a listenKey's connections (the key expired or was closed)."""
        for conn in self._by_listen_key.pop(listen_key, set()):
            conn.outbox.send(orjson.dumps({"e": "listenKeyExpired", "E": 0, "listenKey": listen_key}).decode())

    def _subscribe(self, conn: StreamConnection, stream: str) -> None:
        conn.streams.add(stream)
        key = (conn.market, stream)
        new = key not in self._subs
        self._subs[key].add(conn)
        if new:
            self.refresh_interest()

    def _unsubscribe(self, conn: StreamConnection, stream: str) -> None:
        conn.streams.discard(stream)
        subs = self._subs.get((conn.market, stream))
        if subs is not None:
            subs.discard(conn)
            if not subs:
                del self._subs[(conn.market, stream)]
                self.refresh_interest()

    def refresh_interest(self) -> None:
        """Tell ``on_interest`` what the current subscriptions need."""
        if self.on_interest is not None:
            self.on_interest(*wanted_market_data(stream for _, stream in self._subs))

    def attach(self, conn: StreamConnection, initial: list[str]) -> None:
        """Register a new connection with the streams named in its URL."""
        self.connections.add(conn)
        for name in initial:
            stream = normalise_stream(name)
            if stream is not None:
                self._subscribe(conn, stream)
        if conn.listen_key is not None:
            self._by_listen_key[conn.listen_key].add(conn)

    def detach(self, conn: StreamConnection) -> None:
        """Drop a closed connection from every index."""
        self.connections.discard(conn)
        for stream in list(conn.streams):
            self._unsubscribe(conn, stream)
        if conn.listen_key is not None:
            conns = self._by_listen_key.get(conn.listen_key)
            if conns is not None:
                conns.discard(conn)
                if not conns:
                    del self._by_listen_key[conn.listen_key]

    def handle_frame(self, conn: StreamConnection, text: str) -> dict[str, object]:
        """Answer one client frame (SUBSCRIBE, UNSUBSCRIBE, LIST_SUBSCRIPTIONS, SET/GET_PROPERTY)."""
        try:
            message = orjson.loads(text)
        except orjson.JSONDecodeError:
            self.counters.bad("ws_stream_invalid_json")
            return {"error": {"code": 3, "msg": "Invalid JSON: expected value at line 1 column 1"}}
        if not isinstance(message, dict):
            self.counters.bad("ws_stream_invalid_request")
            return {"error": {"code": 2, "msg": "Invalid request: expected an object"}}
        request_id = message.get("id")
        if request_id is not None and (not isinstance(request_id, int | str) or isinstance(request_id, bool)):
            self.counters.bad("ws_stream_invalid_request")
            return {"error": {"code": 2, "msg": "Invalid request: request ID must be an unsigned integer"}}
        method = message.get("method")
        params = message.get("params", [])
        if method not in ("SUBSCRIBE", "UNSUBSCRIBE", "LIST_SUBSCRIPTIONS", "SET_PROPERTY", "GET_PROPERTY"):
            self.counters.bad("ws_stream_invalid_request")
            return {"error": {"code": 2, "msg": f"Invalid request: unknown variant {method!r}, expected one of "
                                                "SUBSCRIBE, UNSUBSCRIBE, LIST_SUBSCRIPTIONS, SET_PROPERTY, "
                                                "GET_PROPERTY"}, "id": request_id}
        if method == "LIST_SUBSCRIPTIONS":
            return {"result": sorted(conn.streams), "id": request_id}
        if method == "GET_PROPERTY":
            return {"result": conn.combined, "id": request_id}
        if method == "SET_PROPERTY":
            if not isinstance(params, list) or len(params) != 2 or params[0] != "combined":
                return {"error": {"code": 0, "msg": "Unknown property"}, "id": request_id}
            if not isinstance(params[1], bool):
                return {"error": {"code": 1, "msg": "Invalid value type: expected Boolean"}, "id": request_id}
            conn.combined = params[1]
            return {"result": None, "id": request_id}
        return self._subscription_change(conn, method, params, request_id)

    def _subscription_change(self, conn: StreamConnection, method: str, params: object,
                             request_id: object) -> dict[str, object]:
        if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
            self.counters.bad("ws_stream_invalid_request")
            return {"error": {"code": 2, "msg": "Invalid request: params must be an array of strings"},
                    "id": request_id}
        streams: list[str] = []
        for name in params:
            stream = normalise_stream(name)
            if stream is None:
                self.counters.bad("ws_stream_unknown_stream")
                return {"error": {"code": 2, "msg": f"Invalid request: invalid stream name {name!r}"},
                        "id": request_id}
            streams.append(stream)
        if method == "SUBSCRIBE":
            if len(conn.streams | set(streams)) > MAX_STREAMS_PER_CONNECTION:
                return {"error": {"code": 2, "msg": "Invalid request: too many streams"}, "id": request_id}
            for stream in streams:
                self._subscribe(conn, stream)
        else:
            for stream in streams:
                self._unsubscribe(conn, stream)
        return {"result": None, "id": request_id}


def parse_stream_path(path: str, query_streams: str | None) -> tuple[str, bool, list[str]]:
    """``(market, combined, streams)`` from a stream URL path; raise ValueError if it is not one."""
    market = "spot"
    parts = [p for p in path.split("/") if p]
    if parts and parts[0] == "fstream":
        market = "usdm"
        parts = parts[1:]
    elif parts and parts[0] == "stream" and len(parts) > 1:
        parts = parts[1:]  # ccxt.pro's Spot URL ``/stream/ws/<n>``
    if parts and parts[0] in CATEGORIES:
        parts = parts[1:]
    if not parts or parts[0] not in ("ws", "stream"):
        raise ValueError(f"not a stream path: {path}")
    combined = parts[0] == "stream"
    names = list(parts[1:])
    if query_streams:
        names.extend(s for s in query_streams.split("/") if s)
    return market, combined, names


async def serve_stream_socket(request: web.Request, hub: StreamHub, listen_keys: dict[str, str],
                              heartbeat: float = 30.0) -> web.StreamResponse:
    """The handler of every market-stream WebSocket path."""
    try:
        market, combined, names = parse_stream_path(request.path, request.query.get("streams"))
    except ValueError:
        hub.counters.bad("ws_stream_bad_path")
        raise web.HTTPNotFound(text='{"code":-1000,"msg":"Not Found: unknown stream path."}',
                               content_type="application/json") from None
    listen_key = request.query.get("listenKey")
    if listen_key is None:
        listen_key = next((n for n in names if n in listen_keys), None)
    if listen_key is not None and listen_key not in listen_keys:
        hub.counters.bad("ws_stream_unknown_listen_key")
        raise web.HTTPBadRequest(text='{"code":-1125,"msg":"This listenKey does not exist."}',
                                 content_type="application/json")
    ws = web.WebSocketResponse(heartbeat=heartbeat, max_msg_size=1 << 16)
    await ws.prepare(request)
    conn = StreamConnection(market, combined, Outbox(ws, f"stream:{request.path}"), listen_key=listen_key)
    hub.attach(conn, [n for n in names if n != listen_key])
    try:
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                reply = hub.handle_frame(conn, msg.data)
                conn.outbox.send(orjson.dumps(reply).decode())
            elif msg.type == WSMsgType.BINARY:
                hub.counters.bad("ws_stream_binary_frame")
                conn.outbox.send(orjson.dumps(
                    {"error": {"code": 3, "msg": "Invalid JSON: binary frames are not supported"}}).decode())
            elif msg.type == WSMsgType.ERROR:
                break
    finally:
        hub.detach(conn)
        await conn.outbox.close()
    return ws
