"""Binance public-archive CSVs (klines, aggTrades, trades; zipped or not; header or not; ms or µs) and bad input."""

from __future__ import annotations

import zipfile

import pytest

from backtest.data import DataError, load_binance
from backtest.tape import BTCUSDT_SPOT
from kernels.instruments import Instrument
from strategies.api import EV_CLOSE, EV_INST, EV_KIND, EV_T0, EV_TS, EV_VOLUME, TRADE

BTC = Instrument(BTCUSDT_SPOT)
H_MS = 3_600_000
T_MS = 1_704_067_200_000  # 2024-01-01 00:00 UTC
KLINE_HEADER = "open_time,open,high,low,close,volume,close_time,quote_volume,count,taker_buy_volume,"
KLINE_HEADER += "taker_buy_quote_volume,ignore"


def kline(t, o="42000.10", h="42100.00", lo="41900.00", c="42050.00", v="12.34567"):
    return f"{t},{o},{h},{lo},{c},{v},{t + H_MS - 1},518000.1,100,6.1,256000.2,0"


def write(path, lines, zipped=False):
    text = "\n".join(lines) + "\n"
    if zipped:
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr(path.stem + ".csv", text)
    else:
        path.write_text(text)
    return path


@pytest.mark.parametrize("zipped", [False, True])
@pytest.mark.parametrize("header", [False, True])
@pytest.mark.parametrize("unit", ["ms", "us"])
def test_klines_load_in_every_layout(tmp_path, zipped, header, unit):
    scale = 1000 if unit == "us" else 1
    lines = ([KLINE_HEADER] if header else []) + [kline(T_MS + k * H_MS) for k in range(3)]
    if unit == "us":
        lines = [ln if ln.startswith("open_time") else _us(ln) for ln in lines]
    p = write(tmp_path / ("BTCUSDT-1h-2024-01" + (".zip" if zipped else ".csv")), lines, zipped)
    tape, report = load_binance(p, "klines", BTC, interval="1h")
    assert report.time_unit == unit and report.events == 3 and not report.issues
    assert tape.events[0, EV_T0] == T_MS * 1_000_000 and tape.events[0, EV_TS] == (T_MS + H_MS) * 1_000_000
    assert tape.events[0, EV_CLOSE] == BTC.price("42050") and tape.events[0, EV_VOLUME] == BTC.qty("12.34567")
    assert scale in (1, 1000)


def _us(line):
    cells = line.split(",")
    cells[0] = str(int(cells[0]) * 1000)
    cells[6] = str(int(cells[6]) * 1000)
    return ",".join(cells)


def test_agg_trades_and_trades_become_trade_events(tmp_path):
    agg = write(tmp_path / "BTCUSDT-aggTrades-2024-01-01.csv", [
        f"100,42000.10,0.50000,1000,1001,{T_MS},true,true",
        f"101,42000.20,0.25000,1002,1002,{T_MS + 5},false,true",
    ])  # fmt: skip
    tape, report = load_binance(agg, "aggTrades", BTC)
    assert list(tape.events[:, EV_KIND]) == [TRADE, TRADE] and list(tape.events[:, 9]) == [-1, 1]
    assert tape.events[1, EV_CLOSE] == BTC.price("42000.2") and report.time_unit == "ms"
    trades = write(tmp_path / "BTCUSDT-trades-2025-01-01.csv", [
        f"7,42000.10,0.10000,4200.01,{T_MS * 1000},true,true",
        f"8,42000.30,0.20000,8400.06,{T_MS * 1000 + 1},false,true",
    ])  # fmt: skip
    tape, report = load_binance(trades, "trades", BTC, inst_index=0)
    assert report.time_unit == "us" and tape.events[1, EV_TS] == T_MS * 1_000_000 + 1000
    assert list(tape.events[:, EV_INST]) == [0, 0]


def test_bad_rows_are_reported_with_file_and_row(tmp_path):
    lines = [
        kline(T_MS),
        kline(T_MS + H_MS, c="nan"),
        kline(T_MS + 2 * H_MS, h="41000.00"),  # high below the open
        kline(T_MS + 3 * H_MS)[:20],  # short row
        kline(T_MS + 4 * H_MS, o="42000.123"),  # finer than the tick
    ]
    p = write(tmp_path / "bad.csv", lines)
    with pytest.raises(DataError) as exc:
        load_binance(p, "klines", BTC, interval="1h")
    text = str(exc.value)
    assert "bad.csv: row 2: bad value: empty or NaN cell" in text
    assert "bad.csv: row 3: bad value: inconsistent OHLC" in text
    assert "bad.csv: row 4: short row" in text
    assert "bad.csv: row 5: bad value: '42000.123' has more decimals than the unit allows (2)" in text


def test_gaps_duplicates_and_unsorted_rows_are_refused_or_repaired(tmp_path):
    lines = [kline(T_MS), kline(T_MS + 2 * H_MS), kline(T_MS + H_MS), kline(T_MS + H_MS), kline(T_MS + 5 * H_MS)]
    p = write(tmp_path / "messy.csv", lines)
    with pytest.raises(DataError) as exc:
        load_binance(p, "klines", BTC, interval="1h")
    assert "messy.csv: row 3: unsorted" in str(exc.value)
    assert "messy.csv: row 4: duplicate" in str(exc.value)
    tape, report = load_binance(p, "klines", BTC, interval="1h", repair=True)
    assert report.events == 4 and list(tape.events[:, EV_T0] // 1_000_000) == [T_MS + k * H_MS for k in (0, 1, 2, 5)]
    assert [str(g) for g in report.gaps] == ["messy.csv: row 5: gap: 2 missing bar(s) before this row"]
    assert report.counts() == {"unsorted": 1, "duplicate": 1, "gap": 1}


def test_truncated_files_are_named(tmp_path):
    p = write(tmp_path / "BTCUSDT-1h-2024-02.zip", [kline(T_MS + k * H_MS) for k in range(50)], zipped=True)
    p.write_bytes(p.read_bytes()[:-40])
    with pytest.raises(DataError, match="BTCUSDT-1h-2024-02.zip: truncated or corrupt"):
        load_binance(p, "klines", BTC, interval="1h")
    q = tmp_path / "cut.csv"
    q.write_text("\n".join(kline(T_MS + k * H_MS) for k in range(3))[:-30])
    with pytest.raises(DataError, match="cut.csv: row 3: "):
        load_binance(q, "klines", BTC, interval="1h")
