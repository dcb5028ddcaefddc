"""Live state and per-account leases in real JetStream key-value buckets."""

from __future__ import annotations

import asyncio

import pytest

from oms.bus import AccountLease, LeaseHeld, LeaseLost, LiveState, ensure_bucket
from oms.model import Position


async def test_live_state_round_trips_model_structs(nc):
    kv = await ensure_bucket(nc.jetstream(), "oms_state_test")
    state = LiveState(kv)
    pos = (Position(account="binance/sub_futures_trend", symbol="BTC/USDT:USDT", qty="0.5", entry_price="65000"),)
    await state.put("binance/sub_futures_trend", "positions", pos)
    assert await state.get("binance/sub_futures_trend", "positions", tuple[Position, ...]) == pos
    assert await state.get("binance/sub_futures_trend", "balances", list) is None
    with pytest.raises(ValueError, match="live state kind"):
        await state.put("binance/main", "secrets", pos)


async def test_two_daemons_never_hold_one_account(nc):
    kv = await ensure_bucket(nc.jetstream(), "oms_leases_test", ttl_s=2)
    first = AccountLease(kv, "binance/sub_mm", holder="daemon-a")
    await first.acquire()
    second = AccountLease(kv, "binance/sub_mm", holder="daemon-b")
    with pytest.raises(LeaseHeld, match="binance/sub_mm is traded by daemon-a"):
        await second.acquire()
    await first.refresh()
    await first.release()
    await second.acquire()  # released: the other daemon may take it
    with pytest.raises(LeaseLost):
        await first.refresh()
    await second.release()


async def test_a_dead_daemons_lease_expires_after_the_ttl(nc):
    kv = await ensure_bucket(nc.jetstream(), "oms_leases_ttl", ttl_s=1)
    dead = AccountLease(kv, "binance/main", holder="dead")
    await dead.acquire()  # and never refreshes
    taker = AccountLease(kv, "binance/main", holder="taker")
    for _ in range(100):
        try:
            await taker.acquire()
            break
        except LeaseHeld:
            await asyncio.sleep(0.1)
    else:
        pytest.fail("lease did not expire")
    with pytest.raises(LeaseLost):
        await dead.refresh()
