"""`oms backtest`: run a strategy over archived market data, show progress and the metrics, write the report."""

from __future__ import annotations

import argparse
from decimal import Decimal
from pathlib import Path

from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from backtest.data import DataError, load_binance, load_dataset_bars
from backtest.metrics import metrics
from backtest.report import DEFAULT_ROOT, write_report
from backtest.run import Account, BacktestError, Execution, FeeTier, run
from backtest.tape import Venue
from kernels.instruments import Instrument, InstrumentSpec
from oms.archive.market import DEFAULT_ARCHIVE, DEFAULT_DATASETS
from oms.cli.common import CommandError, add_config_option, config_from, console
from strategies.registry import BUILTINS, configured, get

SINGLE = ("sma_cross", "market_making", "template")
PERCENT = {"total_return", "annual_return", "max_drawdown", "win_rate", "exposure"}


def _params(pairs: list[str]) -> dict[str, str]:
    out = {}
    for p in pairs:
        key, sep, value = p.partition("=")
        if not sep or not key:
            raise CommandError(f"--param {p!r}: expected key=value")
        out[key] = value
    return out


def _resolve(args: argparse.Namespace) -> tuple[str, str, dict, str]:
    """(label, kind, params, market) from --strategy (configs/strategies.yaml) or --kind."""
    if args.strategy:
        cfg = config_from(args)
        strategies, problems = configured(cfg)
        if problems:
            raise CommandError("strategy parameters are invalid:\n" + "\n".join(f"  {p}" for p in problems))
        if args.strategy not in strategies:
            raise CommandError(f"no strategy {args.strategy!r} in strategies.yaml (have: {', '.join(strategies)})")
        strategy, params = strategies[args.strategy]
        merged = {**params.model_dump(exclude_none=True), **_params(args.param)}
        return args.strategy, strategy.kind, merged, cfg.strategies[args.strategy].market
    return args.kind, args.kind, _params(args.param), args.market


def _tape(args: argparse.Namespace, market: str):
    # the datasets quote 0.01 USD: the perp keeps Binance's 0.001 BTC lot and that price unit
    tick = "0.01"
    spec = InstrumentSpec(args.symbol, "perp" if market == "usdm" else "spot", tick_size=tick,
                          step_size="0.001" if market == "usdm" else "0.00001")  # fmt: skip
    ins = Instrument(spec)
    venue = Venue(leverage=args.leverage)
    try:
        if args.data:
            tape, report = load_binance(args.data, args.data_kind, ins, interval=args.interval, venue=venue,
                                        repair=args.repair)  # fmt: skip
            for issue in report.issues + report.gaps:
                console.print(f"[yellow]repaired:[/] {issue}", markup=True)
            return tape
        return load_dataset_bars(args.symbol, ins, args.interval, archive=Path(args.archive),
                                 datasets=Path(args.datasets), venue=venue)  # fmt: skip
    except (DataError, FileNotFoundError, ValueError) as exc:
        raise CommandError(f"market data: {exc}") from exc


def _table(title: str, columns: dict[str, dict[str, float]]) -> Table:
    table = Table(title=title)
    table.add_column("metric")
    for name in columns:
        table.add_column(name, justify="right")
    for key in next(iter(columns.values())):
        cells = []
        for values in columns.values():
            v = values[key]
            cells.append(f"{v * 100:,.2f}%" if key in PERCENT else (f"{v:,}" if isinstance(v, int) else f"{v:,.4f}"))
        table.add_row(key, *cells)
    return table


def run_backtest(args: argparse.Namespace) -> int:
    if not args.strategy and not args.kind:
        raise CommandError("name a configured --strategy or a built-in --kind")
    label, kind, params, market = _resolve(args)
    if kind not in SINGLE:
        raise CommandError(f"kind {kind!r} trades two instruments: run it from Python (backtest.portfolio)")
    strategy = get(kind)
    tape = _tape(args, market)
    execution = Execution(
        fee_tiers=(FeeTier(0, args.maker_fee if args.maker_fee is not None else args.fee, args.fee),),
        latency_ns=int(Decimal(args.latency_ms) * 1_000_000),
        slippage_bps=args.slippage_bps,
        participation=args.participation,
        queue=args.queue,
    )
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed:,}/{task.total:,} events"),
                  TimeRemainingColumn(), console=console, transient=True) as bar:  # fmt: skip
        task = bar.add_task(f"{label} ({kind})", total=len(tape))
        try:
            result = run(strategy, params, tape, [Account(args.account, args.cash)], name=label, execution=execution,
                         progress=lambda done, total: bar.update(task, completed=done))  # fmt: skip
        except BacktestError as exc:
            raise CommandError(str(exc)) from exc
    settings = {"kind": kind, "params": {k: str(v) for k, v in params.items()}, "symbol": args.symbol,
                "market": market, "cash": str(args.cash), "fee": str(args.fee)}  # fmt: skip
    out = write_report(result, Path(args.out), args.run_id, settings)
    console.print(_table(f"{label}: {len(tape):,} events, {result.counters['fills']:,} fills",
                         {args.account: metrics(result, 0)}))  # fmt: skip
    console.print(f"report: {out}  fingerprint: {result.fingerprint()[:16]}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "backtest",
        help="backtest a strategy over archived market data",
        description="Replay the archive (or a Binance public-archive file) through a strategy; prints the metrics "
        f"and writes reports/backtests/RUN_ID/. Built-in kinds: {', '.join(sorted(BUILTINS))}.",
    )
    add_config_option(p)
    p.add_argument("--strategy", help="a strategy of configs/strategies.yaml")
    p.add_argument("--kind", choices=sorted(BUILTINS), help="a built-in kind instead (with --param)")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE", help="strategy parameter")
    p.add_argument("--market", choices=("spot", "usdm"), default="spot", help="with --kind (default spot)")
    p.add_argument("--symbol", default="BTCUSDT")
    p.add_argument("--interval", default="1h")
    p.add_argument("--data", help="a Binance public-archive CSV or zip instead of the archive")
    p.add_argument("--data-kind", choices=("klines", "aggTrades", "trades"), default="klines")
    p.add_argument("--repair", action="store_true", help="drop bad rows, sort, accept gaps (all reported)")
    p.add_argument("--archive", default=str(DEFAULT_ARCHIVE))
    p.add_argument("--datasets", default=str(DEFAULT_DATASETS))
    p.add_argument("--account", default="backtest")
    p.add_argument("--cash", default="100000", help="starting USDT")
    p.add_argument("--fee", default="0.001", help="taker fee (0.001 = 0.1%%)")
    p.add_argument("--maker-fee", default=None, help="maker fee (default: the taker fee)")
    p.add_argument("--slippage-bps", default="0")
    p.add_argument("--latency-ms", default="0")
    p.add_argument("--participation", default="0", help="max share of a bar's volume per fill (0: no limit)")
    p.add_argument("--queue", choices=("conservative", "optimistic"), default="conservative")
    p.add_argument("--leverage", type=int, default=1, help="perps")
    p.add_argument("--out", default=str(DEFAULT_ROOT), help="reports folder")
    p.add_argument("--run-id", default=None, help="folder name (default: STRATEGY-FINGERPRINT)")
    p.set_defaults(func=run_backtest)
