"""200 accounts on one daemon: `oms stream run` as its own process against the local exchange (its own process,
with Binance's rate limits), beside the same daemon with one account in the same run.

Every account has a resting order the daemon does not know and a fill from a cross with its neighbour, so the
start's reconciliation adopts and publishes something for each. Measured:

* time from the daemon's spawn to ``/health`` answering 200 (every account reconciled and trading);
* resident memory of the daemon process once it trades (``VmRSS``) and its peak (``VmHWM``), under 1 GB;
* the IP's request weight as the venue counts it (``X-MBX-USED-WEIGHT-1M`` of a ping every 0.5 s, the
  sampler's own weight included): the peak share of the 6,000/min Spot budget, at most 80%.

Baseline, same run: the same command with one of the accounts (the process's fixed cost).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import pytest

from localex import clients
from localex.admin_client import AdminClient
from oms.services.nats import NatsService
from tests.harness.remote_exchange import RemoteExchange
from tests.harness.servers import loopback_settings
from tests.localex.conftest import localex_process
from tests.stream.conftest import Bench

pytestmark = pytest.mark.bench
ACCOUNTS = 200
IP_LIMIT = 6000  # the local exchange's Spot weight per IP and minute (Binance's)


class WeightSampler(threading.Thread):
    """The IP's used weight as the venue reports it, sampled with a ping (weight 1) every ``every_s``: the
    peak of the whole IP (``peak``), and of the daemon alone (``daemon_peak``: less the sampler's own pings
    in that minute, the venue's windows being aligned to the minute)."""

    def __init__(self, url: str, every_s: float = 0.5):
        super().__init__(daemon=True)
        self.url, self.every_s = url, every_s
        self.peak = self.daemon_peak = 0
        self.samples = 0
        self.halt = threading.Event()

    def run(self) -> None:
        minute, pings = -1, 0
        while not self.halt.wait(self.every_s):
            now = int(time.time() // 60)
            minute, pings = (now, 0) if now != minute else (minute, pings)
            try:
                pings += 1  # charged even if the answer is lost
                with urllib.request.urlopen(self.url + "/api/v3/ping", timeout=2) as resp:
                    used = int(resp.headers.get("X-MBX-USED-WEIGHT-1M", "0"))
            except (OSError, ValueError):
                continue
            if int(time.time() // 60) != minute:  # the answer came in the next minute: not comparable
                continue
            self.peak, self.samples = max(self.peak, used), self.samples + 1
            self.daemon_peak = max(self.daemon_peak, used - pings)


def _health(port: int) -> tuple[int, dict] | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:  # 503 while an account is not trading yet
        return exc.code, json.loads(exc.read() or b"{}")
    except OSError:
        return None


def _memory_mb(pid: int) -> tuple[float, float]:
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            name, _, value = line.partition(":")
            fields[name] = value.strip()
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def _seed(bench: Bench, remote: RemoteExchange, names: list[str]) -> None:
    """A resting BUY far below the market on every account, and a fill from a cross with its neighbour."""
    sync = {n: clients.binance_sync(remote.url, *bench.accounts[n][1:]) for n in names}
    for n in names:
        sync[n].create_order(symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.01",
                             price="3000.00")  # fmt: skip
    for k in range(0, len(names) - 1, 2):
        price = f"{7000 + k}.00"
        sync[names[k]].create_order(symbol="BTCUSDT", side="SELL", type="LIMIT", timeInForce="GTC", quantity="0.002",
                                    price=price)  # fmt: skip
        sync[names[k + 1]].create_order(symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC",
                                        quantity="0.002", price=price)  # fmt: skip


def _run_daemon(bench: Bench, cfg, accounts: list[str], url: str, sampler: WeightSampler | None) -> dict:
    env = {**os.environ, **bench.env}
    command = [sys.executable, "-m", "oms.cli.main", "stream", "run", "--config", str(cfg), "--keys", "env",
               "--accounts", ",".join(accounts), "--local-url", url]  # fmt: skip
    log = open(bench.root / f"daemon-{len(accounts)}.log", "wb")
    t0 = time.perf_counter()
    proc = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline, next_report = time.monotonic() + 900, 0.0
        while True:
            got = _health(bench.health_port)
            if got is not None and got[0] == 200:
                took = time.perf_counter() - t0
                break
            assert proc.poll() is None, f"the daemon exited with {proc.returncode}: see {log.name}"
            assert time.monotonic() < deadline, f"{len(accounts)} accounts not trading after 900 s: {got}"
            if got is not None and time.monotonic() >= next_report:  # progress, for a slow machine's log
                trading = sum(1 for a in got[1].get("accounts", {}).values() if a.get("trading"))
                print(f"  {time.perf_counter() - t0:6.1f} s: {trading} of {len(accounts)} accounts trading", flush=True)
                next_report = time.monotonic() + 15
            time.sleep(0.25)
        doc = got[1]
        assert len(doc["accounts"]) == len(accounts), doc
        rss, hwm = _memory_mb(proc.pid)
        peaks = {"peak_weight": sampler.peak, "daemon_weight": sampler.daemon_peak} if sampler else {}
        return {"took": took, "rss": rss, "hwm": hwm, **peaks}
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(120) == 0, f"the daemon did not stop cleanly: see {log.name}"
        log.close()


@pytest.mark.timeout(1800)
def test_200_accounts_on_one_daemon(tmp_path) -> None:
    nats = NatsService(loopback_settings(tmp_path / "nats"))
    nats.up()
    try:
        with localex_process(tmp_path / "lx", "--max-open-orders", "1000000") as (_, url):
            token = (tmp_path / "lx" / "localex-admin-token").read_text().strip()
            remote = RemoteExchange(url, AdminClient(url, token))
            bench = Bench(remote, nats, tmp_path)  # type: ignore[arg-type]
            names = [f"many{k:03d}" for k in range(ACCOUNTS)]
            cfg = bench.write(names)
            _seed(bench, remote, names)
            one = _run_daemon(bench, cfg, [bench.account(names[0])], url, None)
            time.sleep(61 - time.time() % 60)  # a fresh weight minute: the setup's weight is not counted
            sampler = WeightSampler(url)
            sampler.start()
            try:
                many = _run_daemon(bench, cfg, [bench.account(n) for n in names], url, sampler)
            finally:
                sampler.halt.set()
                sampler.join()
    finally:
        nats.down()
    share, daemon_share = many["peak_weight"] / IP_LIMIT, many["daemon_weight"] / IP_LIMIT
    per_account = (many["rss"] - one["rss"]) / (ACCOUNTS - 1)
    print(f"\n{ACCOUNTS} Spot accounts on one daemon (`oms stream run`), local exchange with Binance's limits:")
    print(f"  start to /health 200      {many['took']:7.1f} s   (1 account, same run: {one['took']:.1f} s)")
    print(
        f"  resident memory           {many['rss']:7.0f} MB  peak {many['hwm']:.0f} MB   "
        f"(1 account: {one['rss']:.0f} MB, peak {one['hwm']:.0f} MB; {per_account:.2f} MB per extra account)"
    )
    print(f"  IP weight, venue's count  the daemon's peak {many['daemon_weight']} of {IP_LIMIT}/min = "
          f"{daemon_share:.1%}; the IP's {many['peak_weight']} = {share:.1%} with the sampler's own pings "
          f"({sampler.samples} samples)")  # fmt: skip
    print(json.dumps({"many": many, "one": one, "share": share, "daemon_share": daemon_share}))
    assert many["hwm"] < 1024, "200 accounts must fit in 1 GB"
    assert daemon_share <= 0.8, "the start must stay within 80% of the IP's weight budget"
