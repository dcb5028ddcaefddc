"""``oms keys init``: AppRoles with least-privilege policies, the file audit device, and no root token after.

With a privileged token (the embedded OpenBao's root token from ``data/openbao/init.json``, or
``OMS_VAULT_TOKEN`` for a real Vault) it

1. enables the AppRole auth method and the KV v2 mount if missing;
2. writes the policies of ``deploy/vault/policies/`` for the configured accounts (the daemon's for its
   accounts only) and one role per component (``oms-daemon``, ``oms-rotation``, ``oms-balances``,
   ``oms-admin``), whose tokens carry only that policy;
3. writes each component's role-id and a fresh secret-id to ``data/keys/approle/{component}.json`` (0600);
4. enables the file audit device (Vault HMACs every secret in audit lines);
5. revokes the root token and removes it from ``init.json`` (the unseal key stays), so nothing can use it.

Running it again (after adding accounts) needs a privileged token again: one the operator holds (a token with
sudo on the policy, auth and audit endpoints), or for the embedded OpenBao a fresh root token made by
``generate_root`` from the unseal key in ``init.json`` and the ``oms-admin`` AppRole's token (OpenBao >= 2.6
serves root-token generation only to an authenticated caller: ``sys/generate-root-token``); init revokes that
root token again when it is done.
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass
from pathlib import Path

import hvac
import hvac.exceptions

from oms.keys.cache import write_private
from oms.keys.policies import policy_name, render_policy
from oms.keys.provider import KeyStoreError
from oms.keys.settings import COMPONENTS, AccountCatalog, approle_file

PRIVILEGE_NEEDED = (
    "the token given is not privileged enough: init writes policies (sys/policies/acl), enables auth methods "
    "(sys/auth) and audit devices (sys/audit) and writes AppRoles (auth/approle/role): use a root token or one "
    "with sudo on those paths"
)


@dataclass(frozen=True)
class InitResult:
    roles: dict[str, Path]  # component -> its AppRole credentials file
    audit_file: str | None
    root_revoked: bool
    policies: dict[str, str]  # policy name -> rendered HCL


def _ensure_auth(client: hvac.Client, mount: str) -> None:
    if f"{mount}/" not in client.sys.list_auth_methods().get("data", {}):
        client.sys.enable_auth_method("approle", path=mount)


def _ensure_kv(client: hvac.Client, mount: str) -> None:
    mounts = client.sys.list_mounted_secrets_engines()
    if f"{mount}/" not in mounts.get("data", mounts):
        client.sys.enable_secrets_engine("kv", path=mount, options={"version": "2"})


def _ensure_audit(client: hvac.Client, audit_file: str) -> str:
    """The file audit device writing ``audit_file``: found (OpenBao declares it in its config) or enabled."""
    devices = client.sys.list_enabled_audit_devices().get("data", {})
    for path, device in devices.items():
        if device.get("type") == "file" and device.get("options", {}).get("file_path") == audit_file:
            return path
    try:
        client.sys.enable_audit_device("file", path="oms-file", options={"file_path": audit_file})
    except hvac.exceptions.InvalidRequest as exc:
        raise KeyStoreError(
            f"no file audit device writes {audit_file}, and this server refuses to enable one by API ({exc}); "
            'declare it in the server\'s config: audit "file" "oms-file" { options { file_path = "..." } }'
        ) from None
    return "oms-file/"


def initialise(
    client: hvac.Client,
    catalog: AccountCatalog,
    data_dir: Path,
    mount: str = "secret",
    approle_mount: str = "approle",
    daemon_accounts: list[tuple[str, str]] | None = None,
    audit_file: str | None = None,
    init_file: Path | None = None,
    revoke_root: bool = True,
    token_ttl: str = "1h",
    token_max_ttl: str = "24h",
) -> InitResult:
    """Set up least privilege on ``client``'s Vault (see the module docstring); idempotent but for secret-ids."""
    try:
        is_root = "root" in client.auth.token.lookup_self()["data"].get("policies", [])
        _ensure_kv(client, mount)
        _ensure_auth(client, approle_mount)
        all_paths = catalog.paths()
        paths = {
            "daemon": catalog.paths(daemon_accounts) if daemon_accounts is not None else all_paths,
            "rotation": all_paths,
            "balances": all_paths,
            "admin": all_paths,
        }
        policies: dict[str, str] = {}
        roles: dict[str, Path] = {}
        for component in COMPONENTS:
            name = policy_name(component)
            policies[name] = render_policy(component, mount, paths[component])
            client.sys.create_or_update_policy(name=name, policy=policies[name])
            client.auth.approle.create_or_update_approle(
                name,
                token_policies=[name],
                token_ttl=token_ttl,
                token_max_ttl=token_max_ttl,
                token_type="service",
                mount_point=approle_mount,
            )
            role_id = client.auth.approle.read_role_id(name, mount_point=approle_mount)["data"]["role_id"]
            secret_id = client.auth.approle.generate_secret_id(name, mount_point=approle_mount)["data"]["secret_id"]
            target = approle_file(data_dir, component)
            doc = {"role": name, "role_id": role_id, "secret_id": secret_id, "approle_mount": approle_mount}
            write_private(target, json.dumps(doc).encode())
            roles[component] = target
        if audit_file:
            _ensure_audit(client, audit_file)
        revoked = False
        if revoke_root and is_root:
            client.auth.token.revoke_self()
            revoked = True
            if init_file is not None and init_file.exists():
                doc = json.loads(init_file.read_text())
                doc.pop("root_token", None)
                doc["root_revoked"] = True
                write_private(init_file, json.dumps(doc).encode())
                os.chmod(init_file, 0o600)
    except hvac.exceptions.Forbidden as exc:
        raise KeyStoreError(f"`oms keys init`: {PRIVILEGE_NEEDED} (Vault answered: permission denied)") from exc
    except hvac.exceptions.VaultError as exc:
        raise KeyStoreError(f"`oms keys init` failed: {exc}") from exc
    return InitResult(roles, audit_file, revoked, policies)


def generate_root(address: str, token: str, unseal_key: str, namespace: str | None = None, timeout: float = 30) -> str:
    """A new root token from the unseal key (single key share), through OpenBao's authenticated root-token
    generation (``sys/generate-root-token/attempt`` then ``/update``, OTP-encoded answer). ``token`` must be allowed
    on those paths (the ``oms-admin`` policy is). The caller revokes the root token when done."""
    client = hvac.Client(url=address, token=token, namespace=namespace, timeout=timeout)
    where = f"{address}/v1/sys/generate-root-token"
    try:
        attempt = client.adapter.get("/v1/sys/generate-root-token/attempt").get("data", {})
        if attempt.get("started"):
            raise KeyStoreError(
                f"a root token generation is already in progress at {where} (nonce {attempt.get('nonce')}): finish "
                "it or cancel it (`bao operator generate-root -cancel`), then run init again"
            )
        start = client.adapter.put("/v1/sys/generate-root-token/attempt", json={})["data"]
        otp, nonce = start["otp"], start["nonce"]
        try:
            update = {"key": unseal_key, "nonce": nonce}
            done = client.adapter.put("/v1/sys/generate-root-token/update", json=update)["data"]
        except hvac.exceptions.VaultError:
            client.adapter.delete("/v1/sys/generate-root-token/attempt")  # ours: leave no attempt half-done
            raise
    except hvac.exceptions.Forbidden:
        raise KeyStoreError(
            f"root token generation at {where} refused: the token may not use sys/generate-root-token "
            "(the oms-admin policy allows it since this version: run init once with a privileged token)"
        ) from None
    except hvac.exceptions.InvalidRequest as exc:
        raise KeyStoreError(f"root token generation at {where} refused: {exc} (wrong unseal key?)") from None
    except hvac.exceptions.VaultError as exc:
        raise KeyStoreError(f"root token generation at {where} failed: {exc}") from None
    encoded = done.get("encoded_token") or done.get("encoded_root_token") or ""
    if not done.get("complete") or not encoded:
        raise KeyStoreError(f"root token generation at {where} did not complete (more unseal key shares needed?)")
    raw = base64.b64decode(encoded + "=" * (-len(encoded) % 4))
    return bytes(a ^ b for a, b in zip(raw, otp.encode(), strict=False)).decode()


def approle_token(address: str, role_id: str, secret_id: str, mount: str = "approle", namespace=None) -> str:
    """A token of an AppRole (the ``oms-admin`` role for ``generate_root``)."""
    client = hvac.Client(url=address, namespace=namespace, timeout=30)
    try:
        answer = client.auth.approle.login(role_id, secret_id, mount_point=mount)
    except hvac.exceptions.VaultError as exc:
        raise KeyStoreError(f"AppRole login to {address} refused: {exc}") from None
    return answer["auth"]["client_token"]
