"""Live key rotation through the daemon's embedded listener (``oms.keys.rotation``): a rotation message makes the
daemon re-read the key and switch every market's clients to it; once it confirmed, the old key is revoked at the
exchange and the account keeps trading on the same daemon.

The key provider here is the environment (``EnvKeys`` plus the key store's ``refresh``); the same rotation with
Vault, the rotate-keys flow and a trader placing orders throughout is
``tests/scenarios/test_daemon_vault_rotation.py``.

Every step waits on a real condition with its own bound (the daemon trading and its user stream subscribed; the
confirmation; the user stream subscribed again under the new key; the order known to the daemon), so a slow
machine fails with the step's name instead of the whole-test timeout. The kernels' warm-up is skipped: this test
is about keys, and on a cold Numba cache (a fresh clone) the warm-up's compiling made the test take 95 s instead
of 8 s on a loaded 2-core machine.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

from oms.config import load_config
from oms.keys import EnvKeys
from oms.keys.rotation import RotateRequest, announce, registered_holders
from oms.model import Market, OrderStatus
from stream.daemon import Daemon, DaemonSettings
from tests.stream.conftest import FAST, place, request, unique, until


class VersionedEnvKeys(EnvKeys):
    """Environment keys with the key store's ``refresh`` (what the rotation listener calls): the rotation of
    a deployment without Vault, where the new key is written to the environment mapping first."""

    def refresh(self, exchange, market, account, min_version: int = 0):
        return self.get(exchange, market, account)


async def bounded(what: str, coro, timeout_s: float):
    try:
        return await asyncio.wait_for(coro, timeout_s)
    except TimeoutError:
        raise AssertionError(f"timed out after {timeout_s:.0f} s: {what}") from None


async def test_a_rotated_key_is_switched_live_and_the_old_one_can_be_revoked(bench):
    name = unique("rot")
    bench.write([name])
    acct = bench.account(name)
    keys = VersionedEnvKeys(bench.env)
    cfg = load_config(bench.config_dir, env={})
    settings = DaemonSettings.from_config(
        cfg,
        nats_url=bench.nats_url,
        nats_identity=bench.nats_identity("daemon"),
        local_url=bench.exchange.url,
        venue_options={"binance": FAST},
        key_check_s=None,
    )
    d = Daemon(cfg, keys, settings, accounts=[acct], warm=False)
    await bounded("the daemon to start", d.start(), 150)
    nc = await bench.connect("flows")  # the rotation flow's identity
    try:
        user_data = d.sessions[acct].links[Market.SPOT].clients.user_data
        await until(lambda: d.account_health(acct)["trading"], 60, "the account trading")
        await bounded("the user stream subscribed", user_data.subscribed.wait(), 60)
        assert d.settings.holder in await registered_holders(nc, "binance", name)
        account_id, old_key, _ = bench.accounts[name]
        new = bench.exchange.admin("POST", f"/admin/v1/accounts/{account_id}/keys", {})
        stem = f"OMS_KEY_BINANCE_{name.upper()}"
        bench.env[stem + "_API_KEY"], bench.env[stem + "_SECRET"] = new["apiKey"], new["secret"]
        fp = keys.get("binance", "spot", name).fingerprint
        req = RotateRequest("rot-1", "binance", name, "spot", 0, fp)
        replies, missing = await announce(nc, req, {d.settings.holder}, timeout_s=60)
        assert not missing and replies[d.settings.holder].ok, replies
        assert user_data.notices["resubscribed: key rotated"] == 1
        await bounded("the user stream subscribed under the new key", user_data.subscribed.wait(), 60)
        bench.exchange.admin("DELETE", f"/admin/v1/keys/{old_key}")
        price = str((bench.ticker() * Decimal("0.97")).quantize(Decimal("0.01")))
        trader = await bench.connect("trader")  # only a trader sends orders
        try:
            [r] = (await request(trader, acct, place(acct, "0.01", price, intent="after-rotation"), timeout=60)).results
        finally:
            await trader.close()
        assert r.ok and r.status is OrderStatus.NEW, r
        assert d.rotation.metrics.switched == 1
        await until(lambda: d.account_health(acct)["open_orders"] == 1, 60, "the order on the new key")
    finally:
        await nc.close()
        await bounded("the daemon to stop", d.stop(), 150)
