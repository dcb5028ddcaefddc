"""Live key rotation through the daemon's embedded listener (``oms.keys.rotation``): a rotation message makes the
daemon re-read the key and switch every market's clients to it; once it confirmed, the old key is revoked at the
exchange and the account keeps trading on the same daemon."""

from __future__ import annotations

from decimal import Decimal

from oms.keys import EnvKeys
from oms.keys.rotation import RotateRequest, announce, registered_holders
from oms.model import OrderStatus
from stream.daemon import Daemon
from tests.stream.conftest import place, request, unique, until


class VersionedEnvKeys(EnvKeys):
    """Environment keys with the key store's ``refresh`` (what the rotation listener calls): the rotation of
    a deployment without Vault, where the new key is written to the environment mapping first."""

    def refresh(self, exchange, market, account, min_version: int = 0):
        return self.get(exchange, market, account)


async def test_a_rotated_key_is_switched_live_and_the_old_one_can_be_revoked(bench):
    name = unique("rot")
    bench.write([name])
    acct = bench.account(name)
    keys = VersionedEnvKeys(bench.env)
    d = bench.daemon()
    d = Daemon(d.cfg, keys, d.settings, accounts=[acct])
    await d.start()
    nc = await bench.connect("flows")  # the rotation flow's identity
    try:
        assert d.settings.holder in await registered_holders(nc, "binance", name)
        account_id, old_key, _ = bench.accounts[name]
        new = bench.exchange.admin("POST", f"/admin/v1/accounts/{account_id}/keys", {})
        stem = f"OMS_KEY_BINANCE_{name.upper()}"
        bench.env[stem + "_API_KEY"], bench.env[stem + "_SECRET"] = new["apiKey"], new["secret"]
        fp = keys.get("binance", "spot", name).fingerprint
        req = RotateRequest("rot-1", "binance", name, "spot", 0, fp)
        replies, missing = await announce(nc, req, {d.settings.holder}, timeout_s=30)
        assert not missing and replies[d.settings.holder].ok, replies
        bench.exchange.admin("DELETE", f"/admin/v1/keys/{old_key}")
        price = str((bench.ticker() * Decimal("0.97")).quantize(Decimal("0.01")))
        trader = await bench.connect("trader")  # only a trader sends orders
        try:
            [r] = (await request(trader, acct, place(acct, "0.01", price, intent="after-rotation"))).results
        finally:
            await trader.close()
        assert r.ok and r.status is OrderStatus.NEW, r
        assert d.rotation.metrics.switched == 1
        await until(lambda: d.account_health(acct)["open_orders"] == 1, what="the order on the new key")
    finally:
        await nc.close()
        await d.stop()
