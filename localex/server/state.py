"""Everything one running server holds: the engine, stream hub, limiter, counters and sessions."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from aiohttp import web

from localex.engine import Exchange
from localex.server.counters import Counters
from localex.server.guard import resolve_admin_token
from localex.server.ratelimit import RateLimitConfig, RateLimiter
from localex.server.streams import StreamHub

LISTEN_KEY_TTL_MS = 60 * 60 * 1000


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """How the server runs.

    ``seed``: None (the default) makes API keys random and keeps the demo keys of an install in
    ``data_dir`` across restarts; a number makes every key a function of it (tests that want fixed keys).
    The engine's liquidity is seeded with ``seed or 0`` either way.
    The admin API always wants a token: ``admin_token`` when given, else the one in ``admin_token_file``
    (default ``data_dir/localex-admin-token``, generated there once, mode 0600), else a random one held
    in memory (``ServerState.admin_token``, for in-process callers).
    """

    host: str = "127.0.0.1"
    port: int = 0
    seed: int | None = None
    speed: float = 60.0
    replay_interval_s: float = 0.25
    replay: bool = True
    data_dir: str | None = None
    demo_accounts: bool = True
    admin_token: str | None = None
    admin_token_file: str | None = None
    bad_input_summary_s: float = 60.0  # one INFO line per interval sums up the rejected input (DEBUG: each)
    rate_limits: RateLimitConfig = field(default_factory=RateLimitConfig)
    max_ws_api_connections: int = 300
    max_open_orders: int | None = None  # MAX_NUM_ORDERS per account and symbol; None: Binance's (200)


class KeyAdapter:
    """The engine's key registry seen through ``auth.KeyLookup``."""

    def __init__(self, exchange: Exchange) -> None:
        self._exchange = exchange

    def secret_for(self, api_key: str) -> tuple[str, str, frozenset[str]] | None:
        """``(secret, account_id, permissions)`` of an active key, or None."""
        key = self._exchange.lookup_api_key(api_key)
        if key is None or key.revoked:
            return None
        return key.secret, key.account_id, frozenset(key.permissions)


@dataclass(slots=True)
class ListenKeys:
    """USD-M futures listenKeys: one per account, valid 60 minutes after the last keepalive."""

    by_key: dict[str, str] = field(default_factory=dict)
    by_account: dict[str, str] = field(default_factory=dict)
    expires: dict[str, int] = field(default_factory=dict)

    def start(self, account_id: str, now_ms: int) -> str:
        """The account's listenKey (an active one is returned again, as Binance does)."""
        key = self.by_account.get(account_id)
        if key is None:
            key = secrets.token_hex(32)
            self.by_key[key] = account_id
            self.by_account[account_id] = key
        self.expires[key] = now_ms + LISTEN_KEY_TTL_MS
        return key

    def keepalive(self, account_id: str, now_ms: int) -> str | None:
        """Extend the account's listenKey; None if it has none."""
        key = self.by_account.get(account_id)
        if key is not None:
            self.expires[key] = now_ms + LISTEN_KEY_TTL_MS
        return key

    def close(self, account_id: str) -> str | None:
        """Drop the account's listenKey; return it (or None)."""
        key = self.by_account.pop(account_id, None)
        if key is not None:
            self.by_key.pop(key, None)
            self.expires.pop(key, None)
        return key

    def expired(self, now_ms: int) -> list[str]:
        """Keys whose validity ended (the caller closes their connections)."""
        return [k for k, t in self.expires.items() if t < now_ms]


class ServerState:
    """The running server's shared objects (one per app)."""

    def __init__(self, exchange: Exchange, config: ServerConfig) -> None:
        self.exchange = exchange
        self.config = config
        self.counters = Counters()
        self.limiter = RateLimiter(config.rate_limits)
        # The engine builds market-data events only for streams somebody subscribed to.
        self.hub = StreamHub(self.counters, on_interest=exchange.set_interest, limits=config.rate_limits)
        self.hub.refresh_interest()
        self.keys = KeyAdapter(exchange)
        self.listen_keys = ListenKeys()
        # spot user-data subscriptions made over the WebSocket API: account -> {(session, id)}
        self.user_subscriptions: dict[str, set[tuple[object, int]]] = {}
        self.ws_api_sessions: set[object] = set()
        self.demo_keys: list[dict[str, object]] = []
        self.admin_token, self.admin_token_file = resolve_admin_token(
            config.admin_token, config.admin_token_file, config.data_dir
        )
        self.client_tran_ids: dict[int, str] = {}
        # (account, Spot order id) -> the client order id of the request that cancelled it, until its
        # executionReport is written (``c`` of a cancel is the cancel's own id, ``C`` the order's)
        self.cancel_client_ids: dict[tuple[str, int], str] = {}


STATE_KEY: web.AppKey[ServerState] = web.AppKey("localex_state", ServerState)
