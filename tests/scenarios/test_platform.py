"""The main job: `oms up` on the shipped configs (ports moved, nothing else) brings the whole platform up, and
it trades. Run for a short time, then the market-making account is halted so that its ledger stands still, and
the same fills are found on the exchange, in JetStream, in the trade logs and through `oms sql`; the snapshot
and pnl-report runs `oms up` starts are completed with their files; the daemon's health endpoints and metrics
answer; `oms status` shows positions and PnL per account; a real headless chromium finds every deployment of
prefect.yaml with its schedule and the runs' artifacts in the Prefect UI and saves the README's screenshot;
`oms down` leaves nothing running.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import msgspec
import psutil
import pytest
import yaml

from oms.bus import stream_name
from oms.bus.connect import NatsClientSettings, connect_as
from oms.config import load_config
from oms.keys.factory import open_store
from oms.model import Market
from oms.venues.factory import VenueFactory
from tests.harness.browser import chromium_path, open_page
from tests.harness.platform import platform_configs

pytestmark = pytest.mark.timeout(1200)  # the whole platform starts, trades and runs its flows
ROOT = Path(__file__).resolve().parents[2]
OMS = str(Path(sys.executable).parent / "oms")
MM = "binance/sub_market_making"
SCREENSHOT = ROOT / "docs" / "prefect-ui.png"
PNL_SCREENSHOT = ROOT / "docs" / "prefect-pnl-artifact.png"


def oms(*args: str, env: dict[str, str], timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([OMS, *args], capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT)


def until(check, *, timeout: float, what: str, every: float = 1.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def get_json(url: str, body: dict | None = None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.status, json.loads(resp.read())


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    root = tmp_path_factory.mktemp("platform")
    made = platform_configs(root)
    env = {**os.environ, "COLUMNS": "200", "OMS_REPORTS_DIR": str(root / "reports")}
    for var in ("OMS_DATA_DIR", "OMS_CONFIG_DIR", "VAULT_ADDR", "OMS_VAULT_ADDR", "BAO_ADDR"):
        env.pop(var, None)
    up = oms("up", "--config", str(made.dir), env=env)
    try:
        assert up.returncode == 0, f"oms up failed:\n{up.stdout}\n{up.stderr}"
        yield made, env, up
    finally:
        down = oms("down", "--config", str(made.dir), env=env, timeout=300)
        print(down.stdout, down.stderr)


def test_up_prints_a_status_of_services_accounts_and_addresses(platform):
    made, _, up = platform
    out = up.stdout
    for name in ("nats", "openbao", "prefect", "localex", "dask", "stream", "flows"):
        assert name in out
    assert f"tcp://127.0.0.1:{made.ports['dask']}" in out and "preloaded for sweeps" in out  # the sweeps' cluster
    assert "services" in out and "accounts" in out and "open next" in out
    assert f"http://127.0.0.1:{made.ports['prefect']}" in out  # the UI
    assert f"http://127.0.0.1:{made.ports['health']}/health" in out
    assert f"http://127.0.0.1:{made.ports['metrics']}/metrics" in out
    assert "market_making" in out and "arbitrage" in out  # strategies by account
    assert "one run of snapshot, pnl-report started" in out
    table_lines = [line for line in out.splitlines() if line[:1] in "┏┃┡│└"]
    assert len(table_lines) > 10 and max(len(line) for line in table_lines) <= 200  # fits the terminal


def _trade_ids_in_jetstream(cfg, account: str) -> set[str]:
    async def read() -> set[str]:
        nc = await connect_as(NatsClientSettings.from_config(cfg, "reader"))
        try:
            js = nc.jetstream()
            exchange, name = account.split("/")
            sub = await js.subscribe(f"trades.{exchange}.{name}.>", stream=stream_name("trades"), ordered_consumer=True)
            ids: set[str] = set()
            info = await js.stream_info(stream_name("trades"), subjects_filter=f"trades.{exchange}.{name}.>")
            total = sum((info.state.subjects or {}).values())
            while len(ids) < total:
                msg = await sub.next_msg(timeout=10)
                ids.add(str(msgspec.json.decode(msg.data)["trade_id"]))
            await sub.unsubscribe()
            return ids
        finally:
            await nc.close()

    return asyncio.run(read())


def _trade_ids_on_the_exchange(cfg, account: str) -> set[str]:
    async def read() -> set[str]:
        factory = VenueFactory(cfg, open_store(cfg, "daemon"))
        try:
            exchange, name = account.split("/")
            clients = await factory.account_clients(exchange, name, Market.SPOT)
            fills = await clients.execution.fills("BTC/USDT", since_ns=time.time_ns() - 3600 * 10**9)
            return {str(f.trade_id) for f in fills}
        finally:
            await factory.close()

    return asyncio.run(read())


def _trade_ids_in_logs(data: Path, account: str) -> set[str]:
    exchange, name = account.split("/")
    ids = set()
    for path in data.glob(f"logs/*/*/*/{exchange}/{name}/trades.jsonl"):
        for line in path.read_text().splitlines():
            ids.add(str(json.loads(line)["trade_id"]))
    return ids


def test_the_platform_trades_and_every_view_holds_the_same_fills(platform):
    made, env, _ = platform
    cfg = load_config(made.dir, env={})
    until(lambda: len(_trade_ids_in_logs(made.data_dir, MM)) >= 3, timeout=420, what="3 fills of market_making")
    halt = oms("stream", "halt", MM, "--cancel-orders", "--config", str(made.dir), env=env, timeout=60)
    assert halt.returncode == 0, halt.stderr
    # the ledger stands still once the halt's cancels are in and the last fills are published
    last: list[set[str]] = []

    def settled():
        now = _trade_ids_in_logs(made.data_dir, MM)
        last.append(now)
        return len(last) >= 4 and last[-4] == now

    until(settled, timeout=60, what="the halted account's fills to stop changing", every=2.0)
    logs = last[-1]
    venue = _trade_ids_on_the_exchange(cfg, MM)
    assert venue == logs, f"exchange {sorted(venue)} vs trade logs {sorted(logs)}"
    assert _trade_ids_in_jetstream(cfg, MM) == venue
    q = oms(
        "sql", "--data", str(made.data_dir), "--format", "json",
        f"select trade_id from trades where account = '{MM}'", env=env, timeout=120,
    )  # fmt: skip
    assert q.returncode == 0, q.stderr
    assert {str(r["trade_id"]) for r in json.loads(q.stdout)} == venue


def test_health_metrics_and_status_answer(platform):
    made, env, _ = platform
    code, doc = _health(made.url("health", "/health"))
    assert code in (200, 503) and MM in doc["accounts"] and doc["nats_connected"]
    code, one = _health(made.url("health", f"/health/{MM}"))
    assert code in (200, 503) and one["account"] == MM and "open_orders" in one
    with urllib.request.urlopen(made.url("metrics", "/metrics"), timeout=10) as resp:
        metrics = resp.read().decode()
    assert f'oms_orders_total{{account="{MM}"}}' in metrics
    status = oms("status", "--config", str(made.dir), env=env, timeout=120)
    assert status.returncode in (0, 1), status.stderr
    assert "stream daemon: accounts" in status.stdout and MM in status.stdout
    assert "realised" in status.stdout and "BTC/USDT" in status.stdout  # positions and PnL per account


def _health(url: str):
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:  # 503 while an account does not trade: still the daemon's JSON
        return exc.code, json.loads(exc.read())


def _runs(made) -> list[dict]:
    _, runs = get_json(made.url("prefect", "/api/flow_runs/filter"), {"flow_runs": {"tags": {"all_": ["oms-up"]}}})
    return runs


def _finished(made) -> list[dict]:
    runs = _runs(made)
    return runs if len(runs) == 2 and all(x["state_type"] in ("COMPLETED", "FAILED", "CRASHED") for x in runs) else []


def test_snapshot_and_pnl_report_ran_once_at_start_and_wrote_their_files(platform):
    made, _, _ = platform
    done = until(lambda: _finished(made), timeout=600, what="the runs oms up started to finish", every=5.0)
    assert len(done) == 2 and {x["state_type"] for x in done} == {"COMPLETED"}, done
    assert list(made.data_dir.glob("snapshots/**/state.json")), "no snapshot file"
    reports = made.dir.parent / "reports"
    assert list(reports.glob("*/*/total/pnl.csv")), "no PnL report"


@pytest.mark.skipif(chromium_path() is None, reason="no chromium: `apt-get install chromium` (.ci/run does it)")
def test_the_prefect_ui_shows_every_deployment_with_its_schedule_and_the_artifacts(platform):
    made, _, _ = platform
    specs = yaml.safe_load((ROOT / "prefect.yaml").read_text())["deployments"]
    runs = until(lambda: _finished(made), timeout=600, what="the start's runs to finish", every=5.0)
    assert {x["state_type"] for x in runs} == {"COMPLETED"}, runs
    ui = made.url("prefect")
    served = json.loads((made.data_dir / "flows" / "serve.json").read_text())["deployments"]
    assert {s["name"] for s in specs} <= set(served)
    with open_page() as page:
        for spec in specs:  # each deployment's own page: its name, and its schedule where it has one
            page.goto(f"{ui}/deployments/deployment/{served[spec['name']]}", wait_until="networkidle")
            page.get_by_text(spec["name"], exact=True).first.wait_for(timeout=60_000)
            if spec.get("schedules"):  # the UI describes each schedule ("Every hour every day", "At 03:10 AM ...")
                page.get_by_text("Schedules", exact=True).first.wait_for(timeout=60_000)
                text = page.inner_text("body")
                described = text.split("Schedules", 1)[1][:200]
                assert re.search(r"\b(Every|At)\b", described), f"{spec['name']}: no schedule shown: {described!r}"
        page.goto(f"{ui}/runs", wait_until="networkidle")
        page.get_by_text("pnl-report", exact=False).first.wait_for(timeout=60_000)
        page.goto(f"{ui}/artifacts", wait_until="networkidle")
        month = time.strftime("%Y-%m", time.gmtime())
        page.get_by_text(f"pnl-{month}", exact=False).first.wait_for(timeout=60_000)
        page.get_by_text("snapshot-accounts", exact=False).first.wait_for(timeout=60_000)
        page.goto(f"{ui}/artifacts/key/pnl-{month}", wait_until="networkidle")
        # the start's run reported before the first fill: its table has the "account" column, rows or not
        page.get_by_text("account", exact=False).first.wait_for(timeout=60_000)
        page.screenshot(path=str(PNL_SCREENSHOT), full_page=True)
        page.goto(f"{ui}/deployments", wait_until="networkidle")
        page.get_by_text("pnl-report", exact=True).first.wait_for(timeout=60_000)
        SCREENSHOT.parent.mkdir(exist_ok=True)
        page.screenshot(path=str(SCREENSHOT), full_page=True)
    assert SCREENSHOT.stat().st_size > 10_000 and PNL_SCREENSHOT.stat().st_size > 10_000


def test_down_leaves_nothing_running(platform):
    made, env, _ = platform
    pids = [json.loads(p.read_text())["pid"] for p in made.data_dir.glob("run/*.json")]
    assert len(pids) == 7  # nats, openbao, prefect, localex, dask, stream, flows
    down = oms("down", "--config", str(made.dir), env=env, timeout=300)
    assert down.returncode == 0, down.stderr
    assert "stopped:" in down.stdout
    for pid in pids:
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
