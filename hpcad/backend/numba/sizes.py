"""Buffer sizes in generated code, computed without overflow: the tape and the snapshot arena
are sized from loop trip counts and array dimensions that the caller controls, and an int64
product that wraps around would allocate a short buffer which the kernel then writes past.
`buffer_size` counts len(range(...)) of each extent exactly (in unsigned arithmetic) and
raises a MemoryError naming the buffer and the counts when their product, in bytes, would
not fit in an int64."""
from __future__ import annotations

import numpy as np
from numba import njit

_MAX_BYTES = np.uint64(2**63 - 1)


@njit(cache=True, nogil=True, inline="always")
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


@njit(cache=True, nogil=True)
def buffer_size(extents, itemsize, what):
    """The product of len(range(lb, ub, step)) over extents ((lb, ub, step) each): the
    entries a buffer of `itemsize`-byte elements needs. A MemoryError saying `what` (the
    buffer and its kernel's file:line) and the counts when the bytes pass 2**63 - 1."""
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
        _too_large(extents, itemsize, what)
    return np.int64(size)


@njit(cache=True, nogil=True)
def _too_large(extents, itemsize, what):
    counts = ""
    for lb, ub, step in extents:
        counts += (" x " if counts else "") + str(_count(lb, ub, step))
    raise MemoryError(what + " " + counts + " entries of " + str(itemsize) + " bytes, more "
                      "than 2**63 bytes: a loop's bounds are far larger than its iterations, "
                      "or wrong (run with backend='interp' to check)")
