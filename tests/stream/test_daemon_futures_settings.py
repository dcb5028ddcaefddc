"""USD-M settings enforced by the daemon against the local exchange, and changed by NATS commands.

At start the daemon makes the account's position mode, margin type and leverage match ``accounts.yaml`` (the
leverage capped by ``risk.yaml``'s ``max_leverage``) and says so on ``risk.binance.{account}``; a change the
venue refuses because a position is open is reported (event, log, metric) while the rest is applied and the
account keeps trading, and it is tried again once the account is flat; a reconnect enforces the config again.
``set_leverage`` / ``set_margin_type`` / ``set_position_mode`` on ``cmd.order.binance.{account}`` (and
``oms stream futures``) answer the venue's result, the risk limit's refusal or the venue's. The venue's state
is read back with python-binance, not through the daemon.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import urllib.request
from decimal import ROUND_UP, Decimal

import aiohttp
import yaml
from binance.client import Client

from oms.model import MarginType, Market, OrderType, PlaceOrder, PositionMode, PositionSide, Side
from oms.model.commands import CommandRequest, encode_request
from oms.model.settings import SetLeverage, SetMarginType, SetPositionMode
from tests.stream.conftest import request, unique, until
from tests.stream.test_daemon_risk_webhook import risk_events

PERP = "BTC/USDT:USDT"


def configure(cfg, name: str, **futures) -> None:
    """The bench account with USD-M on, its futures settings, and the perpetual streamed and traded."""
    doc = yaml.safe_load((cfg / "accounts.yaml").read_text())
    doc["accounts"]["binance"][name].update(futures_enabled=True, **futures)
    (cfg / "accounts.yaml").write_text(yaml.safe_dump(doc))
    doc = yaml.safe_load((cfg / "stream.yaml").read_text())
    doc["daemon"]["markets"]["binance"]["usdm"] = [PERP]
    (cfg / "stream.yaml").write_text(yaml.safe_dump(doc))


def venue_client(bench, name: str) -> Client:
    """python-binance on the account's own key, pointed at the local exchange."""
    local = type("LocalClient", (Client,), {"FUTURES_URL": f"{bench.exchange.url}/fapi"})
    _, key, secret = bench.accounts[name]
    return local(key, secret, ping=False)


async def venue_settings(client: Client) -> tuple[str, str, int]:
    """(position mode, BTCUSDT margin type, BTCUSDT leverage) as the exchange has them."""
    mode = await asyncio.to_thread(client.futures_get_position_mode)
    [row] = await asyncio.to_thread(client.futures_symbol_config, symbol="BTCUSDT")
    return ("hedge" if mode["dualSidePosition"] else "one_way"), row["marginType"], int(row["leverage"])


def lot(bench) -> str:
    """A quantity worth about 300 USDT (above the futures minimum notional)."""
    with urllib.request.urlopen(f"{bench.exchange.url}/fapi/v1/ticker/bookTicker?symbol=BTCUSDT", timeout=5) as r:
        doc = json.loads(r.read())
    mid = (Decimal(doc["bidPrice"]) + Decimal(doc["askPrice"])) / 2
    return str((Decimal(300) / mid).quantize(Decimal("0.001"), ROUND_UP))


async def settings_events(nc, name: str) -> list:
    return [e for e in await risk_events(nc, name) if e.action.startswith("futures_settings")]


async def health_of(bench, name: str) -> dict:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{bench.health_port}/health/binance/{name}") as resp:
            return await resp.json()


async def metrics_text(bench) -> str:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{bench.metrics_port}/metrics") as resp:
            return await resp.text()


def oms_cli(bench, cfg, *args: str) -> subprocess.CompletedProcess:
    """``oms stream ARGS`` as a user runs it (the trader identity's seed from the test's NATS server)."""
    env = {**os.environ, **bench.env}
    return subprocess.run([sys.executable, "-m", "oms.cli.main", "stream", *args, "--config", str(cfg)],
                          capture_output=True, text=True, env=env, timeout=120)  # fmt: skip


async def test_start_applies_the_config_and_commands_change_settings_within_the_risk_limit(bench, nc):
    name = unique("fset")
    cfg = bench.write([name], risk={name: {"max_leverage": 7}})
    # USD-M only: the kernels hold one position mode per account, and Spot orders are one-way
    configure(cfg, name, spot_enabled=False, margin_type="isolated", position_mode="hedge", max_leverage=10)
    acct = bench.account(name)
    client = venue_client(bench, name)
    assert await venue_settings(client) == ("one_way", "CROSSED", 20)  # a fresh account's
    d = bench.daemon()
    await d.start()
    try:
        # accounts.yaml's max_leverage 10 is capped by risk.yaml's 7
        assert await venue_settings(client) == ("hedge", "ISOLATED", 7)
        [ev] = await until(lambda: settings_events(nc, name), what="the settings event")
        assert ev.action == "futures_settings_applied" and ev.trading_state == "active", ev
        for part in ("position_mode set to hedge (was one_way)", f"margin_type of {PERP} set to isolated (was cross)",
                     f"leverage of {PERP} set to 7 (was 20)"):  # fmt: skip
            assert part in ev.reason, ev.reason
        health = await health_of(bench, name)
        assert health["trading"] and health["futures_settings"]["in_line"], health
        assert health["futures_settings"]["reason"] == "start" and len(health["futures_settings"]["applied"]) == 3

        [r] = (await request(nc, acct, SetLeverage(account=acct, symbol=PERP, leverage=8))).results
        assert (r.ok, r.code) == (False, "risk:MAX_LEVERAGE") and "max_leverage 7" in r.reason, r
        [r] = (await request(nc, acct, SetLeverage(account=acct, symbol=PERP, leverage=3))).results
        assert r.ok and r.settings.leverage == 3 and r.settings.symbol == PERP and r.settings.max_notional, r
        [r] = (await request(nc, acct, SetMarginType(account=acct, symbol=PERP, margin_type=MarginType.CROSS))).results
        assert r.ok and r.settings.margin_type is MarginType.CROSS, r
        assert await venue_settings(client) == ("hedge", "CROSSED", 3)
        cli = await asyncio.to_thread(oms_cli, bench, cfg, "futures", acct, "--leverage", f"{PERP}=4")
        assert cli.returncode == 0 and cli.stdout.startswith(f"SetLeverage {PERP}: ok (leverage 4"), cli
        cli = await asyncio.to_thread(oms_cli, bench, cfg, "futures", acct, "--leverage", f"{PERP}=9")
        assert cli.returncode == 1 and "refused (risk:MAX_LEVERAGE)" in cli.stdout, cli
        assert await venue_settings(client) == ("hedge", "CROSSED", 4)
        [r] = (await request(nc, acct, SetLeverage(account=acct, symbol="BTC/USDT", leverage=2))).results
        assert (r.ok, r.code) == (False, "unknown_market") and "not a USD-M symbol" in r.reason, r
        raw = encode_request(CommandRequest(commands=(SetLeverage(account=acct, symbol=PERP, leverage=2),)))
        reply = await request(nc, acct, raw=raw.replace(b'"leverage":2', b'"leverage":0'))
        assert reply.code == "malformed" and "leverage" in reply.error, reply

        qty = lot(bench)
        buy = PlaceOrder(account=acct, symbol=PERP, side=Side.BUY, order_type=OrderType.MARKET, qty=qty,
                         position_side=PositionSide.LONG, intent="in")  # fmt: skip
        [r] = (await request(nc, acct, buy)).results
        assert r.ok, r
        cmd = SetMarginType(account=acct, symbol=PERP, margin_type=MarginType.ISOLATED)
        [r] = (await request(nc, acct, cmd)).results
        assert (r.ok, r.code) == (False, "venue:-4048") and "blocked by an open position" in r.reason, r
        [r] = (await request(nc, acct, SetPositionMode(account=acct, position_mode=PositionMode.ONE_WAY))).results
        assert (r.ok, r.code) == (False, "venue:-4068"), r
        assert await venue_settings(client) == ("hedge", "CROSSED", 4)  # nothing changed
        text = await metrics_text(bench)
        assert f'oms_futures_settings_total{{account="{acct}",outcome="refused",setting="margin_type"}} 1.0' in text
        assert f'oms_futures_settings_total{{account="{acct}",outcome="applied",setting="leverage"}} 3.0' in text
        assert f'oms_rejections_total{{account="{acct}",reason="risk:MAX_LEVERAGE"}} 2.0' in text
        sell = PlaceOrder(account=acct, symbol=PERP, side=Side.SELL, order_type=OrderType.MARKET, qty=qty,
                          position_side=PositionSide.LONG, intent="out")  # fmt: skip
        [r] = (await request(nc, acct, sell)).results
        assert r.ok, r
    finally:
        await d.stop()


async def test_a_refusal_at_start_is_reported_the_account_trades_and_a_reconnect_enforces_again(bench, nc, caplog):
    name = unique("fsetr")
    monitor = {"futures_monitor": {"interval_s": 1, "min_liquidation_distance_pct": 1, "adl_alert_quantile": 4}}
    cfg = bench.write([name], risk_extra=monitor)  # risk.yaml defaults: max_leverage 5
    configure(cfg, name, margin_type="isolated", position_mode="one_way", max_leverage=5)
    acct = bench.account(name)
    client = venue_client(bench, name)
    qty = lot(bench)
    await asyncio.to_thread(client.futures_create_order, symbol="BTCUSDT", side="BUY", type="MARKET", quantity=qty)
    caplog.set_level(logging.INFO, logger="stream.futures_settings")
    d = bench.daemon()
    await d.start()
    try:
        # the open position keeps the margin type cross; the leverage is applied; the account trades
        assert await venue_settings(client) == ("one_way", "CROSSED", 5)
        [ev] = await until(lambda: settings_events(nc, name), what="the refusal event")
        assert ev.action == "futures_settings_refused", ev
        assert f"margin_type of {PERP} isolated not applied (is cross): venue -4048" in ev.reason, ev.reason
        assert f"Applied: leverage of {PERP} set to 5 (was 20)" in ev.reason, ev.reason
        health = await health_of(bench, name)
        assert health["trading"] and not health["futures_settings"]["in_line"], health
        [refused] = health["futures_settings"]["refused"]
        assert (refused["setting"], refused["code"], refused["outcome"]) == ("margin_type", -4048, "refused")
        assert any("isolated not applied" in m and "trading on the current setting" in m for m in caplog.messages)
        drift = await until(lambda: _drift(nc, name), what="the monitor's drift alert")
        assert [e.reason for e in drift] == [f"{PERP} margin type is cross, configured isolated (a position is open)"]
        sell = PlaceOrder(account=acct, symbol=PERP, side=Side.SELL, order_type=OrderType.MARKET, qty=qty,
                          reduce_only=True, intent="close")  # fmt: skip
        [r] = (await request(nc, acct, sell)).results
        assert r.ok, r
        # this account also trades Spot: the kernels keep it one-way, and the daemon says so instead of switching
        [r] = (await request(nc, acct, SetPositionMode(account=acct, position_mode=PositionMode.HEDGE))).results
        assert (r.ok, r.code) == (False, "unsupported") and "also trades Spot" in r.reason, r
        rows = await asyncio.to_thread(client.futures_position_information, symbol="BTCUSDT")
        assert all(Decimal(p["positionAmt"]) == 0 for p in rows), rows  # the market order filled at once
        # flat now: the futures monitor has the refused margin type tried again
        report = await until(lambda: (r := d.futures_settings.reports[acct]).reason == "positions closed" and r,
                             timeout=30, what="the refused setting tried again once flat")  # fmt: skip
        assert report.in_line and [(o.setting, o.want, o.had) for o in report.applied] == [
            ("margin_type", "isolated", "cross")], report  # fmt: skip
        assert await venue_settings(client) == ("one_way", "ISOLATED", 5)
        events = await until(lambda: _n_events(nc, name, 2), what="the retry's event")
        assert events[-1].action == "futures_settings_applied" and events[-1].reason.startswith("positions closed:")

        # someone changes both behind the daemon's back; the user stream drops; the reconnect fixes both
        await asyncio.to_thread(client.futures_change_leverage, symbol="BTCUSDT", leverage=2)
        await asyncio.to_thread(client.futures_change_margin_type, symbol="BTCUSDT", marginType="CROSSED")
        assert d.sessions[acct].links[Market.USDM].gaps == 0
        key = await asyncio.to_thread(client.futures_stream_get_listen_key)
        await asyncio.to_thread(client.futures_stream_close, listenKey=key)
        report = await until(lambda: (r := d.futures_settings.reports[acct]).reason == "reconnect" and r,
                             timeout=30, what="the settings enforced after the reconnect")  # fmt: skip
        assert report.in_line and {(o.setting, o.want, o.had) for o in report.applied} == {
            ("margin_type", "isolated", "cross"), ("leverage", "5", "2")}, report  # fmt: skip
        assert await venue_settings(client) == ("one_way", "ISOLATED", 5)
        await until(lambda: d.sessions[acct].trading, what="trading again after the reconnect")
        events = await until(lambda: _n_events(nc, name, 3), what="the reconnect's event")
        assert events[-1].action == "futures_settings_applied" and events[-1].reason.startswith("reconnect:")
    finally:
        await d.stop()


async def _drift(nc, name: str):
    return [e for e in await risk_events(nc, name) if e.action == "settings_drift"]


async def _n_events(nc, name: str, n: int):
    events = await settings_events(nc, name)
    return events if len(events) >= n else None


async def test_a_restart_that_finds_the_same_refusal_does_not_announce_it_again(bench, nc, caplog):
    name = unique("fsetq")
    cfg = bench.write([name])
    configure(cfg, name, margin_type="isolated", max_leverage=5)
    acct = bench.account(name)
    client = venue_client(bench, name)
    qty = lot(bench)
    await asyncio.to_thread(client.futures_create_order, symbol="BTCUSDT", side="BUY", type="MARKET", quantity=qty)
    caplog.set_level(logging.INFO, logger="stream.futures_settings")

    async def run_once() -> list[str]:
        d = bench.daemon()
        await d.start()
        try:
            assert d.sessions[acct].trading
            return [o.setting for o in d.futures_settings.reports[acct].refused]
        finally:
            await d.stop()

    # the open position blocks the margin type: announced once, then only logged at each restart
    assert await run_once() == ["margin_type"]
    assert await run_once() == ["margin_type"]
    assert [e.action for e in await settings_events(nc, name)] == ["futures_settings_refused"]
    assert sum("not announced again" in m for m in caplog.messages) == 1, caplog.messages
    # flat while the daemon is down: the next start applies it and says so; the one after has nothing to say
    await asyncio.to_thread(client.futures_create_order, symbol="BTCUSDT", side="SELL", type="MARKET",
                            quantity=qty, reduceOnly="true")  # fmt: skip
    assert await run_once() == []
    assert await run_once() == []
    events = await settings_events(nc, name)
    assert [e.action for e in events] == ["futures_settings_refused", "futures_settings_applied"], events
    assert "margin_type of BTC/USDT:USDT set to isolated (was cross)" in events[-1].reason, events[-1]
    assert await venue_settings(client) == ("one_way", "ISOLATED", 5)
    # the position blocks it again after someone reverts it by hand: a new refusal is announced again
    await asyncio.to_thread(client.futures_change_margin_type, symbol="BTCUSDT", marginType="CROSSED")
    await asyncio.to_thread(client.futures_create_order, symbol="BTCUSDT", side="BUY", type="MARKET", quantity=qty)
    assert await run_once() == ["margin_type"]
    actions = [e.action for e in await settings_events(nc, name)]
    assert actions == ["futures_settings_refused", "futures_settings_applied", "futures_settings_refused"], actions
