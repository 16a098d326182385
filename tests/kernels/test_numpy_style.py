"""The NumPy-style kernels of hpcad/kernels/numpy_style.py, each wrapped unchanged by
hpcad.kernel: the primal (result and every argument written) equals the same function run by
NumPy and by numba.njit; the derivatives match central finite differences along random
directions, forward agrees with reverse (dot-product test, tests/ad/harness.py), grad with
the table's argnums matches finite differences; parallel=True gives the serial results.
The fast tier runs the interpreter on tiny sizes against NumPy; numba.njit (seconds of compile
per kernel), hpcad's numba backend and parallel=True are slow."""
import copy
import functools

import numba
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import hpcad as ad
from hpcad.kernels.numpy_style import KERNELS
from tests.ad.harness import (
    ALL_KERNELS,
    BACKENDS,
    SLOW,
    central_difference,
    check_case,
    fd_step,
    inner,
    is_active,
    random_direction,
    relative_error,
)
from tests.ad.kernels import Case
from tests.generative.profiles import generative

SEED = 2026
PRIMAL_RTOL = 1e-12

# Central differences with the harness's step agree with jax.grad of the jax.numpy versions
# (benchmarks/numpy_style_jax.py) to 2e-8 or better on every kernel at its test size, so the
# harness's default tolerance (1e-6) holds for all of them.


# The kernels whose derivatives the full suite also compiles with numba (each takes tens of seconds
# to compile on two cores): together they run every line of the numba backend's code generation, and
# call every function in the generated code, that the derivatives of all the kernels do (`python -m
# tests.numba_cover "tests.kernels.test_numpy_style:[case(n) for n in KERNELS]"`), but for math
# functions, a float cast, an empty block's `pass` and a prelude without fault helpers, which the
# kept cases of the width-1 derivative tests compile (tests/numba_cases.py; math.atan2:
# tests/frontend/test_array_expressions.py's ufuncs), and what the tridiagonal solve and the MLP
# (vertical_advection, mlp) generate, which the kept numba cases of tests/frontend and tests/ad
# generate too (numba_cover over them): stencils (jacobi_2d), products (gemm), a solver with rebound
# arrays (conjugate_gradient), a product of a non-contiguous operand (power_iteration). Their
# primals compile too, with nbody's (views with steps). The others run on the interpreter;
# HPCAD_ALL_KERNELS=1 compiles all of them.
ON_NUMBA = set(KERNELS) if ALL_KERNELS else {
    "jacobi_2d", "gemm", "conjugate_gradient", "power_iteration"}
PRIMAL_ON_NUMBA = ON_NUMBA | {"nbody"}
ON_PARALLEL = set(KERNELS) if ALL_KERNELS else {
    "jacobi_2d", "softmax"}


def on_backends():
    """Parametrize by (kernel name, backend): the interpreter in the fast tier, numba slow
    (for the kernels in ON_NUMBA)."""
    return pytest.mark.parametrize("name, backend", [
        pytest.param(name, backend, id=f"{name}-{backend}",
                     marks=SLOW if backend == "numba" else ())
        for name in KERNELS for backend in BACKENDS
        if backend == "interp" or name in ON_NUMBA])


@functools.cache
def hpcad_kernel(name: str, **options) -> ad.Kernel:
    """The table's function under hpcad.kernel, built once per process (its compiled
    derivatives are shared by the tests)."""
    return ad.kernel(**options)(KERNELS[name].function)


@functools.cache
def njit_kernel(name: str):
    return numba.njit(KERNELS[name].function, error_model="numpy")


def inputs(name: str, n: int | None = None, seed: int = SEED) -> tuple:
    spec = KERNELS[name]
    return spec.make_inputs(spec.test_size if n is None else n, seed)


def case(name: str) -> Case:
    """The kernel as a tests/ad case (its own arguments, whatever the case's generator)."""
    return Case(name, hpcad_kernel(name), lambda rng: inputs(name))


def assert_same_run(name: str, got: tuple, expected: tuple, what: str) -> None:
    """got and expected are (result, arguments after the call)."""
    (out, args), (ref, ref_args) = got, expected
    err = relative_error(out, ref)
    assert err <= PRIMAL_RTOL, f"{name}: {what} returned {out!r}, expected {ref!r} ({err:.1e})"
    for k, (a, b) in enumerate(zip(args, ref_args, strict=True)):
        if isinstance(b, np.ndarray):
            err = relative_error(a, b)
            assert err <= PRIMAL_RTOL, f"{name}: {what} left argument {k} off by {err:.1e}"


def run(fn, args: tuple) -> tuple:
    """(fn(*copies of args), the copies after the call: kernels write their arguments)."""
    args = copy.deepcopy(args)
    return fn(*args), args


def test_the_table_has_at_least_15_kernels_with_float_argnums():
    assert len(KERNELS) >= 15
    for name, spec in KERNELS.items():
        args = inputs(name)
        assert spec.argnums and all(is_active(args[k]) for k in spec.argnums), name


@pytest.mark.parametrize("name", KERNELS)
def test_interpreter_matches_numpy(name):
    args = inputs(name)
    got = run(hpcad_kernel(name, backend="interp"), args)
    assert_same_run(name, got, run(KERNELS[name].function, args), "hpcad (interp)")


# numba.njit of a kernel takes seconds to compile (tens for the largest): the kernels hpcad
# compiles with numba (PRIMAL_ON_NUMBA) are compared with it on both backends; the others run
# on the interpreter only, compared with NumPy (test_interpreter_matches_numpy, and on random
# sizes below), whose float64 results numba's equal to this test's tolerance on every kernel
# of the table (HPCAD_ALL_KERNELS=1 compares them all with numba.njit)
@pytest.mark.slow
@pytest.mark.parametrize("name, backend", [
    pytest.param(name, backend, id=f"{name}-{backend}") for name in sorted(PRIMAL_ON_NUMBA)
    for backend in BACKENDS])
def test_primal_matches_numba_njit(name, backend):
    args = inputs(name)
    got = run(hpcad_kernel(name, backend=backend), args)
    assert_same_run(name, got, run(njit_kernel(name), args), f"hpcad ({backend})")


@on_backends()
def test_derivatives_match_finite_differences_and_each_other(name, backend):
    check_case(case(name), backend)


@on_backends()
def test_grad_wrt_argnums_matches_finite_differences(name, backend):
    spec = KERNELS[name]
    args = inputs(name)
    rng = np.random.default_rng(SEED)
    grads = ad.grad(hpcad_kernel(name), argnums=spec.argnums, backend=backend)(*args)
    assert len(grads) == len(spec.argnums)
    for _ in range(2):
        v = tuple(d if k in spec.argnums else None
                  for k, d in enumerate(random_direction(rng, args)))
        reference = case(name)
        fd = central_difference(spec.function, args, v, fd_step(reference, args))[0]
        full = [None] * len(args)
        for k, g in zip(spec.argnums, grads, strict=True):
            full[k] = g
        got = inner(v, tuple(full))
        err = relative_error(got, fd)
        assert err <= reference.fd_rtol, \
            f"{name}: <grad, v> {got!r} vs FD {fd!r} (rel. error {err:.1e})"


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(ON_PARALLEL))
def test_parallel_true_gives_the_serial_results(name):
    """@hpcad.kernel(parallel=True): NumPy's primal, the serial gradient (reductions may sum
    in another order: 1e-10), which the interpreter computes (numba's parallel code is what
    is checked; the serial gradient compiled with numba would be a derivative more to
    compile, which test_derivatives_match_finite_differences_and_each_other checks where
    ON_NUMBA says). The reference is NumPy, not numba.njit(parallel=True): numba
    0.68's parfors fuse `u[1:-1] += alpha * (u[:-2] - 2.0 * u[1:-1] + u[2:])` into one loop
    that reads neighbours it has already updated (heat_1d_inplace differs from NumPy there)."""
    spec = KERNELS[name]
    args = inputs(name)
    parallel = hpcad_kernel(name, parallel=True)
    assert_same_run(name, run(parallel, args), run(spec.function, args),
                    "hpcad (parallel=True)")
    serial = ad.grad(hpcad_kernel(name, backend="interp"), argnums=spec.argnums)(*args)
    got = ad.grad(parallel, argnums=spec.argnums)(*args)
    for k, (a, b) in enumerate(zip(got, serial, strict=True)):
        err = relative_error(a, b)
        assert err <= 1e-10, f"{name}: parallel gradient {k} off the serial one by {err:.1e}"


@pytest.mark.slow
@generative(ci_examples=40)
@given(name=st.sampled_from(sorted(KERNELS)), grow=st.integers(-1, 3),
       seed=st.integers(0, 2**31 - 1))
def test_interpreter_matches_numpy_on_random_sizes(name, grow, seed):
    """Differential test: sizes and values drawn by hypothesis, hpcad's interpreter against
    the function run by NumPy."""
    args = inputs(name, KERNELS[name].test_size + grow, seed)
    got = run(hpcad_kernel(name, backend="interp"), args)
    assert_same_run(name, got, run(KERNELS[name].function, args), "hpcad (interp)")
