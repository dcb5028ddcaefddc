"""Shared tapes for the backtest tests: the real BTC-USD hourly history as BTCUSDT spot bars."""

from __future__ import annotations

from pathlib import Path

import pytest

from backtest.data import load_dataset_bars
from backtest.tape import BTCUSDT_SPOT
from kernels.instruments import Instrument

REPO = Path(__file__).resolve().parents[2]
DATASETS = REPO / "datasets" / "market"


@pytest.fixture(scope="session")
def btc() -> Instrument:
    return Instrument(BTCUSDT_SPOT)


@pytest.fixture(scope="session")
def btc_hourly(btc, tmp_path_factory):
    """Straight from datasets/market (an empty archive folder, so no local import can change it)."""
    return load_dataset_bars("BTCUSDT", btc, "1h", archive=tmp_path_factory.mktemp("empty"), datasets=DATASETS)
