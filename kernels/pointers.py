"""Raw element pointers into Numba arrays, for the kernels' innermost loops.

``item_pointer(arr, (i0, i1, ...))`` is the address of ``arr[i0, i1, ...]`` as a typed pointer: ``p[j]`` reads
and ``p[j] = v`` writes ``arr[i0, ..., j]`` when the last axis is contiguous. No bounds or negative-index
handling: the caller keeps indices inside the array, and uses the pointer only while the array is alive (within
the compiled call that received it).

Why: an array passed to a compiled helper costs an ``NRT_incref``/``NRT_decref`` call pair per call, which
Numba's reference-count pruning leaves in branchy code; a pointer is a plain value. In ``kernels.book``'s level
update those calls were a large part of the cost of a depth diff's levels.
"""

from __future__ import annotations

from numba import types
from numba.core import cgutils
from numba.extending import intrinsic


@intrinsic
def item_pointer(typingctx, arr, idx):
    """The address of ``arr[idx]`` (``idx``: a tuple of one integer per axis)."""
    if not isinstance(arr, types.Array) or not isinstance(idx, types.BaseTuple) or len(idx) != arr.ndim:
        return None
    if not all(isinstance(t, types.Integer) for t in idx):
        return None
    sig = types.CPointer(arr.dtype)(arr, idx)

    def codegen(context, builder, signature, args):
        aryty, idxty = signature.args
        ary = context.make_array(aryty)(context, builder, args[0])
        inds = cgutils.unpack_tuple(builder, args[1], count=len(idxty))
        inds = [context.cast(builder, v, t, types.intp) for v, t in zip(inds, idxty, strict=True)]
        return cgutils.get_item_pointer(context, builder, aryty, ary, inds, wraparound=False, boundscheck=False)

    return sig, codegen
