"""The alert webhook over real HTTP (aiohttp client), its secret in a real OpenBao (after `oms keys init`: the
daemon's AppRole reads it, the admin's writes it), alerts turned into commands of the real order gateway."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import aiohttp
import msgspec
import pytest

from kernels.positions import transfer, update_mark
from kernels.state import AccountIndex, KernelState
from oms.keys.provider import KeyStoreError
from oms.keys.settings import AccountCatalog, VaultSettings
from oms.keys.store import VaultKeyStore
from oms.keys.webhook import WEBHOOK_SECRET_PATH, WebhookSecret, new_webhook_secret
from oms.model import Instrument, InstrumentKind, InstrumentSpec, OrderStatus
from oms.model.commands import CommandRequest, encode_request
from oms.model.units import money_to_units
from oms.services import free_port
from stream.gateway import OrderGateway
from stream.instruments import InstrumentTable
from stream.webhook import SECRET_HEADER, AlertWebhook, WebhookSettings, parse_timestamp_ns, serve
from tests.keys.conftest import Vault, start_vault


@pytest.fixture(scope="module")
def vault(tmp_path_factory) -> Iterator[Vault]:
    yield from start_vault(tmp_path_factory.mktemp("webhook-vault"))


def gateway() -> OrderGateway:
    state = KernelState(n_accounts=2, n_instruments=2)
    table = InstrumentTable(state)
    spec = InstrumentSpec(
        symbol="BTC/USDT", kind=InstrumentKind.SPOT, tick_size="0.01", step_size="0.00001", min_qty="0.00001",
        max_qty="9000", min_notional="5",
    )  # fmt: skip
    i = table.add("binance", Instrument(spec))
    state.set_limits(0, max_order_notional=money_to_units("5000"))
    transfer(*state.blocks, 0, money_to_units("100000"))
    update_mark(*state.blocks, i, table.lookup("binance", "BTC/USDT")[1].mark_to_units("60000"))
    return OrderGateway(state, AccountIndex([("binance", "main")]), table)


class Hook:
    def __init__(self, hook: AlertWebhook, url: str, gw: OrderGateway, secret: str):
        self.hook, self.url, self.gw, self.secret = hook, url, gw, secret

    def alert(self, **fields) -> dict:
        body = {
            "secret": self.secret,
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "account": "binance/main",
            "symbol": "BTC/USDT",
            "side": "buy",
            "qty": "0.01",
            "order_type": "limit",
            "price": "60000",
        }
        body.update(fields)
        return {k: v for k, v in body.items() if v is not None}

    async def post(self, body: dict | bytes, headers: dict | None = None) -> tuple[int, dict]:
        data = body if isinstance(body, bytes) else msgspec.json.encode(body)
        async with aiohttp.ClientSession() as s, s.post(self.url, data=data, headers=headers or {}) as r:
            return r.status, await r.json(content_type=None)


@pytest.fixture
async def hook(vault) -> Iterator[Hook]:
    admin = vault.store("admin", cache=False)
    value, _ = new_webhook_secret(admin)
    daemon = vault.store("daemon", cache=False)  # the daemon's AppRole: read only, this one path
    gw = gateway()

    async def submit(account: str, req: CommandRequest):
        reply, _decision = gw.handle_request(encode_request(req), account)
        return reply

    settings = WebhookSettings(port=free_port(), max_age_s=30)
    h = AlertWebhook(settings, WebhookSecret(daemon, ttl_s=0).get, submit)
    runner = await serve(h)
    try:
        yield Hook(h, f"http://127.0.0.1:{settings.port}/webhook", gw, value)
    finally:
        await runner.cleanup()


async def test_an_authentic_alert_becomes_a_gateway_order_once(hook, caplog):
    caplog.set_level(logging.DEBUG)
    body = hook.alert(id="sig-1")
    status, reply = await hook.post(body)
    assert status == 200, reply
    result = reply["results"][0]
    assert result["ok"] and result["status"] == OrderStatus.PENDING_NEW.value
    rec = hook.gw.orders.get(result["client_order_id"])
    assert rec is not None and rec.cmd.intent == "tv:sig-1" and rec.cmd.qty == "0.01"
    status, again = await hook.post(body)  # the very same alert: a replay
    assert status == 401 and again["code"] == "replay"
    assert len(hook.gw.orders) == 1
    other = hook.alert(id="sig-2", side="SELL", order_type="market", price=None)  # another signal: another order
    status, reply = await hook.post(other)
    assert status == 200 and reply["results"][0]["client_order_id"] != result["client_order_id"]
    assert hook.hook.counts["accepted"] == 2 and hook.hook.counts["replay"] == 1
    assert hook.secret not in caplog.text


async def test_the_secret_may_come_in_a_header(hook):
    body = hook.alert(secret=None, id="hdr")
    assert (await hook.post(body, {SECRET_HEADER: hook.secret}))[0] == 200


@pytest.mark.parametrize(
    "change, code",
    [
        ({"secret": "wrong-secret-wrong-secret-wrong"}, "unauthorized"),
        ({"secret": None}, "unauthorized"),
        # timestamps made when the test runs (a value made at collection is minutes old by then)
        (lambda: {"timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 600))}, "stale"),
        (lambda: {"timestamp": int(time.time()) + 600}, "stale"),
    ],
)
async def test_unauthenticated_or_stale_alerts_get_401_and_change_nothing(hook, change, code):
    change = change() if callable(change) else change
    status, reply = await hook.post(hook.alert(**change))
    assert status == 401 and reply["code"] == code
    assert len(hook.gw.orders) == 0 and hook.hook.counts[code] == 1


@pytest.mark.parametrize(
    "body, why",
    [
        (b"{not json", "not JSON"),
        (b"[1, 2]", "Expected `object`"),
        ({"extra_field": 1}, "unknown field `extra_field`"),
        ({"side": "sideways"}, "'sideways' is not a valid Side"),
        ({"qty": 0.01}, "Expected `str`, got `float` - at `$.qty`"),
        ({"timestamp": "yesterday"}, "is not ISO 8601"),
        ({"symbol": "BTCUSDT"}, "symbol"),
    ],
)
async def test_malformed_alerts_are_refused_with_a_reason_and_counted(hook, body, why):
    data = body if isinstance(body, bytes) else hook.alert(**body)
    status, reply = await hook.post(data)
    assert status == 400 and reply["code"] == "malformed" and why in reply["error"], reply
    assert hook.hook.counts["malformed"] == 1 and len(hook.gw.orders) == 0
    assert (await hook.post(hook.alert(id="after")))[0] == 200  # and the webhook carries on


async def test_too_large_and_gateway_refusals(hook):
    status, reply = await hook.post(hook.alert(strategy="x" * 20_000))
    assert status == 413 and reply["code"] == "too_large"
    status, reply = await hook.post(hook.alert(qty="1", id="big"))  # 60,000 USDT > the 5,000 limit
    assert status == 422 and reply["results"][0]["code"] == "risk:MAX_ORDER_NOTIONAL"
    assert hook.hook.counts["refused"] == 1


async def test_a_rotated_secret_replaces_the_old_one(hook, vault):
    new, _ = new_webhook_secret(vault.store("admin", cache=False))
    status, _ = await hook.post(hook.alert(id="old"))
    assert status == 401
    hook.secret = new
    assert (await hook.post(hook.alert(id="new")))[0] == 200


async def test_without_vault_the_webhook_answers_503_until_it_can_read_the_secret(vault):
    store = VaultKeyStore(VaultSettings(f"http://127.0.0.1:{free_port()}", token="t", timeout=1), AccountCatalog([]))
    secret = WebhookSecret(store)
    with pytest.raises(KeyStoreError, match="webhook secret .* cannot be read"):
        secret.get()

    async def submit(account, req):  # never reached
        raise AssertionError("an alert without a verified secret reached the gateway")

    settings = WebhookSettings(port=free_port())
    h = AlertWebhook(settings, secret.get, submit)
    runner = await serve(h)
    try:
        async with aiohttp.ClientSession() as s:
            body = {"timestamp": int(time.time()), "account": "binance/main", "symbol": "BTC/USDT", "side": "buy",
                    "qty": "1", "secret": "x" * 30}  # fmt: skip
            async with s.post(f"http://127.0.0.1:{settings.port}/webhook", json=body) as r:
                assert r.status == 503 and h.counts["unavailable"] == 1
    finally:
        await runner.cleanup()


def test_the_daemon_role_reads_only_the_secret_and_only_admin_writes_it(vault):
    admin = vault.store("admin", cache=False)
    value, version = new_webhook_secret(admin)
    assert version >= 1 and vault.store("daemon", cache=False).read_data(WEBHOOK_SECRET_PATH)["secret"] == value
    with pytest.raises(KeyStoreError, match="permission denied"):
        vault.store("daemon", cache=False).write_data(WEBHOOK_SECRET_PATH, {"secret": "y" * 40})
    with pytest.raises(KeyStoreError, match="permission denied"):
        vault.store("balances", cache=False).read_data(WEBHOOK_SECRET_PATH)


def test_timestamps_in_every_form_tradingview_and_scripts_send():
    assert parse_timestamp_ns("2026-12-01T11:00:00Z") == 1_796_122_800 * 10**9
    assert parse_timestamp_ns(1_796_122_800) == parse_timestamp_ns("1796122800000") == 1_796_122_800 * 10**9
    assert parse_timestamp_ns("2026-12-01T12:00:00.5+01:00") == 1_796_122_800 * 10**9 + 500_000_000
    for bad in ("2026-12-01T11:00:00", -5, "soon"):
        with pytest.raises(ValueError):
            parse_timestamp_ns(bad)
