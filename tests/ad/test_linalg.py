"""Matrix products in kernels (`@`, np.matmul, np.dot, a.dot, np.outer, .T, np.transpose):
the primal equals numba.njit of the same source, derivatives match central finite
differences and each other (harness.check_case), batched derivatives equal W separate calls
(width_check.py), on both backends; the derivatives are products too (linalg ops in the
derivative IR, no element loops); an operand overwritten after a product still gets the
right gradient, or a clear error where hpcad cannot keep its old values."""
import math

import numba
import numpy as np
import pytest

import hpcad as ad
from hpcad.cli import default_activity, specialization
from hpcad.errors import DifferentiationError, KernelAssertionError
from hpcad.ir.core import walk
from tests.ad.harness import (
    ALL_KERNELS,
    INTERP_FAST,
    case_rng,
    check_case,
    njit_of,
    on_backends,
    relative_error,
)
from tests.ad.kernels import Case
from tests.ad.width_check import check_forward, check_reverse


@ad.kernel
def gemm_nt(A, B, u, v):
    D = A @ B.T
    return np.dot(u, D @ v)


@ad.kernel
def vector_matrix(x, A):
    y = np.dot(x, A)
    return y.dot(np.sin(y))


@ad.kernel
def at_b(A, B, u, v):
    C = np.transpose(A) @ B
    return np.dot(u, C.dot(v))


@ad.kernel
def matmul_function(A, x, u):
    return np.dot(u, np.matmul(A, np.sin(x)))


@ad.kernel
def outer_product(x, y, u, v):
    P = np.outer(x, np.cos(y))
    return np.dot(u, P @ v)


@ad.kernel
def transpose_in_expression(A, u, v):
    E = np.exp(A.T) * 0.5
    return np.dot(u, E @ v)


@ad.kernel
def mlp_layer(W, x, b, c):
    h = np.tanh(W @ x + b)
    return np.dot(c, h)


@ad.kernel
def gram_and_square(A, u, v):
    G = A.T @ A
    S = A @ A.T
    return np.dot(u, G @ v) + np.dot(S[0], S[1]) + np.dot(u, (G @ G) @ v)


@ad.kernel
def view_operands(A, B, u, v):
    C = A[1:, :] @ B[:, ::2]
    return np.dot(u[1:], C @ v[:C.shape[1]])


@ad.kernel
def prange_around_product(A, B, x):
    n = x.shape[0]
    y = np.empty(n)
    for i in numba.prange(n):
        y[i] = math.sin(x[i])
    z = (A @ B) @ y
    s = 0.0
    for i in numba.prange(n):
        s += z[i] * z[i]
    return s


@ad.kernel
def overwritten_after_product(A, B, u, v):
    C = A @ B
    for i in range(A.shape[0]):
        for j in range(A.shape[1]):
            A[i, j] = A[i, j] * A[i, j]
    return np.dot(u, C @ v) + np.dot(u, A @ u)


def _on(kernel, backend):
    """The kernel run on `backend`."""
    return ad.kernel(kernel.py_func, backend=backend, parallel=kernel.parallel)


def _normal(*shapes, dtype=np.float64):
    return lambda rng: tuple(rng.standard_normal(s).astype(dtype) for s in shapes)


CASES = [
    Case("gemm_nt", gemm_nt, _normal((4, 3), (5, 3), (4,), (5,))),
    Case("vector_matrix", vector_matrix, _normal((4,), (4, 3))),
    Case("at_b", at_b, _normal((3, 4), (3, 5), (4,), (5,))),
    Case("matmul_function", matmul_function, _normal((4, 3), (3,), (4,))),
    Case("outer_product", outer_product, _normal((4,), (3,), (4,), (3,))),
    Case("transpose_in_expression", transpose_in_expression, _normal((3, 4), (4,), (3,))),
    Case("mlp_layer", mlp_layer, _normal((5, 3), (3,), (5,), (5,))),
    Case("gram_and_square", gram_and_square, _normal((3, 4), (4,), (4,))),
    Case("view_operands", view_operands, _normal((5, 3), (3, 6), (5,), (4,))),
    Case("prange_around_product", prange_around_product, _normal((4, 3), (3, 4), (4,))),
    Case("overwritten_after_product", overwritten_after_product,
         _normal((3, 3), (3, 4), (3,), (4,))),
]
FAST_ON_NUMBA = ("gemm_nt",)
# The cases each test compiles with numba (harness.ALL_KERNELS: all): together they run every line
# of the numba backend's code generation, and call every function in the generated code, that all
# the cases do in that test (`python -m tests.numba_cover tests.ad.test_linalg:CASES --only primal`,
# `--only derivatives`, `--widths 1 3`), but math.tanh and math.exp (mlp_layer,
# transpose_in_expression), which tests/ad/test_kernels.py compiles (float32_inplace_relax,
# math_functions), and what products between parallel loops and products of products generate
# (prange_around_product, gram_and_square), which the kept numba cases here and of other files
# generate too (numba_cover over them): products and their transposes (gemm_nt), an operand
# overwritten after its product (tape of its old values: overwritten_after_product), views with
# steps as operands (view_operands), np.outer (outer_product), np.matmul (matmul_function).
PRIMAL_ON_NUMBA = ("gemm_nt", "view_operands", "outer_product")
FD_ON_NUMBA = ("gemm_nt", "overwritten_after_product", "view_operands", "outer_product",
               "matmul_function")
# At W=3 (test_width_3_equals_three_calls) the products' lane code: gemm_nt's and
# view_operands'. The other cases' W=3 code adds nothing to what their W=1 runs above and the
# lane cases of tests/ad/test_width.py and tests/parallel/test_width_parallel.py generate
# (numba_cover --widths 1 3 with those cases among these).
WIDTH_ON_NUMBA = ("gemm_nt", "view_operands")
# Beside those and the fast tier's linear_steps and two_layers_per_sample, the training loop,
# the parallel=True layer and the fused products add no product code to numba's: casts, an
# outlined loop, an if passing a value on, math.exp (numba_cover with them among the cases),
# which the kept cases of the width-1 derivative tests compile (tests/numba_cases.py). They
# run on the interpreter (ALL_KERNELS: numba).
INTERP_UNLESS_ALL = ["interp"] + (["numba"] if ALL_KERNELS else [])
NUMPY_ONLY = ("matmul_function",)   # numba.njit has no np.matmul: compared with NumPy


@pytest.mark.filterwarnings("ignore::numba.NumbaPerformanceWarning")   # numba's, on views
@on_backends(CASES, numba=PRIMAL_ON_NUMBA)
def test_primal_equals_numba_njit(case, backend):
    args = case.make_args(case_rng(case))
    reference = case.kernel.py_func if case.name in NUMPY_ONLY else \
        njit_of(case.kernel.py_func)
    expected = reference(*[np.copy(a) for a in args])
    got = _on(case.kernel, backend)(*[np.copy(a) for a in args])
    assert relative_error(got, expected) <= 1e-12


@on_backends(CASES, fast_on_numba=FAST_ON_NUMBA, numba=FD_ON_NUMBA)
def test_derivatives_match_finite_differences(case, backend):
    check_case(case, backend)


@on_backends(CASES, numba=WIDTH_ON_NUMBA)
def test_width_3_equals_three_calls(case, backend):
    rng = case_rng(case)
    args = case.make_args(rng)
    check_forward(case.kernel, args, 3, backend, rng)
    check_reverse(case.kernel, args, 3, backend, rng)


@pytest.mark.parametrize("backend", INTERP_FAST)
def test_float32_product(backend):
    @ad.kernel
    def gemm32(A, B, u, v):
        return np.dot(u, (A @ B) @ v)
    rng = np.random.default_rng(0)
    args = _normal((4, 3), (3, 5), (4,), (5,), dtype=np.float32)(rng)
    expected = njit_of(gemm32.py_func)(*args)
    assert relative_error(_on(gemm32, backend)(*args), expected) <= 1e-6
    grads = ad.grad(gemm32, argnums=(0, 1), backend=backend)(*args)
    A, B, u, v = (a.astype(np.float64) for a in args)
    assert relative_error(grads[0], np.outer(u, B @ v)) <= 1e-5
    assert relative_error(grads[1], np.outer(A.T @ u, v)) <= 1e-5


@pytest.mark.parametrize("mode, counts", [("forward", {"linalg.matmul": 6}),
                                           ("reverse", {"linalg.matmul": 5, "linalg.outer": 0})])
def test_derivatives_are_products(mode, counts):
    """gemm_nt's two products: forward adds a product per operand with a tangent (2 + 2);
    reverse adds, for D @ v, a rank-1 update of D's adjoint in place (a loop nest
    accumulating, no temporary) and a product (v's), for A @ B.T one product per operand."""
    spec = specialization(gemm_nt, "f64[:,::1], f64[:,::1], f64[::1], f64[::1]")
    fn = spec.derivative(mode, default_activity(spec), True)
    names = [op.name for op in walk(fn.body)]
    assert {name: names.count(name) for name in counts} == counts


@ad.kernel
def linear_steps(u, M, w, nsteps):
    """Each step reads u in a product, then overwrites it: the reverse of a step reads the u
    of that step (a history of u, one copy per iteration)."""
    for t in range(nsteps):
        f = M @ u
        for i in range(u.shape[0]):
            u[i] = u[i] + 0.1 * math.tanh(f[i])
    return np.dot(w, u)


LINEAR_STEPS = Case("linear_steps", linear_steps,
                    lambda rng: (rng.standard_normal(4), rng.standard_normal((4, 4)),
                                 rng.standard_normal(4), 3))


@on_backends([LINEAR_STEPS], fast_on_numba=("linear_steps",))
def test_operand_overwritten_later_in_its_loop(case, backend):
    args = case.make_args(case_rng(case))
    expected = njit_of(linear_steps.py_func)(np.copy(args[0]), *args[1:])
    assert relative_error(_on(linear_steps, backend)(np.copy(args[0]), *args[1:]),
                          expected) <= 1e-12
    check_case(case, backend)
    rng = case_rng(case)
    check_reverse(case.kernel, args, 3, backend, rng)


@ad.kernel
def two_layers_per_sample(W1, W2, X):
    """A new hidden array each sample (made in the loop body), read by the second product:
    the reverse of W2's adjoint reads each sample's own (a history, as for linear_steps)."""
    loss = 0.0
    for b in range(X.shape[0]):
        h = np.tanh(W1 @ X[b])
        loss += np.sum(np.sin(W2 @ h))
    return loss


TWO_LAYERS = Case("two_layers_per_sample", two_layers_per_sample,
                  _normal((5, 4), (3, 5), (6, 4)))


@ad.kernel
def full_batch_training(W1, W2, X, Y, lr, steps):
    """Gradient descent written with products, the weights updated in place: each step's
    H, G and GH are new arrays that later products read (per-iteration histories)."""
    nb = X.shape[0]
    for _ in range(steps):
        H = np.tanh(X @ W1.T)
        G = (H @ W2.T - Y) / nb
        GH = (G @ W2) * (1.0 - H * H)
        W2 -= lr * (G.T @ H)
        W1 -= lr * (GH.T @ X)
    R = np.tanh(X @ W1.T) @ W2.T - Y
    return np.sum(R * R)


def _training_args(rng):
    return (rng.standard_normal((5, 4)) * 0.5, rng.standard_normal((3, 5)) * 0.5,
            rng.standard_normal((6, 4)), rng.standard_normal((6, 3)), 0.3, 4)


@ad.kernel
def kalman_filter(F, Q, zs, x0, r):
    """The state and covariance rebound to new products every step (x = F @ x, P = F @ P @
    F.T + Q): the products read arrays the body makes with extents taken from the arrays
    the loop carries (their histories are sized by the arrays those start from)."""
    x = x0.copy()
    P = np.eye(x0.shape[0])
    ll = 0.0
    for k in range(zs.shape[0]):
        x = F @ x
        P = F @ P @ F.T + Q
        S = P[0, 0] + r
        K = P[:, 0] / S
        y = zs[k] - x[0]
        x = x + K * y
        P = P - np.outer(K, P[0, :])
        ll -= 0.5 * (math.log(S) + y * y / S)
    return ll


def _kalman_args(rng):
    A = rng.standard_normal((2, 2))
    return (np.array([[1.0, 0.1], [0.0, 1.0]]) + 0.05 * rng.standard_normal((2, 2)),
            0.02 * np.eye(2) + 0.005 * A @ A.T, rng.standard_normal(5),
            rng.standard_normal(2), 0.5)


@on_backends([TWO_LAYERS, Case("full_batch_training", full_batch_training, _training_args),
              Case("kalman_filter", kalman_filter, _kalman_args)],
             fast_on_numba=("two_layers_per_sample",), numba=("two_layers_per_sample",))
def test_operand_made_in_the_loop_body(case, backend):
    check_case(case, backend)


@ad.kernel
def overwritten_in_inner_loop(A, u, v, steps):
    """A read by products in an inner loop, then overwritten by the outer one: a history of
    A with one copy per iteration of the nest."""
    s = 0.0
    for t in range(steps):
        for r in range(2):
            s += np.dot(u, A @ v) * (r + 1.0)
        for i in range(A.shape[0]):
            A[i, 0] = 0.5 * A[i, 0] + 0.1 * math.sin(A[i, 1])
    return s


@ad.kernel
def rows_transformed_in_place(A, C, W):
    """Each row of a 3-D array multiplied by C and written back (PolyBench's doitgen), then
    a three-deep nest reading stepped row views that its innermost loop overwrites: histories
    of the views, one per iteration of each nest."""
    for r in range(A.shape[0]):
        for q in range(A.shape[1]):
            tmp = A[r, q, :] @ C
            A[r, q, :] = tmp
    s = 0.0
    for k in range(2):
        for r in range(A.shape[0]):
            for q in range(A.shape[1]):
                s += np.dot(W[r, ::2], C[::2, :] @ A[r, q, :]) * (k + 1.0)
                A[r, q, 0] = math.tanh(A[r, q, 1])
    return s + np.sum(A * A)


NESTS = [Case("overwritten_in_inner_loop", overwritten_in_inner_loop,
              lambda rng: _normal((3, 4), (3,), (4,))(rng) + (2,)),
         Case("rows_transformed_in_place", rows_transformed_in_place,
              lambda rng: (rng.standard_normal((2, 3, 4)), 0.5 * rng.standard_normal((4, 4)),
                           rng.standard_normal((2, 4))))]


@on_backends(NESTS, numba=("rows_transformed_in_place",))
def test_operand_overwritten_in_a_nest_of_loops(case, backend):
    """Both were refused ('only in a loop at the kernel's top level, not in a nested one')."""
    args = case.make_args(case_rng(case))
    copies = [np.copy(a) if isinstance(a, np.ndarray) else a for a in args]
    expected = njit_of(case.kernel.py_func)(*copies)
    assert relative_error(_on(case.kernel, backend)(*[np.copy(a) if isinstance(a, np.ndarray)
                                                     else a for a in args]),
                          expected) <= 1e-12
    check_case(case, backend)


@ad.kernel
def overwritten_in_a_triangular_nest(A, u, v, steps):
    s = 0.0
    for t in range(steps):
        for r in range(t):
            s += np.dot(u, A @ v)
        for i in range(A.shape[0]):
            A[i, 0] = 0.5 * A[i, 0]
    return s


@pytest.mark.parametrize("backend", INTERP_FAST)
def test_operand_overwritten_around_a_triangular_nest_is_a_clear_error(backend):
    args = _normal((3, 4), (3,), (4,))(np.random.default_rng(1)) + (3,)
    with pytest.raises(DifferentiationError, match=r"test_linalg.py:\d+: the reverse sweep "
                                                  r"of this matrix product needs the values "
                                                  r"'A' had here, .* whose bounds are all "
                                                  r"known before the nest \(not a triangular"):
        ad.grad(overwritten_in_a_triangular_nest, argnums=2, backend=backend)(*args)


@ad.kernel
def power_iteration_while(A, v0, tol):
    v = v0 / np.linalg.norm(v0)
    lam, diff = 0.0, 1.0
    while diff > tol:
        w = A @ v
        lam_new = np.dot(v, w)
        v = w / np.linalg.norm(w)
        diff = abs(lam_new - lam)
        lam = lam_new
    return lam


@ad.kernel
def power_iteration_break(A, v0, tol):
    v = v0 / np.linalg.norm(v0)
    lam = 0.0
    for _ in range(100):
        w = A @ v
        lam_new = np.dot(v, w)
        v = w / np.linalg.norm(w)
        if abs(lam_new - lam) < tol:
            break
        lam = lam_new
    return lam


@pytest.mark.parametrize("kernel", [power_iteration_while, power_iteration_break],
                         ids=["while", "break"])
def test_operand_overwritten_in_a_loop_without_a_count_says_what_to_write(kernel):
    """A power iteration in a while loop, or a for loop with break (a while loop in the IR),
    said 'compute the product into a new array', which it does; now the error says why
    (no trip count before the loop) and to write the product as loops."""
    rng = np.random.default_rng(4)
    M = rng.standard_normal((4, 4))
    with pytest.raises(DifferentiationError, match=r"test_linalg.py:\d+: the reverse sweep "
                                                  r"of this matrix product needs the values "
                                                  r"'v' had here, .* has no trip count before "
                                                  r"it runs, .* write the product as loops"):
        ad.grad(ad.kernel(kernel.py_func, backend="interp"))(M + M.T, rng.random(4), 1e-12)


@pytest.mark.parametrize("backend", INTERP_FAST)
def test_mismatched_inner_axes_stop_the_kernel(backend):
    rng = np.random.default_rng(2)
    A, B, u, v = _normal((4, 3), (5, 2), (4,), (5,))(rng)
    with pytest.raises(KernelAssertionError, match="inner axes have different lengths"):
        _on(gemm_nt, backend)(A, B, u, v)


@pytest.mark.parametrize("backend", INTERP_UNLESS_ALL)
def test_parallel_true_kernel(backend):
    """@ad.kernel(parallel=True): the vector dots and element-wise parts become parallel
    loops around the products."""
    kernel = ad.kernel(mlp_layer.py_func, parallel=True)
    case = Case("mlp_layer_parallel", kernel, _normal((5, 3), (3,), (5,), (5,)))
    args = case.make_args(case_rng(case))
    expected = njit_of(mlp_layer.py_func, parallel=True)(*args)
    assert relative_error(_on(kernel, backend)(*args), expected) <= 1e-12
    primal = specialization(kernel, "f64[:,::1], f64[::1], f64[::1], f64[::1]").primal
    assert any(op.name == "par.parallel_for" for op in walk(primal.body))
    check_case(case, backend)


@ad.kernel
def product_in_prange_body(A, X, out):
    for k in numba.prange(X.shape[0]):
        y = A @ X[k]
        out[k] = y[0] * y[1]
    return out[0]


@pytest.mark.parametrize("backend", INTERP_FAST)
def test_reverse_of_a_product_in_a_prange_body_is_a_clear_error(backend):
    rng = np.random.default_rng(3)
    args = (rng.standard_normal((3, 3)), rng.standard_normal((4, 3)), np.zeros(4))
    expected = njit_of(product_in_prange_body.py_func)(*[np.copy(a) for a in args])
    assert relative_error(_on(product_in_prange_body, backend)(*args), expected) <= 1e-12
    with pytest.raises(DifferentiationError, match=r"test_linalg.py:\d+: a matrix product "
                                                  r"inside a parallel loop \(prange\)"):
        ad.grad(product_in_prange_body, argnums=0, backend=backend)(*args)


def _cubed_product(A, x):
    y = A @ x
    s = 0.0
    for i in range(y.shape[0]):
        s += y[i] * y[i] * y[i]
    return s


@pytest.mark.parametrize("backend", INTERP_FAST)
def test_hessian_vector_product_through_a_product(backend):
    """Forward over reverse reads the adjoint products' fills and copies (ad/rules/mem.py):
    H v against central differences of the gradient."""
    rng = np.random.default_rng(5)
    A, x, v = rng.random((4, 4)), rng.random(4), rng.random(4)
    k = ad.kernel(_cubed_product, backend=backend)
    hv = ad.hvp(k, argnums=1)(A, x, v)
    g = ad.grad(k, argnums=1)
    h = 1e-5
    fd = (g(A, x + h * v) - g(A, x - h * v)) / (2 * h)
    np.testing.assert_allclose(hv, fd, rtol=1e-7)


def _fused_products(x, m, nsteps):
    """Products of element-wise expressions with vectors, in a time loop: one reduction nest
    each, no temporary the reverse sweep would need (frontend/linalg.py _fused_product)."""
    v = x * 0.5
    for _ in range(nsteps):
        d = x[:, None] - x[None, :]
        v += 0.1 * ((d * np.exp(-d * d)) @ m) + 0.05 * (m @ (d * d)) * np.dot(x - 0.5, x + m)
        x += 0.1 * v
    return np.dot(x * v, x)


FUSED = Case("fused_products", ad.kernel(_fused_products),
             lambda rng: (rng.random(5), rng.random(5), 3))


@pytest.mark.parametrize("backend", INTERP_UNLESS_ALL)
def test_products_with_expressions_fuse(backend):
    check_case(FUSED, backend)
    spec = FUSED.kernel.specialize(FUSED.kernel.bind(FUSED.make_args(np.random.default_rng(0))))
    assert not any(op.name == "linalg.matmul" for op in walk(spec.primal.body))


@ad.kernel
def products_after_returns(u, w, m):
    s = 0.0
    for i in range(u.shape[0]):
        s += u[i] * u[i]
        if s > 50.0:
            return s
    t = np.tanh(u[:m])
    for j in range(w.shape[0]):
        s += w[j]
        if s > 60.0:
            return s * 2.0
    A = np.outer(t, w)
    B = A.T @ A
    t[0] = 5.0        # after the products that read t
    return s + np.sum(B) + t @ np.tanh(u[:m])


def _return_args(scale):
    def make(rng):
        return rng.standard_normal(6) * scale, rng.standard_normal(6), 4
    return make


AFTER_RETURNS = [Case("products_after_returns", products_after_returns, _return_args(1.0)),
                 Case("products_after_returns_taken", products_after_returns,
                      _return_args(20.0))]


@on_backends(AFTER_RETURNS, numba=("products_after_returns",))
def test_products_after_an_early_return(case, backend):
    """The statements after a loop that may `return` run inside an `if`; the arrays they
    made there were out of the reverse sweep's reach, and every product reading one was
    refused ("... overwrites it later in the same loop", naming the product's own line:
    the fill before it counted as a later write). They are allocated before the `if` for
    the reverse sweep (passes/branch_allocs.py), and only writes after the product count.
    Both paths: the tail runs, and a return is taken."""
    check_case(case, backend)
