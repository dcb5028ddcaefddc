"""The encrypted key cache, the log redaction layer, the secret scanner and policy rendering (no servers)."""

from __future__ import annotations

import logging
import os
import stat

import pytest

from oms.keys.cache import EncryptedKeyCache, KeyCacheError, load_cache_secret
from oms.keys.policies import render_policy
from oms.keys.provider import Credentials
from oms.keys.redact import REDACTED, RedactingFilter, install_redaction, redact, register_secret
from oms.keys.scan import scan_tree

SECRET = "s3cr3t-Value-0123456789abcdef"


def creds(secret: str = SECRET, version: int = 3) -> Credentials:
    return Credentials("binance", "spot", "main", "AKIDEXAMPLE123", secret, ("spot",), version, 1, 0, "demo_main")


def test_cache_round_trip_is_0600_and_opaque(tmp_path):
    secret = load_cache_secret(tmp_path / "keys" / "cache.secret", env={})
    assert stat.S_IMODE(os.stat(tmp_path / "keys" / "cache.secret").st_mode) == 0o600
    cache = EncryptedKeyCache(tmp_path / "cache" / "daemon.cache", secret, "daemon")
    assert cache.load() == {}
    cache.save({"exchanges/binance_spot_main": creds()}, 123)
    assert stat.S_IMODE(os.stat(cache.path).st_mode) == 0o600
    assert SECRET.encode() not in cache.path.read_bytes()
    assert b"AKIDEXAMPLE123" not in cache.path.read_bytes()
    loaded = cache.load()["exchanges/binance_spot_main"]
    assert loaded == creds() and loaded.secret == SECRET and loaded.venue_account == "demo_main"
    # a restarting reader derives the same key from the same secret file
    again = EncryptedKeyCache(cache.path, load_cache_secret(tmp_path / "keys" / "cache.secret", env={}), "daemon")
    assert again.load()["exchanges/binance_spot_main"].version == 3


def test_corrupt_and_foreign_caches_name_the_file(tmp_path):
    secret = load_cache_secret(tmp_path / "cache.secret", env={})
    path = tmp_path / "daemon.cache"
    EncryptedKeyCache(path, secret, "daemon").save({"p": creds()}, 1)
    with pytest.raises(KeyCacheError, match=f"{path}.*another cache secret or for another component"):
        EncryptedKeyCache(path, os.urandom(32), "daemon").load()  # foreign: another secret
    with pytest.raises(KeyCacheError, match=f"{path}.*another component"):
        EncryptedKeyCache(path, secret, "rotation").load()  # foreign: another component's file
    blob = bytearray(path.read_bytes())
    blob[-1] ^= 1
    path.write_bytes(bytes(blob))
    with pytest.raises(KeyCacheError, match=f"{path}.*altered"):
        EncryptedKeyCache(path, secret, "daemon").load()
    path.write_bytes(b"not a cache at all")
    with pytest.raises(KeyCacheError, match=f"{path} is not a crypto-oms key cache"):
        EncryptedKeyCache(path, secret, "daemon").load()


def test_cache_secret_from_environment_is_checked(tmp_path):
    assert load_cache_secret(tmp_path / "unused", env={"OMS_KEYS_CACHE_SECRET": "ab" * 32}) == bytes([0xAB]) * 32
    assert not (tmp_path / "unused").exists()
    with pytest.raises(KeyCacheError, match="at least 32 bytes"):
        load_cache_secret(tmp_path / "unused", env={"OMS_KEYS_CACHE_SECRET": "abcd"})
    with pytest.raises(KeyCacheError, match="not hex"):
        load_cache_secret(tmp_path / "unused", env={"OMS_KEYS_CACHE_SECRET": "zz" * 32})
    (tmp_path / "bad.secret").write_text("short")
    with pytest.raises(KeyCacheError, match="bad.secret"):
        load_cache_secret(tmp_path / "bad.secret", env={})


def test_credentials_never_show_the_secret():
    c = creds()
    assert SECRET not in repr(c) and SECRET not in str(c) and c.fingerprint in str(c)


def test_redaction_of_registered_values_signatures_and_assignments():
    register_secret(SECRET)
    assert redact(f"key failed with {SECRET} inside") == f"key failed with {REDACTED} inside"
    assert redact("GET /api/v3/account?timestamp=1&signature=9f86d081884c7d65") == (
        f"GET /api/v3/account?timestamp=1&signature={REDACTED}"
    )
    assert redact('{"api_secret": "abcdefgh1234", "x": 1}') == f'{{"api_secret": "{REDACTED}", "x": 1}}'
    assert redact("secret_id=0a1b2c3d-4e5f") == f"secret_id={REDACTED}"
    assert redact("nothing secret here") == "nothing secret here"


def test_every_log_record_is_redacted(tmp_path):
    other = "another-Secret-Value-42"
    register_secret(other)
    log_file = tmp_path / "run.log"
    handler = logging.FileHandler(log_file)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    old_level = root.level
    root.setLevel(logging.DEBUG)
    try:
        install_redaction()
        assert any(isinstance(f, RedactingFilter) for f in handler.filters)
        log = logging.getLogger("oms.test.redaction")
        log.info("loaded %s", other)
        log.debug("urllib3-style: GET /fapi/v2/balance?timestamp=1&signature=%s", "ab12" * 16)
        try:
            raise ValueError(f"bad secret {other}")
        except ValueError:
            log.exception("failure")
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        handler.close()
    text = log_file.read_text()
    assert "loaded [REDACTED]" in text and "signature=[REDACTED]" in text and "ValueError: bad secret" in text
    assert scan_tree([tmp_path], [other, "ab12" * 16]) == []


def test_scan_finds_clear_base64_and_url_forms(tmp_path):
    import base64

    (tmp_path / "data" / "sub").mkdir(parents=True)
    (tmp_path / "data" / "sub" / "a.jsonl").write_text(f'{{"k": "{SECRET}"}}')
    (tmp_path / "data" / "b.bin").write_bytes(base64.b64encode(SECRET.encode()))
    (tmp_path / "clean.txt").write_text("nothing")
    found = scan_tree([tmp_path, tmp_path / "missing"], [SECRET])
    assert {(f.path.name, f.encoding) for f in found} == {("a.jsonl", "clear"), ("b.bin", "base64")}
    assert all(SECRET not in str(f) for f in found)


def test_policies_list_each_path_and_no_glob():
    paths = ["exchanges/binance_spot_main", "exchanges/binance_usdm_sub_futures_trend"]
    daemon = render_policy("daemon", "secret", paths)
    assert 'path "secret/data/exchanges/binance_spot_main"' in daemon
    assert 'path "secret/data/exchanges/binance_usdm_sub_futures_trend"' in daemon
    assert "*" not in "".join(ln for ln in daemon.splitlines() if not ln.startswith("#"))
    assert '"update"' not in daemon and '"create"' not in daemon
    balances = render_policy("balances", "kv", paths)
    assert "/data/" not in balances and 'path "kv/metadata/exchanges/binance_spot_main"' in balances
    rotation = render_policy("rotation", "secret", paths[:1])
    assert 'path "secret/data/exchanges/binance_spot_main"' in rotation and '"update"' in rotation
