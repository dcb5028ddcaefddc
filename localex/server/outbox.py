"""One writer per WebSocket: publishers enqueue frames and never wait on a slow socket.

A connection whose queue overflows is closed (Binance disconnects clients that do not keep up), so one
stuck reader cannot grow the server's memory or delay other subscribers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiohttp import web

log = logging.getLogger(__name__)

MAX_QUEUED = 10_000


class Outbox:
    """A bounded queue of text frames drained into one WebSocket by its own task."""

    def __init__(self, ws: web.WebSocketResponse, name: str, max_queued: int = MAX_QUEUED) -> None:
        self.ws = ws
        self.name = name
        self._queue: asyncio.Queue[str | None] = asyncio.Queue()
        self._max = max_queued
        self._close: tuple[int, str] = (1008, "too slow")
        self._task = asyncio.get_running_loop().create_task(self._drain(), name=f"outbox:{name}")
        self.closed = False

    def send(self, frame: str) -> None:
        """Queue one text frame; close the connection if it has fallen too far behind."""
        if self.closed:
            return
        if self._queue.qsize() >= self._max:
            log.warning("closing slow websocket %s: %d frames queued", self.name, self._queue.qsize())
            self.close_with(1008, "too slow")
            return
        self._queue.put_nowait(frame)

    def close_with(self, code: int, message: str) -> None:
        """Close the connection with ``code`` once the frames queued so far are written."""
        if self.closed:
            return
        self.closed = True
        self._close = (code, message)
        self._queue.put_nowait(None)

    async def _drain(self) -> None:
        try:
            while True:
                frame = await self._queue.get()
                if frame is None:
                    code, message = self._close
                    await self.ws.close(code=code, message=message.encode())
                    return
                await self.ws.send_str(frame)
        except (ConnectionResetError, RuntimeError, asyncio.CancelledError):
            self.closed = True
        except Exception:
            log.exception("websocket writer %s failed", self.name)
            self.closed = True

    async def finish(self, timeout: float = 1.0) -> None:
        """Let a close requested with :meth:`close_with` go out (waiting at most ``timeout``), then stop."""
        if self.closed and not self._task.done():
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(self._task), timeout)
        await self.close()

    async def close(self) -> None:
        """Stop the writer (frames still queued are dropped)."""
        self.closed = True
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass
