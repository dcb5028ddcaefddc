"""Issue 15 item 3: the admin API is closed to other local processes and to web pages.

Reproduced as the issue found it, over real sockets: no token (the default now is a per-install token in
a 0600 file), a ``text/plain`` cross-origin POST, a foreign ``Host`` (DNS rebinding), ``--host 0.0.0.0``,
and demo keys that were the same on every install. Each asserts the clear error and that nothing changed.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import LocalServer, free_port, localex_process, start_server

from localex import clients
from localex.admin_client import AdminClient, AdminError, read_admin_token
from localex.server.state import ServerConfig
from oms.services import ServiceSettings
from oms.services.localex import LocalExchangeService

TOKEN = "X-Admin-Token"


def request(
    url: str, method: str = "GET", body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, object]:
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(scope="module")
def srv() -> Iterator[LocalServer]:
    yield from start_server(ServerConfig(port=free_port(), replay=False))


def account_ids(srv: LocalServer) -> list[str]:
    return [a["accountId"] for a in srv.admin("GET", "/admin/v1/accounts")]  # type: ignore[index, union-attr]


def test_admin_api_wants_the_token(srv: LocalServer) -> None:
    before = account_ids(srv)
    for headers in ({}, {TOKEN: "wrong-token-of-enough-length"}, {TOKEN: "é" * 20}):
        status, body = request(srv.url + "/admin/v1/demo-keys", headers=headers)
        assert (status, body) == (401, {"code": -1, "msg": f"missing or wrong {TOKEN}"})
        status, _ = request(
            srv.url + "/admin/v1/accounts", "POST", b"{}", {**headers, "Content-Type": "application/json"}
        )
        assert status == 401
    assert account_ids(srv) == before
    assert srv.admin("GET", "/admin/v1/counters")["badInput"]["admin_token"] >= 6  # type: ignore[index]


def test_text_plain_cross_origin_post_creates_nothing(srv: LocalServer) -> None:
    """What a web page can send without a CORS preflight: ``text/plain`` (or a form). Refused, 415."""
    main = account_ids(srv)[0]
    before = srv.admin("GET", f"/admin/v1/accounts/{main}/balances")
    for ctype in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"):
        status, body = request(
            srv.url + f"/admin/v1/accounts/{main}/fund",
            "POST",
            b'{"asset":"USDT","amount":"1000000"}',
            {TOKEN: srv.admin_token, "Content-Type": ctype},
        )
        assert status == 415 and body == {
            "code": -1,
            "msg": f"admin POST bodies must be application/json (got {ctype.split(';')[0]})",
        }
    assert srv.admin("GET", f"/admin/v1/accounts/{main}/balances") == before
    ok = {TOKEN: srv.admin_token, "Content-Type": "application/json; charset=utf-8"}  # parameters are fine
    assert request(srv.url + "/admin/v1/accounts", "POST", b"{}", ok)[0] == 200


def test_foreign_host_header_is_refused_everywhere(srv: LocalServer) -> None:
    """DNS rebinding: the browser sends the attacker's name as Host. Admin and Binance paths answer 403."""
    before = account_ids(srv)
    evil = {"Host": "rebind.attacker.example", TOKEN: srv.admin_token, "Content-Type": "application/json"}
    status, body = request(srv.url + "/admin/v1/accounts", "POST", b"{}", evil)
    assert status == 403 and body["code"] == -1 and "Host header" in body["msg"]  # type: ignore[index]
    port = srv.url.rsplit(":", 1)[1]
    for host in ("rebind.attacker.example", f"rebind.attacker.example:{port}", "127.0.0.1:1", f"10.0.0.1:{port}"):
        status, body = request(srv.url + "/api/v3/ping", headers={"Host": host})
        assert status == 403 and body["code"] == -1002, host  # type: ignore[index]
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"LOCALHOST:{port}"):
        assert request(srv.url + "/api/v3/ping", headers={"Host": host}) == (200, {})
    assert account_ids(srv) == before


def test_install_token_file_demo_keys_and_restart(tmp_path: Path) -> None:
    """``--data-dir``: the token and the demo keys are generated once (0600, even under umask 0), random per
    install, and kept across a restart; a second install gets other ones."""
    first, second = tmp_path / "one", tmp_path / "two"
    with localex_process(first, umask=0) as (_, url):
        token = read_admin_token(first)
        assert len(token) >= 32
        keys = json.loads((first / "localex-demo-keys.json").read_text())["keys"]
        for name in ("localex-admin-token", "localex-demo-keys.json", "localex.log"):
            assert mode(first / name) == 0o600, name
        assert [p.name for p in first.iterdir() if p.name.endswith(".tmp")] == []
        admin = AdminClient(url, token)
        assert [k["apiKey"] for k in admin.call("GET", "/admin/v1/demo-keys")] == [k["apiKey"] for k in keys]  # type: ignore[union-attr]
        with pytest.raises(AdminError, match="answered 401"):
            AdminClient(url, "not-the-token-but-long-enough").call("GET", "/admin/v1/demo-keys")
    with localex_process(first) as (_, url):  # restart: same token, same keys, and the keys work
        assert read_admin_token(first) == token
        assert json.loads((first / "localex-demo-keys.json").read_text())["keys"] == keys
        main = keys[0]
        assert clients.ccxt_sync(url, main["apiKey"], main["secret"]).fetch_balance()["total"]["USDT"] == 1_000_000
    with localex_process(second):
        other = json.loads((second / "localex-demo-keys.json").read_text())["keys"]
        assert read_admin_token(second) != token
        assert {k["apiKey"] for k in other}.isdisjoint({k["apiKey"] for k in keys})
        assert {k["secret"] for k in other}.isdisjoint({k["secret"] for k in keys})


def test_explicit_seed_still_gives_fixed_keys(tmp_path: Path) -> None:
    """Tests that pass ``--seed`` keep their fixed keys, on any install."""
    seen = []
    for name in ("a", "b"):
        with localex_process(tmp_path / name, "--seed", "7"):
            seen.append(json.loads((tmp_path / name / "localex-demo-keys.json").read_text())["keys"])
    assert seen[0] == seen[1]


def test_admin_created_keys_are_not_predictable() -> None:
    """Without a seed every API key comes from the operating system: two servers never repeat one."""
    made = []
    for _ in range(2):
        for s in start_server(ServerConfig(port=free_port(), replay=False, demo_accounts=False)):
            made.append(s.new_account())
    assert made[0][1] != made[1][1] and made[0][2] != made[1][2]


def test_unsafe_token_file_refuses_to_start(tmp_path: Path) -> None:
    (tmp_path / "localex-admin-token").write_text("a-token-others-can-read-1234567890\n")
    os.chmod(tmp_path / "localex-admin-token", 0o644)
    out = subprocess.run(
        [sys.executable, "-m", "localex", "--port", str(free_port()), "--no-replay", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 1
    assert "local exchange cannot start" in out.stderr
    assert "localex-admin-token is readable by other users" in out.stderr
    assert "Traceback" not in out.stderr


def test_edited_demo_keys_file_is_a_clear_error(tmp_path: Path) -> None:
    with localex_process(tmp_path):
        pass
    saved = json.loads((tmp_path / "localex-demo-keys.json").read_text())
    saved["keys"][0]["secret"] = "short"
    (tmp_path / "localex-demo-keys.json").write_text(json.dumps(saved))  # keeps its 0600 mode
    out = subprocess.run(
        [sys.executable, "-m", "localex", "--port", str(free_port()), "--no-replay", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert "localex-demo-keys.json holds an unusable key" in out.stderr and "delete it" in out.stderr


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "example.com", "::"])
def test_non_loopback_host_is_refused(host: str) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "localex", "--host", host, "--port", str(free_port()), "--no-replay"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2
    assert f"--host {host!r} is not a loopback address" in out.stderr and "Traceback" not in out.stderr
    with pytest.raises(ValueError, match="not a loopback address"):
        next(start_server(ServerConfig(host=host, port=free_port(), replay=False)))


def test_oms_service_starts_the_exchange_with_the_install_token(tmp_path: Path) -> None:
    """What ``oms up`` runs: the exchange gets its token file, and a caller that reads it is let in."""
    settings = ServiceSettings(data_dir=tmp_path, localex_port=free_port())
    service = LocalExchangeService(settings)
    command, _ = service.command()
    assert command[command.index("--admin-token-file") + 1] == str(tmp_path / "localex" / "localex-admin-token")
    assert TOKEN not in " ".join(command)  # the token never appears on a command line (ps shows those)
    try:
        assert service.up() == "started"
        assert mode(service.admin_token_file) == 0o600
        admin = AdminClient.for_install(service.address, tmp_path / "localex")
        accounts = admin.call("GET", "/admin/v1/accounts")
        assert [a["accountId"] for a in accounts] == ["demo_main", "demo_sub_spot", "demo_sub_futures"]  # type: ignore[index, union-attr]
        status, _ = request(service.address + "/admin/v1/demo-keys")
        assert status == 401
    finally:
        service.down()
