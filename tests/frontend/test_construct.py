"""Array construction and views written as numba users write them (np.zeros/ones/empty/
full and *_like, np.arange, np.linspace, copies, a.reshape/ravel/flatten, np.concatenate,
np.stack, np.cumsum, a.shape/ndim/size/dtype): the primal equals numba.njit of the same
source (or NumPy's, where numba does not compile the call), the derivatives match central
finite differences, forward against reverse, on both backends; views write through to
their base, copies do not."""
import numba
import numpy as np
import pytest

import hpcad as ad
from tests.ad.harness import (
    INTERP_FAST,
    as_outputs,
    check_case,
    njit_of,
    on_backends,
    relative_error,
)
from tests.ad.kernels import Case
from tests.frontend.construct_check import check_construct, run_on


@ad.kernel
def allocations(x, c):
    n = x.shape[0]
    z = np.zeros(x.shape, dtype=x.dtype)
    z[:] = x * c
    o = np.ones_like(x)
    f = np.full(n, c)
    g = np.full_like(x, 0.5)
    e = np.empty((n, 2))
    e[:, 0] = x
    e[:, 1] = c
    h = np.zeros(3, np.float64)
    k = np.ones((2, n), dtype=x.dtype)
    return np.sum(z * o) + np.sum(f * x) + np.sum(g * x * x) + np.sum(e * e) + h.sum() \
        + np.sum(k[1] * x) + x.size + x.ndim + z.shape[0]


@ad.kernel
def ranges(x, a, b):
    n = x.shape[0]
    r = np.arange(n)
    s = np.arange(1, n + 1)
    t = np.arange(n - 1, -1, -1)
    u = np.arange(0.5, 0.5 * (n + 1), 0.5)
    grid = np.linspace(a, b, n)
    return np.sum(x * r) + np.sum(x * s * t) + np.sum(u * x) + np.sum(grid * x) \
        + np.sum(np.linspace(0.0, a, 4)) + np.sum(np.linspace(a, 1.0))


@ad.kernel
def copies(x, y):
    c = x.copy()
    c[0] = 2.0 * y[0]
    d = np.copy(x * y)
    d[1] = d[1] * 3.0
    return np.sum(c * x) + np.sum(d * c) + x[0]


@ad.kernel
def reshaped_views(a, w):
    v = a.reshape(-1)
    v[0] = 2.0 * v[1]          # writes through to a
    m = v.reshape(a.shape[1], a.shape[0])
    r = a.ravel()
    r[2] = r[3] * r[4]
    flat = a.flatten()
    flat[0] = 100.0            # a copy: a keeps its element
    grid = np.reshape(w, (2, -1))
    return np.sum(a * a) + np.sum(m[1] * m[0]) + np.sum(flat) + np.sum(grid[1] * grid[0])


@ad.kernel
def joins(a, b):
    rows = np.concatenate((a, b))
    cols = np.concatenate((a, b * 2.0, a), axis=1)
    s0 = np.stack((a[0], b[1]))
    s1 = np.stack((a[0], b[1], a[1]), axis=1)
    return np.sum(rows * rows) + np.sum(cols[1] * cols[2]) + np.sum(s0[1] * s0[0]) \
        + np.sum(s1[:, 2] * s1[:, 0])


@ad.kernel
def running_sums(x, a):
    c = np.cumsum(x * x)
    f = np.cumsum(a)
    return np.sum(c * x) + np.sum(f * f)


@ad.kernel
def running_sums_along_axes(a, b):
    c0 = np.cumsum(a * b, axis=0)
    c1 = np.cumsum(a, axis=1)
    return np.sum(c0 * c1) + np.sum(np.cumsum(b, axis=-1) * a)


@ad.kernel
def running_products(x, a):
    """np.cumprod (numba has no axis= for it: compared with NumPy); x holds a zero."""
    c = np.cumprod(x * x + 0.5)
    return np.sum(c * x) + np.sum(np.cumprod(a, axis=1)[:, 2]) + np.sum(np.cumprod(a * x[0]))


@ad.kernel
def as_arrays(x, a):
    """np.asarray of an array is the array (a write through it reaches x, read after by the
    expression of the same-dtype np.asarray), of an expression the expression."""
    v = np.asarray(x)
    w = np.asarray(x * 2.0)
    c = np.asarray(x, dtype=np.float64)
    v[0] = a[0, 0]
    return np.sum(w * c) + np.sum(np.asarray(a.T) * a.T)


@ad.kernel(parallel=True)
def parallel_construction(a, x):
    z = np.zeros_like(a)
    z[:] = a * 2.0
    flat = z.reshape(-1)
    c = np.concatenate((x, x * x))
    return np.sum(flat * flat) + np.sum(np.cumsum(c) * c) + np.sum(np.arange(4) * x[0])


@ad.kernel
def construction_in_prange(a, x):
    n, m = a.shape
    out = np.zeros(n)
    for i in numba.prange(n):
        t = np.zeros(m)
        t[:] = a[i] * x
        u = t.copy()
        out[i] = np.sum(u * t) + np.sum(np.ones(m) * x)
    return np.sum(out * out)


@ad.kernel
def written_arrays(x, c):
    m = np.array([[1.0, c], [0.5 * c, 2.0]])
    w = np.array([-1.0, 16.0, -30.0, 16.0, -1.0]) / 12.0
    v = np.array((x[0], x[1] * c, 3))
    t = (c, x[2])
    e = np.array(t)
    k = np.array([[[x[3], 1], [2, c]]], dtype=np.float64)
    return np.sum(m @ v[:2]) + np.sum(w * x[:5]) + np.sum(v * v) + np.sum(e * x[:2]) \
        + np.sum(k * k)


def _vector_and_scalar(rng):
    return rng.standard_normal(6), float(rng.uniform(0.5, 1.5))


CASES = [
    Case("allocations", allocations, _vector_and_scalar),
    Case("ranges", ranges, lambda rng: (rng.standard_normal(5), 0.3, 1.7)),
    Case("copies", copies, lambda rng: (rng.standard_normal(5), rng.standard_normal(5))),
    Case("reshaped_views", reshaped_views,
         lambda rng: (rng.standard_normal((3, 4)), rng.standard_normal(6))),
    Case("joins", joins, lambda rng: (rng.standard_normal((3, 4)), rng.standard_normal((3, 4)))),
    Case("running_sums", running_sums,
         lambda rng: (rng.standard_normal(6), rng.standard_normal((2, 3)))),
    Case("construction_in_prange", construction_in_prange,
         lambda rng: (rng.standard_normal((4, 5)), rng.standard_normal(5))),
    Case("written_arrays", written_arrays, _vector_and_scalar),
]
@ad.kernel
def flat_views_of_slices(a, w):
    """NumPy's views: the ravel of a block of whole rows, of a row of a 3-D array, the
    reshape of a unit-step slice, unnamed and named (numba refuses these reshapes)."""
    b = a[1:, :].ravel()
    b[2] = w[0] * b[3]              # writes a[1, 2]
    t = a.reshape(2, 2, 3)
    r = t[1].ravel()
    r[0] += w[1] * r[4]             # writes a[2, 0]
    q = w[1:5].reshape(2, 2)
    q[1, 0] = q[0, 1] * a[0, 0]     # writes w[3]
    z = a[2]
    z.reshape(3, 1)[1, 0] *= w[2]   # writes a[2, 1]
    return np.sum(a * a) + np.sum(w * w) + np.sum(b * r[1])


# numba.njit does not compile np.cumsum with axis= nor the parallel=True decorator's
# kernels as hpcad kernels, nor reshapes of slices: their primal is checked against NumPy's
NUMPY_CASES = [
    Case("flat_views_of_slices", flat_views_of_slices,
         lambda rng: (rng.standard_normal((4, 3)), rng.standard_normal(6))),
    Case("running_sums_along_axes", running_sums_along_axes,
         lambda rng: (rng.standard_normal((3, 4)), rng.standard_normal((3, 4)))),
    Case("parallel_construction", parallel_construction,
         lambda rng: (rng.standard_normal((3, 4)), rng.standard_normal(5))),
    Case("running_products", running_products,
         lambda rng: (np.append(rng.standard_normal(4), 0.0), rng.standard_normal((4, 5)))),
    Case("as_arrays", as_arrays,
         lambda rng: (rng.standard_normal(4), rng.standard_normal((3, 2)))),
]


# The cases numba compiles (harness.ALL_KERNELS: all): with the kept numba cases of the other
# width-1 derivative tests they run every line of the numba backend's code generation, and
# call every function in the generated code, that all the cases do (tests/numba_cases.py,
# `python -m tests.numba_cover "tests.numba_cases:cases()"`). Copies, running sums, joins and
# construction in a prange body or under parallel=True generate nothing those do not (the
# parallel loops are tests/parallel's); all run on the interpreter.
ON_NUMBA = ("allocations", "reshaped_views", "ranges", "flat_views_of_slices")


@on_backends(CASES, fast_on_numba=("allocations", "reshaped_views"), numba=ON_NUMBA)
def test_construct_matches_numba_and_finite_differences(case, backend):
    check_construct(case, backend)


@on_backends(NUMPY_CASES, numba=ON_NUMBA)
def test_construct_matches_numpy_and_finite_differences(case, backend):
    args = case.make_args(np.random.default_rng(3))
    got = as_outputs(run_on(case.kernel, backend, args))
    assert relative_error(got, as_outputs(case.kernel.py_func(*args))) <= 1e-12
    check_case(case, backend)


@ad.kernel
def fill_through_views(a, b):
    v = a.reshape(-1)
    v[:] = 1.5
    r = b.ravel()
    r[0] = 7.0
    f = b.flatten()
    f[1] = -3.0


@pytest.mark.parametrize("backend", INTERP_FAST)
def test_views_write_to_their_base_and_copies_do_not(backend):
    a, b = np.zeros((2, 3)), np.zeros((3, 2))
    ad.kernel(fill_through_views.py_func, backend=backend)(a, b)
    np.testing.assert_array_equal(a, np.full((2, 3), 1.5))
    expected = np.zeros((3, 2))
    expected[0, 0] = 7.0
    np.testing.assert_array_equal(b, expected)


@ad.kernel
def int_results(n, k):
    r = np.arange(n)
    e = np.empty_like(r)
    e[:] = r * k
    s = np.arange(n, 0, -k)
    c = np.cumsum(r)
    return np.sum(e) + np.sum(s) + c[n - 1] + np.sum(np.zeros(n, dtype=r.dtype) + 1)


@pytest.mark.parametrize("backend", INTERP_FAST)
@pytest.mark.parametrize("n, k", [(5, 2), (1, 3), (7, 7)])
def test_integer_construction_matches_numba(n, k, backend):
    assert run_on(int_results, backend, (n, k)) == njit_of(int_results.py_func)(n, k)


def reshape_of_a_strided_view(a):
    v = a[::2, :]
    return np.sum(v.reshape(-1))


def reshape_of_a_stepped_slice(x):
    x[::2].reshape(2, 2)[0, 1] = 1.0     # NumPy: a view of x; numba refuses it
    return np.sum(x)


def ravel_of_a_view_of_a_view(a):
    v = a[1:, :]
    r = v[1:, :].ravel()                   # NumPy: a view, hpcad cannot say
    r[0] = 1.0
    return np.sum(a)


def reshape_of_a_column_view(a):
    v = a[:, 1:]
    return np.sum(v.reshape(-1))


def arange_step_zero(n, k):
    return np.sum(np.arange(0, n, k))


def concatenate_mismatch(a, b):
    return np.sum(np.concatenate((a, b), axis=0))


def ragged_array(x):
    return np.sum(np.array([[x[0], 1.0], [2.0]]))


def array_of_arrays(x):
    return np.sum(np.array([x, x]))


@pytest.mark.parametrize("fn, args, error, fragment", [
    (ragged_array, (np.ones(2),), ad.UnsupportedConstruct, "give every row the same number"),
    (array_of_arrays, (np.ones(2),), ad.UnsupportedConstruct, "np.stack((a, b))"),
    (reshape_of_a_strided_view, (np.ones((4, 3)),), ad.UnsupportedConstruct,
     "may not be C-contiguous"),
    (reshape_of_a_column_view, (np.ones((4, 3)),), ad.UnsupportedConstruct,
     "x.copy().reshape"),
    (reshape_of_a_stepped_slice, (np.ones(8),), ad.UnsupportedConstruct,
     "may not be C-contiguous"),
    (ravel_of_a_view_of_a_view, (np.ones((4, 3)),), ad.UnsupportedConstruct,
     "x.copy().ravel()"),
    (arange_step_zero, (4, 0), ad.KernelAssertionError, "step of 0"),
    (concatenate_mismatch, (np.ones((2, 3)), np.ones((2, 4))), ad.KernelAssertionError,
     "lengths along axis 1 differ"),
])
@pytest.mark.parametrize("backend", INTERP_FAST)
def test_what_numpy_refuses_is_refused_clearly(fn, args, error, fragment, backend):
    with pytest.raises(error) as info:
        ad.kernel(fn, backend=backend)(*args)
    assert fragment in str(info.value) and "test_construct.py:" in str(info.value)


@pytest.mark.parametrize("backend", INTERP_FAST)
@pytest.mark.parametrize("kernel", [reshaped_views, flat_views_of_slices],
                         ids=["reshaped_views", "flat_views_of_slices"])
def test_batched_tangents_through_reshaped_views_match_reverse(backend, kernel):
    """At width 3 a reshape's shadow is an array of vectors reshaped with its lanes (on
    numba, a slice of one reshaped too: `w[1:5].reshape(2, 2)`)."""
    rng = np.random.default_rng(0)
    args = (rng.standard_normal((3, 4)) if kernel is reshaped_views
            else rng.standard_normal((4, 3)), rng.standard_normal(6))
    forward = ad.jacobian(kernel, argnums=(0, 1), mode="fwd", batch=3,
                          backend=backend)(*args)
    reverse = ad.jacobian(kernel, argnums=(0, 1), mode="rev", backend=backend)(*args)
    for f, r in zip(forward, reverse, strict=True):
        np.testing.assert_allclose(f, r, rtol=1e-12, atol=1e-12)
