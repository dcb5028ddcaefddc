"""Helpers of the REST fidelity tests: JSON type checks, plain and signed requests to a local exchange, and
``Ctx``, a funded account on the test module's server with the resting orders and sub-account some bodies need."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable

DEC, INT, BOOL, STR, LIST, DICT, FLOAT = "dec", "int", "bool", "str", "list", "dict", "float"
DEC_RE = re.compile(r"^-?[0-9]+(\.[0-9]+)?$")


def type_ok(kind: str, value: object) -> bool:
    """Whether ``value`` has the JSON type ``kind`` stands for."""
    if kind == DEC:
        return isinstance(value, str) and bool(DEC_RE.match(value))
    if kind == INT:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, {BOOL: bool, STR: str, LIST: list, DICT: dict, FLOAT: float}[kind])


def call(
    url: str, method: str = "GET", headers: dict[str, str] | None = None, body: bytes | None = None
) -> tuple[int, object]:
    """One HTTP request: ``(status, json)`` whatever the status."""
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def signed(secret: str, params: dict[str, object]) -> str:
    """``params`` + timestamp, signed like Binance: hex HMAC-SHA256 of the query string."""
    q = urllib.parse.urlencode({**params, "timestamp": int(time.time() * 1000)})
    return q + "&signature=" + hmac.new(secret.encode(), q.encode(), hashlib.sha256).hexdigest()


class Ctx:
    """A funded account on the module's server and signed/public request helpers."""

    def __init__(self, server) -> None:
        self.url = server.url
        self.account, self.key, self.secret = server.new_account(
            spot={"USDT": "100000", "BTC": "2"}, futures={"USDT": "100000"}
        )
        self.server = server
        self.cache: dict[str, object] = {}

    def pub(self, path: str, **params: object) -> object:
        status, body = call(self.url + path + ("?" + urllib.parse.urlencode(params) if params else ""))
        assert status == 200, body
        return body

    def sig(self, method: str, path: str, **params: object) -> object:
        status, body = call(self.url + path + "?" + signed(self.secret, params), method, {"X-MBX-APIKEY": self.key})
        assert status == 200, body
        return body

    def once(self, name: str, make: Callable[[], object]) -> object:
        if name not in self.cache:
            self.cache[name] = make()
        return self.cache[name]


def funded_ctx(server) -> Ctx:
    """The module's account, with one filled market order on Spot and on USD-M (the bodies that list orders,
    trades and positions have rows)."""
    c = Ctx(server)
    c.sig("POST", "/api/v3/order", symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.02")
    c.sig("POST", "/fapi/v1/order", symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.05")
    return c


def place_resting_spot(c: Ctx) -> dict:
    """A new Spot BUY limit far below the market (it rests): the venue's answer."""
    return c.sig(  # type: ignore[return-value]
        "POST", "/api/v3/order", symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.002",
        price="3000.00",
    )  # fmt: skip


def resting_spot(c: Ctx) -> dict:
    """The module's one resting Spot order (placed the first time it is asked for)."""
    return c.once("spot_limit", lambda: place_resting_spot(c))  # type: ignore[return-value]


def resting_fut(c: Ctx) -> dict:
    return c.once(
        "fut_limit",
        lambda: c.sig(
            "POST",
            "/fapi/v1/order",
            symbol="BTCUSDT",
            side="BUY",
            type="LIMIT",
            timeInForce="GTC",
            quantity="0.05",
            price=c.server.resting_futures_price(),
        ),
    )  # type: ignore


def sub_email(c: Ctx) -> str:
    def make() -> str:
        c.sig("POST", "/sapi/v1/sub-account/virtualSubAccount", subAccountString="fidelity")
        return c.sig("GET", "/sapi/v1/sub-account/list")["subAccounts"][0]["email"]  # type: ignore[index]

    return c.once("sub", make)  # type: ignore[return-value]
