"""The Vault/OpenBao key store: one KV v2 secret per account and market, read through a versioned cache.

A secret at ``{mount}/exchanges/{exchange}_{market}_{account}`` holds ``api_key``, ``api_secret``,
``permissions`` (list), ``created`` and ``expires`` (ISO 8601 UTC, ``expires`` may be empty) and optionally
``venue_account`` (the venue's id of the account). Every write is a new version; the secret's custom
metadata repeats the current version's fingerprint, permissions and dates, so ``describe`` (``oms keys
show``/``list``, balance-only flows) never reads the secret itself.

``get`` (the connectors' ``KeyProvider``) serves from memory for ``ttl_s``, then re-reads Vault. When
Vault is sealed or unreachable it serves the last good key from memory or from the encrypted local cache,
logs a warning naming the account and path, and counts it (``metrics``). A sub or strategy account's key
with withdrawal permission is refused at load time.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import hvac
import hvac.exceptions
import requests

from oms.keys.cache import EncryptedKeyCache, KeyCacheError
from oms.keys.provider import (
    Credentials,
    KeyNotFound,
    KeyRevoked,
    KeyStoreError,
    Market,
    WithdrawalPermissionRefused,
    fingerprint,
)
from oms.keys.redact import register_secret
from oms.keys.settings import AccountCatalog, VaultSettings

log = logging.getLogger(__name__)
# Vault down, sealed (503), behind a broken proxy, or not serving yet (500 "local node not active but active
# cluster node not found" while a just-unsealed raft node elects its leader): the cached key stands in
_UNREACHABLE = (
    requests.ConnectionError,
    requests.Timeout,
    hvac.exceptions.VaultDown,
    hvac.exceptions.BadGateway,
    hvac.exceptions.InternalServerError,
)


class VaultUnavailable(KeyStoreError):
    """Vault is sealed or does not answer, and no cached key can stand in."""


def iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ") if ns else ""


def parse_iso(value: object, what: str) -> int:
    if value in (None, ""):
        return 0
    try:
        dt = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError(f"{what} is not an ISO 8601 time: {value!r}") from exc
    return int((dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp() * 1_000_000_000)


@dataclass
class KeyStoreMetrics:
    """Counters of one key store (rendered for Prometheus by ``prometheus_text`` and, on the daemon's
    ``/metrics``, by ``oms.keys.metrics.KeyStoreCollector``)."""

    cache_hits: int = 0  # `get` answered from memory within the TTL
    cache_misses: int = 0  # `get` had to read Vault (first use, TTL over)
    vault_reads: int = 0
    vault_unreachable: int = 0
    vault_denied: int = 0  # permission denied (wrong AppRole, policy) after a fresh login
    not_found: int = 0  # no key, or its current version revoked
    served_from_cache: int = 0
    cache_errors: int = 0
    bad_secrets: int = 0
    withdraw_refused: int = 0
    degraded: int = 0  # 1 while keys are served from the cache because Vault is unreachable

    def prometheus_text(self, component: str) -> str:
        lines = []
        for name, value in vars(self).items():
            kind = "gauge" if name == "degraded" else "counter"
            metric = f"oms_keys_{name}" + ("_total" if kind == "counter" else "")
            lines += [f"# TYPE {metric} {kind}", f'{metric}{{component="{component}"}} {value}']
        return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class KeyInfo:
    """What may be shown about a key: never the secret."""

    path: str
    version: int
    fingerprint: str
    permissions: tuple[str, ...]
    created_ns: int
    expires_ns: int
    revoked: bool
    versions: int
    venue_account: str = ""

    def age_s(self, now_ns: int | None = None) -> float:
        now = time.time_ns() if now_ns is None else now_ns
        return max(0.0, (now - self.created_ns) / 1e9) if self.created_ns else 0.0


@dataclass
class _Held:
    creds: Credentials
    read_at: float = field(default=0.0)


class VaultKeyStore:
    """Keys in Vault/OpenBao (KV v2), with a memory TTL and an optional encrypted disk cache."""

    def __init__(
        self,
        settings: VaultSettings,
        catalog: AccountCatalog,
        cache: EncryptedKeyCache | None = None,
        ttl_s: float = 60.0,
        warn_every_s: float = 60.0,
        retry_s: float = 5.0,
    ):
        self.settings = settings
        self.catalog = catalog
        self.cache = cache
        self.ttl_s = ttl_s
        self.warn_every_s = warn_every_s
        self.retry_s = retry_s  # while Vault is unreachable, `get` serves the cached key this long between tries
        self.metrics = KeyStoreMetrics()
        self._lock = threading.RLock()
        self._held: dict[str, _Held] = {}
        self._by_account: dict[tuple[str, str, str], _Held] = {}  # (exchange, market, account): the hot lookup
        self._disk: dict[str, Credentials] | None = None
        self._last_warn = 0.0
        self._client = hvac.Client(
            url=settings.address,
            token=settings.token,
            namespace=settings.namespace,
            verify=settings.verify,
            timeout=settings.timeout,
        )
        self._logged_in = settings.auth == "token"

    # ---------------------------------------------------------------- Vault access
    def _login(self) -> None:
        try:
            self._client.auth.approle.login(
                self.settings.role_id, self.settings.secret_id, mount_point=self.settings.approle_mount
            )
        except hvac.exceptions.InvalidRequest as exc:
            raise KeyStoreError(f"AppRole login to {self.settings.describe()} refused: {exc}") from exc
        self._logged_in = True

    def _call(self, what: str, fn):
        """Run one Vault call, logging in (again) with the AppRole when needed."""
        if not self._logged_in:
            self._login()
        try:
            return fn(self._client)
        except hvac.exceptions.Forbidden:
            if self.settings.auth != "approle":
                self.metrics.vault_denied += 1
                raise KeyStoreError(f"permission denied: {what} with {self.settings.describe()}") from None
        self._login()  # the AppRole token may have expired: one fresh login, then the answer is final
        try:
            return fn(self._client)
        except hvac.exceptions.Forbidden:
            self.metrics.vault_denied += 1
            raise KeyStoreError(f"permission denied: {what} with {self.settings.describe()}") from None

    @property
    def kv(self):
        return self._client.secrets.kv.v2

    def path(self, exchange: str, market: str, account: str) -> str:
        return self.catalog.get(exchange, account).path(market)

    def full_path(self, path: str) -> str:
        return f"{self.settings.mount}/{path}"

    # ---------------------------------------------------------------- reading
    def get(self, exchange: str, market: Market, account: str) -> Credentials:
        """The current key (KeyProvider): memory within ``ttl_s``, else Vault, else the cache."""
        held = self._by_account.get((exchange, market, account))  # one dict read: no path, no lock
        if held is not None and time.monotonic() - held.read_at < self.ttl_s:
            self.metrics.cache_hits += 1
            return held.creds
        self.metrics.cache_misses += 1
        return self.refresh(exchange, market, account)

    def _hold(self, path: str, creds: Credentials) -> None:
        held = _Held(creds, time.monotonic())
        self._held[path] = held
        self._by_account[(creds.exchange, creds.market, creds.account)] = held

    def refresh(self, exchange: str, market: Market, account: str, min_version: int = 0) -> Credentials:
        """Read the key from Vault now (cache fallback when unreachable); at least ``min_version``."""
        path = self.path(exchange, market, account)
        try:
            creds = self._read(exchange, market, account, path)
        except _UNREACHABLE as exc:
            return self._fallback(exchange, market, account, path, exc, min_version)
        if creds.version < min_version:
            raise KeyStoreError(f"{self.full_path(path)}: Vault serves version {creds.version}, expected {min_version}")
        with self._lock:
            self._hold(path, creds)
            if self.metrics.degraded:
                log.warning("vault %s answers again; keys are read from it", self.settings.address)
                self.metrics.degraded = 0
            self._save_cache()
        return creds

    def _read(self, exchange: str, market: Market, account: str, path: str) -> Credentials:
        where = self.full_path(path)
        self.metrics.vault_reads += 1
        try:
            answer = self._call(
                f"read {where}",
                lambda c: c.secrets.kv.v2.read_secret_version(
                    path, mount_point=self.settings.mount, raise_on_deleted_version=False
                ),
            )
        except hvac.exceptions.InvalidPath:
            self.metrics.not_found += 1
            raise KeyNotFound(f"no key for {exchange}/{account}/{market} at {where}") from None
        meta = answer.get("data", {}).get("metadata") or {}
        data = answer.get("data", {}).get("data")
        if meta.get("deletion_time") or meta.get("destroyed") or data is None:
            self.metrics.not_found += 1
            raise KeyRevoked(
                f"the key of {exchange}/{account}/{market} at {where} was revoked (v{meta.get('version')})"
            )
        creds = self._parse(exchange, market, account, where, data, int(meta.get("version", 0)), meta)
        register_secret(creds.secret)
        self._guard(creds, where)
        return creds

    def _parse(self, exchange, market, account, where, data, version, meta) -> Credentials:
        try:
            if not isinstance(data, dict):
                raise ValueError("the secret is not a mapping")
            missing = [k for k in ("api_key", "api_secret", "permissions") if k not in data]
            if missing:
                raise ValueError(f"missing field(s) {', '.join(missing)}")
            api_key, secret, perms = data["api_key"], data["api_secret"], data["permissions"]
            if not isinstance(api_key, str) or not api_key or not isinstance(secret, str) or not secret:
                raise ValueError("api_key and api_secret must be non-empty strings")
            if isinstance(perms, str):
                perms = [p.strip() for p in perms.split(",") if p.strip()]
            if not isinstance(perms, list) or not all(isinstance(p, str) for p in perms):
                raise ValueError('permissions must be a list of strings (e.g. ["spot", "futures"])')
            created = parse_iso(data.get("created") or meta.get("created_time"), "created")
            expires = parse_iso(data.get("expires"), "expires")
        except ValueError as exc:
            self.metrics.bad_secrets += 1
            log.error("malformed key of %s/%s/%s at %s v%d: %s", exchange, account, market, where, version, exc)
            raise KeyStoreError(
                f"malformed key of {exchange}/{account}/{market} at {where} v{version}: {exc}"
            ) from None
        return Credentials(
            exchange,
            market,
            account,
            api_key,
            secret,
            tuple(sorted(p.lower() for p in perms)),
            version,
            created,
            expires,
            str(data.get("venue_account", "")),
        )

    def _guard(self, creds: Credentials, where: str) -> None:
        acct = self.catalog.get(creds.exchange, creds.account)
        if acct.type != "main" and creds.can_withdraw:
            self.metrics.withdraw_refused += 1
            log.error(
                "refused key %s of %s account %s at %s: it has withdrawal permission",
                creds,
                acct.type,
                acct.account,
                where,
            )
            raise WithdrawalPermissionRefused(
                f"refused the key of {acct.type} account {creds.exchange}/{creds.account} at {where} "
                f"(v{creds.version}, {creds.fingerprint}): it has withdrawal permission, "
                "which only a main account may have"
            )

    def _fallback(self, exchange, market, account, path, exc, min_version) -> Credentials:
        self.metrics.vault_unreachable += 1
        with self._lock:
            held = self._held.get(path)
            creds = held.creds if held is not None else self._from_disk(path)
        where = self.full_path(path)
        if creds is None or creds.version < min_version:
            raise VaultUnavailable(
                f"vault {self.settings.address} is unreachable or sealed ({type(exc).__name__}) and no cached key "
                f"of {exchange}/{account}/{market} ({where}) can stand in"
            ) from None
        self.metrics.served_from_cache += 1
        self.metrics.degraded = 1
        with self._lock:  # serve it from memory until the next try, so an outage costs one attempt per retry_s
            self._hold(path, creds)
            self._held[path].read_at -= max(0.0, self.ttl_s - self.retry_s)
        now = time.monotonic()
        if now - self._last_warn >= self.warn_every_s:
            self._last_warn = now
            log.warning(
                "vault %s is unreachable or sealed (%s): serving the cached key %s of %s/%s/%s (%s); "
                "it switches back when vault answers",
                self.settings.address,
                type(exc).__name__,
                creds.fingerprint,
                exchange,
                account,
                market,
                where,
            )
        return creds

    def _from_disk(self, path: str) -> Credentials | None:
        if self.cache is None:
            return None
        if self._disk is None:
            try:
                self._disk = self.cache.load()
            except KeyCacheError as exc:
                self.metrics.cache_errors += 1
                log.error("%s", exc)
                self._disk = {}
            for c in self._disk.values():
                register_secret(c.secret)
        return self._disk.get(path)

    def _save_cache(self) -> None:
        if self.cache is None:
            return
        merged = dict(self._from_disk_all())
        merged.update({p: h.creds for p, h in self._held.items()})
        try:
            self.cache.save(merged, time.time_ns())
        except OSError as exc:
            self.metrics.cache_errors += 1
            log.error("cannot write key cache %s: %s", self.cache.path, exc)

    def _from_disk_all(self) -> dict[str, Credentials]:
        if self._disk is None:
            self._from_disk("")
        return self._disk or {}

    def warm(self, accounts: Iterable[tuple[str, str]] | None = None) -> dict[str, KeyStoreError]:
        """Load every configured key (of the given accounts); returns the failures by path, others keep going."""
        failures: dict[str, KeyStoreError] = {}
        chosen = [self.catalog.get(e, a) for e, a in accounts] if accounts is not None else list(self.catalog)
        for acct in chosen:
            for market in acct.markets:
                try:
                    self.refresh(acct.exchange, market, acct.account)  # type: ignore[arg-type]
                except KeyStoreError as exc:
                    failures[self.full_path(acct.path(market))] = exc
        return failures

    def held(self) -> list[Credentials]:
        """The keys held in memory now (what the process signs with), for metrics: never logged."""
        with self._lock:
            return [h.creds for h in self._by_account.values()]

    # ---------------------------------------------------------------- writing and metadata
    def put(
        self,
        exchange: str,
        market: Market,
        account: str,
        api_key: str,
        secret: str,
        permissions: Iterable[str],
        expires_ns: int = 0,
        venue_account: str = "",
        cas: int | None = None,
        created_ns: int = 0,
    ) -> Credentials:
        """Write a new version (check-and-set against ``cas`` when given); returns what was written.

        ``created_ns`` keeps a key's creation time when it is written again (a rollback); default now.
        """
        path = self.path(exchange, market, account)
        where = self.full_path(path)
        register_secret(secret)
        perms = tuple(sorted({p.lower() for p in permissions}))
        now = created_ns or time.time_ns()
        draft = Credentials(exchange, market, account, api_key, secret, perms, 0, now, expires_ns, venue_account)
        self._guard(draft, where)
        data = {
            "api_key": api_key,
            "api_secret": secret,
            "permissions": list(perms),
            "created": iso(now),
            "expires": iso(expires_ns),
            "venue_account": venue_account,
        }
        try:
            answer = self._call(
                f"write {where}",
                lambda c: c.secrets.kv.v2.create_or_update_secret(
                    path, secret=data, cas=cas, mount_point=self.settings.mount
                ),
            )
        except hvac.exceptions.InvalidRequest as exc:
            raise KeyStoreError(f"write of {where} refused: {exc}") from None
        version = int(answer["data"]["version"])
        meta = {  # custom metadata values must be non-empty: empty fields are left out
            k: v
            for k, v in {
                "fingerprint": fingerprint(api_key),
                "permissions": ",".join(perms),
                "created": iso(now),
                "expires": iso(expires_ns),
                "version": str(version),
                "venue_account": venue_account,
            }.items()
            if v
        }
        self._call(
            f"write metadata of {where}",
            lambda c: c.secrets.kv.v2.update_metadata(path, custom_metadata=meta, mount_point=self.settings.mount),
        )
        creds = Credentials(exchange, market, account, api_key, secret, perms, version, now, expires_ns, venue_account)
        with self._lock:
            self._hold(path, creds)
            self._save_cache()
        return creds

    def describe(self, exchange: str, market: Market, account: str) -> KeyInfo:
        """Version, fingerprint, permissions and dates of the current key, from metadata only."""
        path = self.path(exchange, market, account)
        where = self.full_path(path)
        try:
            answer = self._call(
                f"read metadata of {where}",
                lambda c: c.secrets.kv.v2.read_secret_metadata(path, mount_point=self.settings.mount),
            )
        except hvac.exceptions.InvalidPath:
            raise KeyNotFound(f"no key for {exchange}/{account}/{market} at {where}") from None
        data = answer["data"]
        current = int(data.get("current_version", 0))
        version_meta = (data.get("versions") or {}).get(str(current), {})
        custom = data.get("custom_metadata") or {}
        if custom.get("version") != str(current):
            raise KeyStoreError(
                f"{where}: metadata describes v{custom.get('version', '?')} but the current version is v{current} "
                "(written without `oms keys put`?)"
            )
        return KeyInfo(
            path=where,
            version=current,
            fingerprint=custom.get("fingerprint", ""),
            permissions=tuple(p for p in custom.get("permissions", "").split(",") if p),
            created_ns=parse_iso(custom.get("created"), "created"),
            expires_ns=parse_iso(custom.get("expires"), "expires"),
            revoked=bool(version_meta.get("deletion_time")) or bool(version_meta.get("destroyed")),
            versions=len(data.get("versions") or {}),
            venue_account=custom.get("venue_account", ""),
        )

    def revoke(self, exchange: str, market: Market, account: str, version: int) -> None:
        """Delete ``version`` (soft): readers of the path get ``KeyRevoked`` while it is current."""
        path = self.path(exchange, market, account)
        self._call(
            f"revoke v{version} of {self.full_path(path)}",
            lambda c: c.secrets.kv.v2.delete_secret_versions(path, [version], mount_point=self.settings.mount),
        )
        with self._lock:
            self._held.pop(path, None)
            self._by_account.pop((exchange, market, account), None)

    # ---------------------------------------------------------------- staging (venues without a key API)
    # ---------------------------------------------------------------- other secrets (the webhook's)
    def read_data(self, path: str) -> dict:
        """The current data of a secret outside the exchange keys (``path`` relative to the mount), read with
        this component's token; ``KeyNotFound`` when there is none."""
        where = self.full_path(path)
        try:
            answer = self._call(
                f"read {where}",
                lambda c: c.secrets.kv.v2.read_secret_version(
                    path, mount_point=self.settings.mount, raise_on_deleted_version=True
                ),
            )
        except hvac.exceptions.InvalidPath:
            raise KeyNotFound(f"no secret at {where}") from None
        data = answer.get("data", {}).get("data")
        if not isinstance(data, dict):
            raise KeyNotFound(f"the secret at {where} holds no data")
        return data

    def write_data(self, path: str, data: dict) -> int:
        """Write a new version of a secret outside the exchange keys; returns its version."""
        where = self.full_path(path)
        answer = self._call(
            f"write {where}",
            lambda c: c.secrets.kv.v2.create_or_update_secret(path, secret=data, mount_point=self.settings.mount),
        )
        return int(answer["data"]["version"])

    def staging_path(self, exchange: str, market: str, account: str) -> str:
        return "staging/" + self.path(exchange, market, account)

    def stage(
        self, exchange: str, market: Market, account: str, api_key: str, secret: str, permissions: Iterable[str]
    ) -> str:
        """Store a key the operator created on the venue for the rotation flow to pick up; its fingerprint."""
        path = self.staging_path(exchange, market, account)
        register_secret(secret)
        perms = sorted({p.lower() for p in permissions})
        draft = Credentials(exchange, market, account, api_key, secret, tuple(perms))
        self._guard(draft, self.full_path(path))
        data = {"api_key": api_key, "api_secret": secret, "permissions": perms, "created": iso(time.time_ns())}
        self._call(
            f"write {self.full_path(path)}",
            lambda c: c.secrets.kv.v2.create_or_update_secret(path, secret=data, mount_point=self.settings.mount),
        )
        return draft.fingerprint

    def read_staged(self, exchange: str, market: Market, account: str) -> Credentials:
        path = self.staging_path(exchange, market, account)
        where = self.full_path(path)
        try:
            answer = self._call(
                f"read {where}",
                lambda c: c.secrets.kv.v2.read_secret_version(
                    path, mount_point=self.settings.mount, raise_on_deleted_version=True
                ),
            )
        except hvac.exceptions.InvalidPath:
            raise KeyNotFound(
                f"no staged key for {exchange}/{account}/{market} at {where} (`oms keys stage`)"
            ) from None
        data, meta = answer["data"]["data"], answer["data"]["metadata"]
        creds = self._parse(exchange, market, account, where, data, int(meta.get("version", 0)), meta)
        register_secret(creds.secret)
        self._guard(creds, where)
        return creds

    def clear_staged(self, exchange: str, market: Market, account: str) -> None:
        path = self.staging_path(exchange, market, account)
        self._call(
            f"delete {self.full_path(path)}",
            lambda c: c.secrets.kv.v2.delete_metadata_and_all_versions(path, mount_point=self.settings.mount),
        )

    # ---------------------------------------------------------------- paths
    def ensure_path(self, exchange: str, market: Market, account: str, metadata: dict[str, str]) -> str:
        """Create the account's key path (KV v2 metadata with ``metadata``, no secret version) if it is new;
        returns the full path. An existing path keeps its versions and its metadata."""
        path = self.path(exchange, market, account)
        where = self.full_path(path)

        def create(c):
            try:
                c.secrets.kv.v2.read_secret_metadata(path, mount_point=self.settings.mount)
            except hvac.exceptions.InvalidPath:
                c.secrets.kv.v2.update_metadata(path, custom_metadata=metadata, mount_point=self.settings.mount)

        self._call(f"create {where}", create)
        return where
