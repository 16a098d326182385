"""Derivatives of every test kernel (forward, reverse, dot-product test; see harness.py) on
every backend, and the convenience transformations grad, value_and_grad and check_grad on the
heat and GMM kernels against finite differences computed here."""
import copy

import numpy as np
import pytest

import hpcad as ad
from tests.ad.harness import (
    BACKENDS,
    case_rng,
    central_difference,
    check_case,
    fd_step,
    on_backends,
    relative_error,
)
from tests.ad.kernels import CASES

CASE_BY_NAME = {case.name: case for case in CASES}
HEAT = CASE_BY_NAME["heat1d_explicit"]
GMM = CASE_BY_NAME["gmm_objective"]


def test_there_are_at_least_30_cases():
    assert len(CASES) >= 30
    assert len(CASE_BY_NAME) == len(CASES), "case names must be unique"


# The cases numba compiles (harness.ALL_KERNELS: all): the derivatives of the others generate
# nothing that these and the kept numba cases of the other width-1 derivative tests do not
# (tests/numba_cases.py, `python -m tests.numba_cover "tests.numba_cases:cases()"`): a loop's
# break and continue (break_continue), a range whose step is an argument (data_dependent_step),
# float32 in place (float32_inplace_relax), the math module's functions (math_functions),
# powers (powers). Every case runs on the interpreter.
ON_NUMBA = ("break_continue", "data_dependent_step", "float32_inplace_relax", "math_functions",
            "powers")
# the kernels whose numba compile takes seconds (measured) run on numba in the slow tier
SLOW_ON_NUMBA = ("data_dependent_step", "float32_inplace_relax")


@on_backends(CASES, [c for c in ON_NUMBA if c not in SLOW_ON_NUMBA], numba=ON_NUMBA)
def test_derivatives_match_finite_differences(case, backend):
    check_case(case, backend)


def fd_gradient(case, args: tuple, argnum: int):
    """d f / d args[argnum] by central differences, one coordinate at a time."""
    h = fd_step(case, args)
    arg = args[argnum]
    if not isinstance(arg, np.ndarray):
        direction = tuple(1.0 if k == argnum else None for k in range(len(args)))
        return float(central_difference(case.kernel.py_func, args, direction, h)[0])
    gradient = np.zeros(arg.shape)
    for index in np.ndindex(arg.shape):
        unit = np.zeros(arg.shape)
        unit[index] = 1.0
        direction = tuple(unit if k == argnum else None for k in range(len(args)))
        gradient[index] = central_difference(case.kernel.py_func, args, direction, h)[0]
    return gradient


@pytest.mark.parametrize("backend", BACKENDS)
def test_grad_of_heat_wrt_initial_state_and_diffusivity(backend):
    args = HEAT.make_args(case_rng(HEAT))
    before = copy.deepcopy(args)
    du, dalpha = ad.grad(HEAT.kernel, argnums=(0, 1), backend=backend)(*args)
    assert isinstance(du, np.ndarray) and du.shape == args[0].shape
    assert isinstance(dalpha, float)
    assert np.array_equal(args[0], before[0]), "grad modified the initial state"
    assert relative_error(du, fd_gradient(HEAT, args, 0)) <= 1e-6
    assert relative_error(dalpha, fd_gradient(HEAT, args, 1)) <= 1e-6


@pytest.mark.parametrize("backend", BACKENDS)
def test_grad_with_int_argnums_returns_a_bare_gradient(backend):
    args = HEAT.make_args(case_rng(HEAT))
    dalpha = ad.grad(HEAT.kernel, argnums=1, backend=backend)(*args)
    assert isinstance(dalpha, float)
    assert relative_error(dalpha, fd_gradient(HEAT, args, 1)) <= 1e-6


@pytest.mark.parametrize("backend", ["interp", pytest.param("numba", marks=pytest.mark.slow)])
def test_value_and_grad_of_gmm_wrt_alphas_means_icf(backend):
    args = GMM.make_args(case_rng(GMM))
    value, grads = ad.value_and_grad(GMM.kernel, argnums=(0, 1, 2), backend=backend)(*args)
    assert relative_error(value, GMM.kernel.py_func(*args)) <= 1e-12
    assert isinstance(grads, tuple) and len(grads) == 3
    for argnum, gradient in enumerate(grads):
        assert gradient.shape == args[argnum].shape
        assert relative_error(gradient, fd_gradient(GMM, args, argnum)) <= 1e-6, \
            f"gradient w.r.t. argument {argnum}"


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", [HEAT, GMM], ids=[HEAT.name, GMM.name])
def test_check_grad_accepts_correct_gradients(case, backend):
    args = case.make_args(case_rng(case))
    error = ad.check_grad(case.kernel, *args, backend=backend)
    assert 0.0 <= error <= 1e-6
