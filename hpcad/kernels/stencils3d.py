"""Stencils over loop nests deeper than the 1-D and 2-D ones: a 3-D 7-point heat step with two
buffers swapped each step, and a 2-D step of two coupled fields, each updated from a stencil
of both. Used by the benchmarks (benchmarks/heat3d.py, benchmarks/coupled.py) and the tests
of the affine loop-nest layer (passes/affine.py)."""
from __future__ import annotations

import hpcad as ad


@ad.kernel
def heat3d(u, v, nsteps):
    """nsteps explicit 7-point heat steps (u and v swapped each step); the final state's
    squared norm."""
    n, m, p = u.shape
    for _step in range(nsteps):
        for i in range(1, n - 1):
            for j in range(1, m - 1):
                for k in range(1, p - 1):
                    v[i, j, k] = u[i, j, k] + 0.1 * (
                        u[i - 1, j, k] + u[i + 1, j, k] + u[i, j - 1, k] + u[i, j + 1, k]
                        + u[i, j, k - 1] + u[i, j, k + 1] - 6.0 * u[i, j, k])
        u, v = v, u
    s = 0.0
    for i in range(n):
        for j in range(m):
            for k in range(p):
                s += u[i, j, k] * u[i, j, k]
    return s


@ad.kernel
def coupled(u, v, un, vn, nsteps):
    """nsteps steps of two fields, each updated from a stencil of both (u, un and v, vn
    swapped each step); the final states' squared norms."""
    n, m = u.shape
    for _step in range(nsteps):
        for i in range(1, n - 1):
            for j in range(1, m - 1):
                un[i, j] = u[i, j] + 0.1 * (u[i - 1, j] + u[i + 1, j] + u[i, j - 1]
                                            + u[i, j + 1] - 4.0 * u[i, j]) \
                    + 0.05 * (v[i, j + 1] - v[i, j - 1])
                vn[i, j] = v[i, j] + 0.1 * (v[i - 1, j] + v[i + 1, j] + v[i, j - 1]
                                            + v[i, j + 1] - 4.0 * v[i, j]) \
                    - 0.05 * (u[i + 1, j] - u[i - 1, j])
        u, un = un, u
        v, vn = vn, v
    s = 0.0
    for i in range(n):
        for j in range(m):
            s += u[i, j] * u[i, j] + v[i, j] * v[i, j]
    return s
