"""A real OpenBao per test module, initialised by `oms keys init` (AppRoles, policies, audit, root revoked)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import hvac
import pytest

from oms.cli.main import main as oms_main
from oms.config import Config, load_config
from oms.keys.factory import open_store
from oms.services.openbao import OpenBaoService
from tests.harness.servers import loopback_settings

# the daemon of these tests trades only these accounts (so its policy must deny the others)
DAEMON_ACCOUNTS = ("binance/main", "binance/sub_spot_arb")


@dataclass
class Vault:
    service: OpenBaoService
    data_dir: Path
    env: dict[str, str]
    root_token: str  # revoked by init: kept only to prove it no longer works

    def config(self) -> Config:
        return load_config(env={**os.environ, **self.env})

    def store(self, component: str, **kwargs):
        return open_store(self.config(), component, env={**os.environ, **self.env}, **kwargs)

    def oms(self, *args: str) -> int:
        return oms_main(list(args))


def start_vault(tmp: Path, before_init: Callable[[hvac.Client], None] | None = None) -> Iterator[Vault]:
    """OpenBao up, ``before_init(root_client)`` if given, then `oms keys init` (which revokes the root token)."""
    svc = OpenBaoService(loopback_settings(tmp))
    svc.up()
    env = {"OMS_DATA_DIR": str(tmp), "OMS_OPENBAO_PORT": str(svc.settings.openbao_port)}
    root = svc.root_token()
    try:
        with pytest.MonkeyPatch.context() as mp:
            for k, v in env.items():
                mp.setenv(k, v)
            for k in ("OMS_VAULT_ADDR", "OMS_VAULT_TOKEN", "VAULT_ADDR", "VAULT_TOKEN", "BAO_ADDR", "BAO_TOKEN"):
                mp.delenv(k, raising=False)
            if before_init is not None:
                before_init(hvac.Client(url=svc.address, token=root, timeout=30))
            args = ["keys", "init"]
            for acct in DAEMON_ACCOUNTS:
                args += ["--daemon-account", acct]
            assert oms_main(args) == 0
            yield Vault(svc, tmp, env, root)
    finally:
        svc.down()


@pytest.fixture(scope="module")
def vault(tmp_path_factory) -> Iterator[Vault]:
    yield from start_vault(tmp_path_factory.mktemp("keys-vault"))
