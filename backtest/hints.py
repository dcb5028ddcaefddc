"""Hints for the compiled engine: ``prefetch(arr, i, j)`` asks the CPU to load ``arr[i, j]``'s line; ``assume(c)``.

The engine streams four fields of the (field, event) tape per event (time, kind, instrument, close); the
matching fields (open time, open, high, low, volume) are read only on events where orders are open, one
event in tens on a trend follower, so the hardware prefetcher never sees them and each read is a cache
(and TLB) miss: measured on the 2M-bar tape, about 65% of the matcher's time. The loop asks for them one
event ahead instead (``backtest.engine``). A hint: it never faults and changes no result.
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic


@intrinsic
def prefetch(typingctx, arr, i, j):
    """Prefetch ``arr[i, j]`` (a 2-d array, in-range indices) into every cache level for reading."""
    sig = types.void(arr, i, j)

    def codegen(context, builder, signature, args):
        aryty, ity, jty = signature.args
        ary = context.make_array(aryty)(context, builder, args[0])
        idx = [context.cast(builder, args[1], ity, types.intp), context.cast(builder, args[2], jty, types.intp)]
        ptr = cgutils.get_item_pointer(context, builder, aryty, ary, idx, wraparound=False, boundscheck=False)
        i8p = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]), "llvm.prefetch.p0"
        )
        builder.call(fn, [builder.bitcast(ptr, i8p), i32(0), i32(3), i32(1)])  # read, keep in all levels, data
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def assume(typingctx, cond):
    """Tell LLVM that ``cond`` holds here (``llvm.assume``): no code, and a false ``cond`` is undefined behaviour.

    The engine says ``assume(k >= 0)`` for its event index, which is never negative: Numba then drops the
    negative-index wrap-around (a compare and a select) from every ``events[f, k]`` and ``equity[k, a]``.
    Measured on the 2M-bar tape (best of 5, 3 rounds): 20.0-21.7 ms CPU with it, 20.7-22.5 ms without, so
    within noise there; the quiet inner loop (``backtest.engine``) is what took the run from 26 ms.
    """
    sig = types.void(cond)

    def codegen(context, builder, signature, args):
        bit = context.cast(builder, args[0], signature.args[0], types.boolean)
        if bit.type != ir.IntType(1):
            bit = builder.icmp_unsigned("!=", bit, ir.Constant(bit.type, 0))
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [ir.IntType(1)]), "llvm.assume"
        )
        builder.call(fn, [bit])
        return context.get_dummy_value()

    return sig, codegen
