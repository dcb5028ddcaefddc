"""The ``backtest`` flow: a strategy over the archived market data, with its report and Prefect artifacts.

Tasks: load the tape, run the engine, write ``reports/backtests/{run_id}/``; the flow then publishes a
markdown summary and a metrics table as artifacts (seen in the Prefect UI under the flow run) and
returns the metrics, the report folder and the fingerprint.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from backtest.data import load_dataset_bars
from backtest.metrics import metrics
from backtest.report import DEFAULT_ROOT, write_report
from backtest.run import Account, Execution, FeeTier, Result, run
from backtest.tape import Tape, Venue
from kernels.instruments import Instrument, InstrumentSpec
from oms.archive.market import DEFAULT_ARCHIVE, DEFAULT_DATASETS
from strategies.registry import get


@task(name="load-tape")
def load_tape(symbol: str, interval: str, market: str, archive: str, datasets: str, leverage: int) -> Tape:
    spec = InstrumentSpec(symbol, "perp" if market == "usdm" else "spot", tick_size="0.01",
                          step_size="0.001" if market == "usdm" else "0.00001")  # fmt: skip
    return load_dataset_bars(symbol, Instrument(spec), interval, archive=Path(archive), datasets=Path(datasets),
                             venue=Venue(leverage=leverage))  # fmt: skip


@task(name="run-backtest")
def run_backtest(kind: str, params: dict, tape: Tape, cash: str, fee: str, slippage_bps: str, name: str) -> Result:
    ex = Execution(fee_tiers=(FeeTier(0, fee, fee),), slippage_bps=slippage_bps)
    return run(get(kind), params, tape, [Account("backtest", cash)], name=name, execution=ex)


@task(name="write-report")
def report(result: Result, out: str, settings: dict) -> str:
    return str(write_report(result, Path(out), None, settings))


def _cell(key: str, v: float) -> str:
    pct = key in {"total_return", "annual_return", "max_drawdown", "win_rate", "exposure"}
    return f"{v * 100:.2f}%" if pct else (f"{v:,}" if isinstance(v, int) else f"{v:,.4f}")


@flow(name="backtest", log_prints=True)
def backtest(
    kind: str = "sma_cross",
    params: dict | None = None,
    name: str | None = None,
    symbol: str = "BTCUSDT",
    interval: str = "1h",
    market: str = "spot",
    cash: str = "100000",
    fee: str = "0.001",
    slippage_bps: str = "0",
    leverage: int = 1,
    out: str = str(DEFAULT_ROOT),
    archive: str = str(DEFAULT_ARCHIVE),
    datasets: str = str(DEFAULT_DATASETS),
) -> dict:
    """Backtest one strategy; returns {"metrics", "report", "fingerprint"}."""
    params = params or {}
    label = name or kind
    tape = load_tape(symbol, interval, market, archive, datasets, leverage)
    result = run_backtest(kind, params, tape, cash, fee, slippage_bps, label)
    settings = {"kind": kind, "params": params, "symbol": symbol, "interval": interval, "market": market,
                "cash": cash, "fee": fee, "slippage_bps": slippage_bps}  # fmt: skip
    folder = report(result, out, settings)
    m = metrics(result, 0)
    fp = result.fingerprint()
    key = "".join(c if c.isalnum() else "-" for c in f"backtest-{label}".lower())
    create_table_artifact([{"metric": k, "value": _cell(k, v)} for k, v in m.items()], key=key,
                          description=f"{label} on {symbol} {interval}")  # fmt: skip
    head = f"{symbol} {interval}, {len(tape):,} events, {result.counters['fills']:,} fills, fingerprint `{fp[:16]}`"
    lines = [f"# Backtest {label} ({kind})", "", head, "", "| metric | value |", "|---|---|"]
    lines += [f"| {k} | {_cell(k, v)} |" for k, v in m.items()]
    lines += ["", f"Report: `{folder}`"]
    create_markdown_artifact("\n".join(lines), key=f"{key}-summary", description=f"{label}: summary")
    print(f"{label}: final {m['final_usdt']:,.2f} USDT, report {folder}")
    return {"metrics": m, "report": folder, "fingerprint": fp}
