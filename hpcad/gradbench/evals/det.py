"""GradBench eval `det`: the determinant of an ell x ell matrix by expansion by minors along
the first row, recursively (cmpad's `det_by_minor`; `primal`), and its gradient in A.

The kernel language has no recursion, so the expansion walks the tree of minors with an
explicit stack, as the recursive version's calls would: depth d expands the minor of rows
d.. over the columns not used above it, in increasing order with alternating signs, and a
3 x 3 minor is written out (the same products as the recursion's last levels without their
stack traffic: the reverse sweep tapes a sixth of the steps). Inputs and gradients are flat,
row-major (GradBench's)."""
from __future__ import annotations

import numpy as np

import hpcad as ad
from hpcad.gradbench.protocol import evaluation


@ad.kernel
def det3(A, r: int, c0: int, c1: int, c2: int):
    """The 3 x 3 minor of rows r, r+1, r+2 and columns c0 < c1 < c2, expanded along row r."""
    return (A[r, c0] * (A[r + 1, c1] * A[r + 2, c2] - A[r + 1, c2] * A[r + 2, c1])
            - A[r, c1] * (A[r + 1, c0] * A[r + 2, c2] - A[r + 1, c2] * A[r + 2, c0])
            + A[r, c2] * (A[r + 1, c0] * A[r + 2, c1] - A[r + 1, c1] * A[r + 2, c0]))


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
    elif ell == 2:
        expansion[0] = A[0, 0] * A[1, 1] - A[0, 1] * A[1, 0]
        depth = -1
    elif ell == 3:
        expansion[0] = det3(A, 0, 0, 1, 2)
        depth = -1
    while depth >= 0:
        c = column[depth] + 1
        while c < ell and used[c] == 1:
            c += 1
        if c < ell:
            column[depth] = c
            if depth == ell - 4:
                c0 = 0   # the three columns left for the last three rows
                while used[c0] == 1 or c0 == c:
                    c0 += 1
                c1 = c0 + 1
                while used[c1] == 1 or c1 == c:
                    c1 += 1
                c2 = c1 + 1
                while used[c2] == 1 or c2 == c:
                    c2 += 1
                expansion[depth] += sign[depth] * A[depth, c] * det3(A, depth + 1, c0, c1, c2)
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
