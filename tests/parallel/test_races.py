"""hpcad refuses primal parallel code whose iterations or tasks touch the same array elements:
a RaceError (an HpcadError) naming this file and the line of the parallel construct, on every
backend, unless the loop says allow_races=True. Safe loops and tasks of the same shapes pass."""
import inspect
import re

import numpy as np
import pytest

import hpcad as ad
from hpcad.passes.race import RaceError

BACKENDS = ["interp", "numba"]
backends = pytest.mark.parametrize("backend", BACKENDS)
# (numba's compile of a gradient of a parallel loop takes seconds: in the slow tier)
backends_numba_slow = pytest.mark.parametrize(
    "backend", ["interp", pytest.param("numba", marks=pytest.mark.slow)])


@ad.kernel
def shifted_write(out):
    for i in ad.prange(out.shape[0] - 1):
        out[i + 1] = out[i] * 0.5
    return out[0]


@ad.kernel
def shifted_write_allowed(out):
    for i in ad.prange(out.shape[0] - 1, allow_races=True):
        out[i + 1] = out[i] * 0.5
    return out[0]


@ad.kernel
def shared_slot(u, buf):
    for i in ad.prange(u.shape[0]):
        buf[0] = buf[0] + u[i]
    return buf[0]


@ad.kernel
def fill(a, c):
    for i in range(a.shape[0]):
        a[i] = c * i
    return c


@ad.kernel
def join_same_array(a):
    x, y = ad.join(fill, (a, 1.0), fill, (a, 2.0))
    return x + y


@ad.kernel
def spawn_same_array(a):
    h1 = ad.spawn(fill, a, 1.0)
    h2 = ad.spawn(fill, a, 2.0)
    x = ad.sync(h1)
    y = ad.sync(h2)
    return x + y


@ad.kernel
def own_elements(out, u):
    for i in ad.prange(out.shape[0] - 1):
        out[i + 1] = out[i + 1] * u[i] + u[i + 1]
    return out[1]


@ad.kernel
def join_distinct_arrays(a, b):
    x, y = ad.join(fill, (a, 1.0), fill, (b, 2.0))
    return x + y


@ad.kernel
def strided_collision(out):
    for i in ad.prange(0, out.shape[0] - 2, 2):
        out[i + 2] = out[i] * 0.5     # iteration i writes what iteration i + 2 reads
    return out[0]


@ad.kernel
def strided_wraparound(out):
    for i in ad.prange(0, out.shape[0], 2):
        out[i - 1] = out[i] + 1.0     # i = 0 writes out[-1], the last element, which the
    return out[0]                     # last iteration reads when the length is odd


@ad.kernel
def flattened_rows(out, u):
    n, m = u.shape
    for k in ad.prange(n * m):
        out[k // m, 0] = u[k // m, k % m]   # the m iterations of a row write one element
    return out[0, 0]


@ad.kernel
def flattened_above_the_first_row(out, u):
    n, m = u.shape
    for k in ad.prange(n * m):
        out[k // m - 1, k % m] = u[k // m, k % m]   # row -1 is the last row, another's
    return out[0, 0]


def line_of(kernel, text: str) -> int:
    """The line of this file, inside kernel's source, that contains text (exactly one)."""
    lines, first = inspect.getsourcelines(kernel.py_func)
    found = [first + k for k, line in enumerate(lines) if text in line]
    assert len(found) == 1, f"{text!r} in {kernel.__name__}: lines {found}"
    return found[0]


def names_location(message: str, line: int) -> bool:
    """message names this file at exactly `line` (not, say, line 20 for line 2)."""
    return re.search(rf"{re.escape(__file__)}:{line}(?!\d)", message) is not None


@ad.kernel
def negative_start(out):
    """Iteration -1 writes out[-1], the element iteration n - 1 writes too."""
    for i in ad.prange(-1, out.shape[0]):
        out[i] = out[i] * 0.5 + i
    return out[0]


@ad.kernel
def negative_start_rows(out):
    """The same wraparound through a whole row: out[-1, :] is out[n - 1, :]."""
    for i in ad.prange(-1, out.shape[0]):
        for j in range(out.shape[1]):
            out[i, j] = out[i, j] + 1.0
    return out[0, 0]


@ad.kernel
def through_a_shifted_view(u):
    v = u[1:]
    for i in ad.prange(v.shape[0]):
        v[i] = u[i] * 2.0     # v[i] is u[i + 1]: iteration i + 1 reads it
    return u[0]


@ad.kernel
def through_a_reshaped_view(a):
    r = a.reshape(a.shape[1], a.shape[0])
    for i in ad.prange(a.shape[0]):
        for j in range(a.shape[0]):
            r[i, j] = a[i, j] * 2.0     # a (3, 4): r[1, 2] is a[1, 1], a[1, 2] is r[2, 0]
    return a[0, 0]


@ad.kernel
def scaled_rows_collision(U, w):
    for k in ad.prange((U.shape[0] - 2) // 2):
        i = 2 * k + 1
        for j in range(U.shape[1]):
            U[i, j] = U[i + 2, j] * w     # row 2k + 3 is the next iteration's row
    return U[0, 0]


@ad.kernel
def triangle_off_by_one(x):
    m = x.shape[1]
    c = np.zeros((m, m))
    for i in ad.prange(m - 1):
        c[i:m, i] = x[i:m, 0]           # column i from row i down
        c[i + 1, i:m] = x[i:m, 1]       # (i + 1, i + 1) is also iteration i + 1's column
    return c


@ad.kernel
def sums_of_later_rows(B):
    for j in ad.prange(B.shape[0]):
        B[j, 0] += np.sum(B[j + 1:, 0])    # rows below j: other iterations write them
    return B[0, 0]


@ad.kernel
def product_reading_other_columns(A, B):
    for i in range(B.shape[0]):
        for j in ad.prange(B.shape[1] - 1):
            B[i, j] += np.dot(A[i:, i], B[i:, j + 1])   # B[i, j + 1]: iteration j + 1's
    return B[0, 0]


@ad.kernel
def through_a_stepped_view(u, w):
    r = u[0::2]
    for i in ad.prange(4):
        u[i] = r[i] * w[i]        # r[i] is u[2 i]: iteration 2 i writes it
    return u[0]


@ad.kernel
def through_a_reversed_view(u, w):
    r = u[::-1]
    for i in ad.prange(4):
        u[i + 4] = r[i] * w[i]    # r[i] is u[7 - i]: iteration 3 - i writes it
    return u[0]


# (kernel, its arguments, the construct's line(s): a group of spawns may be named by any of
# its spawn statements)
RACY = [
    (scaled_rows_collision, lambda: (np.ones((7, 3)), 0.5), ["prange("]),
    (shifted_write, lambda: (np.ones(8),), ["prange("]),
    (shared_slot, lambda: (np.ones(8), np.zeros(1)), ["prange("]),
    (strided_collision, lambda: (np.ones(8),), ["prange("]),
    (strided_wraparound, lambda: (np.ones(7),), ["prange("]),
    (flattened_rows, lambda: (np.zeros((3, 4)), np.ones((3, 4))), ["prange("]),
    (flattened_above_the_first_row, lambda: (np.zeros((3, 4)), np.ones((3, 4))), ["prange("]),
    (negative_start, lambda: (np.ones(5),), ["prange("]),
    (negative_start_rows, lambda: (np.ones((4, 3)),), ["prange("]),
    (join_same_array, lambda: (np.zeros(6),), ["ad.join("]),
    (spawn_same_array, lambda: (np.zeros(6),), ["h1 = ad.spawn(", "h2 = ad.spawn("]),
    (through_a_shifted_view, lambda: (np.ones(6),), ["prange("]),
    (through_a_reshaped_view, lambda: (np.ones((3, 4)),), ["prange("]),
    (triangle_off_by_one, lambda: (np.ones((5, 4)),), ["prange("]),
    (sums_of_later_rows, lambda: (np.ones((5, 2)),), ["prange("]),
    (product_reading_other_columns, lambda: (np.ones((4, 4)), np.ones((4, 3))), ["prange("]),
    (through_a_stepped_view, lambda: (np.ones(8), np.ones(8)), ["prange("]),
    (through_a_reversed_view, lambda: (np.ones(8), np.ones(8)), ["prange("]),
]


@backends
@pytest.mark.parametrize("kernel, make_args, construct", RACY,
                         ids=[k.__name__ for k, _, _ in RACY])
def test_race_is_an_error_naming_the_parallel_construct(kernel, make_args, construct, backend):
    with pytest.raises(RaceError) as info:
        ad.kernel(kernel.py_func, backend=backend)(*make_args())
    assert isinstance(info.value, ad.HpcadError)
    message = str(info.value)
    lines = [line_of(kernel, text) for text in construct]
    assert any(names_location(message, line) for line in lines), \
        f"expected {__file__}:{' or '.join(map(str, lines))} in: {message}"


@backends
def test_race_error_names_the_racing_write(backend):
    with pytest.raises(RaceError) as info:
        ad.kernel(shifted_write.py_func, backend=backend)(np.ones(8))
    assert names_location(str(info.value), line_of(shifted_write, "out[i + 1] =")), \
        str(info.value)


@backends
def test_allow_races_runs_the_racy_loop(backend):
    out = np.ones(8)
    result = ad.kernel(shifted_write_allowed.py_func, backend=backend)(out)
    assert result == 1.0 and np.all(np.isfinite(out))
    if backend == "interp":   # runs the loop in order, like plain Python
        expected = np.ones(8)
        shifted_write_allowed.py_func(expected)
        assert np.array_equal(out, expected)


@backends
def test_loop_touching_only_its_own_elements_is_not_a_race(backend):
    out, u = np.linspace(1.0, 2.0, 8), np.linspace(-1.0, 1.0, 8)
    expected = out.copy()
    own_elements.py_func(expected, u)
    result = ad.kernel(own_elements.py_func, backend=backend)(out, u)
    assert np.array_equal(out, expected) and result == expected[1]


@backends
def test_tasks_writing_distinct_arrays_are_not_a_race(backend):
    a, b = np.zeros(5), np.zeros(5)
    assert ad.kernel(join_distinct_arrays.py_func, backend=backend)(a, b) == 3.0
    assert np.array_equal(a, np.arange(5.0)) and np.array_equal(b, 2.0 * np.arange(5.0))


def test_mpi_inside_a_parallel_loop_is_an_error():
    from mpi4py import MPI

    @ad.kernel
    def chatty(x, comm):
        s = 0.0
        for i in ad.prange(x.shape[0]):
            s += comm.allreduce(x[i], op=MPI.SUM)
        return s

    with pytest.raises(ad.HpcadError, match="MPI communication inside a parallel loop"):
        chatty(np.ones(3), MPI.COMM_WORLD)


@ad.kernel
def histogram_then_weights(count, idx, u):
    for i in ad.prange(idx.shape[0], allow_races=True):
        count[idx[i]] += 1
    s = 0.0
    for i in range(u.shape[0]):
        s += u[i] * u[i] * count[i]
    return s


@backends
@pytest.mark.parametrize("mode", ["reverse", "forward"])
def test_derivative_through_an_allowed_race_is_a_user_error_naming_the_write(backend, mode):
    out = np.ones(8)
    if mode == "reverse":
        run = lambda: ad.grad(shifted_write_allowed, backend=backend)(out)   # noqa: E731
    else:
        run = lambda: ad.jvp(shifted_write_allowed, (out,), (np.ones(8),),   # noqa: E731
                             backend=backend)
    with pytest.raises(ad.DifferentiationError) as info:
        run()
    msg = str(info.value)
    assert "allow_races=True" in msg and "internal" not in msg, msg
    assert names_location(msg, line_of(shifted_write_allowed, "out[i + 1] =")), msg
    assert names_location(msg, line_of(shifted_write_allowed, "ad.prange")), msg


@backends
def test_allowed_race_on_an_array_without_derivative_is_differentiated(backend):
    idx = np.array([0, 2, 2, 1, 0, 2])
    u = np.array([0.5, -1.0, 2.0])
    count = np.zeros(3, dtype=np.int64)
    du = ad.grad(histogram_then_weights, argnums=2, backend=backend)(count, idx, u)
    np.testing.assert_allclose(du, 2 * u * np.bincount(idx))


@ad.kernel
def squares_between(x, y, lo, hi):
    """prange(lo, hi) with lo an argument: y[i] is iteration i's own element only where
    lo >= 0 (a negative i counts from the end)."""
    for i in ad.prange(lo, hi):
        y[i] = x[i] * x[i]
    return np.sum(y)


@ad.kernel
def rows_between(a, out, lo, hi):
    for i in ad.prange(lo, hi):
        for j in range(a.shape[1]):
            out[i, j] = np.sin(a[i, j]) * a[i, j]
    return np.sum(out * out)


@backends
def test_a_loop_from_an_argument_runs_with_its_start_checked(backend):
    """The loop runs (primal and reverse) where its start is >= 0, and stops with a
    KernelAssertionError naming its line where the start is negative (it would race)."""
    k = ad.kernel(squares_between.py_func, parallel=True, backend=backend)
    x = np.arange(10.0)
    assert k(x, np.zeros(10), 2, 8) == pytest.approx(np.sum(x[2:8] ** 2))
    g = ad.grad(k)(x, np.zeros(10), 2, 8)
    np.testing.assert_allclose(g, np.where((x >= 2) & (x < 8), 2 * x, 0.0))
    line = inspect.getsourcelines(squares_between.py_func)[1] + 4   # the prange line
    with pytest.raises(ad.KernelAssertionError,
                       match=rf"test_races\.py:{line}: this parallel loop's start is negative"):
        k(x, np.zeros(10), -1, 8)
    with pytest.raises(ad.KernelAssertionError, match="start it at 0 or above"):
        ad.grad(k)(x, np.zeros(10), -1, 8)


@backends
def test_a_nest_from_an_argument_is_differentiated_with_its_start_checked(backend):
    k = ad.kernel(rows_between.py_func, parallel=True, backend=backend)
    a = np.random.default_rng(4).random((6, 3))
    g = ad.grad(k)(a, np.zeros((6, 3)), 1, 5)
    want = np.zeros_like(a)
    f = np.sin(a[1:5]) * a[1:5]
    want[1:5] = 2 * f * (np.cos(a[1:5]) * a[1:5] + np.sin(a[1:5]))
    np.testing.assert_allclose(g, want, rtol=1e-12)


@backends
def test_a_loop_from_an_argument_that_races_anyway_is_refused(backend):
    @ad.kernel(parallel=True, backend=backend)
    def shifted_between(out, lo, hi):
        for i in ad.prange(lo, hi):
            out[i + 1] = out[i] * 0.5
        return out[0]
    with pytest.raises(RaceError, match="race on array 'out'"):
        shifted_between(np.ones(5), 0, 4)


@ad.kernel
def neighbour_products_from(x, lo):
    """A sum over prange(lo, n) reading x[i - 1] and x[i]: the primal reads only (no race
    at any start), but its adjoint scatters into d_x[i - 1] and d_x[i], whose gather form
    needs i - 1 >= -1, i.e. a start known to be >= 0."""
    s = 0.0
    for i in ad.prange(lo, x.shape[0]):
        s += x[i - 1] * x[i] * x[i]
    return s


@backends
@pytest.mark.parametrize("lo", [0, 1, 4])
def test_a_sum_from_an_argument_reading_neighbours_is_differentiated(backend, lo):
    """Its gradient (gather form after a run-time check of the start) is the analytic one;
    it was refused with 'internal: the gather form of this parallel loop's adjoint would
    race'. A negative start stops the gradient with a KernelAssertionError (the primal,
    which only reads, runs)."""
    k = ad.kernel(neighbour_products_from.py_func, backend=backend)
    x = np.linspace(0.3, 1.7, 9)
    g = ad.grad(k)(x, lo)
    want = np.zeros_like(x)
    for i in range(lo, x.shape[0]):
        want[i - 1] += x[i] * x[i]
        want[i] += 2.0 * x[i - 1] * x[i]
    np.testing.assert_allclose(g, want, rtol=1e-12)
    assert k(x, -2) == pytest.approx(neighbour_products_from.py_func(x, -2))
    with pytest.raises(ad.KernelAssertionError, match="start it at 0 or above"):
        ad.grad(k)(x, -2)


@ad.kernel
def copy_into(a, b):
    s = 0.0
    for i in range(a.shape[0]):
        b[i] = a[i]
        s += a[i]
    return s


@ad.kernel
def rows_through_a_scratch_slice(x, out):
    for r in ad.prange(x.shape[0]):
        n = x.shape[1]
        scratch = np.zeros(n)
        s = copy_into(x[r, 1:n - 1], scratch[1:n - 1])   # writes a slice of its own scratch
        for i in range(n):
            s += scratch[i] * scratch[i]
        out[r] = s
    return out


@backends_numba_slow
def test_slices_of_an_array_made_in_the_iteration_are_its_own(backend):
    """Writes through a view of an array allocated in the body (a slice passed to an
    inlined kernel) touch that iteration's memory only: no race (they were refused as a
    race on array 'None'), and the values and gradient are plain Python's and finite
    differences'."""
    x = np.random.default_rng(5).standard_normal((4, 7))
    k = ad.kernel(rows_through_a_scratch_slice.py_func, backend=backend)
    got = k(x.copy(), np.zeros(4))
    want = np.array([np.sum(row[1:-1]) + np.sum(row[1:-1] ** 2) for row in x])
    assert np.allclose(got, want, rtol=1e-13)
    _check_rows_gradient(k, x, ())


def _check_rows_gradient(k, x, rest) -> None:
    """<vjp of k's rows (k(x, out, *rest) -> out) at weights w, d> against central
    differences of <k(x), w> along d."""
    w = np.arange(1.0, x.shape[0] + 1.0)

    def loss(xx):
        return float(np.sum(k(xx, np.zeros(x.shape[0]), *rest) * w))
    g = ad.vjp(k, x.copy(), np.zeros(x.shape[0]), *rest)[1](w)[0]
    d = np.random.default_rng(6).standard_normal(x.shape)
    fd = (loss(x + 1e-6 * d) - loss(x - 1e-6 * d)) / 2e-6
    assert abs(np.sum(g * d) - fd) < 1e-6 * max(1.0, abs(fd))


@ad.kernel
def rows_with_swapped_scratch(x, out, c, nt):
    for r in ad.prange(x.shape[0]):
        n = x.shape[1]
        cur = np.zeros(n)
        for i in range(n):
            cur[i] = x[r, i]
        nxt = np.zeros(n)
        for t in range(nt):   # two buffers of the iteration's own, swapped each step
            for i in range(1, n - 1):
                nxt[i] = cur[i] + c * (cur[i - 1] - 2.0 * cur[i] + cur[i + 1])
            nxt[0] = cur[0]
            nxt[n - 1] = cur[n - 1]
            cur, nxt = nxt, cur
        s = 0.0
        for i in range(n):
            s += cur[i] * cur[i]
        out[r] = s
    return out


@backends_numba_slow
def test_buffers_made_in_the_iteration_and_swapped_by_its_loop_are_its_own(backend):
    """Arrays allocated in the body and swapped by a loop inside it (one variable of the
    iteration's own: its alias class holds nothing else) are no race (they were refused as
    one on 'nxt'); values are plain Python's, the gradient finite differences'."""
    x = np.random.default_rng(7).standard_normal((3, 8))
    k = ad.kernel(rows_with_swapped_scratch.py_func, backend=backend)
    got = k(x.copy(), np.zeros(3), 0.2, 3)
    want = np.zeros(3)
    rows_with_swapped_scratch.py_func(x.copy(), want, 0.2, 3)
    assert np.allclose(got, want, rtol=1e-13)
    _check_rows_gradient(k, x, (0.2, 3))


@ad.kernel(parallel=True)
def red_rows(U0, w, sweeps):
    U = U0.copy()
    m, n = U.shape
    for _ in range(sweeps):
        for k in ad.prange((m - 1) // 2):
            i = 2 * k + 1
            for j in range(1, n - 1):
                U[i, j] = (1 - w) * U[i, j] + w * 0.25 * (U[i, j - 1] + U[i, j + 1]
                                                          + U[i - 1, j] + U[i + 1, j])
        for k in ad.prange((m - 2) // 2):
            i = 2 * k + 2
            for j in range(1, n - 1):
                U[i, j] = (1 - w) * U[i, j] + w * 0.25 * (U[i, j - 1] + U[i, j + 1]
                                                          + U[i - 1, j] + U[i + 1, j])
    return np.sum(U * U)


@backends_numba_slow
def test_rows_two_apart_by_a_scaled_index_are_not_a_race(backend):
    """A red-black sweep over rows i = 2 * k + 1 (then 2 * k + 2) of prange(k) reads rows
    i - 1 and i + 1, which no other iteration writes (2k + 1 and 2k' differ in parity): it
    was refused as a race on 'U'. Value against plain Python; the gradient w.r.t. w, whose
    adjoint accumulates into rows other iterations read, against central differences."""
    U0 = np.random.default_rng(1).uniform(0.0, 1.0, (7, 6))
    k = ad.kernel(red_rows.py_func, backend=backend, parallel=True)
    assert abs(k(U0, 1.3, 2) - red_rows.py_func(U0.copy(), 1.3, 2)) < 1e-12
    g = ad.grad(k, argnums=1)(U0, 1.3, 2)
    h = 1e-6
    fd = (red_rows.py_func(U0.copy(), 1.3 + h, 2) - red_rows.py_func(U0.copy(), 1.3 - h, 2)) \
        / (2 * h)
    assert abs(g - fd) <= 1e-7 * abs(fd)


@ad.kernel
def product_of_rows_below(A, B):
    """Iteration j reads and writes column j of B only, rows below i through slices."""
    for i in range(B.shape[0]):
        for j in ad.prange(B.shape[1]):
            B[i, j] += np.dot(A[i + 1:, i], B[i + 1:, j])
    return B


@ad.kernel
def symmetric_from_triangle(x):
    """Iteration i writes column i and row i from the diagonal on: (k, i) and (i, k) for
    k >= i, which no other iteration writes."""
    m = x.shape[1]
    c = np.zeros((m, m))
    for i in ad.prange(m):
        c[i:m, i] = c[i, i:m] = x[i:m, 0] * x[i, 1]
    return c


@ad.kernel
def strided_triangle(x):
    """Iterations i = 0, 2, 4, ... write rows and columns from the diagonal, each an element
    k >= i of its own: odd rows and columns are never written twice either."""
    m = x.shape[1]
    c = np.zeros((m, m))
    for i in ad.prange(0, m, 2):
        c[i:m, i] = x[i:m, 0]
        c[i, i + 1:m] = x[i + 1:m, 1]
    return c


@ad.kernel
def odd_read_even_written(u, w):
    r = u[1::2]
    for i in ad.prange(u.shape[0] // 2):
        u[2 * i] = np.sin(r[i]) * w[i] + u[2 * i]     # r[i] is u[2 i + 1]: no one writes it
    return u.copy()


@backends
def test_a_stepped_view_read_where_no_iteration_writes_is_no_race(backend):
    """Odd elements read through u[1::2], even ones written: the primal runs and is plain
    Python's (element k of a slice with step s from f is f + s k for the ranges)."""
    rng = np.random.default_rng(5)
    u, w = rng.standard_normal(8), rng.standard_normal(4)
    got = ad.kernel(odd_read_even_written.py_func, backend=backend)(u.copy(), w)
    np.testing.assert_allclose(got, odd_read_even_written.py_func(u.copy(), w), rtol=1e-14)


def _numba_threads(n: int):
    import numba
    previous = numba.get_num_threads()
    numba.set_num_threads(n)
    return previous


@ad.kernel
def mirrored_half(u, w):
    r = u[::-1]
    for i in ad.prange(u.shape[0] // 2):
        u[i] = np.sin(r[i]) * w[i] + u[i]      # r[i] is u[n - 1 - i]: in the other half
    return u.copy()


@ad.kernel
def mirrored_third(u, w):
    r = u[-2::-2]
    for i in ad.prange(u.shape[0] // 3):
        u[i] = r[i] * w[i]                    # r[i] is u[n - 2 - 2 i]: past the first third
    return u.copy()


VIEWED = [odd_read_even_written, mirrored_half, mirrored_third]


@backends_numba_slow
@pytest.mark.parametrize("kernel", VIEWED, ids=[k.__name__ for k in VIEWED])
def test_the_derivative_of_a_stepped_view_read_beside_its_base_is_no_race(kernel, backend):
    """odd_read_even_written's adjoint accumulates into d_r = d_u[1::2] beside d_u[2 i]:
    the elements the primal's accesses touch, and as apart. It was refused ('internal: the
    derivative ... would race on d_u'): the ranges could not tell that the shadow d_u has
    u's length, which clamps d_r's start. The mirrored kernels read a reversed view from
    the end, beside writes to the first half or third: refused as races, for the ranges
    could not relate n - 1 - i' to i over prange(n // 2). Values against plain Python,
    reverse and forward mode against central differences; on numba, the gradient at 1 and
    2 threads bitwise alike."""
    rng = np.random.default_rng(7)
    for n in (8, 9):
        u, w = rng.standard_normal(n), rng.standard_normal(n // 2)
        k = ad.kernel(kernel.py_func, backend=backend)
        np.testing.assert_allclose(k(u.copy(), w), kernel.py_func(u.copy(), w), rtol=1e-14)
        cot = rng.standard_normal(n)
        du, dw = rng.standard_normal(n), rng.standard_normal(n // 2)

        def loss(t, u=u, w=w, du=du, dw=dw, cot=cot):
            return float(np.dot(cot, kernel.py_func(u + t * du, w + t * dw)))
        fd = (loss(1e-6) - loss(-1e-6)) / 2e-6
        _, pullback = ad.vjp(k, u.copy(), w)
        gu, gw = pullback(cot)
        assert abs(np.dot(gu, du) + np.dot(gw, dw) - fd) < 1e-7 * max(1.0, abs(fd))
        _, tangent = ad.jvp(k, (u.copy(), w), (du, dw))
        assert abs(np.dot(cot, tangent) - fd) < 1e-7 * max(1.0, abs(fd))
        if backend == "numba":
            previous = _numba_threads(1)
            try:
                one = pullback(cot)
                _numba_threads(2)
                two = pullback(cot)
            finally:
                _numba_threads(previous)
            assert all(np.array_equal(a, b) for a, b in zip(one, two))


@ad.kernel
def odd_read_even_written_cubed(u, w):
    r = u[1::2]
    for i in ad.prange(u.shape[0] // 2):
        u[2 * i] = np.sin(r[i]) * w[i]
    return np.sum(u * u * u)


@backends_numba_slow
def test_forward_over_reverse_through_a_stepped_view_beside_its_base(backend):
    """H v of odd_read_even_written_cubed (forward mode over the reverse sweep: the tangent
    of the shadow d_u has u's shape too, Function.alike through both engines) against
    central differences of the gradient."""
    rng = np.random.default_rng(4)
    u, w, v = rng.standard_normal(8), rng.standard_normal(4), rng.standard_normal(8)
    k = ad.kernel(odd_read_even_written_cubed.py_func, backend=backend)
    hv = ad.hvp(k, argnums=0)(u.copy(), w, v)
    grad = ad.grad(ad.kernel(odd_read_even_written_cubed.py_func, backend="interp"))
    fd = (grad(u + 1e-6 * v, w) - grad(u - 1e-6 * v, w)) / 2e-6
    assert np.allclose(hv, fd, rtol=1e-6, atol=1e-8)


RANGED = [(product_of_rows_below, lambda rng: (rng.standard_normal((5, 5)),
                                               rng.standard_normal((5, 4)))),
          (symmetric_from_triangle, lambda rng: (rng.standard_normal((6, 4)),)),
          (strided_triangle, lambda rng: (rng.standard_normal((5, 5)),))]


@backends_numba_slow
@pytest.mark.parametrize("kernel, make_args", RANGED, ids=[k.__name__ for k, _ in RANGED])
def test_slices_each_iteration_owns_by_range_are_no_race(kernel, make_args, backend):
    """Accesses through slices whose elements lie in ranges no two iterations share (a
    column read below a row, a triangle from the diagonal) were refused as races: the
    values are plain Python's, the reverse derivative finite differences'."""
    rng = np.random.default_rng(3)
    args = make_args(rng)
    k = ad.kernel(kernel.py_func, backend=backend)
    want = kernel.py_func(*[a.copy() for a in args])
    got = k(*[a.copy() for a in args])
    assert np.allclose(got, want, rtol=1e-13)
    w = rng.standard_normal(want.shape)
    grads = ad.vjp(k, *[a.copy() for a in args])[1](w)
    dirs = [rng.standard_normal(a.shape) for a in args]

    def loss(t):
        return float(np.sum(w * kernel.py_func(*[a + t * d for a, d in zip(args, dirs)])))
    fd = (loss(1e-6) - loss(-1e-6)) / 2e-6
    exact = sum(float(np.sum(g * d)) for g, d in zip(grads, dirs))
    assert abs(exact - fd) < 1e-6 * max(1.0, abs(fd)), (exact, fd)


@ad.kernel
def scaled_sines(u, a, c):
    for i in range(a.shape[0]):
        a[i] = c * np.sin(u[i])
    return 1.0


@ad.kernel
def scaled_sines_over(u, a, lo, hi, c):
    for i in range(lo, hi):
        a[i] = c * np.sin(u[i]) * u[i]
    return 1.0


@ad.kernel
def tasks_on_halves(u, c):
    n = u.shape[0]
    h = n // 2
    out = np.zeros(n)
    r, s = ad.join(scaled_sines, (u[:h], out[:h], c), scaled_sines, (u[h:], out[h:], 2.0 * c))
    return np.sum(out * out) + r + s


@ad.kernel
def tasks_on_index_ranges(u, c):
    n = u.shape[0]
    h = n // 2
    out = np.zeros(n)
    r, s = ad.join(scaled_sines_over, (u, out, 0, h, c),
                   scaled_sines_over, (u, out, h, n, 2.0 * c))
    return np.sum(out * out) + r + s


@ad.kernel
def tasks_on_upper_halves(u, c):
    n = u.shape[0]
    h = (n + 1) // 2       # (out[:h] clips h by n: the ranges must see h <= n)
    out = np.zeros(n)
    r, s = ad.join(scaled_sines, (u[:h], out[:h], c), scaled_sines, (u[h:], out[h:], 2.0 * c))
    return np.sum(out * out) + r + s


@ad.kernel
def tasks_on_overlapping_halves(u, c):
    n = u.shape[0]
    h = n // 2
    out = np.zeros(n)
    r, s = ad.join(scaled_sines, (u[:h + 1], out[:h + 1], c),
                   scaled_sines, (u[h:], out[h:], 2.0 * c))
    return np.sum(out * out) + r + s


TASKED = [tasks_on_halves, tasks_on_upper_halves, tasks_on_index_ranges]


@backends_numba_slow
@pytest.mark.parametrize("kernel", TASKED, ids=[k.__name__ for k in TASKED])
def test_tasks_writing_disjoint_parts_of_one_array_are_no_race(kernel, backend):
    """Two fork-join tasks writing out[:h] and out[h:] (through those views, or by loops
    over 0..h - 1 and h..n - 1) were refused as a race on 'out': tasks had to write arrays
    of their own. The ranges of the elements each may touch now tell them apart. Values
    against plain Python, the gradient against central differences; tasks writing
    out[:h + 1] beside out[h:] stay refused."""
    rng = np.random.default_rng(11)
    k = ad.kernel(kernel.py_func, backend=backend)
    for n in (8, 9):
        u = rng.standard_normal(n)
        assert k(u.copy(), 0.7) == pytest.approx(kernel.py_func(u.copy(), 0.7), rel=1e-14)
        gu, gc = ad.grad(k, argnums=(0, 1))(u.copy(), 0.7)
        d = rng.standard_normal(n)
        fd = (kernel.py_func(u + 1e-6 * d, 0.7 + 1e-6)
              - kernel.py_func(u - 1e-6 * d, 0.7 - 1e-6)) / 2e-6
        assert abs(np.dot(gu, d) + gc - fd) < 1e-7 * max(1.0, abs(fd))
    with pytest.raises(RaceError, match="tasks of this fork-join race on array 'out'"):
        ad.kernel(tasks_on_overlapping_halves.py_func, backend=backend)(np.ones(8), 0.7)


@ad.kernel
def downward_red_black(u, nt):
    n = u.shape[0]
    for t in range(nt):
        for colour in range(2):
            for i in ad.prange(n - 2 - colour, 0, -2):   # i and i - 2 never meet at i - 1
                u[i] = 0.5 * (u[i - 1] + u[i + 1]) + 0.1 * u[i] * u[i]
    return np.sum(u * u)


@ad.kernel
def downward_triples(x):
    n = x.shape[0]
    out = np.zeros(n)
    for i in ad.prange(n - 1, 2, -3):    # elements i, i - 1, i - 2: three apart per step
        out[i] = x[i] * x[i - 2]
        out[i - 1] = x[i] + x[i - 2]
        out[i - 2] = x[i - 1] * x[i - 1]
    return np.sum(out * np.arange(n))


@ad.kernel
def downward_doubled(x):
    n = x.shape[0]
    out = np.zeros(2 * n)
    for i in ad.prange(n - 1, -1, -1):   # 2 i and 2 i + 1: distinct, never negative
        out[2 * i] = x[i] * x[i]
        out[2 * i + 1] = np.sin(x[i])
    return np.sum(out * np.arange(2 * n))


@ad.kernel
def downward_two_apart(out):
    for i in ad.prange(out.shape[0] - 1, 1, -2):
        out[i - 2] = out[i] * 0.5      # iteration i writes what iteration i - 2 reads
    return out[0]


@ad.kernel
def downward_wraparound(out):
    for i in ad.prange(out.shape[0] - 1, -1, -2):
        out[i - 1] = out[i] + 1.0      # i = 0 writes out[-1], which the first iteration
    return out[0]                      # reads when the length is odd


DOWNWARD = [(downward_red_black, lambda n: (np.linspace(0.1, 0.6, n), 2)),
            (downward_triples, lambda n: (np.linspace(0.5, 1.5, n),)),
            (downward_doubled, lambda n: (np.linspace(0.5, 1.5, n),))]


@backends_numba_slow
@pytest.mark.parametrize("kernel, make_args", DOWNWARD, ids=[k.__name__ for k, _ in DOWNWARD])
def test_downward_steps_touching_elements_apart_are_no_race(kernel, make_args, backend):
    """A prange with a negative step whose iterations touch elements k * i + c apart (a
    red-black sweep running down, elements i, i - 1, i - 2 with step -3, 2 i and 2 i + 1)
    was refused as a race: the rule for steps other than 1 took positive steps only. Values
    against plain Python, the gradient against central differences; writes a downward step
    apart, or at -1, stay refused."""
    k = ad.kernel(kernel.py_func, backend=backend)
    rng = np.random.default_rng(3)
    for n in (9, 10):
        args = make_args(n)
        copy = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
        assert k(*copy) == pytest.approx(kernel.py_func(*args), rel=1e-14)
        g = ad.grad(k)(*make_args(n))
        d = rng.standard_normal(n)
        fd = (kernel.py_func(make_args(n)[0] + 1e-6 * d, *make_args(n)[1:])
              - kernel.py_func(make_args(n)[0] - 1e-6 * d, *make_args(n)[1:])) / 2e-6
        assert abs(np.dot(g, d) - fd) < 1e-7 * max(1.0, abs(fd))
    for racy in (downward_two_apart, downward_wraparound):
        with pytest.raises(RaceError, match="race on array 'out'"):
            ad.kernel(racy.py_func, backend=backend)(np.ones(9))


def blocks_of_rows(x, y, n, m, nt):
    """PyLops's Kirchhoff modelling: iteration isrc writes rows isrc * m + irec, irec in
    range(m), at two columns: its own block of m rows."""
    for isrc in ad.prange(n):
        for irec in range(m):
            for it in range(nt - 1):
                y[isrc * m + irec, it] += x[isrc, irec] * 0.25
                y[isrc * m + irec, it + 1] += x[isrc, irec] * 0.75
    return y


def blocks_of_a_constant(x, y):
    for i in ad.prange(x.shape[0]):
        for j in range(3):
            y[3 * i + j + 1] = x[i] * j
    return y


def block_one_too_long(x, y, n, m):
    for i in ad.prange(n):
        for j in range(m + 1):
            y[i * m + j] += x[i]
    return y


def block_of_another_length(x, y, n, m, k):
    for i in ad.prange(n):
        for j in range(k):
            y[i * m + j] += x[i]
    return y


def blocks_shifted(x, y, n, m):
    for i in ad.prange(n):
        for j in range(m):
            y[i * m + j] += x[i]
            y[i * m + j + 1] += x[i]
    return y


def sums_in_an_inner_prange(x, y):
    """PyLops's Kirchhoff adjoint nests prange(ns) in prange(ni), both adding into y[ii]:
    the inner one runs serially, as numba runs it."""
    for i in ad.prange(x.shape[0]):
        for k in ad.prange(x.shape[1]):
            y[i] += x[i, k] * x[i, k]
    return y


def inner_prange_racing_with_other_rows(x, y):
    for i in ad.prange(x.shape[0]):
        for k in ad.prange(x.shape[1]):
            y[k] += x[i, k]
    return y


@backends
def test_each_iterations_block_of_a_flattened_index_is_not_a_race(backend):
    """y[i * m + j] for j in range(m) (and k * i + j + c for a constant k) names elements
    only iteration i touches; hpcad refused it as a race. Values against plain Python, the
    gradient of a weighted sum against the analytic one (the loops' transpose)."""
    rng = np.random.default_rng(0)
    n, m, nt = 3, 4, 5
    x = rng.standard_normal((n, m))
    got = ad.kernel(blocks_of_rows, backend=backend)(x, np.zeros((n * m, nt)), n, m, nt)
    want = blocks_of_rows(x, np.zeros((n * m, nt)), n, m, nt)
    np.testing.assert_array_equal(got, want)
    w = rng.standard_normal((n * m, nt))
    _, pullback = ad.vjp(ad.kernel(blocks_of_rows, backend=backend),
                         x, np.zeros((n * m, nt)), n, m, nt)
    rows = (0.25 * w[:, :-1] + 0.75 * w[:, 1:]).sum(axis=1)
    np.testing.assert_allclose(pullback(w)[0], rows.reshape(n, m), rtol=1e-13)
    v = rng.standard_normal(4)
    got = ad.kernel(blocks_of_a_constant, backend=backend)(v, np.zeros(13))
    np.testing.assert_array_equal(got, blocks_of_a_constant(v, np.zeros(13)))


def blocks_of_an_inner_prange(x, y, n, m):
    """Sliced ELLPACK's SpMV as its authors write it: `for s in prange(slices): for r in
    prange(height): ... y[s * height + r] = row`, the inner prange running serially."""
    for s in ad.prange(n):
        for r in ad.prange(m):
            y[s * m + r] = x[s] * (r + 1.0)
    return y


def block_of_an_inner_prange_one_too_long(x, y, n, m):
    for s in ad.prange(n):
        for r in ad.prange(m + 1):
            y[s * m + r] = x[s] * (r + 1.0)
    return y


def test_the_block_of_an_inner_prange_is_not_a_race():
    """y[s * m + r] for r in an inner prange(m) is iteration s's own block as for r in
    range(m) (the inner prange runs serially in it); hpcad refused it as a race. Values
    against plain Python, the vjp against the loops' transpose."""
    x = np.array([1.0, -2.0, 0.5])
    k = ad.kernel(blocks_of_an_inner_prange, backend="interp")
    np.testing.assert_array_equal(k(x, np.zeros(12), 3, 4),
                                  blocks_of_an_inner_prange(x, np.zeros(12), 3, 4))
    w = np.arange(12.0)
    _, pullback = ad.vjp(k, x, np.zeros(12), 3, 4)
    np.testing.assert_allclose(pullback(w)[0], w.reshape(3, 4) @ np.arange(1.0, 5.0),
                               rtol=1e-15)


@pytest.mark.parametrize("kernel, args", [
    (block_one_too_long, (np.ones(3), np.zeros(20), 3, 4)),
    (block_of_an_inner_prange_one_too_long, (np.ones(3), np.zeros(20), 3, 4)),
    (block_of_another_length, (np.ones(3), np.zeros(20), 3, 4, 4)),
    (blocks_shifted, (np.ones(3), np.zeros(20), 3, 4)),
    (inner_prange_racing_with_other_rows, (np.ones((3, 4)), np.zeros(4))),
], ids=lambda p: getattr(p, "__name__", ""))
def test_blocks_that_may_meet_are_still_races(kernel, args):
    """j up to m (one past the block), j below another value than the multiplier (k may
    exceed m), two blocks shifted by one: iterations may meet; an inner prange's writes race
    with the outer loop's other iterations."""
    with pytest.raises(RaceError, match="race on array 'y'"):
        ad.kernel(kernel, backend="interp")(*args)


@backends
def test_a_prange_inside_another_runs_serially_and_adds_into_one_element(backend):
    """The inner prange's iterations all add into y[i]: serial, as numba runs it, so no race
    (hpcad refused it). Values against plain Python, the gradient against 2 x."""
    x = np.random.default_rng(1).standard_normal((3, 5))
    kernel = ad.kernel(sums_in_an_inner_prange, backend=backend)
    np.testing.assert_allclose(kernel(x, np.zeros(3)), sums_in_an_inner_prange(x, np.zeros(3)),
                               rtol=1e-15)
    _, pullback = ad.vjp(kernel, x, np.zeros(3))
    np.testing.assert_allclose(pullback(np.ones(3))[0], 2.0 * x, rtol=1e-15)


def test_a_race_error_says_numba_runs_prange_serially_without_parallel():
    """PyLops's sprayer forward is @njit(parallel=False) with a prange whose iterations add
    into the same elements: numba runs it serially; hpcad's message says to write range()."""
    with pytest.raises(RaceError, match=r"without parallel=True: write range\(\) for such a "
                                        r"loop"):
        ad.kernel(shifted_write.py_func, backend="interp")(np.ones(8))
