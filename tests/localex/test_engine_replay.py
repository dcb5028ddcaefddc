"""Real price data: archive import/loading, replayed paths, the liquidity ladder and determinism."""

from __future__ import annotations

from pathlib import Path

import pytest

from localex.engine import Exchange, LiquidityConfig, OrderRequest, PricePath, Replay
from oms.archive.market import (
    import_datasets,
    kline_path,
    load_price_path,
    parse_cdd_date,
    read_archive,
)

DATASETS = Path(__file__).resolve().parents[2] / "datasets" / "market"
T0 = 1_700_000_000_000_000_000
S = 1_000_000_000


def test_cdd_dates() -> None:
    assert parse_cdd_date("2019-10-17 09-AM") == 1571302800000
    assert parse_cdd_date("2019-10-17 12-PM") == 1571313600000
    assert parse_cdd_date("2019-10-17 12-AM") == 1571270400000
    assert parse_cdd_date("2019-10-17") == 1571270400000


def test_import_writes_binance_layout_and_loads_back(tmp_path: Path) -> None:
    rep = import_datasets(DATASETS, tmp_path)
    assert rep.bars[("BTCUSDT", "1h")] == 20111 and rep.bars[("ETHUSDT", "1d")] > 700
    assert rep.rejected == 0
    f = kline_path(tmp_path, "BTCUSDT", "1h", 2017, 12)
    rows = f.read_text().splitlines()
    first = rows[0].split(",")
    assert len(first) == 12 and int(first[6]) == int(first[0]) + 3_600_000 - 1
    bars = read_archive(tmp_path, "BTCUSDT", "1h")
    assert bars == sorted(bars, key=lambda b: b.open_ms)
    ath = max(bars, key=lambda b: float(b.high))
    assert ath.high == "19891.99"  # the 2017-12-17 Coinbase all-time high
    p = load_price_path("BTCUSDT", "1h", archive=tmp_path)
    direct = load_price_path("BTCUSDT", "1h", archive=tmp_path / "empty", datasets=DATASETS)
    assert p == direct


def test_price_path_walks_o_l_h_c_for_up_bars() -> None:
    p = PricePath.from_rows("X", 3000, [(0, "100", "130", "90", "120"), (3000, "120", "125", "100", "105")])
    U = 10**8
    assert [p.price_at(t) // U for t in (0, 1000, 2000, 3000)] == [100, 90, 130, 120]
    assert [p.price_at(t) // U for t in (3000, 4000, 5000, 6000, 9999)] == [120, 125, 100, 105, 105]
    assert p.price_at(500) // U == 95


def _replayed(seed: int) -> tuple[Exchange, list[object]]:
    now = [T0]
    ex = Exchange(clock=lambda: now[0], seed=seed)
    events: list[object] = []
    ex.add_listener(events.append)
    path = load_price_path("BTCUSDT", "1h", archive=Path("/nonexistent"), datasets=DATASETS)
    Replay(
        ex,
        {"BTCUSDT": path},
        speed=3600.0,
        start_data_ms=parse_cdd_date("2017-12-17 12-AM"),
        liquidity=LiquidityConfig(levels=5, spacing_bp=2),
    )
    a = ex.create_account().account_id
    ex.fund(a, "USDT", "100000")
    # a resting bid below the market gets filled when the replayed price falls through it
    bid = ex.place_order(
        a, OrderRequest("spot", "BTCUSDT", "BUY", "LIMIT", quantity="0.01", price="18500", time_in_force="GTC")
    ).order
    for _ in range(60):  # 60 s at 3600x = 60 hours of history
        now[0] += S
        ex.advance()
    events.append(ex.get_order(a, "spot", "BTCUSDT", bid.order_id))
    return ex, events


def test_replay_quotes_real_prices_fills_users_and_is_deterministic() -> None:
    ex, events = _replayed(3)
    final = events[-1]
    assert final.status == "FILLED"  # type: ignore[attr-defined]
    snap = ex.depth("spot", "BTCUSDT", 5)
    assert len(snap.bids) == 5 and len(snap.asks) == 5 and snap.bids[0][0] < snap.asks[0][0]
    mark = ex.mark_price("BTCUSDT")
    assert 10_000 * 10 < mark < 20_000 * 10  # futures ticks of 0.10
    assert ex.klines("spot", "BTCUSDT", "1m")
    ex2, events2 = _replayed(3)
    assert repr(events) == repr(events2)
    ex3, _ = _replayed(4)
    assert ex3.depth("spot", "BTCUSDT", 5).bids != snap.bids  # ladder sizes follow the seed


def test_replay_rejects_bad_speed() -> None:
    ex = Exchange(clock=lambda: T0)
    path = PricePath.from_rows("X", 60_000, [(0, "1", "1", "1", "1")])
    with pytest.raises(ValueError):
        Replay(ex, {"BTCUSDT": path}, speed=0)
