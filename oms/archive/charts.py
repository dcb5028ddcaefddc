"""PNG equity curves of a PnL report (matplotlib, Agg): one per account and one of every account together.

A chart is drawn only when its data changed since the last drawing: the data's digest is kept beside the
PNG (``.equity.png.sha256``), so a daily report redraws the accounts that traded, not all 200. Charts are
drawn in a process pool (matplotlib is single-threaded and its drawing is CPU-bound), in batches so each
worker imports matplotlib once; a handful of charts is drawn in the calling process.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from datetime import date
from pathlib import Path

from matplotlib.figure import Figure

Series = tuple[list[date], list[float]]


def _digest(title: str, series: dict[str, Series]) -> str:
    doc = {k: [[d.isoformat() for d in v[0]], v[1]] for k, v in sorted(series.items())}
    return hashlib.sha256(json.dumps([title, doc]).encode()).hexdigest()


def _stamp(path: Path) -> Path:
    return path.with_name(f".{path.name}.sha256")


def _draw_batch(jobs: Sequence[tuple[str, str, dict[str, Series], str]]) -> list[str]:
    done = []
    fig = Figure(figsize=(8, 3.6), dpi=80)
    ax = fig.subplots()
    for path_s, title, series, digest in jobs:
        ax.clear()
        many = len(series) > 1
        for label, (days, eq) in sorted(series.items()):
            ax.plot(days, eq, linewidth=0.8 if many else 1.6, label=None if many else label)
        ax.axhline(0, color="grey", linewidth=0.5)
        ax.set_title(title, fontsize=10)
        ax.set_ylabel("equity (quote)")
        ax.grid(alpha=0.3)
        fig.autofmt_xdate()
        path = Path(path_s)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.png")
        fig.savefig(tmp)
        os.replace(tmp, path)
        _stamp(path).write_text(digest)
        done.append(path_s)
    return done


def equity_charts(charts: dict[Path, tuple[str, dict[str, Series]]], workers: int | None = None) -> list[Path]:
    """Draw each ``path -> (title, {label: (days, equity)})`` whose data changed; returns the paths drawn."""
    jobs = []
    for path, (title, series) in charts.items():
        digest = _digest(title, series)
        stamp = _stamp(path)
        if path.exists() and stamp.exists() and stamp.read_text() == digest:
            continue
        jobs.append((str(path), title, series, digest))
    if not jobs:
        return []
    workers = max(1, min(workers or os.cpu_count() or 1, len(jobs) // 8 or 1))
    if workers == 1:
        return [Path(p) for p in _draw_batch(jobs)]
    batches = [jobs[i::workers] for i in range(workers)]
    # spawn, not fork: a flow run's process has threads (Prefect's log and event senders) whose locks a fork
    # would copy held
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        return [Path(p) for done in pool.map(_draw_batch, batches) for p in done]
