"""Counters of rejected input and server events, exposed at the admin API and logged.

Each rejection is logged at DEBUG with its detail (``--log-level debug`` shows them); at INFO the server
logs one summary per interval (``ServerConfig.bad_input_summary_s``), the counts per kind since the last
one, so a flood of bad input costs one log line a minute, not one per request.
"""

from __future__ import annotations

import logging
import time
from collections import Counter

log = logging.getLogger("localex.server.badinput")


class Counters:
    """Named counters; ``bad`` also logs the rejection at debug level with its detail."""

    def __init__(self) -> None:
        self.bad_input: Counter[str] = Counter()
        self.errors_by_code: Counter[int] = Counter()
        self.requests = 0
        self.internal_errors = 0
        self._window: Counter[str] = Counter()  # since the last summary
        self._window_start = time.monotonic()

    def bad(self, kind: str, detail: str = "") -> None:
        """Count one rejected piece of input of ``kind``."""
        self.bad_input[kind] += 1
        self._window[kind] += 1
        if log.isEnabledFor(logging.DEBUG):
            log.debug("rejected input %s %s", kind, detail[:500])

    def error(self, code: int) -> None:
        """Count one Binance error answered."""
        self.errors_by_code[code] += 1

    def log_summary(self) -> int:
        """Log (INFO) the rejections since the last call, most frequent first; return how many there were."""
        now = time.monotonic()
        window, self._window = self._window, Counter()
        elapsed, self._window_start = now - self._window_start, now
        total = sum(window.values())
        if total:
            kinds = ", ".join(f"{kind} {n}" for kind, n in window.most_common())
            log.info("rejected input: %d in the last %.0f s (%s)", total, elapsed, kinds)
        return total

    def snapshot(self) -> dict[str, object]:
        """All counters as JSON-ready data."""
        return {
            "requests": self.requests,
            "internalErrors": self.internal_errors,
            "badInput": dict(self.bad_input),
            "errorsByCode": {str(k): v for k, v in self.errors_by_code.items()},
        }
