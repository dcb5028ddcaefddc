"""The watch loop shared by market data and user data: one ccxt.pro ``watch_*`` call after another.

ccxt.pro reconnects by itself on the next ``watch_*`` call after a connection error; the loop only has to
keep calling, back off while the venue is unreachable, and tell its caller that a gap happened (so books
resync from a snapshot and user data is reconciled over REST). A structure that does not parse is counted
and dropped; nothing a venue sends ends the loop.
"""

from __future__ import annotations

import asyncio
import logging

import ccxt

log = logging.getLogger(__name__)


class Backoff:
    """Exponential backoff between reconnects: 0.05 s doubling to ``cap``; reset after a success."""

    def __init__(self, cap: float = 5.0) -> None:
        self.cap = cap
        self.delay = 0.0

    async def wait(self) -> None:
        self.delay = min(self.cap, self.delay * 2 if self.delay else 0.05)
        await asyncio.sleep(self.delay)

    def reset(self) -> None:
        self.delay = 0.0


# Errors after which ccxt.pro has dropped the subscription and the next watch call re-subscribes.
RECONNECTABLE = (ccxt.NetworkError, ccxt.ExchangeNotAvailable, ConnectionError, asyncio.TimeoutError)
GAP = (ccxt.InvalidNonce, ccxt.ChecksumError)
