"""One compiled engine loop per strategy: built once per process, cached on disk by Numba across processes.

``backtest.engine.loop`` is plain Python that calls ``on_market``, ``on_fill`` and ``on_timer`` as
globals. ``engine_for(strategy)`` makes a new function over the same code whose globals bind them to the
strategy's callbacks (inlined) and compiles it with ``njit(cache=True)``. Numba then calls the callbacks
directly (no dispatcher in the signature), and its cache finds the loop again in the next process: a run that
compiled for several seconds the first time loads in a fraction of a second afterwards
(tests/backtest/test_engine_cache.py; figures in README, "Strategies and backtests").

Numba's cache checks only the stamp of the file that defines the function, not the functions it calls.
So the loop's name carries a digest of every source it depends on (the engine's modules, the kernels, the
strategy API, the strategy's own file) and of the Numba version: change any of them and the loop is a new
entry, never a stale one. A strategy whose callbacks have no source file (built in a REPL) is compiled
once per process without the disk cache.
"""

from __future__ import annotations

import hashlib
import inspect
import re
import threading
import types
from pathlib import Path
from typing import Any

import numba
from numba import njit
from numba.core.compiler import Compiler

from backtest import engine
from strategies.base import Strategy

_ROOT = Path(__file__).resolve().parents[1]
_DEPENDS = ("backtest/*.py", "kernels/*.py", "strategies/api.py", "strategies/base.py")
_ENGINES: dict[tuple[Any, Any, Any], Any] = {}
_LOCK = threading.Lock()  # one dispatcher per strategy even when threads ask at once (a warm-up and a run)


class NoAliasCompiler(Compiler):
    """Numba's pipeline, telling LLVM that the loop's array arguments never overlap (``noalias``).

    Every engine array is int64, so without this LLVM must assume a store into ``state`` or ``acc`` may
    change ``params``, ``events`` or ``inst`` and reload them after each one; with it, loop-invariant reads are
    hoisted and values stay in registers across the strategy's stores. ``backtest.run`` passes arrays it
    allocated separately (never views of one another), which is what makes the promise true.
    """

    def define_pipelines(self):
        self.state.flags.noalias = True
        return super().define_pipelines()


def _sources_digest() -> hashlib._Hash:
    h = hashlib.sha256(numba.__version__.encode())
    for pattern in _DEPENDS:
        for path in sorted(_ROOT.glob(pattern)):
            h.update(path.name.encode())
            h.update(path.read_bytes())
    return h


def _digest(callbacks: tuple[Any, Any, Any]) -> str | None:
    """Digest of everything the compiled loop depends on, or None when a callback has no source file."""
    h = _sources_digest()
    for fn in callbacks:
        py = fn.py_func
        h.update(f"{py.__module__}.{py.__qualname__}".encode())
        try:
            h.update(Path(inspect.getfile(py)).read_bytes())
        except (OSError, TypeError):
            return None
    return h.hexdigest()[:16]


def engine_for(strategy: Strategy) -> Any:
    """The compiled loop for ``strategy``'s callbacks (same arguments as ``backtest.engine.loop``)."""
    key = (strategy.on_market, strategy.on_fill, strategy.on_timer)
    found = _ENGINES.get(key)
    if found is not None:
        return found
    with _LOCK:
        found = _ENGINES.get(key)
        return found if found is not None else _build(strategy, key)


def _build(strategy: Strategy, key: tuple[Any, Any, Any]) -> Any:
    digest = _digest(key)
    scope = dict(vars(engine))
    # inlined into the loop at Numba's IR level, so LLVM optimises the strategy and the engine as one function:
    # measured (CPU time, SMA cross on 200k bars) 15-20 M bars/s called, 33 M inlined
    for name in ("on_market", "on_fill", "on_timer"):
        scope[name] = njit(inline="always", nogil=True, _nrt=False)(getattr(strategy, name).py_func)
    template = engine.loop
    fn = types.FunctionType(template.__code__, scope, template.__name__, template.__defaults__)
    kind = re.sub(r"\W", "_", strategy.kind)
    fn.__qualname__ = f"loop_{kind}_{digest or 'nocache'}"
    fn.__doc__ = template.__doc__
    compiled = njit(cache=digest is not None, nogil=True, _nrt=False, pipeline_class=NoAliasCompiler)(fn)
    _ENGINES[key] = compiled
    return compiled


_I1 = numba.types.Array(numba.int64, 1, "C")
_I2 = numba.types.Array(numba.int64, 2, "C")
# The argument types ``backtest.run.run`` passes the loop, in order: params, state, events (columns), inst, cfg,
# tiers, acc, pos, cost, last, orders, fills, equity, log, out, rt, vol, tier, counters, err, start, end
# (tests/backtest/test_engine_cache.py checks that a run uses exactly these).
SIGNATURE = (_I1, _I1, _I2, _I2, _I1, _I2, _I2, _I2, _I2, _I1, _I2, _I2, _I2, _I2, _I2, _I1, _I2, _I1, _I1, _I1,
             numba.int64, numba.int64)  # fmt: skip


def warm(strategy: Strategy) -> None:
    """Load ``strategy``'s loop for ``SIGNATURE`` now (from Numba's cache, or compile it), not at the first run.

    A sweep's worker process does this while the flow still loads the tape (``flows.backtest_sweep``).
    """
    engine_for(strategy).compile(SIGNATURE)
