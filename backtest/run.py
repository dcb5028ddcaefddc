"""Running one strategy over a tape: Python settings in, compiled engine, a ``Result`` out.

``run(strategy, params, tape, accounts, ...)`` turns decimal settings into the engine's int64 arrays
once, calls the strategy's compiled loop (``backtest.compiled.engine_for``) and wraps what it wrote.
An invalid intent stops the run with a ``BacktestError`` naming the strategy, the event (index and time)
and the intent; venue rejections (cash, margin, post-only...) are part of the result, never silent.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Literal

import numpy as np

from backtest.book import RT_FIELDS, RT_NFILLS, RT_NLOG, RT_PENDING, VOL_DAYS
from backtest.codes import (
    C_FIELDS,
    C_LATENCY_NS,
    C_PARTICIPATION_PPM,
    C_QUEUE,
    C_RECORD,
    C_SLIP_FIXED_PPM,
    C_SLIP_IMPACT_PPM,
    C_TIMER_NS,
    ERR_ACCOUNT,
    ERR_CODE,
    ERR_EVENT,
    ERR_FIELDS,
    ERR_ROW,
    ERR_WHAT,
    FILLS_FULL,
    INVALID_INTENT,
    K_FIELDS,
    MONEY_LIMIT,
    O_FIELDS,
    OVERFLOW,
    OVERFLOW_WHAT,
    QUEUE_CONSERVATIVE,
    QUEUE_OPTIMISTIC,
    T_FIELDS,
)
from backtest.compiled import engine_for
from backtest.emulation import EmulationError, Emulator
from backtest.tape import Tape
from kernels.instruments import Instrument, money_from_units, money_to_units
from strategies.api import A_CASH, A_EQUITY, A_FIELDS, EV_TS, F_FIELDS, IN_FIELDS, MAX_INTENTS
from strategies.base import Binding, Params, Strategy, bps_to_ppm, ppm

COUNTER_NAMES = ("events", "intents", "orders", "fills", "rejects", "cancels", "liquidations", "funding_events")


class BacktestError(Exception):
    """A run that cannot give a correct result: an invalid intent, bad settings."""


class BacktestOverflow(BacktestError, OverflowError):
    """Money would pass the engine's int64 bound (``backtest.codes.MONEY_LIMIT``): the run stopped, not wrapped."""


@dataclass(frozen=True)
class FeeTier:
    """From ``volume_usdt`` of traded notional over the previous 30 days, these maker/taker rates."""

    volume_usdt: Decimal | str | int
    maker: Decimal | str  # fraction: 0.001 = 0.1%
    taker: Decimal | str


@dataclass(frozen=True)
class Execution:
    """How orders meet the tape (see ``backtest.matching``)."""

    fee_tiers: tuple[FeeTier, ...] = (FeeTier(0, "0.001", "0.001"),)
    latency_ns: int = 0
    slippage_bps: Decimal | str | int = 0  # fixed, taker fills
    impact_bps: Decimal | str | int = 0  # per 100% of the event's volume taken
    participation: Decimal | str | int = 0  # max share of an event's volume per order (0: no limit)
    queue: Literal["conservative", "optimistic"] = "conservative"
    timer_ns: int | None = None  # default: the strategy's own

    def arrays(self, strategy_timer: int) -> tuple[np.ndarray, np.ndarray]:
        cfg = np.zeros(C_FIELDS, dtype=np.int64)
        if self.latency_ns < 0:
            raise BacktestError(f"latency_ns must be >= 0, not {self.latency_ns}")
        cfg[C_LATENCY_NS] = self.latency_ns
        cfg[C_SLIP_FIXED_PPM] = bps_to_ppm(Decimal(str(self.slippage_bps)), "slippage_bps")
        cfg[C_SLIP_IMPACT_PPM] = bps_to_ppm(Decimal(str(self.impact_bps)), "impact_bps")
        cfg[C_PARTICIPATION_PPM] = ppm(Decimal(str(self.participation)), "participation")
        if not 0 <= cfg[C_PARTICIPATION_PPM] <= 1_000_000 or cfg[C_SLIP_FIXED_PPM] < 0 or cfg[C_SLIP_IMPACT_PPM] < 0:
            raise BacktestError("participation must be in [0, 1]; slippage and impact must be >= 0")
        if self.queue not in ("conservative", "optimistic"):
            raise BacktestError(f"queue must be conservative or optimistic, not {self.queue!r}")
        cfg[C_QUEUE] = QUEUE_OPTIMISTIC if self.queue == "optimistic" else QUEUE_CONSERVATIVE
        cfg[C_TIMER_NS] = strategy_timer if self.timer_ns is None else self.timer_ns
        tiers = np.zeros((len(self.fee_tiers), T_FIELDS), dtype=np.int64)
        for r, t in enumerate(self.fee_tiers):
            tiers[r] = (money_to_units(str(t.volume_usdt)), ppm(Decimal(str(t.maker)), "maker"),
                        ppm(Decimal(str(t.taker)), "taker"))  # fmt: skip
        if len(tiers) == 0 or tiers[0, 0] != 0 or np.any(np.diff(tiers[:, 0]) <= 0):
            raise BacktestError("fee tiers must start at volume 0 and ascend")
        return cfg, tiers


@dataclass(frozen=True)
class Account:
    """A backtest account: its name and its starting cash (USDT)."""

    name: str
    cash: Decimal | str | int


@dataclass
class Result:
    """What a run produced. Money in int64 1e-8 USDT; ``fills`` rows of ``strategies.api.F_*``."""

    strategy: str
    accounts: tuple[str, ...]
    instruments: tuple[Instrument, ...]
    ts: np.ndarray  # (events,) ns
    fills: np.ndarray  # (n, F_FIELDS)
    equity: np.ndarray  # (events, accounts) money units, or empty when not recorded
    acc: np.ndarray  # final (accounts, A_FIELDS)
    pos: np.ndarray  # final (accounts, instruments)
    initial: np.ndarray  # (accounts,) starting cash
    counters: dict[str, int]
    intents: np.ndarray  # (n, 1 + IN_FIELDS): event index then the intent, when logged
    meta: dict = field(default_factory=dict)

    @property
    def trades(self) -> np.ndarray:
        """Executed fills only (rejections left out)."""
        return self.fills[self.fills[:, 5] > 0]

    def final_equity(self, account: int | None = None) -> Decimal:
        eq = self.acc[:, A_EQUITY]
        return money_from_units(int(eq.sum() if account is None else eq[account]))

    def fingerprint(self) -> str:
        """sha256 of everything the run produced (fills, equity curve, final state, counters)."""
        h = hashlib.sha256()
        for arr in (self.fills, self.equity, self.acc, self.pos, self.intents):
            h.update(np.ascontiguousarray(arr, dtype=np.int64).tobytes())
            h.update(str(arr.shape).encode())
        h.update(repr(sorted(self.counters.items())).encode())
        return h.hexdigest()


def _when(ts: int) -> str:
    return datetime.fromtimestamp(ts / 1e9, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _emulate(emu: Emulator, label: str, new: int, fills, orders, acc, pos, log, rt, counters, err) -> bool:
    """Events up to ``new`` done: the emulated intents they wrote taken, and what the parents and exits decide
    after event ``new - 1`` sent; False when that set the loop's ``err``."""
    try:
        if rt[RT_PENDING]:
            emu.take(orders, rt)
        return not emu.active or emu.after(new - 1, fills, orders, acc, pos, log, rt, counters, err)
    except EmulationError as exc:
        raise BacktestError(f"strategy {label!r}: emulated intent by event {new - 1}: {exc}") from None


def run(
    strategy: Strategy,
    params: dict | Params,
    tape: Tape,
    accounts: list[Account],
    *,
    name: str | None = None,
    execution: Execution | None = None,
    bind_accounts: tuple[int, ...] | None = None,
    bind_instruments: tuple[int, ...] | None = None,
    record_equity: bool = True,
    log_intents: bool = False,
    fills_capacity: int | None = None,
    order_capacity: int = 256,
    progress: Callable[[int, int], None] | None = None,
) -> Result:
    """Replay ``tape`` through one strategy instance trading ``accounts`` (engine indices 0..n-1)."""
    label = name or strategy.kind
    execution = execution or Execution()
    cfg, tiers = execution.arrays(strategy.timer_ns)
    cfg[C_RECORD] = int(record_equity)
    ba = bind_accounts if bind_accounts is not None else tuple(range(len(accounts)))
    bi = bind_instruments if bind_instruments is not None else tuple(range(len(tape.instruments)))
    binding = Binding(ba, tuple((i, tape.instruments[i]) for i in bi))
    try:
        binding.check(len(accounts), len(tape.instruments), label)
        p, s = strategy.arrays(params, binding)
    except ValueError as exc:
        raise BacktestError(f"bad strategy settings: {exc}") from exc
    n_acc = len(accounts)
    n_ev = len(tape.events)
    acc = np.zeros((n_acc, A_FIELDS), dtype=np.int64)
    initial = np.array([money_to_units(str(a.cash), f"account {a.name} cash") for a in accounts], dtype=np.int64)
    if np.any(np.abs(initial) >= MONEY_LIMIT):
        raise BacktestError(f"starting cash must be below {money_from_units(MONEY_LIMIT):,} USDT (int64 money)")
    acc[:, A_CASH] = initial
    acc[:, A_EQUITY] = initial
    cap = fills_capacity or max(1024, n_ev // 8)
    log_cap = max(1024, n_ev // 4) if log_intents else 0
    s0 = s.copy()
    cols = tape.columns
    inst = tape.inst
    run_events = engine_for(strategy)
    while True:
        s = s0.copy()
        a = acc.copy()
        pos = np.zeros((n_acc, len(tape.instruments)), dtype=np.int64)
        cost = np.zeros_like(pos)
        last = np.zeros(len(tape.instruments), dtype=np.int64)
        orders = np.zeros((order_capacity, O_FIELDS), dtype=np.int64)
        # not zeroed (tens of MB on a long tape, measured ~5% of a 2M-bar run): the loop writes every row of
        # `equity` of a completed run and the rows of `fills` and `log` below their counts, and only those are read
        fills = np.empty((cap, F_FIELDS), dtype=np.int64)
        equity = np.empty((n_ev if record_equity else 0, n_acc), dtype=np.int64)
        log = np.empty((log_cap, 1 + IN_FIELDS), dtype=np.int64)
        out = np.zeros((MAX_INTENTS, IN_FIELDS), dtype=np.int64)
        rt = np.zeros(RT_FIELDS, dtype=np.int64)
        rt[4] = -1  # RT_DAY
        vol = np.zeros((n_acc, VOL_DAYS), dtype=np.int64)
        tier = np.zeros(n_acc, dtype=np.int64)
        counters = np.zeros(K_FIELDS, dtype=np.int64)
        err = np.zeros(ERR_FIELDS, dtype=np.int64)
        eq_arg = equity if record_equity else np.zeros((1, n_acc), dtype=np.int64)
        done = 0
        step = max(n_ev // 100, 100_000) if progress else n_ev
        emu = Emulator(tape, cfg, n_acc)
        while True:  # in chunks only to report progress: the engine state carries over exactly
            # one event at a time while a parent works or an exit rule is set (backtest.emulation decides after each)
            stepping = emu.active
            end = done + 1 if stepping else min(done + step, n_ev)
            new = run_events(
                p, s, cols, inst, cfg, tiers, a, pos, cost, last, orders, fills, eq_arg, log, out, rt, vol, tier,
                counters, err, done, end,
            )  # fmt: skip
            if err[ERR_CODE] != 0:
                break
            if new > done and not _emulate(emu, label, new, fills, orders, a, pos, log, rt, counters, err):
                break
            done = new
            if done >= n_ev:
                break
            if progress and not stepping:
                progress(done, n_ev)
        if err[ERR_CODE] == FILLS_FULL:
            cap *= 4
            log_cap = log_cap * 4 if log_intents else 0
            continue
        break
    if err[ERR_CODE] == OVERFLOW:
        k = int(err[ERR_EVENT])
        who = accounts[int(err[ERR_ACCOUNT])].name
        raise BacktestOverflow(
            f"strategy {label!r}: int64 overflow at event {k} ({_when(int(tape.events[k, EV_TS]))}, {tape.where(k)}): "
            f"the {OVERFLOW_WHAT[int(err[ERR_WHAT])]} of account {who!r} would pass {MONEY_LIMIT:,} money units "
            f"({money_from_units(MONEY_LIMIT):,} USDT), past which int64 money wraps; the run stopped there "
            "(size positions so they do not compound without bound, e.g. sma_cross order_usdt)"
        )
    if err[ERR_CODE] != 0:
        k = int(err[ERR_EVENT])
        row = int(err[ERR_ROW])
        what = INVALID_INTENT.get(int(err[ERR_CODE]), f"code {int(err[ERR_CODE])}")
        intent = dict(zip(("account", "instrument", "side", "type", "price", "qty", "flags", "tag"),
                          (int(x) for x in out[min(row, MAX_INTENTS - 1)]), strict=True))  # fmt: skip
        raise BacktestError(
            f"strategy {label!r} wrote an invalid intent at event {k} ({_when(int(tape.events[k, EV_TS]))}, "
            f"{tape.where(k)}): row {row} {intent}: {what}"
        )
    if progress:
        progress(n_ev, n_ev)
    return Result(
        strategy=label,
        accounts=tuple(x.name for x in accounts),
        instruments=tuple(tape.instruments),
        ts=tape.events[:, EV_TS],
        fills=fills[: rt[RT_NFILLS]].copy(),
        equity=equity,
        acc=a,
        pos=pos,
        initial=initial,
        counters={n: int(v) for n, v in zip(COUNTER_NAMES, counters, strict=True)},
        intents=log[: rt[RT_NLOG]].copy(),
        meta={"params": p, "state": s, **({"emulation": emu.summary()} if emu.parents or emu.rules else {})},
    )
