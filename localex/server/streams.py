"""WebSocket market streams: raw ``/ws/<stream>``, combined ``/stream?streams=``, SUBSCRIBE messages.

Spot streams live at ``/ws``, ``/stream`` and ``/stream/ws/...`` (ccxt.pro's Spot URL must contain
``/stream``); USD-M Futures streams under ``/fstream`` with ccxt.pro's ``/public``, ``/market`` and
``/private`` categories. ``?listenKey=`` (or a listenKey as a path segment) on a futures connection
attaches that account's user-data events.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import orjson
from aiohttp import WSCloseCode, WSMsgType, web

from localex.server.counters import Counters
from localex.server.outbox import Outbox
from localex.server.ratelimit import RateLimitConfig

log = logging.getLogger(__name__)

STREAM_RE = re.compile(
    r"^[a-z0-9_\-.]{1,30}@(trade|aggTrade|bookTicker|depth|depth@100ms|depth@250ms|depth@500ms|"
    r"depth(5|10|20)(@100ms|@250ms|@500ms)?|kline_(1s|1m|3m|5m|15m|30m|1h|2h|4h|6h|8h|12h|1d|3d|1w|1M)|"
    r"ticker|miniTicker|markPrice|markPrice@1s)$"
)
# All-market streams: names start with "!" and are case-sensitive. ``!bookTicker`` and ``!markPrice@arr``
# are futures only (Spot retired the first and never had the second); ``!miniTicker@arr@<n>ms`` is the slower
# variant python-binance's ``miniticker_socket`` uses.
ALL_MARKET_RE = re.compile(r"^!(ticker@arr|miniTicker@arr(@[1-9][0-9]{3,5}ms)?|bookTicker|markPrice@arr(@1s)?)$")
FUTURES_ONLY = ("!bookTicker", "!markPrice@arr", "!markPrice@arr@1s")
# Pushed on a timer, not per engine event: (market, channel) -> period in ms (Binance's update speeds;
# mark price every 3 s, or every second with ``@1s``).
TICKER_PERIOD_MS = {
    ("spot", "ticker"): 1000,
    ("spot", "miniTicker"): 1000,
    ("usdm", "ticker"): 500,
    ("usdm", "miniTicker"): 500,
    ("usdm", "markPrice"): 3000,
    ("usdm", "markPrice@1s"): 1000,
    ("usdm", "!markPrice@arr"): 3000,
    ("usdm", "!markPrice@arr@1s"): 1000,
}
ALL_MARKET_PERIOD_MS = 1000
# Depth streams are pushed on a clock too: a speed suffix names the period, without one the market's default
# (Spot ``@depth`` / ``@depth<N>`` every 1000 ms, USD-M every 250 ms).
DEPTH_PERIOD_MS = {"spot": 1000, "usdm": 250}
DEPTH_CHANNEL_RE = re.compile(r"^depth(5|10|20)?(?:@(100|250|500)ms)?$")
CATEGORIES = ("public", "market", "private")


def normalise_stream(name: str, market: str = "spot") -> str | None:
    """Binance's canonical form of a stream name (symbol lower-cased), or None if it is not one."""
    if name.startswith("!"):
        if not ALL_MARKET_RE.match(name) or (name in FUTURES_ONLY and market == "spot"):
            return None
        return name
    if "@" not in name:
        return None
    symbol, _, channel = name.partition("@")
    canonical = f"{symbol.lower()}@{channel}"
    return canonical if STREAM_RE.match(canonical) else None


def stream_period_ms(market: str, stream: str) -> int | None:
    """How often a timer-driven stream is pushed (ms), or None for streams pushed per engine event."""
    if stream.startswith("!"):
        if stream.startswith("!miniTicker@arr@"):
            return int(stream[len("!miniTicker@arr@") : -2])
        if stream.startswith("!markPrice"):
            return TICKER_PERIOD_MS[(market, stream)]
        return None if stream == "!bookTicker" else ALL_MARKET_PERIOD_MS
    channel = stream.partition("@")[2]
    depth = DEPTH_CHANNEL_RE.match(channel)
    if depth is not None:
        return int(depth.group(2)) if depth.group(2) else DEPTH_PERIOD_MS[market]
    return TICKER_PERIOD_MS.get((market, channel))


def is_diff_depth(channel: str) -> bool:
    """True for a diff depth channel (``depth``, ``depth@100ms``...), False for partial depth and the rest."""
    return channel == "depth" or channel.startswith("depth@")


@dataclass(eq=False, slots=True)
class StreamConnection:
    """One client WebSocket on the market-stream endpoints.

    ``received`` holds the arrival times (monotonic seconds) of the incoming messages of the last second,
    for Binance's per-connection message rate limit.
    """

    market: str
    combined: bool
    outbox: Outbox
    streams: set[str] = field(default_factory=set)
    listen_key: str | None = None
    received: deque[float] = field(default_factory=deque)


def wanted_market_data(streams: Iterable[str]) -> tuple[set[str], set[str]]:
    """The engine event kinds and kline intervals that the given stream names need.

    aggTrade streams also need trades: aggregates are read from the engine after each traded call.
    Mark price and partial depth streams are timer-driven (``tickers``) and read the engine's state, so they
    need nothing here; diff depth streams aggregate the engine's depth events between their pushes.
    """
    kinds: set[str] = set()
    intervals: set[str] = set()
    for stream in streams:
        channel = stream.partition("@")[2]
        if channel.startswith("kline_"):
            kinds.add("kline")
            intervals.add(channel[len("kline_") :])
        elif is_diff_depth(channel):
            kinds.add("depth")
        elif channel == "trade":
            kinds.add("trade")
        elif channel == "aggTrade":
            kinds.update(("trade", "aggTrade"))
        elif channel == "bookTicker" or stream == "!bookTicker":
            kinds.add("bookTicker")
    return kinds, intervals


class StreamHub:
    """Who listens to which stream; fans each event out to its subscribers.

    ``on_interest(kinds, kline_intervals)``, when set, is called whenever the set of subscribed streams
    changes, so the engine builds only the market-data events somebody will receive. ``periodic`` holds the
    subscribed timer-driven streams (tickers, depth) as ``(market, stream) -> period ms``; ``version`` grows
    whenever a stream gains its first or loses its last subscriber (publishers cache per-symbol indexes on it).
    """

    def __init__(
        self,
        counters: Counters,
        on_interest: Callable[[set[str], set[str]], None] | None = None,
        limits: RateLimitConfig | None = None,
    ) -> None:
        self.counters = counters
        self.on_interest = on_interest
        self.limits = limits or RateLimitConfig()
        self._subs: dict[tuple[str, str], set[StreamConnection]] = defaultdict(set)
        self._by_listen_key: dict[str, set[StreamConnection]] = defaultdict(set)
        self.connections: set[StreamConnection] = set()
        self.periodic: dict[tuple[str, str], int] = {}
        self.version = 0
        self._ids = itertools.count(1)

    def has_subscribers(self, market: str, stream: str) -> bool:
        """True when some connection listens to ``stream`` on ``market``."""
        return bool(self._subs.get((market, stream)))

    def publish(self, market: str, stream: str, data: object) -> None:
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
        """Forget a listenKey's connections (the key expired or was closed), telling them with
        ``listenKeyExpired``; ``E`` is the event time in ms as a string, as Binance's USD-M documents it."""
        event_ms = str(time.time_ns() // 1_000_000)
        for conn in self._by_listen_key.pop(listen_key, set()):
            conn.outbox.send(orjson.dumps({"e": "listenKeyExpired", "E": event_ms, "listenKey": listen_key}).decode())

    def _subscribe(self, conn: StreamConnection, stream: str) -> None:
        conn.streams.add(stream)
        key = (conn.market, stream)
        new = key not in self._subs
        self._subs[key].add(conn)
        if new:
            self.version += 1
            period = stream_period_ms(conn.market, stream)
            if period is not None:
                self.periodic[key] = period
            self.refresh_interest()

    def _unsubscribe(self, conn: StreamConnection, stream: str) -> None:
        conn.streams.discard(stream)
        subs = self._subs.get((conn.market, stream))
        if subs is not None:
            subs.discard(conn)
            if not subs:
                del self._subs[(conn.market, stream)]
                self.version += 1
                self.periodic.pop((conn.market, stream), None)
                self.refresh_interest()

    def refresh_interest(self) -> None:
        """Tell ``on_interest`` what the current subscriptions need."""
        if self.on_interest is not None:
            self.on_interest(*wanted_market_data(stream for _, stream in self._subs))

    def attach(self, conn: StreamConnection, initial: list[str]) -> None:
        """Register a new connection with the streams named in its URL (the caller validated them)."""
        self.connections.add(conn)
        for name in initial:
            stream = normalise_stream(name, conn.market)
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

    def message_rate_exceeded(self, conn: StreamConnection, now: float) -> bool:
        """Count one incoming message (text frame, ping or pong); True when the connection went over
        Binance's per-second limit (Spot 5, futures 10) and must be closed."""
        window = conn.received
        window.append(now)
        while window and window[0] <= now - 1.0:
            window.popleft()
        if not self.limits.enabled:
            return False
        return len(window) > self.limits.ws_messages_per_second(conn.market)

    def handle_frame(self, conn: StreamConnection, text: str) -> dict[str, object]:
        """Answer one client frame (SUBSCRIBE, UNSUBSCRIBE, LIST_SUBSCRIPTIONS, SET/GET_PROPERTY).

        Errors are Binance's: code 0 unknown property, 1 bad value type, 2 invalid request, 3 invalid JSON.
        """
        try:
            message = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            self.counters.bad("ws_stream_invalid_json", str(exc))
            return {
                "error": {"code": 3, "msg": f"Invalid JSON: expected value at line {exc.lineno} column {exc.colno}"},
                "id": None,
            }
        if not isinstance(message, dict):
            self.counters.bad("ws_stream_invalid_request")
            return _invalid("invalid type: expected struct Request at line 1 column 1", None)
        request_id = message.get("id")
        if not _valid_request_id(request_id):
            self.counters.bad("ws_stream_invalid_request", "id")
            return _invalid("request ID must be an unsigned integer", None)
        if "method" not in message:
            self.counters.bad("ws_stream_invalid_request", "method")
            return _invalid("missing field `method`", request_id)
        method = message["method"]
        if method not in METHODS:
            self.counters.bad("ws_stream_invalid_request", str(method))
            return _invalid(
                f"unknown variant `{method}`, expected one of " + ", ".join(f"`{m}`" for m in METHODS), request_id
            )
        extra = set(message) - {"method", "params", "id"}
        if extra:
            self.counters.bad("ws_stream_invalid_request", "extra fields")
            return _invalid("too many parameters", request_id)
        params = message.get("params", [])
        if method == "LIST_SUBSCRIPTIONS":
            return {"result": sorted(conn.streams), "id": request_id}
        if method in ("GET_PROPERTY", "SET_PROPERTY"):
            return self._property(conn, method, params, request_id)
        return self._subscription_change(conn, method, params, request_id)

    def _property(self, conn: StreamConnection, method: str, params: object, request_id: object) -> dict[str, object]:
        want = 1 if method == "GET_PROPERTY" else 2
        if not isinstance(params, list) or not params or not isinstance(params[0], str):
            self.counters.bad("ws_stream_invalid_request", "property name")
            return _invalid("property name must be a string", request_id)
        if len(params) != want:
            self.counters.bad("ws_stream_invalid_request", "property params")
            return _invalid("too many parameters" if len(params) > want else "missing property value", request_id)
        if params[0] != "combined":
            self.counters.bad("ws_stream_unknown_property", params[0])
            return {"error": {"code": 0, "msg": "Unknown property"}, "id": request_id}
        if method == "GET_PROPERTY":
            return {"result": conn.combined, "id": request_id}
        if not isinstance(params[1], bool):
            self.counters.bad("ws_stream_invalid_value")
            return {"error": {"code": 1, "msg": "Invalid value type: expected Boolean"}, "id": request_id}
        conn.combined = params[1]
        return {"result": None, "id": request_id}

    def _subscription_change(
        self, conn: StreamConnection, method: str, params: object, request_id: object
    ) -> dict[str, object]:
        if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
            self.counters.bad("ws_stream_invalid_request", "params")
            return _invalid("invalid type: expected a sequence of strings", request_id)
        streams: list[str] = []
        for name in params:
            stream = normalise_stream(name, conn.market)
            if stream is None:
                self.counters.bad("ws_stream_unknown_stream", name)
                return _invalid("invalid stream", request_id)
            streams.append(stream)
        if method == "SUBSCRIBE":
            limit = self.limits.ws_max_streams_per_connection
            if len(conn.streams | set(streams)) > limit:
                self.counters.bad("ws_stream_too_many_streams", str(len(conn.streams | set(streams))))
                return _invalid(f"too many streams; a connection can listen to at most {limit}", request_id)
            for stream in streams:
                self._subscribe(conn, stream)
        else:
            for stream in streams:
                self._unsubscribe(conn, stream)
        return {"result": None, "id": request_id}


METHODS = ("SUBSCRIBE", "UNSUBSCRIBE", "LIST_SUBSCRIPTIONS", "SET_PROPERTY", "GET_PROPERTY")
_ID_STR_RE = re.compile(r"^[A-Za-z0-9]{1,36}$")


def _valid_request_id(value: object) -> bool:
    """Binance accepts a 64-bit signed integer, an alphanumeric string of at most 36 chars, or null."""
    if value is None:
        return True
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return -(1 << 63) <= value < (1 << 63)
    return isinstance(value, str) and bool(_ID_STR_RE.match(value))


def _invalid(detail: str, request_id: object) -> dict[str, object]:
    return {"error": {"code": 2, "msg": f"Invalid request: {detail}"}, "id": request_id}


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


async def serve_stream_socket(
    request: web.Request, hub: StreamHub, listen_keys: dict[str, str], heartbeat: float = 30.0
) -> web.StreamResponse:
    """The handler of every market-stream WebSocket path.

    Incoming messages (text frames, pings and pongs alike, as Binance counts them) are limited per
    connection; a connection over the limit is closed with 1008 "Too many requests".
    """
    try:
        market, combined, names = parse_stream_path(request.path, request.query.get("streams"))
    except ValueError:
        hub.counters.bad("ws_stream_bad_path", request.path)
        raise web.HTTPNotFound(
            text='{"code":-1000,"msg":"Not Found: unknown stream path."}', content_type="application/json"
        ) from None
    listen_key = request.query.get("listenKey")
    if listen_key is None:
        listen_key = next((n for n in names if n in listen_keys), None)
    if listen_key is not None and listen_key not in listen_keys:
        hub.counters.bad("ws_stream_unknown_listen_key")
        raise web.HTTPBadRequest(
            text='{"code":-1125,"msg":"This listenKey does not exist."}', content_type="application/json"
        )
    initial = [n for n in names if n != listen_key]
    bad = [n for n in initial if normalise_stream(n, market) is None]
    for name in bad:
        hub.counters.bad("ws_stream_unknown_stream", name)
    initial = [n for n in initial if n not in bad][: hub.limits.ws_max_streams_per_connection]
    ws = web.WebSocketResponse(heartbeat=heartbeat, max_msg_size=1 << 16, autoping=False)
    await ws.prepare(request)
    conn = StreamConnection(market, combined, Outbox(ws, f"stream:{request.path}"), listen_key=listen_key)
    hub.attach(conn, initial)
    loop = asyncio.get_running_loop()
    try:
        async for msg in ws:
            if msg.type in (
                WSMsgType.TEXT,
                WSMsgType.BINARY,
                WSMsgType.PING,
                WSMsgType.PONG,
            ) and hub.message_rate_exceeded(conn, loop.time()):
                hub.counters.bad("ws_stream_message_rate", request.remote or "")
                conn.outbox.close_with(WSCloseCode.POLICY_VIOLATION, "Too many requests")
                break
            if msg.type == WSMsgType.TEXT:
                reply = hub.handle_frame(conn, msg.data)
                conn.outbox.send(orjson.dumps(reply).decode())
            elif msg.type == WSMsgType.PING:
                await ws.pong(msg.data)
            elif msg.type == WSMsgType.BINARY:
                hub.counters.bad("ws_stream_binary_frame")
                conn.outbox.send(
                    orjson.dumps(
                        {"error": {"code": 3, "msg": "Invalid JSON: binary frames are not supported"}, "id": None}
                    ).decode()
                )
            elif msg.type == WSMsgType.ERROR:
                break
    finally:
        hub.detach(conn)
        await conn.outbox.finish()
    return ws
