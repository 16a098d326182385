"""What numba lacks, written as llvmlite intrinsics: an atomic float add into an array
element (the race-free form of an adjoint accumulation that several threads may hit), a
float add that LLVM may reassociate (the update of a sum that may be taken in any order:
LLVM vectorizes such a sum, while every other instruction keeps IEEE order), and a fence
that keeps numba's parfor pass from moving statements across a parallel loop."""
from __future__ import annotations

from numba import types
from numba.core import cgutils
from numba.extending import intrinsic


@intrinsic
def atomic_add(typingctx, array, index, value):
    """array[index] += value as one `atomicrmw fadd` (index an integer or a tuple)."""
    if not isinstance(array, types.Array) or not isinstance(array.dtype, types.Float):
        return None
    indices = list(index) if isinstance(index, types.BaseTuple) else [index]
    if len(indices) != array.ndim or not all(isinstance(t, types.Integer) for t in indices):
        return None

    def codegen(context, builder, sig, args):
        aryty, idxty, valty = sig.args
        ary = context.make_array(aryty)(context, builder, args[0])
        if isinstance(idxty, types.BaseTuple):
            raw = cgutils.unpack_tuple(builder, args[1], count=len(idxty))
            kinds = list(idxty)
        else:
            raw, kinds = [args[1]], [idxty]
        idx = [context.cast(builder, v, t, types.intp) for v, t in zip(raw, kinds, strict=True)]
        ptr = cgutils.get_item_pointer(context, builder, aryty, ary, idx, wraparound=True,
                                       boundscheck=context.enable_boundscheck)
        val = context.cast(builder, args[2], valty, aryty.dtype)
        builder.atomic_rmw("fadd", ptr, val, "monotonic")
        return context.get_dummy_value()

    return types.none(array, index, value), codegen


@intrinsic
def add_any_order(typingctx, a, b):
    """a + b as an `fadd reassoc`."""
    if not (isinstance(a, types.Float) and a == b):
        return None

    def codegen(context, builder, sig, args):
        return builder.fadd(args[0], args[1], flags=("reassoc",))

    return a(a, b), codegen


__all__ = ["add_any_order", "atomic_add"]


@intrinsic
def parallel_fence(typingctx):
    """Nothing at run time; written after every parallel loop (backend/numba/parallel.py).
    numba's parfor pass moves a parallel loop down past the statements after it that it
    believes independent of the loop (to fuse it with the next one), judging by the loop
    body's item stores only: a call in the body that writes an array (an outlined chunk, an
    atomic add) is invisible to it, so `out[0]` read after the loop was read before it (a
    stale value), and two loops could be fused. A call numba does not know is a side effect
    that nothing moves across."""
    def codegen(context, builder, sig, args):
        return context.get_dummy_value()
    return types.none(), codegen
