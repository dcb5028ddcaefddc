"""A loopback TCP proxy in front of the local exchange that cuts a WebSocket connection at an order frame.

The local exchange has no hook to drop a connection between an order and its answer, so tests put this
proxy between the client and the server. It forwards bytes both ways; once ``arm(mode)`` is called, the first
client frame whose (unmasked) payload contains ``trigger`` decides the cut:

* ``drop_answer``: the frame is forwarded (the venue executes the order), then nothing more reaches the
  client and both connections are reset: the answer never comes.
* ``hold``: the frame is not forwarded, and both connections are reset: the order never reaches the venue.
* ``swallow``: the frame is not forwarded and the connection stays up: that one request is never answered
  (a WebSocket API slower than the client's timeout).
* ``mute``: the frame is forwarded (the venue executes the order) and the connection stays up, but nothing
  more reaches the client: the answer is never read (a process killed between writing a frame and reading
  its answer sees exactly this).

Connections made after the cut are forwarded normally (the client reconnects through the proxy). The
upgrade request loses its ``Sec-WebSocket-Extensions`` header, so no compression is negotiated and the
proxy can read the frames, and its ``Host`` names the server behind the proxy, as a reverse proxy's does:
the local exchange refuses a ``Host`` that is not its own loopback address and port (its DNS-rebinding
guard), so the client's ``127.0.0.1:<proxy port>`` would get 403 on the upgrade.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct


def take_frame(buf: bytearray) -> tuple[bytes, bytes] | None:
    """The next complete client frame in ``buf`` as (raw bytes, unmasked payload), removed from ``buf``."""
    if len(buf) < 2:
        return None
    length = buf[1] & 0x7F
    masked = buf[1] & 0x80
    pos = 2
    if length == 126:
        if len(buf) < 4:
            return None
        (length,) = struct.unpack(">H", buf[2:4])
        pos = 4
    elif length == 127:
        if len(buf) < 10:
            return None
        (length,) = struct.unpack(">Q", buf[2:10])
        pos = 10
    mask = b""
    if masked:
        if len(buf) < pos + 4:
            return None
        mask = bytes(buf[pos : pos + 4])
        pos += 4
    if len(buf) < pos + length:
        return None
    raw = bytes(buf[: pos + length])
    payload = bytes(buf[pos : pos + length])
    if masked:
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    del buf[: pos + length]
    return raw, payload


def take_upgrade(buf: bytearray, host: bytes) -> bytes | None:
    """The client's HTTP upgrade request, once complete, without ``Sec-WebSocket-Extensions`` (so no
    permessage-deflate is negotiated and the frames stay readable) and with ``Host: host`` (the server's own
    address, as a reverse proxy forwards it); removed from ``buf``."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    lines = []
    for ln in bytes(buf[:end]).split(b"\r\n"):
        name = ln.split(b":", 1)[0].strip().lower()
        if name == b"sec-websocket-extensions":
            continue
        lines.append(b"Host: " + host if name == b"host" else ln)
    del buf[: end + 4]
    return b"\r\n".join(lines) + b"\r\n\r\n"


def retarget_host(head: bytes, port: int) -> bytes:
    """The request head with its ``Host`` header naming the server's port: the local exchange refuses (403) a
    request whose ``Host`` is not the address it arrived on (its DNS-rebinding guard)."""
    lines = head.split(b"\r\n")
    for k, line in enumerate(lines):
        if line.lower().startswith(b"host:"):
            host = line.split(b":", 1)[1].strip().rsplit(b":", 1)[0]
            lines[k] = b"Host: " + host + b":" + str(port).encode()
    return b"\r\n".join(lines)


class CuttingProxy:
    def __init__(self, target_port: int, trigger: bytes = b'"order.place"') -> None:
        self.target_port = target_port
        self.trigger = trigger
        self.mode: str | None = None
        self.cut = asyncio.Event()
        self.forwarded_trigger = False
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    def arm(self, mode: str, trigger: bytes | None = None) -> None:
        assert mode in ("drop_answer", "hold", "swallow", "mute")
        if trigger is not None:
            self.trigger = trigger
        self.mode = mode
        self.cut.clear()

    async def start(self) -> CuttingProxy:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for w in list(self._writers):
            w.transport.abort()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self._writers.update((writer, up_writer))
        link = _Link(writer, up_writer)
        tasks = [
            asyncio.create_task(_quietly(self._client_to_server(reader, link))),
            asyncio.create_task(_quietly(_server_to_client(up_reader, link))),
        ]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in tasks:
                t.cancel()
            for w in (writer, up_writer):
                self._writers.discard(w)
                w.transport.abort()

    async def _client_to_server(self, reader: asyncio.StreamReader, link: _Link) -> None:
        buf = bytearray()
        upgraded = False
        while data := await reader.read(65536):
            buf += data
            if not upgraded:
                head = take_upgrade(buf, f"127.0.0.1:{self.target_port}".encode())
                if head is None:
                    continue
                link.up.write(retarget_host(head, self.target_port))
                upgraded = True
            while (frame := take_frame(buf)) is not None:
                raw, payload = frame
                if self.mode is not None and self.trigger in payload:
                    if await self._cut(link, raw):
                        return
                    continue
                link.up.write(raw)
            await link.up.drain()

    async def _cut(self, link: _Link, raw: bytes) -> bool:
        """Apply the armed mode to the trigger frame; True when the connection is gone."""
        mode, self.mode = self.mode, None
        if mode == "swallow":  # the venue never sees this one request; the connection lives on
            self.cut.set()
            return False
        if mode == "mute":  # the venue gets it; its answer (and everything after) goes nowhere
            link.cut = True
            link.up.write(raw)
            await link.up.drain()
            self.forwarded_trigger = True
            self.cut.set()
            return False
        if mode == "drop_answer":
            link.cut = True  # from now on the server's bytes go nowhere
            link.up.write(raw)
            await link.up.drain()
            self.forwarded_trigger = True
            await asyncio.sleep(0.3)  # the venue executes and answers into the void
        link.reset()
        self.cut.set()
        return True


class _Link:
    """One proxied connection: the client side, the server side, and whether it has been cut."""

    def __init__(self, down: asyncio.StreamWriter, up: asyncio.StreamWriter) -> None:
        self.down = down
        self.up = up
        self.cut = False

    def reset(self) -> None:
        self.cut = True
        self.down.transport.abort()
        self.up.transport.abort()


async def _server_to_client(up_reader: asyncio.StreamReader, link: _Link) -> None:
    while data := await up_reader.read(65536):
        if link.cut:
            continue
        link.down.write(data)
        await link.down.drain()


async def _quietly(coro) -> None:
    with contextlib.suppress(ConnectionError, OSError, asyncio.IncompleteReadError):
        await coro
