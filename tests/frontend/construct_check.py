"""Checks a kernel written with a Python construct three ways on one backend: its primal
against numba.njit of the same source (1e-12 relative; against the plain Python function
where numba cannot compile it), and its derivatives by
tests/ad/harness.check_case (forward and reverse against central finite differences, and
forward against reverse by the dot-product test)."""
import copy

import numba
import numpy as np

from tests.ad.harness import as_outputs, check_case, relative_error
from tests.ad.kernels import Case

_NJIT: dict = {}


def njit_of(kernel):
    """numba.njit of the kernel's plain Python function (compiled once per kernel)."""
    if kernel not in _NJIT:
        _NJIT[kernel] = numba.njit(kernel.py_func)
    return _NJIT[kernel]


def run_on(kernel, backend: str, args: tuple):
    """The kernel's primal on `backend`, on copies of args."""
    spec = kernel.specialize(kernel.bind(copy.deepcopy(args)))
    out = kernel.run(spec.primal, kernel.bind(copy.deepcopy(args)), backend=backend)
    return out[0] if len(out) == 1 else out


def check_construct(case: Case, backend: str, reference: str = "numba") -> None:
    args = case.make_args(np.random.default_rng(7))
    got = as_outputs(run_on(case.kernel, backend, args))
    plain = njit_of(case.kernel) if reference == "numba" else case.kernel.py_func
    expected = as_outputs(plain(*copy.deepcopy(args)))
    err = relative_error(got, expected)
    assert err <= 1e-12, f"{case.name}: {backend} primal {got} != {reference} {expected}"
    check_case(case, backend)
