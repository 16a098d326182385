"""Buffer sizes in generated code, computed without overflow: the tape and the snapshot arena
are sized from loop trip counts and array dimensions that the caller controls, and an int64
product that wraps around would allocate a short buffer which the kernel then writes past.
`buffer_size` counts len(range(...)) of each extent exactly (in unsigned arithmetic) and
raises a MemoryError (hpcad's BufferMemoryError) with the buffer's number in its module's
_BUFFERS and the counts when their product, in bytes, would not fit in an int64; the caller
of the compiled code puts the buffer's text in place of its number (backend/numba)."""
from __future__ import annotations

import numpy as np
from numba import njit
from numba.extending import overload

from ...errors import BufferMemoryError

_MAX_BYTES = np.uint64(2**63 - 1)


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


def buffer_size(extents, itemsize, what):
    """The product of len(range(lb, ub, step)) over extents ((lb, ub, step) each): the
    entries a buffer of `itemsize`-byte elements needs. A BufferMemoryError with `what`
    (the buffer's number in _BUFFERS: its text names the kernel's file:line) and the counts
    when the bytes pass 2**63 - 1. Compiled code only (_buffer_size)."""
    raise TypeError("buffer_size is called from numba-compiled code only")


@overload(buffer_size, jit_options={"nogil": True})
def _buffer_size(extents, itemsize, what):
    """buffer_size in compiled code. An overload, which numba compiles for the arguments'
    plain types (an njit function is compiled again for each call's literal arguments,
    each message and constant bound: that was most of a derivative's compile time): once
    per number of extents in a process."""
    def impl(extents, itemsize, what):
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
    return impl
