"""A run's files under ``reports/backtests/{run_id}/``: metrics, trades, equity and drawdown charts, fingerprint.

- ``metrics.json``: ``backtest.metrics`` per account and for all accounts, the counters, the settings;
- ``trades.parquet``: every fill and rejection with exact decimal strings (price, qty, fee), a rejection with
  its code and reason from the table live trading shares (``oms.model.rejections``);
- ``equity.png`` and ``drawdown.png`` (matplotlib);
- ``fingerprint.txt``: the sha256 of the run's outputs (``Result.fingerprint``).
``run_id`` defaults to ``{strategy}-{fingerprint[:12]}``: the same run writes the same folder.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from matplotlib.figure import Figure

from backtest.codes import REJECT_CODE, REJECT_REASON
from backtest.metrics import drawdown, metrics
from backtest.run import Result
from kernels.instruments import money_from_units
from oms.config import PROJECT_ROOT
from strategies.api import (
    F_ACCOUNT,
    F_EVENT,
    F_FEE,
    F_FLAGS,
    F_INST,
    F_PRICE,
    F_QTY,
    F_SIDE,
    F_TAG,
    F_TS,
    REJECTED,
)

DEFAULT_ROOT = PROJECT_ROOT / "reports" / "backtests"


def trades_table(result: Result) -> pa.Table:
    rows = result.fills
    ins = result.instruments

    def col(f):
        return [int(x) for x in rows[:, f]]

    rejected = [bool(x & REJECTED) for x in col(F_FLAGS)]
    return pa.table(
        {
            "ts": pa.array(col(F_TS), pa.timestamp("ns", tz="UTC")),
            "account": [result.accounts[a] for a in col(F_ACCOUNT)],
            "symbol": [ins[i].symbol for i in col(F_INST)],
            "side": ["BUY" if s > 0 else "SELL" for s in col(F_SIDE)],
            "price": [ins[i].price_str(p) for i, p in zip(col(F_INST), col(F_PRICE), strict=True)],
            "qty": [ins[i].qty_str(q) for i, q in zip(col(F_INST), col(F_QTY), strict=True)],
            "fee_usdt": [
                None if r else format(money_from_units(x), "f") for r, x in zip(rejected, col(F_FEE), strict=True)
            ],
            "rejected": [
                REJECT_REASON.get(x, str(x)) if r else None for r, x in zip(rejected, col(F_FEE), strict=True)
            ],
            "reject_code": [  # oms.model.rejections: the code the daemon gives the same refusal
                REJECT_CODE.get(x, str(x)) if r else None for r, x in zip(rejected, col(F_FEE), strict=True)
            ],
            "flags": col(F_FLAGS),
            "tag": col(F_TAG),
            "event": col(F_EVENT),
        }
    )


def _chart(path: Path, ts: np.ndarray, series: dict[str, np.ndarray], title: str, ylabel: str) -> None:
    fig = Figure(figsize=(10, 4), dpi=100)  # no pyplot: no global state, no GUI backend
    ax = fig.subplots()
    x = ts.astype("datetime64[ns]")
    for name, y in series.items():
        ax.plot(x, y, label=name, linewidth=0.8)
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if len(series) > 1:
        ax.legend()
    fig.tight_layout()
    fig.savefig(path)


def write_report(
    result: Result, root: Path = DEFAULT_ROOT, run_id: str | None = None, settings: dict | None = None
) -> Path:
    """Write the run's files; returns the folder."""
    fp = result.fingerprint()
    out = Path(root) / (run_id or f"{result.strategy}-{fp[:12]}")
    out.mkdir(parents=True, exist_ok=True)
    per_account = {name: metrics(result, a) for a, name in enumerate(result.accounts)}
    doc = {
        "strategy": result.strategy,
        "fingerprint": fp,
        "total": metrics(result),
        "accounts": per_account,
        "counters": result.counters,
        "settings": settings or {},
    }
    (out / "metrics.json").write_text(json.dumps(doc, indent=2, default=str) + "\n")
    pq.write_table(trades_table(result), out / "trades.parquet")
    eq = {name: result.equity[:, a] / 1e8 for a, name in enumerate(result.accounts)}
    if len(eq) > 1:
        eq["all accounts"] = result.equity.sum(axis=1) / 1e8
    _chart(out / "equity.png", result.ts, eq, f"{result.strategy}: equity", "USDT")
    _chart(out / "drawdown.png", result.ts, {k: drawdown(v) * 100 for k, v in eq.items()},
           f"{result.strategy}: drawdown", "%")  # fmt: skip
    (out / "fingerprint.txt").write_text(fp + "\n")
    return out
