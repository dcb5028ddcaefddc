"""Requests of one account and market: WebSocket API first, REST when that is not safe or not possible.

Each operation (``OPS``) names its python-binance coroutine on both paths. A request goes over the WebSocket
API (Spot ``ws-api/v3``, USD-M ``ws-fapi/v1``) when the operation exists there, the socket is streaming, and
it has not failed within ``ws_cooldown_s``; otherwise over REST (the socket is down, was slow, or the call is
REST-only). Every request's path, latency and outcome is recorded (``RequestLog``).

A WebSocket-API request that fails after the socket was up (no answer within ``ws_timeout_s``, or the socket
closed under it) may have reached the venue: an idempotent operation (a query, a cancel by client order id) is
repeated over REST; anything else raises ``SentNoAnswer`` so the caller marks the order UNKNOWN and resolves
it by its client order id, never re-sending it blindly. A REST request cut the same way (timeout, connection
reset after sending) is the same case.

The venue's answers drive the shared rate limiter (``on_headers``/``on_limits`` via ``oms.venues.binance.
client``), and errors come back as ``VenueAnswer`` (the venue refused: code, message, HTTP status,
``Retry-After``), which ``oms.venues.binance.errors`` turns into the interface's typed errors.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from binance import AsyncClient
from binance.exceptions import BinanceAPIException, BinanceRequestException, BinanceWebsocketUnableToConnect
from binance.ws.constants import WSListenerState
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State as WsState

from oms.venues.binance.signing import WsSigner

WS = "ws"
WS_CONNECT = "ws-api connect"  # key of VenueMetadata.weights: opening the WebSocket API
REST = "rest"


def ws_api_open(api: Any) -> bool:
    """python-binance's WebSocket API (``WebsocketAPI``) is streaming on an open socket.

    Its state says STREAMING until its read loop has seen the close, so the socket's own state is checked too.
    """
    sock = api.ws
    return sock is not None and api.ws_state == WSListenerState.STREAMING and sock.state == WsState.OPEN


def ws_api_reconnecting(api: Any) -> bool:
    """python-binance's read loop is alive and will reconnect the lost socket by itself (after a 1-2 s wait).

    Anything that sends on the WebSocket API meanwhile (python-binance's ``_ensure_ws_connection``) opens a
    second socket; when the read loop then reconnects, the first is left unread and an answer sent on it never
    arrives. So after a loss, callers wait for the loop (``wait_ws_api_reconnected``) instead of sending.
    """
    return getattr(api, "_handle_read_loop", None) is not None and api.ws_state != WSListenerState.EXITING


async def wait_ws_api_reconnected(api: Any, timeout_s: float, step_s: float = 0.05) -> bool:
    """Wait until the WebSocket API is open again or its read loop has given up (``timeout_s`` at most); True
    when it is open."""
    deadline = time.monotonic() + timeout_s
    while not ws_api_open(api) and ws_api_reconnecting(api) and time.monotonic() < deadline:
        await asyncio.sleep(step_s)
    return ws_api_open(api)


# Operations Binance charges much more without a symbol (Spot open orders 80 instead of 6, USD-M 40 instead
# of 1): their weight is looked up under ``"<endpoint>#all"`` then (``metadata``)
ALL_SYMBOL_OPS = frozenset({"open_orders", "algo_open_orders"})


def _weight_key(op: Op, endpoint: str, params: dict[str, Any]) -> str:
    return f"{endpoint}#all" if op.name in ALL_SYMBOL_OPS and not params.get("symbol") else endpoint


@dataclass(frozen=True, slots=True)
class Op:
    """One operation: its python-binance methods (``ws`` None: REST only), endpoints (the limiter's keys, see
    ``metadata``), idempotence, and whether it places orders."""

    name: str
    rest: str
    rest_endpoint: str
    ws: str | None = None
    ws_endpoint: str = ""
    idempotent: bool = True
    order: bool = False  # counts against the order-rate limits
    signed: bool = True  # signed on the WebSocket API (the connector signs; python-binance passes it on)


def _ops(*ops: Op) -> dict[str, Op]:
    return {op.name: op for op in ops}


OPS: dict[str, dict[str, Op]] = {
    "spot": _ops(
        Op("place", "create_order", "POST /api/v3/order", "ws_create_order", "order.place", False, True),
        Op("cancel", "cancel_order", "DELETE /api/v3/order", "ws_cancel_order", "order.cancel"),
        Op("query", "get_order", "GET /api/v3/order", "ws_get_order", "order.status"),
        Op("open_orders", "get_open_orders", "GET /api/v3/openOrders", "ws_get_open_orders", "openOrders.status"),
        Op(
            "cancel_all",
            "cancel_all_open_orders",
            "DELETE /api/v3/openOrders",
            "ws_cancel_all_open_orders",
            "openOrders.cancelAll",
        ),
        Op(
            "amend",
            "amend_keep_priority_order",
            "PUT /api/v3/order/amend/keepPriority",
            "ws_amend_keep_priority_order",
            "order.amend.keepPriority",
            False,
            True,
        ),
        Op(
            "cancel_replace",
            "cancel_replace_order",
            "POST /api/v3/order/cancelReplace",
            "ws_cancel_and_replace_order",
            "order.cancelReplace",
            False,
            True,
        ),
        Op("account", "get_account", "GET /api/v3/account", "ws_get_account", "account.status"),
        Op("commission", "v3_get_account_commission", "GET /api/v3/account/commission"),
        Op("trades", "get_my_trades", "GET /api/v3/myTrades", "ws_get_my_trades", "myTrades"),
        Op("time", "get_server_time", "GET /api/v3/time"),
        Op("exchange_info", "get_exchange_info", "GET /api/v3/exchangeInfo"),
        Op("depth", "get_order_book", "GET /api/v3/depth"),
        Op(
            "sub_transfer",
            "make_subaccount_universal_transfer",
            "POST /sapi/v1/sub-account/universalTransfer",
            idempotent=False,
        ),
        Op("transfer", "universal_transfer", "POST /sapi/v1/asset/transfer", idempotent=False),
        Op("sub_transfer_history", "get_universal_transfer_history", "GET /sapi/v1/sub-account/universalTransfer"),
        Op("sub_assets", "get_sub_account_assets", "GET /sapi/v4/sub-account/assets"),
        Op("sub_futures_account", "get_subaccount_futures_details", "GET /sapi/v2/sub-account/futures/account"),
    ),
    "usdm": _ops(
        Op(
            "place",
            "futures_create_order",
            "POST /fapi/v1/order",
            "ws_futures_create_order",
            "order.place",
            False,
            True,
        ),
        Op("cancel", "futures_cancel_order", "DELETE /fapi/v1/order", "ws_futures_cancel_order", "order.cancel"),
        Op("query", "futures_get_order", "GET /fapi/v1/order", "ws_futures_get_order", "order.status"),
        Op("amend", "futures_modify_order", "PUT /fapi/v1/order", "ws_futures_edit_order", "order.modify", False, True),
        Op("open_orders", "futures_get_open_orders", "GET /fapi/v1/openOrders"),
        Op("cancel_all", "futures_cancel_all_open_orders", "DELETE /fapi/v1/allOpenOrders"),
        Op("batch", "futures_place_batch_order", "POST /fapi/v1/batchOrders", idempotent=False, order=True),
        Op(
            "balances",
            "futures_account_balance",
            "GET /fapi/v3/balance",
            "ws_futures_account_balance",
            "account.balance",
        ),
        Op("positions", "futures_position_information", "GET /fapi/v3/positionRisk"),
        Op("adl_quantile", "futures_adl_quantile_estimate", "GET /fapi/v1/adlQuantile"),
        Op("commission", "futures_commission_rate", "GET /fapi/v1/commissionRate"),
        Op("symbol_config", "futures_symbol_config", "GET /fapi/v1/symbolConfig"),
        Op("trades", "futures_account_trades", "GET /fapi/v1/userTrades"),
        Op("income", "futures_income_history", "GET /fapi/v1/income"),
        Op("time", "futures_time", "GET /fapi/v1/time"),
        Op("exchange_info", "futures_exchange_info", "GET /fapi/v1/exchangeInfo"),
        Op("depth", "futures_order_book", "GET /fapi/v1/depth"),
        Op("leverage", "futures_change_leverage", "POST /fapi/v1/leverage"),
        Op("margin_type", "futures_change_margin_type", "POST /fapi/v1/marginType"),
        Op("position_mode", "futures_change_position_mode", "POST /fapi/v1/positionSide/dual"),
        Op("get_position_mode", "futures_get_position_mode", "GET /fapi/v1/positionSide/dual"),
        Op("listen_key", "futures_stream_get_listen_key", "POST /fapi/v1/listenKey"),
        # conditional orders (stop, take-profit, trailing): Binance's Algo Order API
        Op(
            "algo_place",
            "futures_create_algo_order",
            "POST /fapi/v1/algoOrder",
            "ws_futures_create_algo_order",
            "algoOrder.place",
            False,
            True,
        ),
        Op(
            "algo_cancel",
            "futures_cancel_algo_order",
            "DELETE /fapi/v1/algoOrder",
            "ws_futures_cancel_algo_order",
            "algoOrder.cancel",
        ),
        Op("algo_query", "futures_get_algo_order", "GET /fapi/v1/algoOrder"),
        Op("algo_open_orders", "futures_get_open_algo_orders", "GET /fapi/v1/openAlgoOrders"),
        Op("algo_cancel_all", "futures_cancel_all_algo_open_orders", "DELETE /fapi/v1/algoOpenOrders"),
    ),
}


class VenueAnswer(Exception):
    """The venue answered with an error: Binance's ``code`` and ``msg``, the HTTP (or WS) status."""

    def __init__(self, code: int, msg: str, status: int, retry_after_s: float | None, path: str) -> None:
        super().__init__(f"{code}: {msg}")
        self.code = code
        self.msg = msg
        self.status = status
        self.retry_after_s = retry_after_s
        self.path = path


class SentNoAnswer(Exception):
    """The request may have reached the venue but no answer came (timeout or connection lost after sending)."""

    def __init__(self, op: str, path: str, cause: str, sent_server_ms: int) -> None:
        super().__init__(f"{op} over {path}: sent, no answer ({cause})")
        self.op = op
        self.path = path
        self.cause = cause
        self.sent_server_ms = sent_server_ms


class NotSent(Exception):
    """The request could not be sent at all (no connection): it did not reach the venue."""


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One request as it happened: which path and why, how long, and how it ended."""

    market: str
    op: str
    path: str
    reason: str  # why this path: "ws", "socket down", "cooldown", "rest-only", "ws failed: <why>"
    latency_ns: int
    outcome: str  # "ok", "error <code>", "no answer", "not sent"
    client_order_id: str = ""


class RequestLog:
    """The last ``size`` requests of an account and per-(op, path) counts."""

    def __init__(self, size: int = 4096) -> None:
        self.records: deque[RequestRecord] = deque(maxlen=size)
        self.counts: dict[tuple[str, str], int] = {}

    def add(self, record: RequestRecord) -> None:
        self.records.append(record)
        key = (record.op, record.path)
        self.counts[key] = self.counts.get(key, 0) + 1

    def latencies(self, op: str, path: str) -> list[int]:
        return [r.latency_ns for r in self.records if r.op == op and r.path == path and r.outcome == "ok"]


Acquire = Callable[[str, int], Awaitable[None]]  # (endpoint, orders placed) -> waits for budget
_NETWORK = (aiohttp.ClientError, asyncio.TimeoutError, ConnectionError, OSError, BinanceRequestException)


def _retry_after(exc: BinanceAPIException) -> float | None:
    response = exc.response
    if isinstance(response, dict):  # a WebSocket-API answer: error.data.retryAfter is a ms timestamp
        data = (response.get("error") or {}).get("data") or {}
        if isinstance(data, dict) and "retryAfter" in data:
            server = data.get("serverTime") or time.time() * 1000
            return max(0.0, (float(data["retryAfter"]) - float(server)) / 1000.0)
        return None
    headers = getattr(response, "headers", None)
    value = headers.get("Retry-After") if headers is not None else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def venue_answer(exc: BinanceAPIException, path: str) -> VenueAnswer:
    return VenueAnswer(int(exc.code or 0), str(exc.message), int(exc.status_code or 0), _retry_after(exc), path)


class Transport:
    """WebSocket-API-first requests of one account on one market."""

    def __init__(
        self,
        client: AsyncClient,
        market: str,
        acquire: Acquire,
        log: RequestLog,
        ws_timeout_s: float,
        ws_cooldown_s: float,
        server_ms: Callable[[], int],
        signer: WsSigner | None = None,
    ) -> None:
        self.client = client
        self.signer = signer
        self.market = market
        self.ops = OPS[market]
        self._acquire = acquire
        self.log = log
        self.ws_timeout_s = ws_timeout_s
        self.ws_cooldown_s = ws_cooldown_s
        self._server_ms = server_ms
        self._ws_failed_at = -1e18
        self._reviving: asyncio.Task[bool] | None = None
        self.ws_enabled = True

    @property
    def ws_api(self) -> Any:
        return self.client.ws_api if self.market == "spot" else self.client.ws_future

    def ws_up(self) -> bool:
        """The WebSocket API is connected and streaming (python-binance's own state, see ``ws_api_open``)."""
        return ws_api_open(self.ws_api)

    def _route(self, op: Op) -> tuple[str, str]:
        if op.ws is None:
            return REST, "rest-only"
        if not self.ws_enabled:
            return REST, "ws disabled"
        if not self.ws_up():
            self._revive()
            return REST, "socket down"
        if time.monotonic() - self._ws_failed_at < self.ws_cooldown_s:
            return REST, "cooldown"
        return WS, "ws"

    def _revive(self) -> None:
        """Reopen a WebSocket API whose python-binance read loop gave up (after its own reconnects), at most
        once per cooldown; while the library is still reconnecting by itself, leave it to that."""
        api = self.ws_api
        if ws_api_reconnecting(api) or api.ws_state == WSListenerState.EXITING:
            return  # the library's loop is alive (reconnecting) or the client is closing
        now = time.monotonic()
        if self._reviving is not None and not self._reviving.done():
            return
        if now - self._ws_failed_at < self.ws_cooldown_s and self._reviving is not None:
            return
        self._reviving = asyncio.get_running_loop().create_task(self.connect_ws())

    async def connect_ws(self) -> bool:
        """Open (or re-open) the WebSocket API with a cheap public request; False when it cannot be reached
        (REST carries on, and the connector tries again later)."""
        if self.market == "spot":
            method: Callable[..., Awaitable[Any]] = self.client.ws_get_time
        else:
            method = self.client.ws_futures_get_all_tickers
        t0 = time.perf_counter_ns()
        try:
            await self._acquire(WS_CONNECT, 0)  # the connection's weight and the request that opens it
            await asyncio.wait_for(method(), max(self.ws_timeout_s * 2, 1.0))
        except Exception as exc:
            self._ws_failed_at = time.monotonic()
            self.log.add(
                RequestRecord(self.market, "connect", WS, "ws", time.perf_counter_ns() - t0, type(exc).__name__)
            )
            return False
        self._ws_failed_at = -1e18
        self.log.add(RequestRecord(self.market, "connect", WS, "ws", time.perf_counter_ns() - t0, "ok"))
        return True

    async def call(self, name: str, params: dict[str, Any], coid: str = "") -> Any:
        """Run operation ``name`` with ``params``; returns python-binance's decoded result.

        Raises ``VenueAnswer`` (the venue refused), ``SentNoAnswer`` (maybe executed, no answer) or
        ``NotSent`` (never left this process).
        """
        op = self.ops[name]
        path, reason = self._route(op)
        orders = (len(params.get("batchOrders", ())) or 1) if op.order else 0
        await self._acquire(_weight_key(op, op.ws_endpoint if path == WS else op.rest_endpoint, params), orders)
        if path == WS:
            try:
                return await self._ws(op, params, coid)
            except _WsFailed as failed:
                if not op.idempotent:
                    raise SentNoAnswer(op.name, WS, failed.why, failed.sent_ms) from failed.__cause__
                reason = f"ws failed: {failed.why}"
                await self._acquire(_weight_key(op, op.rest_endpoint, params), orders)
        return await self._rest(op, params, coid, reason)

    async def _ws(self, op: Op, params: dict[str, Any], coid: str) -> Any:
        assert op.ws is not None
        method = getattr(self.client, op.ws)
        sent_ms = self._server_ms()
        t0 = time.perf_counter_ns()
        args = dict(params)
        if op.signed and self.signer is not None:
            self.signer.sign(args, sent_ms)
        try:
            result = await asyncio.wait_for(method(**args), self.ws_timeout_s)
        except BinanceAPIException as exc:
            self._record(op, WS, "ws", t0, f"error {exc.code}", coid)
            raise venue_answer(exc, WS) from exc
        except TimeoutError as exc:
            self._ws_failed_at = time.monotonic()
            self._record(op, WS, "ws", t0, "no answer", coid)
            raise _WsFailed(f"no answer within {self.ws_timeout_s:g} s", sent_ms) from exc
        except (BinanceWebsocketUnableToConnect, ConnectionClosed, *_NETWORK) as exc:
            self._ws_failed_at = time.monotonic()
            self._record(op, WS, "ws", t0, "no answer", coid)
            raise _WsFailed(f"{type(exc).__name__}: {exc}", sent_ms) from exc
        self._record(op, WS, "ws", t0, "ok", coid)
        return result

    async def _rest(self, op: Op, params: dict[str, Any], coid: str, reason: str) -> Any:
        method = getattr(self.client, op.rest)
        sent_ms = self._server_ms()
        t0 = time.perf_counter_ns()
        try:
            result = await method(**dict(params))
        except BinanceAPIException as exc:
            self._record(op, REST, reason, t0, f"error {exc.code}", coid)
            raise venue_answer(exc, REST) from exc
        except aiohttp.ClientConnectorError as exc:  # no connection was made: nothing was sent
            self._record(op, REST, reason, t0, "not sent", coid)
            raise NotSent(f"{op.name} over REST: {exc}") from exc
        except _NETWORK as exc:
            self._record(op, REST, reason, t0, "no answer", coid)
            raise SentNoAnswer(op.name, REST, f"{type(exc).__name__}: {exc}", sent_ms) from exc
        self._record(op, REST, reason, t0, "ok", coid)
        return result

    def _record(self, op: Op, path: str, reason: str, t0: int, outcome: str, coid: str) -> None:
        self.log.add(RequestRecord(self.market, op.name, path, reason, time.perf_counter_ns() - t0, outcome, coid))


class _WsFailed(Exception):
    def __init__(self, why: str, sent_ms: int) -> None:
        super().__init__(why)
        self.why = why
        self.sent_ms = sent_ms
