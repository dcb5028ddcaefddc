"""The daemon's shutdown steps end even when a step does not: each has its bound, and one that ignores its
cancellation is left behind (``asyncio.wait_for`` would wait on it for ever)."""

from __future__ import annotations

import asyncio
import logging
import time

from stream.daemon import _bounded


async def test_a_step_that_ignores_cancel_is_left_behind_with_a_warning(caplog):
    release = asyncio.Event()

    async def stubborn() -> None:
        while not release.is_set():
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                continue  # a bug: keeps going when cancelled

    start = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="stream.daemon"):
        await _bounded("finish the stubborn step", stubborn(), 0.2)
    assert time.monotonic() - start < 5
    assert any("stubborn step within 0 s; going on (it ignored cancel)" in r.getMessage() for r in caplog.records)
    release.set()


async def test_a_failing_step_is_reported_and_a_quick_one_says_nothing(caplog):
    async def fails() -> None:
        raise RuntimeError("NATS away")

    with caplog.at_level(logging.WARNING, logger="stream.daemon"):
        await _bounded("close the publisher", fails(), 1.0)
        await _bounded("write the live state", asyncio.sleep(0), 1.0)
    said = [r.getMessage() for r in caplog.records]
    assert said == ["shutdown: could not close the publisher: RuntimeError: NATS away"]
