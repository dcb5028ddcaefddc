"""The Prefect API behind its auth string when it listens beyond loopback (or is told to always)."""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

from oms.config import ConfigError, load_config
from oms.services.prefect import PrefectService, auth_string_file, needs_auth
from tests.harness.servers import loopback_settings


def _post(url: str, auth: str | None = None) -> int:
    req = urllib.request.Request(url, data=b"{}", method="POST", headers={"Content-Type": "application/json"})
    if auth:
        req.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_auth_is_on_beyond_loopback_and_off_on_it(tmp_path):
    assert not needs_auth(loopback_settings(tmp_path))
    assert needs_auth(loopback_settings(tmp_path, prefect_host="0.0.0.0"))
    assert needs_auth(loopback_settings(tmp_path, prefect_host="10.1.2.3"))
    assert needs_auth(loopback_settings(tmp_path, prefect_api_auth="always"))


def test_a_host_that_is_not_an_address_names_file_and_key():
    with pytest.raises(ConfigError) as exc:
        load_config(env={"OMS_PREFECT_HOST": "my laptop"})
    text = str(exc.value)
    assert "stream.yaml" in text and "prefect.host" in text and "OMS_PREFECT_HOST" in text


def test_the_api_refuses_requests_without_the_auth_string(tmp_path):
    svc = PrefectService(loopback_settings(tmp_path, prefect_api_auth="always"))
    assert svc.up() == "started"
    try:
        path = auth_string_file(svc.settings)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        secret = path.read_text().strip()
        assert secret.startswith("oms:") and len(secret) > 20
        assert svc.health()[0]  # health probes pass without it
        assert _post(f"{svc.address}/api/flows/filter") == 401
        assert _post(f"{svc.address}/api/flows/filter", "oms:wrong") == 401
        assert _post(f"{svc.address}/api/flows/filter", secret) == 200
        # a real Prefect client with the project's client environment gets in
        probe = (
            "import asyncio, json\n"
            "from prefect.client.orchestration import get_client\n"
            "async def main():\n"
            "    async with get_client() as c:\n"
            "        print(json.dumps(len(await c.read_flows())))\n"
            "asyncio.run(main())\n"
        )
        env = {**os.environ, **svc.client_env()}
        out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout.strip().splitlines()[-1]) == 0
        env.pop("PREFECT_API_AUTH_STRING")
        out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120)
        assert out.returncode != 0 and "401" in out.stderr
    finally:
        svc.down()
