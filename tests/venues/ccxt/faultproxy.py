"""A loopback proxy between a client library and the local exchange that injects the network's faults.

It relays HTTP requests and WebSocket connections unchanged (status, headers, bodies, frames) and, when a
test asks, does what real networks do to a connector:

* ``cut_after_forward(pred)``: forward the next matching HTTP request to the exchange (so it takes effect)
  and then close the client's connection without an answer: the request was sent, the answer never came;
* ``drop_frames(pred, n)``: silently drop the next ``n`` exchange -> client WebSocket frames that match
  (a lost depth diff is a sequence gap);
* ``inject(path_part, frame)``: send a raw frame (garbage, truncated JSON, ...) to every client socket whose
  path contains ``path_part``;
* ``close_sockets(path_part)``: close matching client sockets, as a dropped connection.

Only 127.0.0.1; nothing of the product is mocked: the client and the exchange speak their real protocols.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

import aiohttp
from aiohttp import WSMsgType, web

_HOP = {"host", "content-length", "transfer-encoding", "connection", "keep-alive", "upgrade", "content-encoding"}


@dataclass
class _Cut:
    pred: Callable[[web.Request], bool]
    remaining: int


@dataclass
class _Drop:
    pred: Callable[[str, str], bool]  # (path, frame text)
    remaining: int


@dataclass
class FaultProxy:
    """Relays ``http://127.0.0.1:port`` to ``upstream`` (an ``http://`` base URL)."""

    upstream: str
    cuts: list[_Cut] = field(default_factory=list)
    drops: list[_Drop] = field(default_factory=list)
    sockets: list[tuple[str, web.WebSocketResponse]] = field(default_factory=list)
    cut_count: int = 0
    dropped_frames: int = 0
    forwarded_frames: int = 0
    url: str = ""
    _runner: web.AppRunner | None = None
    _session: aiohttp.ClientSession | None = None

    def cut_after_forward(self, pred: Callable[[web.Request], bool], n: int = 1) -> None:
        self.cuts.append(_Cut(pred, n))

    def drop_frames(self, pred: Callable[[str, str], bool], n: int = 1) -> None:
        self.drops.append(_Drop(pred, n))

    async def inject(self, path_part: str, frame: str) -> int:
        """Send ``frame`` to every client socket whose path contains ``path_part``; the number reached."""
        n = 0
        for path, ws in list(self.sockets):
            if path_part in path and not ws.closed:
                await ws.send_str(frame)
                n += 1
        return n

    async def close_sockets(self, path_part: str) -> int:
        n = 0
        for path, ws in list(self.sockets):
            if path_part in path and not ws.closed:
                await ws.close(code=1006)
                n += 1
        return n

    def clients_on(self, path_part: str) -> int:
        return sum(1 for path, ws in self.sockets if path_part in path and not ws.closed)

    async def start(self, port: int) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._session = aiohttp.ClientSession(auto_decompress=False)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", port).start()
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        for _, ws in list(self.sockets):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await self._relay_ws(request)
        return await self._relay_http(request)

    async def _relay_http(self, request: web.Request) -> web.StreamResponse:
        assert self._session is not None
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP}
        async with self._session.request(
            request.method, self.upstream + request.path_qs, data=body, headers=headers
        ) as upstream:
            payload = await upstream.read()
            status = upstream.status
            out_headers = {k: v for k, v in upstream.headers.items() if k.lower() not in _HOP}
        for cut in self.cuts:
            if cut.remaining > 0 and cut.pred(request):
                cut.remaining -= 1
                self.cut_count += 1
                assert request.transport is not None
                request.transport.close()  # the request took effect; its answer is lost
                raise ConnectionResetError("fault proxy: answer cut")
        return web.Response(status=status, body=payload, headers=out_headers)

    async def _relay_ws(self, request: web.Request) -> web.WebSocketResponse:
        assert self._session is not None
        client = web.WebSocketResponse(autoping=True)
        await client.prepare(request)
        upstream_url = "ws://" + self.upstream.split("://", 1)[1] + request.path_qs
        path = request.path_qs
        entry = (path, client)
        self.sockets.append(entry)
        try:
            async with self._session.ws_connect(upstream_url, autoping=True, max_msg_size=0) as up:

                async def down() -> None:
                    async for msg in up:
                        if msg.type != WSMsgType.TEXT:
                            break
                        if self._should_drop(path, msg.data):
                            continue
                        self.forwarded_frames += 1
                        await client.send_str(msg.data)
                    await client.close()

                task = asyncio.ensure_future(down())
                try:
                    async for msg in client:
                        if msg.type == WSMsgType.TEXT:
                            await up.send_str(msg.data)
                        elif msg.type in (WSMsgType.CLOSE, WSMsgType.ERROR):
                            break
                finally:
                    task.cancel()
                    await asyncio.gather(task, return_exceptions=True)
        finally:
            if entry in self.sockets:
                self.sockets.remove(entry)
        return client

    def _should_drop(self, path: str, frame: str) -> bool:
        for drop in self.drops:
            if drop.remaining > 0 and drop.pred(path, frame):
                drop.remaining -= 1
                self.dropped_frames += 1
                return True
        return False
