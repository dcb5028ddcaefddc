"""`oms up` between services: Vault initialised once, then every account's key provisioned on the local
exchange before anything that trades starts; a failure there undoes the start."""

from __future__ import annotations

import os

import pytest

from oms.cli.platform_keys import KeyProvisioning
from oms.config import load_config
from oms.keys.factory import open_store
from oms.keys.settings import approle_file
from oms.keys.venue import signed_read
from oms.services import ServiceError, Services
from tests.harness.servers import loopback_settings


@pytest.fixture
def platform(tmp_path, monkeypatch):
    for var in ("OMS_VAULT_ADDR", "VAULT_ADDR", "BAO_ADDR", "OMS_VAULT_TOKEN", "VAULT_TOKEN", "BAO_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    s = loopback_settings(tmp_path / "data")
    env = {
        "OMS_DATA_DIR": str(s.data_dir),
        "OMS_OPENBAO_PORT": str(s.openbao_port),
        "OMS_OPENBAO_CLUSTER_PORT": str(s.openbao_cluster_port),
        "OMS_LOCAL_EXCHANGE_PORT": str(s.localex_port),
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    services = Services(s)
    try:
        yield load_config(env=dict(os.environ)), services
    finally:
        services.down()


def test_up_initialises_vault_once_and_provisions_every_key(platform):
    cfg, services = platform
    lines: list[str] = []
    services.up(["openbao", "localex"], on_started=KeyProvisioning(cfg, services, lines.append))
    data = cfg.data_dir()
    assert approle_file(data, "daemon").is_file() and approle_file(data, "admin").is_file()
    assert any(line.startswith("vault:") and "root token revoked" in line for line in lines)
    n_keys = sum(len(a.markets()) for accts in cfg.accounts.values() for a in accts.values())
    assert f"keys:    {n_keys} created, 0 kept" in lines[-1]
    daemon = open_store(cfg, "daemon", cache=False)  # the daemon's own AppRole reads them
    for ex, accts in cfg.accounts.items():
        for name, acct in accts.items():
            for market in acct.markets():
                signed_read(services["localex"].address, daemon.get(ex, market, name))

    lines.clear()
    services.up(["openbao", "localex"], on_started=KeyProvisioning(cfg, services, lines.append))
    assert lines == [f"keys:    0 created, {n_keys} kept (local exchange keys in Vault, one per account and market)"]

    # the local exchange restarted (its accounts live in memory): accounts and keys are made again
    services.down(["localex"])
    lines.clear()
    services.up(["openbao", "localex"], on_started=KeyProvisioning(cfg, services, lines.append))
    assert lines[0].startswith("accounts: created on the local exchange: binance/main")
    assert f"keys:    {n_keys} created, 0 kept" in lines[1]


def test_a_provisioning_failure_stops_what_this_up_started(platform):
    cfg, services = platform

    def broken(name: str) -> None:
        if name == "localex":
            raise ServiceError("keys: the local exchange refused the admin token")

    with pytest.raises(ServiceError, match="refused the admin token") as exc:
        services.up(["openbao", "localex"], on_started=broken)
    assert "stopped localex, openbao again" in str(exc.value)
    assert services["openbao"].proc.running() is None and services["localex"].proc.running() is None
