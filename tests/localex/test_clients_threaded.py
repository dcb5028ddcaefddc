"""python-binance's ThreadedWebsocketManager against the local exchange, built by ``clients``.

The manager builds its own AsyncClient and socket manager in its thread, so the URL overrides must reach
those; this drives it the way the library documents (start, start_*_socket with a callback, stop).
"""

from __future__ import annotations

import queue
import time

from binance.ws.reconnecting_websocket import ReconnectingWebsocket

from localex import clients

WAIT = 5.0


def test_threaded_manager_streams_trades_and_user_events(server, monkeypatch) -> None:
    # the library's read loop polls every TIMEOUT (10 s) and stop() waits for one poll: shorten it here
    monkeypatch.setattr(ReconnectingWebsocket, "TIMEOUT", 0.2)
    _, key, secret = server.new_account(spot={"USDT": "100000", "BTC": "1"})
    twm = clients.binance_threaded_socket_manager(server.url, key, secret)
    got: queue.Queue[dict] = queue.Queue()
    twm.start()
    try:
        trade_name = twm.start_trade_socket(callback=got.put, symbol="BTCUSDT")
        twm.start_user_socket(callback=got.put)  # named None by the library: it rides the WebSocket API
        assert trade_name == "btcusdt@trade"
        time.sleep(0.5)  # both subscriptions are live before the order
        rest = clients.binance_sync(server.url, key, secret)
        order = rest.order_market_buy(symbol="BTCUSDT", quantity="0.001")
        seen: dict[str, dict] = {}
        deadline = time.monotonic() + WAIT
        while {"trade", "executionReport"} - seen.keys() and time.monotonic() < deadline:
            try:
                msg = got.get(timeout=0.5)
            except queue.Empty:
                continue
            event = msg.get("event", msg)  # user events arrive wrapped as {"subscriptionId", "event"}
            seen.setdefault(event.get("e", ""), event)
    finally:
        twm.stop()
        twm.join(10)
    assert seen["trade"]["s"] == "BTCUSDT" and isinstance(seen["trade"]["p"], str)
    assert seen["executionReport"]["i"] == order["orderId"]
    assert not twm.is_alive()
