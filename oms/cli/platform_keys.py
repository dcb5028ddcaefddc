"""What `oms up` does between services: Vault initialised once OpenBao answers, and every local-venue account
given a funded account and a working key once the local exchange answers (before the daemon starts)."""

from __future__ import annotations

import os
from collections.abc import Callable

import hvac

from oms.config import Config
from oms.keys.bootstrap import initialise
from oms.keys.factory import open_store
from oms.keys.provider import KeyStoreError
from oms.keys.provision import provision_local
from oms.keys.settings import AccountCatalog, approle_file
from oms.keys.venue import admin_token
from oms.services import ServiceError, Services

REAL_VAULT_VARS = ("OMS_VAULT_ADDR", "VAULT_ADDR", "BAO_ADDR")


class KeyProvisioning:
    """``on_started`` hook of ``Services.up``; ``report`` gets one line per thing it did."""

    def __init__(self, cfg: Config, services: Services, report: Callable[[str], None]):
        self.cfg = cfg
        self.services = services
        self.report = report
        self.embedded_vault = not any(os.environ.get(v) for v in REAL_VAULT_VARS)

    def __call__(self, name: str) -> None:
        try:
            if name == "openbao" and self.embedded_vault:
                self._initialise()
            elif name == "localex" and self.services["openbao"].proc.running() is not None:
                self._provision()
        except KeyStoreError as exc:
            raise ServiceError(f"keys: {exc}") from exc

    def _initialise(self) -> None:
        data_dir = self.cfg.data_dir()
        if approle_file(data_dir, "admin").is_file():
            return
        svc = self.services["openbao"]
        client = hvac.Client(url=svc.address, token=svc.root_token(), timeout=30)
        result = initialise(
            client,
            AccountCatalog.from_config(self.cfg),
            data_dir,
            audit_file=str(svc.audit_file),
            init_file=svc.init_file,
        )
        self.report(
            f"vault:   AppRoles for {', '.join(result.roles)} in {approle_file(data_dir, 'admin').parent} (0600); "
            "root token revoked"
        )

    def _provision(self) -> None:
        if not any(ex.venue == "local" for ex in self.cfg.exchanges.exchanges.values()):
            return
        store = open_store(self.cfg, "admin", cache=False)
        base_url = self.services["localex"].address
        result = provision_local(self.cfg, base_url, admin_token(self.cfg.data_dir()), store)
        if result.accounts_created:
            self.report(f"accounts: created on the local exchange: {', '.join(result.accounts_created)}")
        self.report(
            f"keys:    {len(result.keys_created)} created, {len(result.keys_kept)} kept "
            "(local exchange keys in Vault, one per account and market)"
        )
