"""Counters of rejected input and server events, exposed at the admin API and logged."""

from __future__ import annotations

import logging
from collections import Counter

log = logging.getLogger("localex.server.badinput")


class Counters:
    """Named counters; ``bad`` also logs the rejection at debug level with its detail."""

    def __init__(self) -> None:
        self.bad_input: Counter[str] = Counter()
        self.errors_by_code: Counter[int] = Counter()
        self.requests = 0
        self.internal_errors = 0

    def bad(self, kind: str, detail: str = "") -> None:
        """Count one rejected piece of input of ``kind``."""
        self.bad_input[kind] += 1
        log.info("rejected input %s %s", kind, detail)

    def error(self, code: int) -> None:
        """Count one Binance error answered."""
        self.errors_by_code[code] += 1

    def snapshot(self) -> dict[str, object]:
        """All counters as JSON-ready data."""
        return {
            "requests": self.requests,
            "internalErrors": self.internal_errors,
            "badInput": dict(self.bad_input),
            "errorsByCode": {str(k): v for k, v in self.errors_by_code.items()},
        }
