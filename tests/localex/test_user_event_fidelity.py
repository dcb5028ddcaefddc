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
