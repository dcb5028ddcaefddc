"""``Exchange.set_interest``: unwanted market-data events are not built, everything else is unchanged."""

from __future__ import annotations

import dataclasses
import random

import pytest

from localex.engine import (
    AggTradeEvent,
    BookTickerEvent,
    DepthEvent,
    Exchange,
    ExchangeError,
    KlineEvent,
    OrderRequest,
    TradeEvent,
)

T0 = 1_700_000_000_000_000_000
KIND_OF = {
    TradeEvent: "trade",
    AggTradeEvent: "aggTrade",
    DepthEvent: "depth",
    BookTickerEvent: "bookTicker",
    KlineEvent: "kline",
}


def _norm(x: object) -> object:
    """Dataclasses as comparable tuples (``Order`` compares by identity), the spec left out."""
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return (
            type(x).__name__,
            *((f.name, _norm(getattr(x, f.name))) for f in dataclasses.fields(x) if f.name != "spec"),
        )
    if isinstance(x, list | tuple):
        return tuple(_norm(y) for y in x)
    return x


def _flow(ex: Exchange, seed: int, t: list[int], n: int = 300) -> list[object]:
    """Random spot limit orders, cancels and jumps of the clock ``t``; returns a summary of every result."""
    rng = random.Random(seed)
    users = []
    for _ in range(3):
        a = ex.create_account().account_id
        ex.fund(a, "USDT", "1000000")
        ex.fund(a, "BTC", "50")
        users.append(a)
    out: list[object] = []
    for _ in range(n):
        acc = users[rng.randrange(3)]
        r = rng.random()
        try:
            if r < 0.75:
                side = rng.choice(["BUY", "SELL"])
                price = f"{rng.randint(29_950, 30_050)}.{rng.randrange(100):02d}"
                res = ex.place_order(
                    acc,
                    OrderRequest(
                        "spot",
                        "BTCUSDT",
                        side,
                        "LIMIT",
                        quantity=f"{rng.randint(1, 40) / 1000:.3f}",
                        price=price,
                        time_in_force="GTC",
                    ),
                )
                out.append((res.order.order_id, res.order.status, len(res.fills)))
            elif r < 0.95:
                out.append(ex.cancel_order(acc, "spot", "BTCUSDT", rng.randrange(1, 200)).status)
            else:
                t[0] += rng.randrange(200) * 1_000_000_000  # a few minutes pass
        except ExchangeError as exc:
            out.append(exc.code)
    return out


def _run(
    kinds: set[str] | None, intervals: set[str] | None, seed: int
) -> tuple[list[object], list[object], list[object]]:
    t = [T0]

    def clock() -> int:
        t[0] += 1000
        return t[0]

    ex = Exchange(clock=clock)
    log: list[object] = []
    ex.add_listener(log.append)
    if kinds is not None or intervals is not None:
        ex.set_interest(kinds, intervals)
    results = _flow(ex, seed, t)
    final = [
        ex.depth("spot", "BTCUSDT", 1000),
        ex.ticker_24h("spot", "BTCUSDT"),
        [ex.klines("spot", "BTCUSDT", iv) for iv in ("1m", "5m", "1h", "1d")],
        t[0],
        ex.book_ticker("spot", "BTCUSDT"),
    ]
    return results, log, final


def _wanted(e: object, kinds: set[str] | None, intervals: set[str] | None) -> bool:
    kind = KIND_OF.get(type(e))
    if kind is None:
        return True
    if kinds is not None and kind not in kinds:
        return False
    return not (kind == "kline" and intervals is not None and e.interval not in intervals)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("kinds", "intervals"),
    [(set(), None), ({"kline"}, {"1m", "1h"}), ({"trade", "depth"}, set()), ({"aggTrade", "bookTicker"}, None)],
)
@pytest.mark.parametrize("seed", [1, 2])
def test_interest_only_drops_unwanted_events(kinds: set[str], intervals: set[str] | None, seed: int) -> None:
    all_results, all_log, all_final = _run(None, None, seed)
    results, log, final = _run(kinds, intervals, seed)
    assert results == all_results
    assert _norm(final) == _norm(all_final)
    assert _norm(log) == _norm([e for e in all_log if _wanted(e, kinds, intervals)])
    assert any(isinstance(e, KlineEvent) for e in all_log)


def test_interest_rejects_unknown_names() -> None:
    ex = Exchange()
    with pytest.raises(ValueError):
        ex.set_interest({"candles"})
    with pytest.raises(ValueError):
        ex.set_interest(None, {"7m"})
