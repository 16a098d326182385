"""Batched derivatives of parallel kernels (prange, reductions, fork-join): each lane of a
width-W forward or reverse call equals its own unbatched call (tests/ad/width_check.py), on
both backends; the numba code runs on several threads (per-thread rows of vectors, vector
sum reductions)."""
import numpy as np
import pytest

from tests.ad.harness import ALL_KERNELS, BACKENDS, SLOW
from tests.ad.width_check import check_forward, check_reverse
from tests.parallel.par_kernels import CASES

WIDE = ("heat_prange", "sum_reduction", "join_two", "stencil2d_inner")
# numba compiles these at W=1 and W=3: together they run every line of the numba backend's lane
# code generation that all the cases run at W=3 (`python -m tests.numba_cover
# tests.parallel.par_kernels:CASES --widths 3`): vector sum and min reductions (sum_reduction,
# min_reduction), lane ops in tasks (join_outputs), a sum beside lanes through an `if` whose
# `else` only passes them on (cutoff_pairs: numba's parfor pass failed on it, "unexpected cycle in
# lookup()", until codegen.scf_if assigned the numbers such a branch passes before the `if`).
# Lanes over a time loop around prange (heat_prange, at W=8 below) and a second join (join_two)
# generate nothing at W=1 and W=3 that these and the lane cases of tests/ad/test_width.py and
# tests/ad/test_linalg.py do not (numba_cover --widths 1 3 --only derivatives over the three
# files' cases). What the others add (integer-op guards and steps in a prange: stencil2d_inner,
# red_black_rows, flattened2d; max; math.tanh) is not lane code, and compiles in
# test_parallel_derivatives.py. The source at W=8 differs from W=3's only in the sizes it
# allocates: numba runs heat_prange at W=8 (HPCAD_ALL_KERNELS=1: every case on numba at every
# width).
ON_NUMBA = ("sum_reduction", "min_reduction", "join_outputs", "cutoff_pairs")
NUMBA_W8 = ("heat_prange",)


def _runs():
    """Every case at W=3 on the interpreter, the WIDE cases at every width; numba (a parallel
    compile per width and mode) as ON_NUMBA and NUMBA_W8 say. The fast tier keeps the WIDE
    cases at W=3 on the interpreter (numba at width runs in tests/ad/test_width.py's fast
    tier)."""
    for case in CASES:
        for width in (1, 3, 8):
            for backend in BACKENDS:
                if backend == "numba":
                    run = ALL_KERNELS or case.name in (NUMBA_W8 if width == 8 else ON_NUMBA)
                else:
                    run = case.name in WIDE or width == 3
                if run:
                    fast = width == 3 and backend == "interp" and case.name in WIDE
                    yield pytest.param(case, width, backend,
                                       id=f"{case.name}-W{width}-{backend}",
                                       marks=() if fast else SLOW)


@pytest.mark.parametrize("case,width,backend", list(_runs()))
def test_batched_parallel_kernel_equals_separate_calls(case, width, backend):
    rng = np.random.default_rng(len(case.name) * 7919 + width)
    args = case.make_args(rng)
    check_forward(case.kernel, args, width, backend, rng)
    check_reverse(case.kernel, args, width, backend, rng)
