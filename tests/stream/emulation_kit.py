"""Helpers of the emulation tests: a parent over NATS, its end, and the three views of it (exchange, JetStream,
daemon) compared."""

from __future__ import annotations

from decimal import Decimal

import msgspec

from oms.archive.logs import read_log
from oms.model import Fill
from oms.model.parents import ParentEvent, ParentState, ParentStatus, PlaceParent
from tests.stream.conftest import request, until
from tests.stream.test_daemon_orders import events


def parent(account: str, algo: str, qty: str, *, side: str = "buy", **kw) -> PlaceParent:
    return PlaceParent(account=account, symbol="BTC/USDT", side=side, algo=algo, qty=qty, **kw)


async def send_parent(nc, account: str, cmd: PlaceParent):
    [res] = (await request(nc, account, cmd)).results
    assert res.ok, res
    assert res.parent_status is ParentStatus.WORKING
    return res.client_order_id


async def finished(d, pid: str, timeout: float = 60.0, status: ParentStatus | None = None) -> ParentState:
    def done():
        w = d.emulation.parents.parents.get(pid)
        return w is not None and w.st.status.is_terminal and (w.task is None or w.task.done()) and w.st

    try:
        st = await until(done, timeout=timeout, what=f"parent {pid} to finish")
    except AssertionError:
        w = d.emulation.parents.parents.get(pid)
        raise AssertionError(f"parent {pid} did not finish: {w.st if w else 'unknown'}") from None
    if status is not None:
        assert st.status is status, (st.status, st.reason)
    return st


async def parent_events(nc, account: str, pid: str) -> list[ParentEvent]:
    subject = f"orders.{account.replace('/', '.')}.spot.BTC-USDT"
    return [e for e in await events(nc, "ORDERS", subject) if isinstance(e, ParentEvent) and e.parent_id == pid]


async def kv_parent(nc, account: str, pid: str) -> ParentState:
    exchange, name = account.split("/")
    bucket = await nc.jetstream().key_value("oms_parents")
    return msgspec.json.decode((await bucket.get(f"{exchange}.{name}.{pid}")).value, type=ParentState)


async def child_fills(nc, account: str, coids: set[str]) -> list[Fill]:
    found = await events(nc, "TRADES", f"trades.{account.replace('/', '.')}.>")
    return [f for f in found if isinstance(f, Fill) and f.client_order_id in coids]


async def three_views_agree(nc, d, account: str, pid: str) -> tuple[ParentState, list[Fill]]:
    """Exchange ledger = JetStream = daemon state for one finished parent: every child the daemon recorded is
    at the venue under its id with the same filled quantity, the venue has no other order of this parent,
    the fills in TRADES add up to the parent's filled quantity, and the last parent event and the KV state
    say the same."""
    w = d.emulation.parents.parents[pid]
    st = w.st
    execution = next(iter(d.sessions[account].links.values())).clients.execution
    venue_filled = Decimal(0)
    for ch in st.children:
        if ch.status == "not_found":
            continue
        order = await execution.query_order("BTC/USDT", ch.client_order_id)
        assert Decimal(order.filled_qty) == Decimal(ch.filled_qty), (ch, order)
        venue_filled += Decimal(order.filled_qty)
    coids = {ch.client_order_id for ch in st.children}
    try:
        [fills] = await until(lambda: _all_fills(nc, account, coids, venue_filled), what="child fills", timeout=30)
    except AssertionError:
        got = await child_fills(nc, account, coids)
        raise AssertionError(
            f"fills in TRADES {[(f.client_order_id, f.qty) for f in got]} != venue {st.children}"
        ) from None
    assert sum(Decimal(f.qty) for f in fills) == venue_filled == Decimal(st.filled_qty)
    assert len({f.trade_id for f in fills}) == len(fills)
    evs = await until(lambda: _last_is(nc, account, pid, st.status), what="the parent's last event in ORDERS")
    assert Decimal(evs[-1].filled_qty) == Decimal(st.filled_qty)
    assert [e.seq for e in evs] == list(range(1, len(evs) + 1))  # each step once, none lost
    try:  # the same steps in the daily log as in JetStream (read again: a step may still be on its way to both)
        await until(lambda: _log_matches(nc, d, account, pid), what="the parent's steps in parents.jsonl")
    except AssertionError:
        logged = [(e.seq, e.kind) for e in _logged(d, account, pid)]
        raise AssertionError(f"parents.jsonl {logged} != ORDERS {[(e.seq, e.kind) for e in evs]}") from None
    kv = await until(lambda: _kv_is(nc, account, pid, st.status), what="the parent's end in KV")
    assert Decimal(kv.filled_qty) == Decimal(st.filled_qty) and len(kv.children) == len(st.children)
    return st, fills


def _logged(d, account: str, pid: str) -> list[ParentEvent]:
    """The parent's steps in the daemon's daily ``parents.jsonl`` files."""
    layout = d.sink.logs.layout
    return [e for path in sorted(layout.logs.glob(f"*/*/*/{account}/parents.jsonl"))
            for e in read_log(path, "parents") if e.parent_id == pid]  # fmt: skip


async def _log_matches(nc, d, account: str, pid: str) -> bool:
    evs = await parent_events(nc, account, pid)
    return bool(evs) and [msgspec.structs.asdict(e) for e in _logged(d, account, pid)] == [
        msgspec.structs.asdict(e) for e in evs
    ]


async def _all_fills(nc, account, coids, total):
    fills = await child_fills(nc, account, coids)
    return [fills] if sum((Decimal(f.qty) for f in fills), Decimal(0)) >= total else None  # [[]]: none due


async def _last_is(nc, account, pid, status):
    evs = await parent_events(nc, account, pid)
    return evs if evs and evs[-1].status is status else None


async def _kv_is(nc, account, pid, status):
    try:
        st = await kv_parent(nc, account, pid)
    except Exception:
        return None
    return st if st.status is status else None
