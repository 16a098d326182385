"""GradBench eval `det`: the determinant of an ell x ell matrix by expansion by minors along
the first row, recursively (cmpad's `det_by_minor`; `primal`), and its gradient in A.

The kernel language has no recursion, so the expansion walks the tree of minors with an
explicit stack, as the recursive version's calls would: depth d expands the minor of rows
d.. over the columns not used above it, in increasing order with alternating signs, and a
2 x 2 minor is expanded in place. Inputs and gradients are flat, row-major (GradBench's)."""
from __future__ import annotations

import numpy as np

import hpcad as ad
from hpcad.gradbench.protocol import evaluation


@ad.kernel
def det_by_minors(A):
    ell = A.shape[0]
    expansion = np.zeros(ell)      # expansion[d]: the minor of rows d.. expanded so far
    sign = np.ones(ell)            # sign[d]: the sign of the next term at depth d
    column = np.zeros(ell, dtype=np.int64)   # column[d]: the column expanded at depth d
    used = np.zeros(ell, dtype=np.int64)     # used[c]: column c belongs to a row above
    depth = 0
    column[0] = -1
    if ell == 1:
        expansion[0] = A[0, 0]
        depth = -1
    while depth >= 0:
        c = column[depth] + 1
        while c < ell and used[c] == 1:
            c += 1
        if c < ell:
            column[depth] = c
            if depth == ell - 2:
                last = 0   # the one column left for the last row
                while used[last] == 1 or last == c:
                    last += 1
                expansion[depth] += sign[depth] * A[depth, c] * A[depth + 1, last]
                sign[depth] = -sign[depth]
            else:
                used[c] = 1
                depth += 1
                column[depth] = -1
                expansion[depth] = 0.0
                sign[depth] = 1.0
        else:
            depth -= 1
            if depth >= 0:
                c = column[depth]
                used[c] = 0
                expansion[depth] += sign[depth] * A[depth, c] * expansion[depth + 1]
                sign[depth] = -sign[depth]
    return expansion[0]


def prepare(raw: dict) -> np.ndarray:
    ell = int(raw["ell"])
    return np.asarray(raw["A"], dtype=np.float64).reshape(ell, ell)


gradient_of_det = ad.grad(det_by_minors)


@evaluation(prepare=prepare, output=float)
def primal(A: np.ndarray) -> float:
    return det_by_minors(A)


@evaluation(prepare=prepare, output=lambda g: g.ravel().tolist())
def gradient(A: np.ndarray) -> np.ndarray:
    return gradient_of_det(A)


FUNCTIONS = {"primal": primal, "gradient": gradient}


def warm() -> None:
    A = np.eye(3)
    primal.run(A)
    gradient.run(A)
