"""NumPy array syntax in parallel kernels (issue 21): slices and whole-row expressions in a
prange body, and `@hpcad.kernel(parallel=True)`, whose array statements become parallel
loops as numba's parfors make them. Each kernel's value equals numba.njit(parallel=True) of
the same source; its derivatives match finite differences and forward matches reverse
(tests/ad/harness.py), on both backends; and the derivatives equal a serial twin's (the same
arithmetic with `range`, or the same source without parallel=True) and repeat run after run
on two threads, which a race in the adjoint would break."""
import copy
import inspect

import numba
import numpy as np
import pytest

import hpcad as ad
from hpcad.passes.race import RaceError
from tests.ad.harness import (
    BACKENDS,
    as_outputs,
    case_rng,
    check_case,
    is_active,
    njit_of,
    on_backends,
    on_numba,
    random_direction,
    relative_error,
    slow_unless,
)
from tests.parallel.par_kernels import ATOMIC, OWN, ParallelCase

TWIN_RTOL = 1e-12
REPEATS = 10
THREADS = 2


# -- prange bodies written with array syntax, and their serial twins ---------------------------
def rows_exp(a, b, out):
    for i in numba.prange(a.shape[0]):
        out[i, :] = np.exp(a[i, :]) * b
    s = 0.0
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            s += out[i, j] * out[i, j]
    return s


def rows_exp_serial(a, b, out):
    for i in range(a.shape[0]):
        out[i, :] = np.exp(a[i, :]) * b
    s = 0.0
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            s += out[i, j] * out[i, j]
    return s


def rows_stencil(a, c, out):
    for i in numba.prange(a.shape[0]):
        out[i, 1:-1] = a[i, 1:-1] + c * (a[i, :-2] - 2.0 * a[i, 1:-1] + a[i, 2:])
    s = 0.0
    for i in range(out.shape[0]):
        for j in range(1, out.shape[1] - 1):
            s += np.sin(out[i, j])
    return s


def rows_stencil_serial(a, c, out):
    for i in range(a.shape[0]):
        out[i, 1:-1] = a[i, 1:-1] + c * (a[i, :-2] - 2.0 * a[i, 1:-1] + a[i, 2:])
    s = 0.0
    for i in range(out.shape[0]):
        for j in range(1, out.shape[1] - 1):
            s += np.sin(out[i, j])
    return s


def rows_weighted(a, w):
    """A sum reduction over the rows of a per-row temporary (allocated in the body)."""
    s = 0.0
    for i in numba.prange(a.shape[0]):
        r = a[i, :] * w
        for j in range(r.shape[0]):
            s += r[j] * np.tanh(r[j])
    return s


def rows_weighted_serial(a, w):
    s = 0.0
    for i in range(a.shape[0]):
        r = a[i, :] * w
        for j in range(r.shape[0]):
            s += r[j] * np.tanh(r[j])
    return s


def rows_dot(a, w):
    s = 0.0
    for i in numba.prange(a.shape[0]):
        s += np.sum(a[i, :] * w) ** 2
    return s


def rows_dot_serial(a, w):
    s = 0.0
    for i in range(a.shape[0]):
        s += np.sum(a[i, :] * w) ** 2
    return s


# -- parallel=True: whole-array statements (the twin is the same source, serial) ---------------
def broadcast_update(a, b, c, out):
    out[:] = np.sin(a) * b + c
    t = np.exp(-a * a)
    out[1:-1, :] += t[:-2, :] * out[2:, :]
    s = 0.0
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            s += out[i, j] * out[i, j]
    return s


def jacobi_steps(u, v, nsteps):
    for _ in range(nsteps):
        v[1:-1, 1:-1] = 0.25 * (u[:-2, 1:-1] + u[2:, 1:-1] + u[1:-1, :-2] + u[1:-1, 2:])
        u[1:-1, 1:-1] = np.sqrt(1.0 + v[1:-1, 1:-1] * v[1:-1, 1:-1])
    s = 0.0
    for i in range(u.shape[0]):
        for j in range(u.shape[1]):
            s += u[i, j] * u[i, j]
    return s


def _rows(rng):
    return rng.uniform(-1.0, 1.0, (7, 6)), rng.uniform(0.5, 1.5, 6), np.zeros((7, 6))


CASES = [
    ParallelCase("rows_exp", ad.kernel(rows_exp), ad.kernel(rows_exp_serial), _rows,
                 adjoint=ATOMIC),
    ParallelCase("rows_stencil", ad.kernel(rows_stencil), ad.kernel(rows_stencil_serial),
                 lambda rng: (rng.uniform(-1.0, 1.0, (6, 9)), 0.3, np.zeros((6, 9))),
                 adjoint=OWN),
    ParallelCase("rows_weighted", ad.kernel(rows_weighted), ad.kernel(rows_weighted_serial),
                 lambda rng: (rng.uniform(-1.0, 1.0, (8, 5)), rng.uniform(0.5, 1.5, 5)),
                 adjoint=ATOMIC, sum_in_gradient=True),
    ParallelCase("rows_dot", ad.kernel(rows_dot), ad.kernel(rows_dot_serial),
                 lambda rng: (rng.uniform(-1.0, 1.0, (8, 5)), rng.uniform(0.5, 1.5, 5)),
                 adjoint=ATOMIC, sum_in_gradient=True),
    ParallelCase("broadcast_update", ad.kernel(broadcast_update, parallel=True),
                 ad.kernel(broadcast_update),
                 lambda rng: (rng.uniform(-1.0, 1.0, (6, 5)), rng.uniform(0.5, 1.5, 5), 0.2,
                              np.zeros((6, 5))),
                 adjoint=ATOMIC),
    ParallelCase("jacobi_steps", ad.kernel(jacobi_steps, parallel=True),
                 ad.kernel(jacobi_steps),
                 lambda rng: (rng.uniform(0.0, 1.0, (7, 8)), np.zeros((7, 8)), 3),
                 adjoint=OWN),
]
FAST_ON_NUMBA = ("rows_exp",)
# The cases numba compiles (harness.ALL_KERNELS: all): rows_exp (a prange over row slices)
# and rows_weighted (atomic adds and a parallel sum in the gradient, which the repeat test
# allows to differ in the last bits). What the other cases generate for numba, parallel=True
# statements with atomic adjoints and in a time loop (broadcast_update, jacobi_steps)
# included, the kept numba cases of other files generate too (`python -m tests.numba_cover`
# over them, tests/numba_cover.py: parallel=True construction and reductions in
# tests/frontend, the NumPy-style kernels' parallel=True Jacobi and softmax).
ON_NUMBA = FAST_ON_NUMBA + ("rows_weighted",)
cases = pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])


def _fresh(args):
    return copy.deepcopy(args)


@pytest.mark.parametrize("backend, case", [
    pytest.param(backend, case, id=f"{backend}-{case.name}") for case in CASES
    for backend in BACKENDS if backend == "interp" or on_numba(case.name, ON_NUMBA)])
def test_value_equals_numba_parallel(case, backend):
    """Returned value and every argument written, against numba.njit(parallel=True)."""
    args = case.make_args(case_rng(case))
    mine, theirs = _fresh(args), _fresh(args)
    got = ad.kernel(case.kernel.py_func, backend=backend,
                    parallel=case.kernel.parallel)(*mine)
    want = njit_of(case.kernel.py_func, parallel=True)(*theirs)
    assert relative_error(got, want) <= 1e-12, (got, want)
    for m, t in zip(mine, theirs, strict=True):
        if isinstance(m, np.ndarray):
            assert relative_error(m, t) <= 1e-12


@cases
def test_kernel_lowers_to_a_parallel_loop(case):
    args = case.kernel.bind(case.make_args(case_rng(case)))
    spec = case.kernel.specialize(args)
    assert any(op.name == "par.parallel_for" for op in _ops(spec.primal.body))


@on_backends(CASES, FAST_ON_NUMBA, numba=ON_NUMBA)
def test_derivatives_match_finite_differences_and_each_other(case, backend):
    check_case(case, backend)


@on_backends(CASES, FAST_ON_NUMBA, numba=ON_NUMBA)
def test_derivatives_equal_the_serial_twins(case, backend):
    rng = case_rng(case)
    args = case.make_args(rng)
    v = random_direction(rng, args)
    out_par, jv_par = ad.jvp(case.kernel, _fresh(args), v, backend=backend)
    out_ser, jv_ser = ad.jvp(case.serial, _fresh(args), v, backend=backend)
    assert relative_error(as_outputs(out_par), as_outputs(out_ser)) <= TWIN_RTOL
    assert relative_error(as_outputs(jv_par), as_outputs(jv_ser)) <= TWIN_RTOL
    w = float(rng.standard_normal())
    cot_par = ad.vjp(case.kernel, *_fresh(args), backend=backend)[1](w)
    cot_ser = ad.vjp(case.serial, *_fresh(args), backend=backend)[1](w)
    for k, (a, b) in enumerate(zip(cot_par, cot_ser, strict=True)):
        assert (a is None) == (b is None), k
        if b is not None:
            assert relative_error(a, b) <= TWIN_RTOL, (k, relative_error(a, b))


@slow_unless(CASES, FAST_ON_NUMBA, numba=ON_NUMBA)
def test_gradients_on_two_threads_repeat(case):
    """Array gradients are bitwise the same run after run unless the adjoint adds
    atomically or uses a parallel sum; scalar ones (parallel reductions) to the last bits."""
    args = case.make_args(case_rng(case))
    argnums = tuple(k for k, a in enumerate(args) if is_active(a))
    grad = ad.grad(case.kernel, argnums=argnums, backend="numba")
    grad(*_fresh(args))
    previous = numba.get_num_threads()
    numba.set_num_threads(THREADS)
    try:
        runs = [grad(*_fresh(args)) for _ in range(REPEATS)]
    finally:
        numba.set_num_threads(previous)
    exact = case.adjoint != ATOMIC and not case.sum_in_gradient
    for run in runs[1:]:
        for k, (a, b) in enumerate(zip(runs[0], run, strict=True)):
            if exact and isinstance(args[argnums[k]], np.ndarray):
                assert np.array_equal(a, b), k
            else:
                assert relative_error(a, b) <= 1e-13, k


def _ops(block):
    for op in block.ops:
        yield op
        for r in op.regions:
            yield from _ops(r)


# -- what a prange body may not do with arrays: said at its line -----------------------------
def array_reduction(a, w):
    acc = np.zeros(a.shape[1])
    for i in numba.prange(a.shape[0]):
        acc += a[i, :] * w
    return acc[0]


def array_product_reduction(a):
    acc = np.ones(a.shape[1])
    for i in numba.prange(a.shape[0]):
        acc *= a[i, :]  # error here
    return acc[0]


def racing_slice_store(a, acc):
    for i in numba.prange(a.shape[0]):  # error here
        acc[:] += a[i, :]
    return acc[0]


def _marked_line(fn) -> int:
    lines, start = inspect.getsourcelines(fn)
    return start + next(k for k, line in enumerate(lines) if "# error here" in line)


@pytest.mark.parametrize("backend", BACKENDS)
def test_array_reduction_across_iterations_equals_the_serial_loop(backend):
    """numba makes per-thread copies of `acc` for `acc += ...` in a prange, and so does
    hpcad (passes/race.py): the sum of the serial loop (the plain Python function)."""
    a, w = np.random.default_rng(0).standard_normal((40, 3)), np.arange(1.0, 4.0)
    got = ad.kernel(array_reduction, backend=backend)(a, w)
    assert abs(got - array_reduction(a, w)) <= 1e-12 * abs(got)


@pytest.mark.parametrize("backend", BACKENDS)
def test_array_product_reduction_is_refused_in_words(backend):
    """Only += and -= of an array are reductions hpcad makes; it says how to write a
    product, rather than racing on acc."""
    with pytest.raises(ad.UnsupportedConstruct) as info:
        ad.kernel(array_product_reduction, backend=backend)(np.ones((4, 3)))
    msg = str(info.value)
    line = _marked_line(array_product_reduction)
    assert msg.startswith(f"{__file__}:{line}: the array reduction `acc *= a[i, :]` across "
                          f"the iterations"), msg
    assert "acc[j] *= a[i, j]" in msg, msg


@pytest.mark.parametrize("backend", BACKENDS)
def test_slice_store_shared_by_iterations_is_a_race(backend):
    with pytest.raises(RaceError) as info:
        ad.kernel(racing_slice_store, backend=backend)(np.ones((4, 3)), np.zeros(3))
    assert f"{__file__}:{_marked_line(racing_slice_store)}:" in str(info.value)
