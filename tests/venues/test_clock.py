"""The server-time offset against a real local exchange with a skewed local clock; the -1021 rule."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
import urllib.parse

import aiohttp
import pytest

from localex.server.state import ServerConfig
from oms.venues import ClockSkew
from oms.venues.clock import ServerClock, measure
from tests.localex.conftest import free_port, start_server

SKEW_NS = 30 * 10**9  # our local clock runs 30 s ahead of the venue


@pytest.fixture(scope="module")
def venue():
    for server in start_server(ServerConfig(port=free_port(), replay=False)):
        _, key, secret = server.new_account(spot={"USDT": "100"})
        yield server, key, secret


def skewed() -> int:
    return time.time_ns() + SKEW_NS


async def _server_time(http, url):
    async with http.get(f"{url}/api/v3/time") as r:
        return (await r.json())["serverTime"] * 1_000_000


async def _account(http, url, key, secret, timestamp_ms):
    query = urllib.parse.urlencode({"timestamp": timestamp_ms, "recvWindow": 5000})
    sig = hmac.new(secret.encode(), query.encode(), hashlib.sha256).hexdigest()
    async with http.get(f"{url}/api/v3/account?{query}&signature={sig}", headers={"X-MBX-APIKEY": key}) as r:
        body = await r.json()
        if isinstance(body, dict) and body.get("code") == -1021:
            raise ClockSkew(-1021, body["msg"], account="binance/test", action="read account")
        assert r.status == 200, body
        return body


async def test_offset_measured_and_used_for_signing(venue):
    server, key, secret = venue
    async with aiohttp.ClientSession() as http:
        clock = ServerClock(lambda: _server_time(http, server.url), now_ns=skewed, samples=3)
        assert clock.stale
        with pytest.raises(ClockSkew, match="-1021"):
            await _account(http, server.url, key, secret, clock.server_time_ms())  # unsynced: 30 s ahead
        await clock.ensure_fresh()
        assert not clock.stale and clock.resyncs == 1
        assert abs(clock.offset_ns + SKEW_NS) < 2 * 10**9 and 0 <= clock.rtt_ns < 2 * 10**9
        body = await _account(http, server.url, key, secret, clock.server_time_ms())
        assert "balances" in body
        await clock.ensure_fresh()  # fresh: no new measurement
        assert clock.resyncs == 1


async def test_minus_1021_resyncs_and_retries_only_idempotent_calls(venue):
    server, key, secret = venue
    async with aiohttp.ClientSession() as http:
        clock = ServerClock(lambda: _server_time(http, server.url), now_ns=skewed, samples=1)
        calls = []

        async def read():
            calls.append(clock.server_time_ms())
            return await _account(http, server.url, key, secret, calls[-1])

        assert "balances" in await clock.with_resync(read, idempotent=True)
        assert len(calls) == 2 and clock.resyncs == 1  # failed, resynced, retried

        clock.offset_ns, calls[:] = 0, []  # skewed again
        with pytest.raises(ClockSkew):
            await clock.with_resync(read, idempotent=False)
        assert len(calls) == 1 and clock.resyncs == 2  # resynced, not retried
        assert "balances" in await read()  # the next call signs with the fresh offset


async def test_unbound_clock_and_measure(venue):
    server, _, _ = venue
    with pytest.raises(RuntimeError, match="no time source bound"):
        await ServerClock(name="binance/spot").resync()
    async with aiohttp.ClientSession() as http:
        clock = await measure(lambda: _server_time(http, server.url))
        assert abs(clock.offset_ns) < 2 * 10**9


async def test_refresh_forever_keeps_measuring_and_survives_failures(venue):
    server, _, _ = venue
    async with aiohttp.ClientSession() as http:
        broken = {"on": False}

        async def fetch():
            if broken["on"]:
                raise ConnectionError("venue unreachable")
            return await _server_time(http, server.url)

        clock = ServerClock(fetch, refresh_s=0.05, samples=1)
        task = asyncio.create_task(clock.refresh_forever(retry_s=0.01))
        try:
            await _until(lambda: clock.resyncs >= 3)
            broken["on"] = True
            offset = clock.offset_ns
            await _until(lambda: clock.failures >= 2)
            assert clock.offset_ns == offset  # the last measurement stays in use
            broken["on"] = False
            seen = clock.resyncs
            await _until(lambda: clock.resyncs > seen)
        finally:
            task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def _until(cond, wait=10.0):
    deadline = asyncio.get_running_loop().time() + wait
    while not cond():
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.01)
