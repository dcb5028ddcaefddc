"""The ``snapshot`` flow: the hourly state of every account, from the daemon's view and from the exchange.

For each configured account (or the ``accounts`` given, ``exchange/name``), every market it has enabled:

1. ``read-daemon-state``: the daemon's live view from the JetStream key-value bucket (``oms.bus.kv.LiveState``:
   balances, positions, open orders, PnL); an account the daemon does not hold has no view (``null``);
2. ``read-exchange-state``: balances, positions and open orders from the exchange through the venue clients
   (``oms.venues.factory``), retried with back-off, the error naming the account and market on the last try;
3. ``compare``: every balance (free and locked per market and asset), position (quantity per symbol and
   side) and open order (by client order id: quantity, price, filled quantity) the two views disagree on,
   compared as exact decimals;
4. ``write-snapshot``: ``data/snapshots/YYYY/MM/DD/HH/{account}/state.json`` (written atomically), with both
   views, the PnL (the daemon's, and the exchange's unrealised PnL of the positions) and the differences;
5. ``publish-differences``: each account with differences on NATS ``alerts.snapshot.{exchange}.{account}``.

Artifacts: a table (one row per account: counts and differences) and a markdown summary naming every
difference. An account whose exchange cannot be read makes the flow fail after the other accounts are
written, with a message naming it; differences alone do not fail the run (they are what it reports).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Literal

import msgspec
from prefect import flow, get_run_logger, task
from prefect.artifacts import acreate_markdown_artifact, acreate_table_artifact
from prefect.cache_policies import NO_CACHE

from oms.archive.layout import Layout
from oms.bus.connect import NatsClientSettings, connect_as
from oms.bus.kv import LiveState
from oms.bus.streams import BusSettings, ensure_bucket
from oms.config import Config, load_config
from oms.keys import factory as keys
from oms.keys.provider import KeyProvider
from oms.model import AccountId, Balance, Order, Position
from oms.model.codec import DecodeError, decode
from oms.venues.factory import VenueFactory

KeySource = Literal["auto", "vault", "demo", "env"]


class SnapshotFailed(RuntimeError):
    """One or more accounts could not be snapshotted (the message names them and why)."""


def alert_subject(account: str) -> str:
    a = AccountId.parse(account)
    return f"alerts.snapshot.{a.exchange}.{a.name}"


@dataclass
class View:
    """One side's state of an account: balances, positions, open orders (model structs)."""

    balances: list[Balance] = field(default_factory=list)
    positions: list[Position] = field(default_factory=list)
    open_orders: list[Order] = field(default_factory=list)
    pnl: object = None
    error: str | None = None  # the daemon's entry could not be decoded

    def to_json(self) -> dict:
        return {
            "balances": msgspec.to_builtins(self.balances),
            "positions": msgspec.to_builtins(self.positions),
            "open_orders": msgspec.to_builtins(self.open_orders),
            **({"pnl": self.pnl} if self.pnl is not None else {}),
            **({"error": self.error} if self.error else {}),
        }


def _dec(s: str | None) -> Decimal:
    try:
        return Decimal(s or "0")
    except InvalidOperation:
        return Decimal("NaN")


def _same(a: str | None, b: str | None) -> bool:
    return _dec(a) == _dec(b)


def compare_views(daemon: View, exchange: View) -> list[dict]:
    """Every fact the daemon's view and the exchange's disagree on (empty: they agree)."""
    out: list[dict] = []
    if daemon.error:
        return [{"kind": "daemon_state", "key": "unreadable", "daemon": daemon.error, "exchange": ""}]
    db = {(b.market.value, b.asset): b for b in daemon.balances}
    eb = {(b.market.value, b.asset): b for b in exchange.balances}
    for key in sorted(db.keys() | eb.keys()):
        d, e = db.get(key), eb.get(key)
        for part in ("free", "locked"):
            dv, ev = getattr(d, part) if d else "0", getattr(e, part) if e else "0"
            if not _same(dv, ev):
                out.append({"kind": "balance", "key": f"{key[0]} {key[1]} {part}", "daemon": dv, "exchange": ev})
    dp = {(p.symbol, p.position_side.value): p for p in daemon.positions}
    ep = {(p.symbol, p.position_side.value): p for p in exchange.positions}
    for key in sorted(dp.keys() | ep.keys()):
        dv, ev = (dp[key].qty if key in dp else "0"), (ep[key].qty if key in ep else "0")
        if not _same(dv, ev):
            out.append({"kind": "position", "key": f"{key[0]} {key[1]} qty", "daemon": dv, "exchange": ev})
    do = {o.client_order_id: o for o in daemon.open_orders}
    eo = {o.client_order_id: o for o in exchange.open_orders}
    for cid in sorted(do.keys() | eo.keys()):
        d, e = do.get(cid), eo.get(cid)
        if d is None or e is None:
            out.append({"kind": "open_order", "key": cid, "daemon": "open" if d else "absent",
                        "exchange": "open" if e else "absent"})  # fmt: skip
            continue
        for part in ("qty", "price", "filled_qty"):
            if not _same(getattr(d, part), getattr(e, part)):
                out.append({"kind": "open_order", "key": f"{cid} {part}", "daemon": str(getattr(d, part)),
                            "exchange": str(getattr(e, part))})  # fmt: skip
    return out


def key_provider(cfg: Config, source: KeySource, exchange: str) -> KeyProvider:
    """Where the flow's venue clients take their keys: as the daemon does (``oms.keys.factory.key_provider``),
    Vault once `oms keys init` wrote the daemon's AppRole, else the local exchange's demo keys."""
    return keys.key_provider(cfg, source, "daemon")


@task(name="read-daemon-state", cache_policy=NO_CACHE, persist_result=False, retries=2, retry_delay_seconds=[1, 4])
async def read_daemon(bus: NatsClientSettings, bucket: str, account: str) -> View | None:
    nc = await connect_as(bus, connect_timeout=5, max_reconnect_attempts=2, allow_reconnect=False)
    try:
        state = LiveState(await ensure_bucket(nc.jetstream(), bucket))
        raw = {k: await state.get_raw(account, k) for k in ("balances", "positions", "open_orders", "pnl")}
    finally:
        await nc.close()
    if all(v is None for v in raw.values()):
        return None
    view = View()
    try:
        view.balances = list(decode(raw["balances"], tuple[Balance, ...])) if raw["balances"] else []
        view.positions = list(decode(raw["positions"], tuple[Position, ...])) if raw["positions"] else []
        view.open_orders = list(decode(raw["open_orders"], tuple[Order, ...])) if raw["open_orders"] else []
        view.pnl = json.loads(raw["pnl"]) if raw["pnl"] else None
    except (DecodeError, ValueError) as exc:  # a corrupt entry is a finding of the snapshot, not a crash
        view.error = f"the daemon's live state of {account} in bucket {bucket} is unreadable: {exc}"
        get_run_logger().warning(view.error)
    return view


@task(name="read-exchange-state", cache_policy=NO_CACHE, persist_result=False, retries=2, retry_delay_seconds=[1, 4])
async def read_exchange(factory: VenueFactory, account: str, markets: tuple[str, ...]) -> View:
    a = AccountId.parse(account)
    view = View()
    for market in markets:
        try:
            clients = await factory.account_clients(a.exchange, a.name, market)
            view.balances += await clients.execution.balances()
            view.positions += await clients.execution.positions()
            view.open_orders += await clients.execution.open_orders()
        except Exception as exc:
            raise SnapshotFailed(f"cannot read {account} {market} from the exchange: {exc}") from exc
    return view


@task(name="compare", cache_policy=NO_CACHE, persist_result=False)
def compare(daemon: View | None, exchange: View) -> list[dict]:
    return [] if daemon is None else compare_views(daemon, exchange)


def unrealised(view: View) -> str:
    return str(sum((_dec(p.unrealized_pnl) for p in view.positions), Decimal(0)))


@task(name="write-snapshot", cache_policy=NO_CACHE, persist_result=False, retries=1)
def write_state(layout: Layout, hour: datetime, account: str, daemon: View | None, exchange: View,
                differences: list[dict]) -> str:  # fmt: skip
    doc = {
        "account": account,
        "hour": hour.strftime("%Y-%m-%dT%H:00:00Z"),
        "taken_ns": time.time_ns(),
        "exchange": exchange.to_json(),
        "daemon": daemon.to_json() if daemon is not None else None,
        "pnl": {
            "exchange_unrealised": unrealised(exchange),
            "daemon": daemon.pnl if daemon is not None else None,
        },
        "differences": differences,
        "in_sync": daemon is not None and not differences,
    }
    path = layout.snapshot(hour, account)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=1, sort_keys=True))
    os.replace(tmp, path)
    return str(path)


@task(name="publish-differences", cache_policy=NO_CACHE, persist_result=False, retries=2, retry_delay_seconds=[1, 4])
async def publish(bus: NatsClientSettings, hour: datetime, found: dict[str, list[dict]]) -> int:
    nc = await connect_as(bus, connect_timeout=5, max_reconnect_attempts=2, allow_reconnect=False)
    try:
        for account, diffs in found.items():
            body = {"account": account, "hour": hour.strftime("%Y-%m-%dT%H:00:00Z"), "differences": diffs}
            await nc.publish(alert_subject(account), json.dumps(body).encode())
        await nc.flush(timeout=5)
    finally:
        await nc.close()
    return len(found)


def _hour(hour: str | None) -> datetime:
    if not hour:
        return datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    try:
        h = datetime.fromisoformat(hour.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"snapshot hour {hour!r} is not an ISO time (e.g. 2026-12-01T13:00Z)") from None
    return (h if h.tzinfo else h.replace(tzinfo=UTC)).astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _accounts(cfg: Config, accounts: list[str] | None) -> list[tuple[str, tuple[str, ...]]]:
    every = {f"{ex}/{n}": tuple(m for m in a.markets()) for ex, accts in cfg.accounts.items() for n, a in accts.items()}
    if not accounts:
        return sorted(every.items())
    unknown = [a for a in accounts if a not in every]
    if unknown:
        raise ValueError(f"unknown account(s) {', '.join(unknown)}; configured: {', '.join(sorted(every))}")
    return [(a, every[a]) for a in accounts]


@flow(name="snapshot", log_prints=True)
async def snapshot(
    accounts: list[str] | None = None,
    hour: str | None = None,
    config_dir: str | None = None,
    data_dir: str | None = None,
    nats_url: str | None = None,
    local_url: str | None = None,
    keys: KeySource = "auto",
    bucket: str = BusSettings().state_bucket,
) -> dict:
    """Snapshot every account (or ``accounts``, ``exchange/name``) for the UTC hour ``hour`` (default: now);
    returns {"files", "differences", "failed"}."""
    log = get_run_logger()
    cfg = load_config(Path(config_dir)) if config_dir else load_config()
    layout = Layout(Path(data_dir) if data_dir else cfg.data_dir())
    bus = NatsClientSettings.from_config(cfg, "flows").at(nats_url)
    at = _hour(hour)
    targets = _accounts(cfg, accounts)
    factories: dict[str, VenueFactory] = {}
    files: dict[str, str] = {}
    found: dict[str, list[dict]] = {}
    failed: dict[str, str] = {}
    rows: list[dict] = []
    try:
        for account, markets in targets:
            ex = AccountId.parse(account).exchange
            if ex not in factories:
                factories[ex] = VenueFactory(cfg, key_provider(cfg, keys, ex), local_url=local_url)
            daemon = await read_daemon(bus, bucket, account)
            try:
                exchange = await read_exchange(factories[ex], account, markets)
            except Exception as exc:
                failed[account] = str(exc)
                log.error("snapshot of %s failed: %s", account, exc)
                rows.append({"account": account, "status": "failed", "differences": 0, "detail": str(exc)[:200]})
                continue
            diffs = compare(daemon, exchange)
            files[account] = write_state(layout, at, account, daemon, exchange, diffs)
            if diffs:
                found[account] = diffs
            status = "no daemon view" if daemon is None else ("DIFFERS" if diffs else "in sync")
            rows.append({"account": account, "status": status, "balances": len(exchange.balances),
                         "positions": len(exchange.positions), "open_orders": len(exchange.open_orders),
                         "differences": len(diffs), "detail": files[account]})  # fmt: skip
    finally:
        for f in factories.values():
            await f.close()
    if found:
        await publish(bus, at, found)
    stamp = at.strftime("%Y-%m-%d %H:00 UTC")
    await acreate_table_artifact(rows, key="snapshot-accounts", description=f"Account snapshots of {stamp}")
    lines = [f"# Snapshot {stamp}", "", f"{len(files)} account(s) written, {len(found)} with differences, "
             f"{len(failed)} failed.", ""]  # fmt: skip
    for account, diffs in found.items():
        lines += [
            f"## {account}: daemon and exchange differ",
            "",
            "| kind | what | daemon | exchange |",
            "|---|---|---|---|",
        ]
        lines += [f"| {d['kind']} | {d['key']} | {d['daemon']} | {d['exchange']} |" for d in diffs]
        lines.append("")
    for account, why in failed.items():
        lines += [f"## {account}: FAILED", "", why, ""]
    await acreate_markdown_artifact("\n".join(lines), key="snapshot-summary", description=f"Snapshot {stamp}")
    print(f"snapshot {stamp}: {len(files)} written, {len(found)} differ, {len(failed)} failed")
    if failed:
        raise SnapshotFailed("snapshot failed for " + "; ".join(f"{a}: {w}" for a, w in failed.items()))
    return {"files": files, "differences": found, "failed": failed}
