"""User-data events as Binance documents them, seen through the unmodified python-binance client:
``listenKeyExpired`` carries its event time (USD-M documents ``E`` as a string of ms), not 0."""

from __future__ import annotations

import asyncio
import time

from localex.clients import binance_async, binance_socket_manager
from localex.server.app import server_state
from tests.localex.conftest import LocalServer


async def test_listen_key_expired_carries_its_event_time(server: LocalServer):
    account, key, secret = server.new_account(futures={"USDT": "100000"})
    client = await binance_async(server.url, key, secret)
    state = server_state(server.app)
    try:
        async with binance_socket_manager(client, server.url).futures_user_socket() as fs:
            listen_key = state.listen_keys.by_account[account]

            async def expire() -> None:
                state.listen_keys.expires[listen_key] = 0  # the replay loop closes expired keys

            asyncio.run_coroutine_threadsafe(expire(), server.loop).result(5)
            before = time.time() * 1000 - 1000
            msg = await asyncio.wait_for(fs.recv(), 10)
            assert msg["e"] == "listenKeyExpired" and msg["listenKey"] == listen_key
            assert isinstance(msg["E"], str) and float(msg["E"]) >= before
    finally:
        await client.close_connection()


async def _reports(sock, want: int) -> list[dict]:
    """The next ``want`` order events of a user socket (python-binance hands the event objects on)."""
    out: list[dict] = []
    while len(out) < want:
        msg = await asyncio.wait_for(sock.recv(), 10)
        ev = msg.get("event", msg)
        if ev.get("e") in ("executionReport", "ORDER_TRADE_UPDATE"):
            out.append(ev if ev["e"] == "executionReport" else ev["o"])
    return out


async def _until_next_order(sock, coid: str) -> list[dict]:
    """Order events up to the NEW of order ``coid`` placed after them (a real end mark: whatever the earlier
    orders reported in between is in the list)."""
    out: list[dict] = []
    while not out or out[-1]["c"] != coid:
        out += await _reports(sock, 1)
    return out


async def test_order_events_match_binance_market_fill_cancel_ids_and_time_in_force(server: LocalServer):
    """A market order that fills reports NEW then one TRADE per trade, the last one FILLED, and nothing after
    it (no trade-less TRADE); a MARKET order's ``f`` is GTC; a Spot cancel's ``c`` is the cancel request's
    newClientOrderId and ``C`` the order's own id. Binance's user-data-stream docs show the same."""
    _, key, secret = server.new_account(spot={"USDT": "100000"}, futures={"USDT": "100000"})
    client = await binance_async(server.url, key, secret)
    try:
        bsm = binance_socket_manager(client, server.url)
        book = await client.get_order_book(symbol="BTCUSDT", limit=5)
        low = f"{float(book['bids'][0][0]) * 0.9:.2f}"
        async with bsm.user_socket() as us:
            await client.create_order(symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.002")
            await client.create_order(symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC",
                                      quantity="0.002", price=low, newClientOrderId="fid-order")  # fmt: skip
            new, *trades, placed = await _until_next_order(us, "fid-order")
            assert (new["x"], new["f"]) == ("NEW", "GTC")
            assert trades and all(t["x"] == "TRADE" and t["t"] > 0 for t in trades)
            assert trades[-1]["X"] == "FILLED" and all(t["X"] == "PARTIALLY_FILLED" for t in trades[:-1])
            assert (placed["x"], placed["C"]) == ("NEW", "")
            await client.cancel_order(symbol="BTCUSDT", origClientOrderId="fid-order", newClientOrderId="fid-cancel")
            (cancelled,) = await _reports(us, 1)
            assert (cancelled["x"], cancelled["c"], cancelled["C"]) == ("CANCELED", "fid-cancel", "fid-order")
        async with bsm.futures_user_socket() as fs:
            await client.futures_create_order(symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.030")
            resting = server.resting_futures_price()
            await client.futures_create_order(symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC",
                                              quantity="0.030", price=resting, newClientOrderId="fid-fut")  # fmt: skip
            new, *trades, placed = await _until_next_order(fs, "fid-fut")
            assert (new["x"], new["f"]) == ("NEW", "GTC")
            assert trades and all(t["x"] == "TRADE" and t["t"] > 0 for t in trades)
            assert trades[-1]["X"] == "FILLED" and placed["x"] == "NEW"
    finally:
        await client.close_connection()
