"""The encrypted local cache of keys: a reader keeps its keys while Vault is unreachable.

One file per component (``data/keys/cache/{component}.cache``, mode 0600) holds the last credentials read
from Vault, sealed with AES-256-GCM. The 256-bit key is derived (HKDF-SHA256) from a cache secret held
outside the cache file: ``OMS_KEYS_CACHE_SECRET`` (64 hex digits) or the 0600 file
``data/keys/cache.secret`` created on first use. The component's name is authenticated data, so a cache
file copied from another component, written with another secret, truncated or altered is refused with an
error naming the file.

File layout: ``OMSKC1`` magic, 12-byte nonce, then the ciphertext (with its 16-byte tag) of a msgspec JSON
document ``{path: entry}``. Each save uses a fresh nonce and replaces the file atomically.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import msgspec
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from oms.keys.provider import Credentials, KeyStoreError

MAGIC = b"OMSKC1"
NONCE_LEN = 12
SECRET_ENV = "OMS_KEYS_CACHE_SECRET"


class KeyCacheError(KeyStoreError):
    """The cache file cannot be used (corrupt, foreign, unreadable); the message names the file."""


class CacheEntry(msgspec.Struct, frozen=True):
    exchange: str
    market: str
    account: str
    api_key: str
    secret: str
    permissions: tuple[str, ...]
    version: int
    created_ns: int
    expires_ns: int
    venue_account: str = ""
    cached_ns: int = 0

    @classmethod
    def of(cls, creds: Credentials, cached_ns: int) -> CacheEntry:
        return cls(
            creds.exchange,
            creds.market,
            creds.account,
            creds.api_key,
            creds.secret,
            tuple(creds.permissions),
            creds.version,
            creds.created_ns,
            creds.expires_ns,
            creds.venue_account,
            cached_ns,
        )

    def credentials(self) -> Credentials:
        return Credentials(
            self.exchange,
            self.market,  # type: ignore[arg-type]
            self.account,
            self.api_key,
            self.secret,
            self.permissions,
            self.version,
            self.created_ns,
            self.expires_ns,
            self.venue_account,
        )


_decoder = msgspec.json.Decoder(dict[str, CacheEntry])


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically with mode 0600 (the folder is created 0700)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def load_cache_secret(secret_file: Path, env: dict[str, str] | None = None) -> bytes:
    """The cache secret: from ``OMS_KEYS_CACHE_SECRET`` (hex) or ``secret_file`` (created 0600 if missing)."""
    env = os.environ if env is None else env
    value = env.get(SECRET_ENV)
    if value:
        try:
            raw = bytes.fromhex(value.strip())
        except ValueError as exc:
            raise KeyCacheError(f"{SECRET_ENV} is not hex digits") from exc
        if len(raw) < 32:
            raise KeyCacheError(f"{SECRET_ENV} must hold at least 32 bytes (64 hex digits), got {len(raw)}")
        return raw
    if not secret_file.exists():
        write_private(secret_file, secrets.token_hex(32).encode())
    try:
        raw = bytes.fromhex(secret_file.read_text().strip())
    except (OSError, ValueError) as exc:
        raise KeyCacheError(f"cache secret file {secret_file} is unreadable or not hex: {exc}") from exc
    if len(raw) < 32:
        raise KeyCacheError(f"cache secret file {secret_file} holds {len(raw)} bytes; at least 32 are needed")
    return raw


class EncryptedKeyCache:
    """The sealed ``{vault path: credentials}`` map of one component."""

    def __init__(self, path: Path, secret: bytes, component: str):
        self.path = Path(path)
        self.component = component
        self._aad = MAGIC + component.encode()
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=MAGIC, info=b"oms key cache " + component.encode())
        self._aes = AESGCM(key.derive(secret))

    def load(self) -> dict[str, Credentials]:
        """The cached credentials by vault path; empty when the file does not exist."""
        try:
            blob = self.path.read_bytes()
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise KeyCacheError(f"key cache {self.path} cannot be read: {exc}") from exc
        if not blob.startswith(MAGIC) or len(blob) < len(MAGIC) + NONCE_LEN + 16:
            raise KeyCacheError(f"key cache {self.path} is not a crypto-oms key cache (bad header or truncated)")
        nonce = blob[len(MAGIC) : len(MAGIC) + NONCE_LEN]
        try:
            plain = self._aes.decrypt(nonce, blob[len(MAGIC) + NONCE_LEN :], self._aad)
        except InvalidTag as exc:
            raise KeyCacheError(
                f"key cache {self.path} cannot be decrypted: it was written with another cache secret or for "
                f"another component than {self.component!r}, or it was altered; delete it to start afresh"
            ) from exc
        try:
            entries = _decoder.decode(plain)
        except msgspec.DecodeError as exc:
            raise KeyCacheError(f"key cache {self.path} decrypts but its content is malformed: {exc}") from exc
        return {path: e.credentials() for path, e in entries.items()}

    def save(self, creds_by_path: dict[str, Credentials], now_ns: int) -> None:
        entries = {path: CacheEntry.of(c, now_ns) for path, c in creds_by_path.items()}
        nonce = secrets.token_bytes(NONCE_LEN)
        sealed = self._aes.encrypt(nonce, msgspec.json.encode(entries), self._aad)
        write_private(self.path, MAGIC + nonce + sealed)
