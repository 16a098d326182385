"""Batched derivatives of parallel kernels (prange, reductions, fork-join): each lane of a
width-W forward or reverse call equals its own unbatched call (tests/ad/width_check.py), on
both backends; the numba code runs on several threads (per-thread rows of vectors, vector
sum reductions)."""
import numpy as np
import pytest

from tests.ad.harness import BACKENDS, SLOW
from tests.ad.width_check import check_forward, check_reverse
from tests.parallel.par_kernels import CASES

WIDE = ("heat_prange", "sum_reduction", "join_two", "stencil2d_inner")


def _runs():
    """Every case at W=3 on the interpreter; numba (a parallel compile per width and mode)
    on the WIDE cases at every width. The fast tier keeps the WIDE cases at W=3 on the
    interpreter (numba at width runs in tests/ad/test_width.py's fast tier)."""
    for case in CASES:
        for width in (1, 3, 8):
            for backend in BACKENDS:
                if case.name in WIDE or (width == 3 and backend == "interp"):
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
