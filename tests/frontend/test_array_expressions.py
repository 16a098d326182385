"""NumPy array syntax in kernels (frontend/arrays.py): each kernel's primal equals
numba.njit of the same source, and its derivatives pass the harness's three checks
(jvp and vjp against central finite differences of the plain NumPy function, jvp against
vjp), on both backends; plus the NumPy semantics that a fused loop could get wrong
(overlapping slices, views, new names) and the errors for what stays unsupported."""
import ast

import numba
import numpy as np
import pytest

import hpcad as ad
from hpcad.errors import HpcadError, KernelAssertionError, UnsupportedConstruct
from hpcad.frontend import syntax
from tests.ad.harness import (
    ALL_KERNELS,
    BACKENDS,
    INTERP_FAST,
    check_case,
    njit_of,
    on_backends,
    on_numba,
    relative_error,
)
from tests.ad.kernels import Case


def laplace_1d(u, out):
    out[1:-1] = u[:-2] - 2.0 * u[1:-1] + u[2:]
    return out[1] * out[2] + out[-2]


def jacobi_2d(A, B, steps):
    for _ in range(steps):
        B[1:-1, 1:-1] = 0.2 * (A[1:-1, 1:-1] + A[1:-1, :-2] + A[1:-1, 2:] + A[2:, 1:-1]
                               + A[:-2, 1:-1])
        A[1:-1, 1:-1] = 0.2 * (B[1:-1, 1:-1] + B[1:-1, :-2] + B[1:-1, 2:] + B[2:, 1:-1]
                               + B[:-2, 1:-1])
    s = 0.0
    for i in range(A.shape[0]):
        for j in range(A.shape[1]):
            s += A[i, j] * A[i, j] * (i + 1)
    return s


def ufuncs(x, y, out):
    out[:] = np.exp(-x) * np.sin(y) + np.sqrt(x * x + 1.0) - np.abs(y) ** 1.5
    out += np.maximum(x, 0.3) * np.minimum(y, 0.2) + np.arctan2(y, x + 2.0)
    out -= np.where(x > y, x * y, 2.0 * y) + np.clip(x, 0.2, 0.7) * np.sign(y - 0.4)
    out *= np.tanh(x) + np.log1p(x) + np.cos(y) / (1.0 + np.square(x))
    s = 0.0
    for i in range(out.shape[0]):
        s += out[i] * (i + 1.0)
    return s


def steps_and_ends(u, v):
    v[::2] = u[1::2] * 3.0 + u[::-2]
    v[-3:] += u[:3] * u[-3:]
    v[:-5:-1] = v[:-5:-1] - u[2:6]
    s = 0.0
    for i in range(v.shape[0]):
        s += v[i] * v[i] * (1.0 + 0.1 * i)
    return s


def outer_broadcast(x, y, M):
    M[:, :] = x[:, np.newaxis] * y[np.newaxis, :] + x[:, None] - 0.5 * y
    M[1] = M[0] + y
    M[:, 0] = 2.0 * x
    s = 0.0
    for i in range(M.shape[0]):
        for j in range(M.shape[1]):
            s += M[i, j] * np.cos(i + 0.5 * j)
    return s


def new_names_and_views(u, w):
    t = u * 2.0 + 1.0          # a new array: writing into it leaves u alone
    t[0] = 100.0
    inner = w[1:-1]            # a view: writing into it writes w
    inner[:] = t[1:-1] * u[:-2]
    inner += u[2:]
    s = 0.0
    for i in range(w.shape[0]):
        s += w[i] * w[i] + u[i] * t[i]
    return s


def overlapping(a, b):
    a[1:] = a[:-1] * 2.0       # NumPy reads the whole right side first
    b[:-1] += b[1:]
    s = 0.0
    for i in range(a.shape[0]):
        s += a[i] * (i + 1.0) + b[i] * b[i]
    return s


def in_prange(x, out):
    for i in numba.prange(x.shape[0]):
        out[i, :] = np.exp(x[i, :]) * x[i, ::-1]
    s = 0.0
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            s += out[i, j] * (j + 1.0)
    return s


def masked(a, b):
    a[a < 0.3] = 0.25
    b[a > b] += 2.0 * a[0]
    b[b > 1.5] *= a[1]
    s = 0.0
    for i in range(a.shape[0]):
        s += a[i] * b[i] * (i + 1)
    return s


def fresh_each_step(u, nt):
    un = np.empty_like(u)
    for _ in range(nt):
        un = u * 1.0           # a new array every step, read only in its step
        u[1:-1] = un[1:-1] + 0.1 * (un[2:] - 2.0 * un[1:-1] + un[:-2])
    s = 0.0
    for i in range(u.shape[0]):
        s += u[i] * u[i] * (i + 1)
    return s


def bound_transpose(A, x):
    At = A.T                   # a copy hpcad may take: nothing writes A or At
    y = At @ x + At[:, 0]
    return y[0] * y[1] + At[1, 0]


def cg_rebinding(A, b, iters):
    x = b * 0.0
    r = b - A @ x
    p = r * 1.0
    rs = np.dot(r, r)
    for _ in range(iters):          # x, r, p: a new array each step (double-buffered)
        Ap = A @ p
        alpha = rs / np.dot(p, Ap)
        x = x + alpha * p
        r = r - alpha * Ap
        rs_new = np.dot(r, r)
        p = r + (rs_new / rs) * p
        rs = rs_new
    return np.dot(x, x)


@ad.kernel
def matvec_into(A, x, out):
    for i in range(x.shape[0]):
        out[i] = np.dot(A[i], x)


@ad.kernel
def dot_kernel(x, y):
    return np.sum(x * y)


def cg_calling_kernels(A, b, iters):
    x = np.zeros(b.shape[0])
    r = b.copy()
    p = r.copy()
    Ap = np.zeros(b.shape[0])
    rs = dot_kernel(r, r)
    for _ in range(iters):          # p, passed to kernels that keep nothing: double-buffered
        matvec_into(A, p, Ap)
        alpha = rs / dot_kernel(p, Ap)
        x += alpha * p
        r -= alpha * Ap
        rs_new = dot_kernel(r, r)
        p = r + (rs_new / rs) * p
        rs = rs_new
    return np.dot(x, x) + x[0]


def _spd(rng):
    m = rng.uniform(0.1, 0.9, (5, 5))
    return m @ m.T + 5.0 * np.eye(5)


@ad.kernel
def relu(x):
    return np.maximum(x, 0.0)


def column_broadcast_and_call(x, w):
    m = np.empty((x.shape[0], 1))        # a constant 1 broadcasts, as in NumPy
    for i in range(x.shape[0]):
        m[i, 0] = x[i, 0] * 0.3
    y = relu(x - m) * w                  # an expression passed to a kernel: a new array
    s = 0.0
    for i in range(y.shape[0]):
        for j in range(y.shape[1]):
            s += y[i, j] * (i + j + 1)
    return s


def eye_hstack_flip(x, y):
    n = x.shape[0]
    M = np.eye(n) + 0.5 * np.eye(n, n + 1)[:, 1:]
    z = np.hstack((x, np.flip(y)))          # a new array of length 2n
    y[:] += 0.3 * np.flip(y)                # reads y reversed while writing it: a temporary
    w = M @ x + z[:n] * z[n:] + np.flip(y)
    return np.dot(w, w)


def triangles(m, x, y, k):
    pe = np.sum(np.triu(-(m[:, np.newaxis] * m[np.newaxis, :]) * x, 1))   # nbody's energy
    y[:] = np.tril(y, k=k) + 0.5 * np.triu(y, -k)       # in place, the same positions read
    return pe + np.sum(y * y)


def masked_reads(x, r, A):
    s = 0.0
    for i in range(3):   # azimint_naive's bins: the values whose radius falls in each
        sel = x[np.logical_and(i / 3.0 <= r, r < (i + 1) / 3.0)]
        s += sel.mean() * (i + 1.0)
    a = A.ravel()
    return s + np.sum(a[a > 0.5] ** 2) + np.sum(x[r > 2.0])   # a view; an empty selection


def _rand(*shape):
    return lambda rng: rng.uniform(0.1, 0.9, shape)


CASES = [
    Case("laplace_1d", ad.kernel(laplace_1d), lambda r: (_rand(11)(r), np.zeros(11))),
    Case("jacobi_2d", ad.kernel(jacobi_2d), lambda r: (_rand(7, 6)(r), np.zeros((7, 6)), 2)),
    Case("ufuncs", ad.kernel(ufuncs), lambda r: (_rand(9)(r), _rand(9)(r), np.zeros(9)),
         fd_rtol=1e-5),
    Case("steps_and_ends", ad.kernel(steps_and_ends), lambda r: (_rand(10)(r), _rand(10)(r))),
    Case("outer_broadcast", ad.kernel(outer_broadcast),
         lambda r: (_rand(5)(r), _rand(4)(r), np.zeros((5, 4)))),
    Case("new_names_and_views", ad.kernel(new_names_and_views),
         lambda r: (_rand(8)(r), _rand(8)(r))),
    Case("overlapping", ad.kernel(overlapping), lambda r: (_rand(7)(r), _rand(7)(r))),
    Case("in_prange", ad.kernel(in_prange), lambda r: (_rand(4, 5)(r), np.zeros((4, 5)))),
    Case("masked", ad.kernel(masked), lambda r: (_rand(9)(r), _rand(9)(r))),
    Case("fresh_each_step", ad.kernel(fresh_each_step), lambda r: (_rand(9)(r), 3)),
    Case("cg_rebinding", ad.kernel(cg_rebinding), lambda r: (_spd(r), _rand(5)(r), 3)),
    Case("cg_calling_kernels", ad.kernel(cg_calling_kernels),
         lambda r: (_spd(r), _rand(5)(r), 4)),
    Case("column_broadcast_and_call", ad.kernel(column_broadcast_and_call),
         lambda r: (_rand(4, 3)(r), _rand(4, 3)(r))),
    Case("eye_hstack_flip", ad.kernel(eye_hstack_flip), lambda r: (_rand(5)(r), _rand(5)(r))),
    Case("bound_transpose", ad.kernel(bound_transpose), lambda r: (_rand(3, 3)(r), _rand(3)(r))),
    Case("triangles", ad.kernel(triangles),
         lambda r: (_rand(4)(r), _rand(4, 4)(r), _rand(4, 6)(r), 1)),
    Case("masked_reads", ad.kernel(masked_reads),
         lambda r: (_rand(30)(r), r.uniform(0.0, 1.0, 30), _rand(4, 5)(r))),
]
FAST = ("jacobi_2d",)
# The cases each test compiles with numba (harness.ALL_KERNELS: all): together they run every
# line of the numba backend's code generation, and call every function in the generated
# code, that all the cases do in that test (tests/numba_cover.py), but for cg_rebinding's,
# which the kept numba cases of other files generate too (numba_cover over them). The others
# run on the interpreter; a kernel calling kernels compiles on numba here (cg_calling_kernels).
PRIMAL_ON_NUMBA = ("jacobi_2d", "in_prange", "eye_hstack_flip", "masked_reads", "ufuncs",
                   "outer_broadcast", "steps_and_ends", "cg_calling_kernels", "overlapping")
# The derivatives of the others generate nothing that these, the primals above and the kept
# numba cases of the other width-1 derivative tests do not (tests/numba_cases.py, `python -m
# tests.numba_cover "tests.numba_cases:cases()"`).
DERIVATIVES_ON_NUMBA = ("jacobi_2d", "masked_reads")
CALLS_KERNELS = ("column_broadcast_and_call", "cg_calling_kernels")


@pytest.mark.parametrize("backend, case", [
    pytest.param(backend, case, id=f"{backend}-{case.name}",
                 marks=pytest.mark.slow if backend == "numba" else ())
    for case in CASES for backend in BACKENDS
    if backend == "interp" or on_numba(case.name, PRIMAL_ON_NUMBA)])
def test_primal_equals_numba(case, backend):
    rng = np.random.default_rng(1)
    args = case.make_args(rng)
    mine = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
    theirs = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
    got = ad.kernel(case.kernel.py_func, backend=backend)(*mine)
    # numba cannot call an hpcad kernel: there, plain NumPy is the reference
    reference = case.kernel.py_func if case.name in CALLS_KERNELS else \
        njit_of(case.kernel.py_func)
    want = reference(*theirs)
    assert relative_error(got, want) <= 1e-12
    for m, t in zip(mine, theirs):
        if isinstance(m, np.ndarray):
            assert relative_error(m, t) <= 1e-12


@on_backends(CASES, fast_on_numba=FAST, numba=DERIVATIVES_ON_NUMBA)
def test_derivatives(case, backend):
    check_case(case, backend)


# jacobi_2d with parallel=True generates no numba code that the cases above do not (numba_cover
# with it among the cases): the interpreter (harness.ALL_KERNELS: numba too)
@pytest.mark.parametrize("backend", ["interp"] + (["numba"] if ALL_KERNELS else []))
def test_parallel_true_is_parallel_and_agrees(backend):
    serial = ad.kernel(jacobi_2d, backend=backend)
    par = ad.kernel(jacobi_2d, backend=backend, parallel=True)
    rng = np.random.default_rng(3)
    A, B = rng.random((9, 8)), np.zeros((9, 8))
    spec = par.specialize(par.bind((A, B, 2)))
    assert any(op.name == "par.parallel_for" for op in _ops(spec.primal.body))
    assert relative_error(par(A.copy(), B.copy(), 2), serial(A.copy(), B.copy(), 2)) <= 1e-12
    g_par = ad.grad(par)(A, B, 2)
    g_ser = ad.grad(serial)(A, B, 2)
    assert relative_error(g_par, g_ser) <= 1e-12


def _ops(block):
    for op in block.ops:
        yield op
        for r in op.regions:
            yield from _ops(r)


def masks_of_matrices(d, y, L):
    d[d > L / 2] = d[d > L / 2] - L      # the selected elements, paired in C order
    d[d < -L / 2] += d[d < -L / 2] * 0.5 + L
    y[y > 0.5] *= d[y > 0.5]
    sel = d[d > 0.1]
    return np.sum(sel * sel) + np.sum(d * y)


def compacting_mask(a, b):
    a[a > 0.5] = b[a > 0.5]
    a[a < 0.2] -= b[:a.shape[0] - 5]       # the length only known at run time
    return a[0] + a[-1] * a[2]


def springs(pos, k):
    """numpy-benchmarks' wave: a difference of rows unpacked into two numbers, a tuple of
    numbers stored into rows (chained)."""
    force = np.zeros_like(pos)
    for i in range(1, pos.shape[0]):
        dx, dy = pos[i] - pos[i - 1]
        dist = np.sqrt(dx * dx + dy * dy)
        force[i - 1] += k * dist * np.array([dx, dy])
    force[0] = force[-1] = 0.0, k
    return np.sum(force * pos)


# numba reads through 1-D masks only, and stores no tuple into a row: NumPy is the reference
MASK_CASES = [
    Case("masks_of_matrices", ad.kernel(masks_of_matrices),
         lambda r: (r.uniform(-3.0, 3.0, (4, 5)), _rand(4, 5)(r), 2.0)),
    Case("compacting_mask", ad.kernel(compacting_mask),
         lambda r: (np.array([0.1, 0.9, 0.15, 0.6, 0.7, 0.3, 0.05, 0.4]),
                    r.uniform(0.25, 0.45, 8))),
    Case("springs", ad.kernel(springs), lambda r: (r.uniform(0.0, 1.0, (5, 2)), 1.5))]


@on_backends(MASK_CASES, numba=("masks_of_matrices",))
def test_masks_of_matrices_and_arrays_through_masks_match_numpy(case, backend):
    args = case.make_args(np.random.default_rng(4))
    mine = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
    theirs = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
    assert relative_error(ad.kernel(case.kernel.py_func, backend=backend)(*mine),
                          case.kernel.py_func(*theirs)) <= 1e-12
    for m, t in zip(mine, theirs):
        if isinstance(m, np.ndarray):
            assert relative_error(m, t) <= 1e-12
    check_case(case, backend)


def too_many_values(a, b):
    a[a > 0.5] = b


def unpacked(v):
    x, y = v * 2.0
    return x + y


def test_a_vector_of_another_length_unpacked_stops_the_kernel():
    with pytest.raises(ValueError):
        unpacked(np.ones(3))
    assert ad.kernel(unpacked, backend="interp")(np.array([1.0, 2.0])) == 6.0
    with pytest.raises(KernelAssertionError, match="its length is not 2") as e:
        ad.kernel(unpacked, backend="interp")(np.ones(3))
    assert f"test_array_expressions.py:{unpacked.__code__.co_firstlineno + 1}:" in str(e.value)


def test_a_vector_of_another_length_through_a_mask_stops_the_kernel():
    a, b = np.array([1.0, 0.0, 1.0]), np.ones(3)
    with pytest.raises(ValueError, match="cannot assign 3 input values to the 2 output"):
        too_many_values(a.copy(), b)
    with pytest.raises(KernelAssertionError, match="not one element for each selected") as e:
        ad.kernel(too_many_values, backend="interp")(a, b)
    assert f"test_array_expressions.py:{too_many_values.__code__.co_firstlineno + 1}:" in \
        str(e.value)


def mismatched(a, b, out):
    out[:] = a + b
    return out[0]


@pytest.mark.parametrize("backend", INTERP_FAST)
def test_different_lengths_stop_the_kernel(backend):
    k = ad.kernel(mismatched, backend=backend)
    assert k(np.ones(4), np.ones(4), np.zeros(4)) == 2.0
    with pytest.raises(KernelAssertionError, match=r"test_array_expressions.py:\d+.*lengths"):
        k(np.ones(4), np.ones(5), np.zeros(4))


def new_axis_name(u):
    v = u[:, np.newaxis]
    return v[0, 0]


def fancy(u, idx):
    u[idx] = 0.0
    return u[0]


def matrix_through_mask(a, b):
    a[a > 0.5] = b
    return a[0]


def last_fresh_array(u, nt):
    un = np.empty_like(u)
    for _ in range(nt):
        un = u * 1.0
    return un[0]


def written_transpose(A, x):
    At = A.T
    A[0, 0] = 5.0
    return At[0, 0] + x[0]


def transpose_written_through_a_view(A, x):
    V = A[:, :]
    At = A.T
    V[0, 1] = 5.0 * x[0]
    return At[1, 0] + x[0]


def transpose_written_through_an_alias(A, x):
    V = A
    At = A.T
    V[0, :] *= 3.0
    return np.sum(At @ x)


def transpose_written_through_rows(A, x):
    At = A.T
    for row in A:
        row[0] = x[0]
    return At[0, 1]


@ad.kernel
def same(a):
    return a


def transpose_written_through_a_call(A, x):
    At = A.T
    B = same(A)
    B[1, 0] = 2.0
    return At[0, 1] + x[0]


@pytest.mark.parametrize("fn", [transpose_written_through_a_view,
                                transpose_written_through_an_alias,
                                transpose_written_through_rows,
                                transpose_written_through_a_call])
def test_transpose_written_through_another_name_is_refused(fn):
    """`At = A.T` is a copy in hpcad: a write into A through another name of its memory
    (a view, an alias, a loop's rows, a kernel's result) after it would leave At stale (the
    primal and the gradient were silently wrong): refused, naming the write's line."""
    args = (np.arange(4.0).reshape(2, 2), np.ones(2))
    with pytest.raises(UnsupportedConstruct, match=r"transposed array that the kernel also "
                                                   r"writes into \(line \d+\)") as e:
        ad.kernel(fn, backend="interp")(*args)
    assert "test_array_expressions.py:" in str(e.value)


def flipped_beside_numpy_calls(u, w):
    r = np.flip(u)
    return np.sum(np.sin(r) * w) + np.dot(np.tanh(u), w)


def test_named_flip_beside_numpy_calls_is_not_refused():
    """The module `np` on the right of `r = np.flip(u)` is no array: calls like np.sin(...)
    elsewhere are no writes into it (they were taken for ones, and the kernel refused)."""
    u, w = np.linspace(-1.0, 1.0, 5), np.linspace(0.5, 2.0, 5)
    k = ad.kernel(flipped_beside_numpy_calls, backend="interp")
    assert k(u, w) == pytest.approx(flipped_beside_numpy_calls(u, w), rel=1e-14)
    g = ad.grad(k, argnums=0)(u, w)
    want = np.flip(np.cos(np.flip(u)) * w) + w / np.cosh(u) ** 2
    assert np.allclose(g, want, rtol=1e-12)


def rebinding_to_existing(a, b, n):
    for _ in range(n):
        b[0] += a[0]
        a = b
    return a[0]


def test_rebinding_to_an_existing_array_is_not_double_buffered():
    """`a = b` makes a an alias of b (NumPy): the loop carries it as it is (the primal runs)
    and the reverse sweep, which can only follow swaps, says so."""
    k = ad.kernel(rebinding_to_existing, backend="interp")
    assert k(np.ones(3), np.ones(3), 2) == rebinding_to_existing(np.ones(3), np.ones(3), 2)
    with pytest.raises(ad.DifferentiationError, match="does not just swap"):
        ad.grad(k)(np.ones(3), np.ones(3), 2)


@ad.kernel
def head_view(x):
    return x[:]


def rebinding_beside_a_kept_view(b, iters):
    p = b.copy()
    s = 0.0
    for _ in range(iters):
        q = head_view(p)            # may be p's memory: p is not double-buffered
        p = p * 0.5 + 1.0
        s += q[0] * p[1]
    return s


def test_rebinding_beside_a_kernel_result_keeps_the_old_array():
    """A kernel call whose result is bound (it may be its argument's memory) keeps `p` out
    of the double buffers: the primal reads the old array, and reverse mode says what to do."""
    k = ad.kernel(rebinding_beside_a_kept_view, backend="interp")
    b = np.array([1.0, 2.0])
    assert k(b, 3) == rebinding_beside_a_kept_view(b, 3)
    with pytest.raises(ad.DifferentiationError, match=r"p\[:\] = \.\.\."):
        ad.grad(k)(b, 3)


def array_as_scalar(u):
    r = 0.0
    if u > 0.5:
        r = 1.0
    return r


@pytest.mark.parametrize("fn, args, words", [
    (new_axis_name, (np.ones(4),), "giving a name to a slice with np.newaxis"),
    (fancy, (np.ones(4), np.zeros(2, dtype=np.int64)), "indexing with an array"),
    (array_as_scalar, (np.ones(4),), "where a scalar is expected"),
    (matrix_through_mask, (np.ones(4), np.ones((2, 2))), "a 2-D array through a boolean mask"),
    (last_fresh_array, (np.ones(4), 2), "after the loop at line"),
    (written_transpose, (np.ones((2, 2)), np.ones(2)), "transposed array that the kernel also"),
])
def test_unsupported_says_what_and_where(fn, args, words):
    with pytest.raises(UnsupportedConstruct, match=words) as e:
        ad.kernel(fn, backend="interp")(*args)
    assert "test_array_expressions.py:" in str(e.value)
    assert isinstance(e.value, HpcadError)


def float32_literals(x, out):
    out[:] = x * 0.5 + np.exp(-x) * 3 - np.maximum(x, 0.25) ** 2
    return out[1]


@pytest.mark.parametrize("backend", INTERP_FAST)
def test_literals_keep_float32_arrays_float32(backend):
    """A number in the source takes the float type of the float32 arrays it meets (NumPy's
    weak scalars, numba's array typing): the primal is float32 all through, the same bits
    on both backends (the C library's expf, as numba's code calls); NumPy's own float32 exp
    and numba.njit's float64 arithmetic (its type for `x * 0.5`) differ in float32's last
    bit."""
    x = np.random.default_rng(2).random(9).astype(np.float32)
    mine, theirs = np.zeros(9, np.float32), np.zeros(9, np.float32)
    k = ad.kernel(float32_literals, backend=backend)
    spec = k.specialize(k.bind((x, mine)))
    assert not any(getattr(op.results[0].type, "name", "") == "f64"
                   for op in _ops(spec.primal.body) if op.results and op.name != "arith.const"
                   and op.name.startswith(("arith.", "math.")))
    got = k(x, mine)
    want = float32_literals(x, theirs)
    jitted = np.zeros(9, np.float32)
    njit_of(float32_literals)(x, jitted)
    on_interp = np.zeros(9, np.float32)
    ad.kernel(float32_literals, backend="interp")(x, on_interp)
    assert np.array_equal(mine, on_interp) and got == on_interp[1]
    assert got == pytest.approx(want, rel=4e-7)
    np.testing.assert_allclose(mine, theirs, rtol=4e-7)
    np.testing.assert_allclose(mine, jitted, rtol=4e-7)


@pytest.mark.parametrize("source, fresh", [
    ("matvec(A, p, Ap)\na = rs / dot(p, Ap)\np = r + a * p", True),
    ("q = f(p)\np = r + p", False),
    ("q = g(x=f(p))\np = r + p", False),          # g may return its keyword argument
    ("q = (f(p), 1.0)\np = r + p", False),
    ("for row in f(p):\n    s += row[0]\np = r + p", False),
])
def test_which_kernel_calls_keep_an_array_from_being_double_buffered(source, fresh):
    """syntax.rebound_afresh with every call a kernel: a call whose result nothing keeps
    (a statement, a number in an expression) lets `p` be double-buffered; one whose result,
    or a call taking it, is bound or iterated may be p's memory."""
    body = ast.parse(source).body
    assert syntax.rebound_afresh(body, "p", lambda f: False, lambda f: True) is fresh


def lengths_of_expressions(u, idx):
    return (len(u[::2]) + 10 * len(u[1:] * 2.0) + 100 * len(np.flip(u))
            + 1000 * len(u[:, np.newaxis]) + 10000 * len(u[idx]))


def test_len_of_an_array_expression_is_its_first_axis():
    """len() of a stepped slice, an array expression, np.flip, a new axis and an
    integer-array read, as numba gives it: hpcad said they were not arrays."""
    u, idx = np.ones(7), np.array([0, 3, 3])
    assert ad.kernel(lengths_of_expressions, backend="interp")(u, idx) == \
        lengths_of_expressions(u, idx)
