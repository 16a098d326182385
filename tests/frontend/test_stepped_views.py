"""A slice with a step given a name (`r = u[::-1]`, `r = u[1::3]`, `b = a[::2, ::-1]`, and
`r = np.flip(u)`, which is `u[::-1]`), sliced
or indexed again (`x[::-1][1:]`), looped over by rows, passed to a kernel or written
through, is a view of its base's memory, as in NumPy and numba: the primal equals numba.njit
of the same source, forward and reverse derivatives match central finite differences and
each other, on both backends. Only a slice with np.newaxis stays unnamed (refused with its
line, tests/frontend/test_array_expressions.py)."""
import numba
import numpy as np
import pytest

import hpcad as ad
from hpcad.ir.printer import print_function
from tests.ad.harness import INTERP_FAST
from tests.ad.kernels import Case
from tests.frontend.construct_check import check_construct, run_on

BACKENDS = INTERP_FAST


@ad.kernel
def reversed_read(u, c):
    r = u[::-1]
    s = 0.0
    for i in range(r.shape[0]):
        s += (i + 1) * r[i] * r[i] * c
    return s + np.sum(r * u)


@ad.kernel
def write_through(u, c):
    r = u[1::3]
    r[0] = r[0] * c     # writes u[1]
    r *= 1.5            # u[1], u[4], ...
    r[-1] += c * u[0]
    return np.sum(r * r) + np.sum(u * u * u)


@ad.kernel
def both_axes(a, c):
    b = a[::2, ::-1]
    t = 0.0
    for i in range(b.shape[0]):
        for j in range(len(b[i])):
            t += (i + 2 * j) * b[i, j] * b[i, j]
    inner = b[1:, ::2]    # a stepped view sliced again
    inner[0, 0] = c * inner[0, 0]
    return t + np.sum(inner * inner) + np.sum(a)


@ad.kernel
def sliced_again(x):
    x[1:] = x[::-1][:-1] * x[1:]
    return np.sum(x * x) + x[::2][1]


@ad.kernel
def rows_of_a_stepped_slice(a, w):
    s = 0.0
    for row in a[1::2]:
        s += np.sum(row * w)
    return s


@ad.kernel
def scale_into(v, c):
    for i in range(v.shape[0]):
        v[i] = c * v[i] + v[0]


@ad.kernel
def kernel_writes_the_view(u, c):
    r = u[::-2]
    scale_into(r, c)
    return np.sum(u * u)


@ad.kernel(parallel=True)
def parallel_over_the_view(u, w):
    r = u[::-1]
    out = np.empty(u.shape[0])
    for i in numba.prange(u.shape[0]):
        out[i] = u[i] * r[i] * w[i] + r[i] ** 3
    return np.sum(out * out)


@ad.kernel
def named_flips(u, A, c):
    r = np.flip(u)           # u's memory reversed, as NumPy's view
    r[0] = r[0] * c          # writes u[-1]
    B = np.flip(A[1:, :])    # a flip of a slice: A[:0:-1, ::-1]
    B[0, 1] += c
    s = np.sum(r * np.arange(1.0, u.shape[0] + 1)) + np.sum(B * B)
    u[1:] = np.flip(u[:-1]) * 0.5 + u[1:]   # reads u reversed while writing it
    return s + np.sum(u * u) + np.sum(A * A * A)


@ad.kernel
def products_of_stepped_views(M, x):
    r = x[::-1]
    N = M[::2, ::-1]
    y = N @ r                 # matrix products copy what they cannot prove contiguous
    return np.sum(y * y) + r @ x


def _vector(rng):
    return rng.uniform(-1.0, 1.0, 8), 0.7


CASES = [Case("reversed_read", reversed_read, _vector),
         Case("write_through", write_through, _vector),
         Case("both_axes", both_axes, lambda rng: (rng.uniform(-1.0, 1.0, (5, 4)), 0.7)),
         Case("sliced_again", sliced_again, lambda rng: (rng.uniform(-1.0, 1.0, 7),)),
         Case("rows_of_a_stepped_slice", rows_of_a_stepped_slice,
              lambda rng: (rng.uniform(-1.0, 1.0, (5, 3)), rng.uniform(-1.0, 1.0, 3))),
         Case("kernel_writes_the_view", kernel_writes_the_view, _vector),
         Case("named_flips", named_flips, lambda rng: (rng.uniform(-1.0, 1.0, 6),
                                                       rng.uniform(-1.0, 1.0, (4, 3)), 0.7)),
         Case("products_of_stepped_views", products_of_stepped_views,
              lambda rng: (rng.uniform(-1.0, 1.0, (5, 4)), rng.uniform(-1.0, 1.0, 4))),
         Case("parallel_over_the_view", parallel_over_the_view,
              lambda rng: (rng.uniform(-1.0, 1.0, 9), rng.uniform(-1.0, 1.0, 9)))]


@pytest.mark.filterwarnings("ignore::numba.NumbaPerformanceWarning")   # numba's, on views
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_named_stepped_slice_matches_numba_and_differentiates(case, backend):
    # numba.njit cannot call an hpcad kernel: plain Python is the reference there
    check_construct(case, backend, "python" if case.name == "kernel_writes_the_view" else
                    "numba")


@pytest.mark.parametrize("backend", BACKENDS)
def test_writes_through_a_stepped_view_reach_its_base(backend):
    u = np.arange(1.0, 9.0)
    want = u.copy()
    write_through.py_func(want, 2.0)
    got = u.copy()
    assert run_on(write_through, backend, (got, 2.0)) == write_through.py_func(u.copy(), 2.0)
    spec = write_through.specialize(write_through.bind((got, 2.0)))
    write_through.run(spec.primal, write_through.bind((got, 2.0)), backend=backend)
    np.testing.assert_array_equal(got, want)


def test_the_adjoint_of_a_parallel_loop_over_a_view_and_its_base_is_not_coloured():
    """u[i] and r[i] = u[n - 1 - i] are one element for iterations i and n - 1 - i: two-colour
    chunks compare index offsets (0 and 0 here), so they must not make this adjoint race-free
    (passes/race.py: atomic adds instead)."""
    spec = parallel_over_the_view.specialize((np.ones(9), np.ones(9)))
    text = print_function(spec.derivative("reverse", ("dup", "dup"), True))
    assert "colored chunks" not in text and "atomic = true" in text


def test_stepped_views_and_early_returns_print_parse_and_verify():
    """The 't' axes of mem.view (first, step, length) and an early return's flags go
    through the IR's text form and verifier, in the primal and both derivatives."""
    from hpcad.ir import parse_function, verify_function
    from tests.frontend.test_early_return import inner_loop_return
    for k, args in [(both_axes, (np.ones((5, 4)), 0.7)), (inner_loop_return, (np.ones((4, 3)),
                                                                              1.3))]:
        spec = k.specialize(k.bind(args))
        fns = [spec.primal] + [spec.derivative(mode, ("dup", "active"), True)
                               for mode in ("forward", "reverse")]
        for fn in fns:
            text = print_function(fn)
            again = parse_function(text)
            verify_function(again)
            assert print_function(again) == text
    assert 'dims = "tt"' in print_function(both_axes.specialize((np.ones((5, 4)), 0.7)).primal)
