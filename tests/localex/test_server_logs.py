"""Issue 15 item 5: the local exchange's log holds no credentials, does not flood, rotates and is private.

A real ``python -m localex`` with a data folder, driven over sockets: signed REST calls (ccxt and raw),
a futures listenKey in a stream URL, a flood of rejected input; then the log file is read back.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import stat
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import aiohttp
import pytest
from conftest import localex_process

from localex import clients
from localex.admin_client import AdminClient, read_admin_token
from localex.server.logs import redact, redact_target

LONG_TOKEN = re.compile(r"[A-Za-z0-9]{48,}")


def get(url: str, headers: dict[str, str] | None = None) -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=5) as resp:
            return resp.status
    except urllib.error.HTTPError as err:
        return err.code


def log_text(data_dir: Path) -> str:
    return "".join(p.read_text() for p in sorted(data_dir.glob("localex.log*")))


async def _stream_with_listen_key(url: str, key: str) -> str:
    async with aiohttp.ClientSession() as session:
        async with session.post(url + "/fapi/v1/listenKey", headers={"X-MBX-APIKEY": key}) as resp:
            listen_key = (await resp.json())["listenKey"]
        ws_url = url.replace("http", "ws")
        async with session.ws_connect(f"{ws_url}/fstream/ws/{listen_key}") as ws:
            await ws.send_json({"method": "LIST_SUBSCRIPTIONS", "id": 1})
            await ws.receive_json(timeout=5)
        async with session.get(f"{url}/fstream/ws/{listen_key[:-4]}zzzz") as resp:  # an unknown key: rejected
            assert resp.status >= 400
    return listen_key


async def test_log_has_no_signatures_or_listen_keys_and_is_private(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with localex_process(data, "--log-level", "debug", umask=0) as (_, url):
        keys = json.loads((data / "localex-demo-keys.json").read_text())["keys"]
        main = keys[0]
        ex = clients.ccxt_sync(url, main["apiKey"], main["secret"])
        ex.fetch_balance()
        q = urllib.parse.urlencode({"timestamp": int(time.time() * 1000)})
        sig = hmac.new(main["secret"].encode(), q.encode(), hashlib.sha256).hexdigest()
        assert get(f"{url}/api/v3/account?{q}&signature={sig}", {"X-MBX-APIKEY": main["apiKey"]}) == 200
        bad_sig = "f" * 64
        assert get(f"{url}/api/v3/account?{q}&signature={bad_sig}", {"X-MBX-APIKEY": main["apiKey"]}) == 400
        listen_key = await _stream_with_listen_key(url, main["apiKey"])
        AdminClient(url, read_admin_token(data)).call("GET", "/admin/v1/counters")
    text = log_text(data)
    assert "GET /api/v3/account?timestamp=" in text  # the access log is there ...
    assert "signature=<redacted>" in text  # ... with the signature taken out
    for secret in (sig, bad_sig, listen_key, main["secret"], main["apiKey"], read_admin_token(data)):
        assert secret not in text
    assert LONG_TOKEN.search(text) is None
    assert stat.S_IMODE((data / "localex.log").stat().st_mode) == 0o600


def test_rejected_input_is_debug_with_a_summary_and_the_log_rotates(tmp_path: Path) -> None:
    data = tmp_path / "data"
    args = ("--log-max-bytes", "16384", "--bad-input-summary-s", "0.5")
    with localex_process(data, *args) as (_, url):
        for i in range(300):
            assert get(f"{url}/api/v3/depth?symbol=bad%20{i}") == 400  # -1100, each one a rejection
        deadline = time.monotonic() + 15
        while "rejected input: " not in log_text(data):
            assert time.monotonic() < deadline, "no summary line was logged"
            time.sleep(0.1)
    text = log_text(data)
    assert "rejected input rest_-1100" not in text  # no line per rejection at INFO
    counts = [int(n) for n in re.findall(r"rejected input: \d+ in the last [\d.]+ s \(rest_-1100 (\d+)", text)]
    assert sum(counts) == 300 and 1 <= len(counts) <= 30
    files = sorted(p.name for p in data.glob("localex.log*"))
    assert "localex.log.1" in files  # 300 access lines are more than 16 KiB: it rotated
    assert all(stat.S_IMODE((data / f).stat().st_mode) == 0o600 for f in files)
    assert all(len((data / f).read_bytes()) <= 16384 for f in files)


def test_debug_level_logs_each_rejection_on_one_line(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with localex_process(data, "--log-level", "debug") as (_, url):
        token = read_admin_token(data)
        body = json.dumps({"email": "a@b.io\n2026-01-01 00:00:00 INFO forged line"}).encode()
        req = urllib.request.Request(
            url + "/admin/v1/accounts",
            data=body,
            method="POST",
            headers={"X-Admin-Token": token, "Content-Type": "application/json"},
        )
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(req, timeout=5)
    text = log_text(data)
    assert "rejected input admin_rejected" in text
    assert not any(line.startswith("2026-01-01 00:00:00 INFO forged") for line in text.splitlines())


def test_redact_target_covers_encoded_names_and_path_keys() -> None:
    key = "f0" * 32
    out = redact_target(f"/fstream/ws/{key}?%73ignature=abc&listenKey=k1&symbol=BTCUSDT&x={key}")
    assert out == "/fstream/ws/<redacted>?signature=<redacted>&listenKey=<redacted>&symbol=BTCUSDT&x=<redacted>"
    assert redact_target("/api/v3/depth?symbol=BTCUSDT&limit=5") == "/api/v3/depth?symbol=BTCUSDT&limit=5"


def test_redact_covers_every_credential_shape() -> None:
    key = "A1b2" * 16
    line = (
        f'GET /api/v3/order?symbol=BTCUSDT&signature=abc123&timestamp=1 "listenKey": "{key}" '
        f"/fstream/ws/{key} ?listenKey=short apiKey={key[:10]} secret=s3cr3t"
    )
    out = redact(line)
    assert key not in out and "abc123" not in out and "short" not in out and "s3cr3t" not in out
    assert "symbol=BTCUSDT" in out and "timestamp=1" in out
