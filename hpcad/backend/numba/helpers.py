"""The numba functions every generated module calls: buffer sizes (computed without overflow),
and the allocation and growth of tape, snapshot and scratch buffers. They are the same for
every kernel, so they are compiled once per machine, not once per process: each keeps
numba's machine code for the signatures it was compiled for in a verified entry of hpcad's
disk cache of its own (numba_cache.HelperCache), which a fresh process loads instead of
typing and lowering them again (they were most of a small derivative's cold compile). They
are called from compiled code only (no Python wrapper).

Buffer sizes: the tape and the snapshot arena are sized from loop trip counts and array
dimensions that the caller controls, and an int64 product that wraps around would allocate
a short buffer which the kernel then writes past. `buffer_size` counts len(range(...)) of
each extent exactly (in unsigned arithmetic) and raises a MemoryError (hpcad's
BufferMemoryError) with the buffer's number in its module's _BUFFERS and the counts when
their product, in bytes, would not fit in an int64; the caller of the compiled code puts the
buffer's text in place of its number (backend/numba)."""
from __future__ import annotations

import numpy as np
from numba import njit, types
from numba.core.registry import CPUDispatcher

from ...errors import BufferMemoryError
from .numba_cache import HelperCache

OPTIONS = dict(nopython=True, error_model="numpy", nogil=True, no_cfunc_wrapper=True,
               no_cpython_wrapper=True)
_MAX_BYTES = np.uint64(2**63 - 1)


class _Helper(CPUDispatcher):
    """A helper's dispatcher: compiled for its arguments' plain types (numba would compile
    a function again for each call's constants, which it types as literals), its machine
    code kept in hpcad's cache (HelperCache)."""

    def get_call_template(self, args, kws):
        return super().get_call_template(tuple(types.unliteral(a) for a in args), kws)


def helper(py_func) -> _Helper:
    """py_func compiled as a helper (no Python wrapper: generated code calls it)."""
    compiled = _Helper(py_func, targetoptions=dict(OPTIONS))
    compiled._cache = HelperCache(py_func, __file__)
    return compiled


@njit(nogil=True, inline="always")
def _count(lb, ub, step) -> np.uint64:
    """len(range(lb, ub, step)), exact for any int64 bounds (ub - lb may not fit an int64)."""
    if step > 0:
        if ub <= lb:
            return np.uint64(0)
        return (np.uint64(ub) - np.uint64(lb) - np.uint64(1)) // np.uint64(step) + np.uint64(1)
    if lb <= ub:
        return np.uint64(0)
    stride = np.uint64(0) - np.uint64(step)
    return (np.uint64(lb) - np.uint64(ub) - np.uint64(1)) // stride + np.uint64(1)


@helper
def buffer_size(extents, itemsize, what):
    """The product of len(range(lb, ub, step)) over extents ((lb, ub, step) each): the
    entries a buffer of `itemsize`-byte elements needs. A BufferMemoryError with `what`
    (the buffer's number in _BUFFERS: its text names the kernel's file:line) and the counts
    when the bytes pass 2**63 - 1. Generated code passes a fixed number of extents
    (tape.EXTENTS_PER_CALL, padded with one-trip ranges) and plain integers: one
    signature."""
    limit = _MAX_BYTES // np.uint64(itemsize)
    size = np.uint64(1)
    overflows = False
    for lb, ub, step in extents:
        n = _count(lb, ub, step)
        if n == 0:
            return 0
        overflows = overflows or size > limit // n
        size = size * n
    if overflows:
        raise BufferMemoryError(what, itemsize, extents)
    return np.int64(size)


@helper
def empty(shape, dtype):
    """np.empty(shape, dtype): a buffer (shape an int) or a scratch array (a tuple)."""
    return np.empty(shape, dtype)


@helper
def zeros(shape, dtype):
    """np.zeros(shape, dtype)."""
    return np.zeros(shape, dtype)


@helper
def inferred_extent(size, extents):
    """The extent NumPy's reshape infers for the one negative entry of `extents` (-1): `size`
    over the product of the others; -1 where there is none to infer (no negative entry or
    two, a zero extent beside it, a size the others do not divide), which numba's reshape
    then refuses as NumPy's does. Generated code passes each reshape's extents through it
    (mem.reshape): numba's parallel array analysis takes `a.reshape((-1,))`'s tuple as the
    result's shape, -1 included, and then sizes slices of the result wrongly
    (`a.reshape((-1,))[12:36].shape[0]` came out 1)."""
    known = 1
    negative = 0
    for d in extents:
        if d < 0:
            negative += 1
        else:
            known *= d
    if negative != 1 or known == 0 or size % known != 0:
        return -1
    return size // known


@helper
def grow(buf, needed):
    """A larger copy of a tape buffer (for loops whose trip count is only known at run time);
    copied element by element: a slice assignment (`new[:n] = buf`) makes numba compile its
    shape-mismatch message, string formatting that took over a second of the first such
    derivative's compile in each process."""
    new = np.empty(max(2 * buf.shape[0], needed, 64), buf.dtype)
    for k in range(buf.shape[0]):
        new[k] = buf[k]
    return new
