"""External signals: an HTTP webhook for TradingView-style alerts, turned into gateway commands.

``POST {path}`` (``/webhook`` by default) on 127.0.0.1 (``webhook:`` in ``configs/stream.yaml``) takes one
JSON alert, the form a TradingView alert message template writes::

    {"secret": "...", "timestamp": "{{timenow}}", "account": "binance/sub_mm", "symbol": "BTC/USDT",
     "side": "{{strategy.order.action}}", "qty": "{{strategy.order.contracts}}", "order_type": "market"}

``price`` (limit orders), ``reduce_only``, ``strategy`` and ``id`` (the alert's own id) are optional. The
secret may come in the ``X-OMS-Webhook-Secret`` header instead of the body (TradingView cannot set headers).

Checks, in order, each answered at once: the body's size (413) and JSON shape (400, with the reason); the
secret, compared in constant time with the one in Vault (``oms.keys.webhook``; 401); the timestamp, ISO 8601
or epoch seconds/milliseconds, within ``max_age_s`` of now either way (401); a body already accepted inside
that window is a replay (401). An accepted alert becomes a ``CommandRequest`` with one ``PlaceOrder`` whose
``intent`` is the alert's id (or a digest of its timestamp and content), so two alerts give two orders and a
repeated one the same client order id; it goes to the gateway through ``submit`` like any other command and
the answer is the gateway's ``CommandReply`` (200 when every command was accepted, 422 when refused).
Every outcome is counted in ``counts`` (``accepted``, ``refused``, ``malformed``, ``too_large``,
``unauthorized``, ``stale``, ``replay``, ``unavailable``, ``error``) and logged without the secret.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import msgspec
from aiohttp import web

from oms.keys.provider import KeyStoreError
from oms.model import OrderType, PlaceOrder, Side
from oms.model.commands import CommandReply, CommandRequest, encode_reply

log = logging.getLogger("stream.webhook")

SECRET_HEADER = "X-OMS-Webhook-Secret"
Submit = Callable[[str, CommandRequest], Awaitable[CommandReply]]


class Alert(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One alert as posted. Decimals are strings (quote ``{{close}}`` in the template)."""

    timestamp: str | int
    account: str
    symbol: str
    side: str
    qty: str
    order_type: str = "market"
    price: str | None = None
    reduce_only: bool = False
    strategy: str = ""
    id: str = ""
    secret: str = ""


_decode_alert = msgspec.json.Decoder(Alert)


class AlertError(ValueError):
    def __init__(self, status: int, outcome: str, reason: str):
        super().__init__(reason)
        self.status, self.outcome = status, outcome


@dataclass(frozen=True)
class WebhookSettings:
    host: str = "127.0.0.1"
    port: int = 8782
    path: str = "/webhook"
    max_age_s: float = 60.0
    max_body_bytes: int = 16 * 1024

    @classmethod
    def from_config(cls, cfg) -> WebhookSettings:  # cfg: oms.config.models.WebhookConfig
        return cls(cfg.host, cfg.port, cfg.path, float(cfg.max_age_s), cfg.max_body_bytes)


def parse_timestamp_ns(value: str | int) -> int:
    """An alert's time: ISO 8601 (``2026-12-01T11:00:00Z``, TradingView's ``{{timenow}}``) or epoch seconds or
    milliseconds (a number or digits), as int64 ns UTC."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, int) and not isinstance(value, bool):
        if value <= 0:
            raise ValueError(f"timestamp {value} is not a positive epoch time")
        return value * 1_000_000 if value >= 10**11 else value * 1_000_000_000  # ms from ~1973 on, else s
    if not isinstance(value, str):
        raise ValueError("timestamp must be ISO 8601 text or epoch seconds/milliseconds")
    try:
        dt = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"timestamp {value!r} is not ISO 8601 (e.g. 2026-12-01T11:00:00Z)") from None
    if dt.tzinfo is None:
        raise ValueError(f"timestamp {value!r} has no time zone (TradingView's {{{{timenow}}}} ends in Z)")
    return int(dt.astimezone(UTC).timestamp()) * 1_000_000_000 + dt.microsecond * 1000


def alert_to_request(alert: Alert, ts_ns: int) -> tuple[str, CommandRequest]:
    """The account and the one-command request of an alert; ``AlertError`` (400) naming the bad field."""
    digest = hashlib.blake2b(
        msgspec.json.encode(msgspec.structs.replace(alert, secret="")), digest_size=10, key=str(ts_ns).encode()
    ).hexdigest()
    intent = f"tv:{alert.id}" if alert.id else f"tv:{digest}"
    try:
        cmd = PlaceOrder(
            account=alert.account,
            symbol=alert.symbol,
            side=Side(alert.side.strip().lower()),
            order_type=OrderType(alert.order_type.strip().lower()),
            qty=alert.qty,
            price=alert.price,
            reduce_only=alert.reduce_only,
            strategy=alert.strategy,
            intent=intent[:64],
        )
        cmd = msgspec.convert(msgspec.to_builtins(cmd), PlaceOrder)  # the model's own field checks
    except ValueError as exc:  # an unknown side or order type (msgspec.ValidationError is a ValueError too)
        raise AlertError(400, "malformed", f"alert is not a valid order: {exc}") from None
    return alert.account, CommandRequest(request_id=f"webhook-{digest}", commands=(cmd,))


class AlertWebhook:
    """The aiohttp handler: authenticate, check, convert, submit. ``secret()`` returns the current secret."""

    def __init__(
        self,
        settings: WebhookSettings,
        secret: Callable[[], bytes],
        submit: Submit,
        clock: Callable[[], int] = time.time_ns,
        on_outcome: Callable[[str], None] | None = None,
    ):
        self.settings = settings
        self.secret = secret
        self.submit = submit
        self.clock = clock
        self.on_outcome = on_outcome  # e.g. a Prometheus counter's inc, by outcome
        self.counts: Counter[str] = Counter()
        self._seen: dict[bytes, int] = {}  # digest of each accepted body -> when it leaves the window (ns)

    def routes(self, app: web.Application) -> None:
        app.router.add_post(self.settings.path, self.handle)

    def application(self) -> web.Application:
        app = web.Application(client_max_size=self.settings.max_body_bytes)
        self.routes(app)
        return app

    async def handle(self, request: web.Request) -> web.Response:
        try:
            body = await self._body(request)
            alert = self._decode(body)
            self._authenticate(alert, request.headers.get(SECRET_HEADER, ""))
            ts_ns = self._fresh(alert, body)
            account, req = alert_to_request(alert, ts_ns)
        except AlertError as exc:
            return self._answer(exc.status, exc.outcome, {"error": str(exc), "code": exc.outcome})
        try:
            reply = await self.submit(account, req)
        except Exception as exc:  # the gateway's own failure: answered and counted, the webhook carries on
            log.exception("webhook alert for %s could not be submitted", account)
            return self._answer(500, "error", {"error": f"the order could not be submitted: {exc}", "code": "error"})
        refused = bool(reply.error) or not all(r.ok for r in reply.results)
        outcome = "refused" if refused else "accepted"
        self._count(outcome)
        if refused:
            why = reply.error or "; ".join(f"{r.code}: {r.reason}" for r in reply.results if not r.ok)
            log.info("webhook alert for %s %s refused by the gateway: %s", account, alert.symbol, why)
        return web.Response(status=422 if refused else 200, body=encode_reply(reply), content_type="application/json")

    # ------------------------------------------------------------------ steps
    async def _body(self, request: web.Request) -> bytes:
        if request.content_length is not None and request.content_length > self.settings.max_body_bytes:
            raise AlertError(413, "too_large", f"alert of {request.content_length} bytes exceeds the limit")
        try:
            return await request.read()
        except web.HTTPRequestEntityTooLarge:
            raise AlertError(413, "too_large", f"alert exceeds {self.settings.max_body_bytes} bytes") from None

    def _decode(self, body: bytes) -> Alert:
        try:
            return _decode_alert.decode(body)
        except msgspec.ValidationError as exc:
            raise AlertError(400, "malformed", f"bad alert: {exc}") from None
        except msgspec.DecodeError as exc:
            raise AlertError(400, "malformed", f"alert is not JSON: {exc}") from None

    def _authenticate(self, alert: Alert, header: str) -> None:
        try:
            expected = self.secret()
        except KeyStoreError as exc:
            log.error("webhook: %s", exc)
            raise AlertError(503, "unavailable", "the webhook secret is not available; try again later") from None
        given = (alert.secret or header).encode()
        # constant time: digests of equal length, so not even the secret's length shows in the timing
        if not hmac.compare_digest(hashlib.sha256(given).digest(), hashlib.sha256(expected).digest()):
            raise AlertError(401, "unauthorized", "unauthorized")

    def _fresh(self, alert: Alert, body: bytes) -> int:
        try:
            ts_ns = parse_timestamp_ns(alert.timestamp)
        except ValueError as exc:
            raise AlertError(400, "malformed", str(exc)) from None
        now = self.clock()
        window = int(self.settings.max_age_s * 1e9)
        if abs(now - ts_ns) > window:
            age = (now - ts_ns) / 1e9
            raise AlertError(
                401, "stale", f"alert timestamp is {age:+.0f}s from now, outside ±{self.settings.max_age_s:.0f}s"
            )
        if len(self._seen) >= 1024:  # forget what has left the window (bounded by rate x window)
            self._seen = {k: e for k, e in self._seen.items() if e >= now}
        key = hashlib.sha256(body).digest()
        if key in self._seen:
            raise AlertError(401, "replay", "alert already received (replay)")
        self._seen[key] = ts_ns + window
        return ts_ns

    def _count(self, outcome: str) -> int:
        n = self.counts[outcome] = self.counts[outcome] + 1
        if self.on_outcome is not None:
            self.on_outcome(outcome)
        return n

    def _answer(self, status: int, outcome: str, payload: dict) -> web.Response:
        n = self._count(outcome)
        if n <= 5 or n % 1000 == 0:
            log.warning("webhook alert refused (%s, %d so far): %s", outcome, n, payload["error"])
        return web.json_response(payload, status=status)


async def serve(hook: AlertWebhook) -> web.AppRunner:
    """Start the webhook on its own loopback port; the caller keeps the runner and calls ``cleanup()``."""
    if hook.settings.host not in ("127.0.0.1", "::1", "localhost"):
        log.warning("webhook listens on %s, not loopback: put TLS in front of it", hook.settings.host)
    runner = web.AppRunner(hook.application(), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, hook.settings.host, hook.settings.port).start()
    return runner
