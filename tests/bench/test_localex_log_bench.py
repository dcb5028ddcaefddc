"""What redacting the local exchange's log costs, against plain formatting measured in the same run.

Each request writes one access line: ``RedactingAccessLogger`` redacts its target without a regex
(``redact_target``) and marks the record, so ``RedactingFormatter`` only escapes it. Other lines (start-up,
rejections at debug level, the per-minute summary) are rare and get the full regex (``redact``). Both are
timed over a realistic mix (signed REST targets, a stream URL with a listenKey, public requests), medians
of 5 interleaved rounds, beside ``logging.Formatter`` on the same unredacted lines: the price per request.
"""

from __future__ import annotations

import logging
import statistics
import time

from localex.server.logs import FORMAT, RedactingFormatter, redact_target

N = 20_000
KEY = "Ab3d" * 16
SIG = "9f" * 32
TARGETS = [
    f"/api/v3/account?timestamp=1796115131306&recvWindow=10000&signature={SIG}",
    f"/api/v3/order?symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.001&price=6000.00"
    f"&timestamp=1796115131306&signature={SIG}",
    f"/fstream/ws/{KEY}",
    "/api/v3/depth?symbol=BTCUSDT&limit=5",
]
ACCESS = '%s "%s %s HTTP/%d.%d" %d %d %.6fs "%s"'


def _record(target: str, redacted: bool) -> logging.LogRecord:
    args = ("127.0.0.1", "GET", target, 1, 1, 200, 904, 0.000412, "python-requests/2.34.2")
    record = logging.LogRecord("aiohttp.access", logging.INFO, __file__, 1, ACCESS, args, None)
    if redacted:
        record.redacted = True
    return record


def _plain(formatter: logging.Formatter) -> float:
    start = time.perf_counter()
    for i in range(N):
        formatter.format(_record(TARGETS[i % len(TARGETS)], False))
    return (time.perf_counter() - start) / N * 1e6


def _ours(formatter: logging.Formatter, *, full: bool) -> float:
    start = time.perf_counter()
    for i in range(N):
        target = TARGETS[i % len(TARGETS)]
        record = _record(target, False) if full else _record(redact_target(target), True)
        formatter.format(record)
    return (time.perf_counter() - start) / N * 1e6


def test_redacted_log_line_cost() -> None:
    plain, redacting = logging.Formatter(FORMAT), RedactingFormatter(FORMAT)
    line = redacting.format(_record(redact_target(TARGETS[0]), True))
    assert SIG not in line and "signature=<redacted>" in line
    assert KEY not in redacting.format(_record(TARGETS[2], False))
    rounds: dict[str, list[float]] = {"plain": [], "access": [], "full": []}
    for _ in range(5):
        rounds["plain"].append(_plain(plain))
        rounds["access"].append(_ours(redacting, full=False))
        rounds["full"].append(_ours(redacting, full=True))
    p, a, f = (statistics.median(rounds[k]) for k in ("plain", "access", "full"))
    print(
        f"\nlocalex log lines ({N} per round, medians of 5): plain formatting {p:.2f} µs; "
        f"redacted access line {a:.2f} µs (+{a - p:.2f} µs per request, x{a / p:.2f}); "
        f"full regex redaction (rare lines) {f:.2f} µs (x{f / p:.2f})"
    )
