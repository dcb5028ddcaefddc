"""The garbage collector's settings for the daemon process, applied once it has started and is trading.

``gc.freeze()`` moves everything allocated by the start (modules, configs, compiled kernels' wrappers, the
reconciled state) out of the collector's sight, so a collection no longer walks it; the higher young-generation
threshold makes collections rarer. Reference cycles are still collected, only less often. The model's messages
and the gateway's order records are not tracked at all (``gc=False`` structs), which is what keeps collections
cheap while tens of thousands of orders are live (tests/bench/test_gateway_bench.py runs with the collector on).
"""

from __future__ import annotations

import gc

GC_THRESHOLDS = (50_000, 20, 100)  # young generation: collect after this many net allocations (default 700)


def tune_gc() -> tuple[int, ...]:
    """Collect, freeze what survived and raise the thresholds; returns the thresholds it replaced."""
    old = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    return old
