"""np.linalg.solve, inv, det and slogdet in kernels (hpcad/frontend/linalg.py: LU with partial
pivoting written as loops, library.lu_factor, inlined as a kernel call): the factors and row
order equal scipy's getrf (the first largest pivot where candidates tie); values equal NumPy's
for a matrix that needs row swaps, a 1x1 and a 0x0 one, b as a vector and as a matrix,
float64 and float32, and numba.njit's with its dtypes (det and slogdet float64); derivatives
match central finite differences and the analytic adjoints (dx = -A^-1 dA x, d det = det
tr(A^-1 dA), the cofactors at a singular matrix), forward against reverse; a singular matrix
stops solve and inv at the user's line and gives det 0; a batch of systems solved in a
prange body matches finite differences, and on two numba threads the serial loop."""
import numba
import numpy as np
import pytest
import scipy.linalg

import hpcad as ad
from hpcad.frontend import library
from tests.ad.harness import INTERP_FAST, check_case, njit_of, on_backends, relative_error
from tests.ad.kernels import Case
from tests.parallel.test_parallel_derivatives import numba_threads


def everything(a, b, c):
    x = np.linalg.solve(a, b)
    y = np.linalg.solve(a, c)
    sign, logdet = np.linalg.slogdet(a)
    return x, y, np.linalg.inv(a), np.linalg.det(a), sign, logdet


def _swapping(rng, n):
    """A well-conditioned matrix whose partial pivoting swaps rows (its rows a permutation of
    a diagonally dominant matrix's)."""
    m = rng.standard_normal((n, n)) + n * np.eye(n)
    return m[rng.permutation(n)] if n > 1 else m


MATRICES = {"swaps": lambda rng: _swapping(rng, 5), "random": lambda rng: rng.standard_normal(
    (6, 6)), "one": lambda rng: np.array([[-2.5]]), "empty": lambda rng: np.zeros((0, 0))}


def _systems(which, dtype):
    rng = np.random.default_rng(7)
    a = MATRICES[which](rng).astype(dtype)
    n = a.shape[0]
    return a, rng.standard_normal(n).astype(dtype), rng.standard_normal((n, 3)).astype(dtype)


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-12), (np.float32, 2e-5)])
@pytest.mark.parametrize("which", MATRICES)
def test_values_equal_numpys(which, dtype, rtol):
    a, b, c = _systems(which, dtype)
    got = ad.kernel(everything, backend="interp")(a, b, c)
    lapack = (np.linalg.solve(a, b), np.linalg.solve(a, c), np.linalg.inv(a),
              np.linalg.det(a), *np.linalg.slogdet(a))
    for k, (g, want) in enumerate(zip(got, lapack, strict=True)):
        np.testing.assert_allclose(g, want, rtol=rtol, atol=rtol, err_msg=str(k))
        if k < 3:
            assert g.dtype == dtype and g.shape == want.shape, k


def determinants(a):
    sign, logdet = np.linalg.slogdet(a)
    return np.linalg.det(a), sign, logdet


def test_determinants_of_float32_are_float64_as_numbas():
    """numba's det and slogdet of a float32 matrix are float64 (NumPy's float32)."""
    a = _systems("swaps", np.float32)[0]
    kernel = ad.kernel(determinants, backend="interp")
    got = kernel(a)
    reference = njit_of(determinants)
    for g, want in zip(got, reference(a), strict=True):
        assert relative_error(g, want) <= 2e-5
    (signature,) = reference.nopython_signatures
    types = kernel.specialize(kernel.bind((a,))).primal.result_types
    assert [t.np_dtype.name for t in types] == [str(t) for t in signature.return_type]


# numba.njit compiles the LAPACK calls for seconds
@pytest.mark.slow
@pytest.mark.parametrize("dtype, rtol", [(np.float32, 2e-5), (np.float64, 1e-12)])
def test_values_and_dtypes_equal_numbas(dtype, rtol):
    a, b, c = _systems("swaps", dtype)
    got = ad.kernel(everything, backend="interp")(a, b, c)
    for k, (g, want) in enumerate(zip(got, njit_of(everything)(a, b, c), strict=True)):
        assert np.asarray(g).dtype == np.asarray(want).dtype, k
        np.testing.assert_allclose(g, want, rtol=rtol, atol=rtol, err_msg=str(k))


@pytest.mark.parametrize("a", [
    np.array([[1.0, 2.0, 0.5], [-3.0, 1.0, 2.0], [3.0, 0.25, -1.0]]),
    np.array([[2.0, 1.0, 1.0], [2.0, 3.0, 1.0], [-2.0, 1.0, 4.0]]),
    np.random.default_rng(5).standard_normal((6, 6))], ids=["tie", "three-way-tie", "random"])
def test_the_lu_factors_are_lapacks(a):
    """The pivot is the first row of the largest magnitude in its column (LAPACK's idamax),
    also where candidates tie: the factors and the row order equal scipy's getrf."""
    lu, perm, sign, singular, finite = ad.kernel(library.lu_factor, backend="interp")(a)
    want, piv = scipy.linalg.lu_factor(a)
    order = np.arange(a.shape[0])
    for i, p in enumerate(piv):
        order[[i, p]] = order[[p, i]]
    np.testing.assert_array_equal(perm, order)
    np.testing.assert_allclose(lu, want, rtol=1e-14, atol=1e-14)
    assert sign == np.linalg.slogdet(a)[0] * np.prod(np.sign(np.diag(want)))
    assert not singular and finite


@pytest.mark.slow
def test_values_on_numba_equal_numbas():
    rng = np.random.default_rng(8)
    a = rng.standard_normal((5, 5))
    b, c = rng.standard_normal(5), rng.standard_normal((5, 2))
    got = ad.kernel(everything, backend="numba")(a, b, c)
    for g, w in zip(got, njit_of(everything)(a, b, c), strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12)


@ad.kernel
def solve_loss(a, b, w):
    x = np.linalg.solve(a, b)
    return np.sum(x * w) + x[0] ** 2


@ad.kernel
def matrix_loss(a, c, w):
    inverse = np.linalg.inv(a)
    y = np.linalg.solve(a.T, c)
    return np.sum(inverse * w) + np.sum(y * y) + np.linalg.det(a) ** 2 \
        + np.linalg.slogdet(a)[1]


def _solve_args(rng):
    return rng.standard_normal((4, 4)) + 2.0 * np.eye(4), rng.standard_normal(4), \
        rng.standard_normal(4)


CASES = [Case("solve_loss", solve_loss, _solve_args),
         Case("matrix_loss", matrix_loss, lambda rng: (
             _swapping(rng, 4), rng.standard_normal((4, 2)), rng.standard_normal((4, 4))))]


# numba compiles the solve of a vector (inv, det and slogdet are the same loops, run here on
# the interpreter)
@on_backends(CASES, numba=("solve_loss",))
def test_derivatives_match_finite_differences(case, backend):
    check_case(case, backend)


@ad.kernel
def solved(a, b):
    return np.linalg.solve(a, b)


@ad.kernel
def determinant(a):
    return np.linalg.det(a)


@ad.kernel
def log_determinant(a):
    return np.linalg.slogdet(a)[1]


@ad.kernel
def inverse_sum(a, w):
    return np.sum(np.linalg.inv(a) * w)


def test_gradients_equal_the_analytic_adjoints():
    """x = A^-1 b: the vjp of w is (-(A^-T w) x^T, A^-T w); d det = det A^-T, d log|det| =
    A^-T, d <W, A^-1> = -A^-T W A^-T."""
    rng = np.random.default_rng(3)
    a, b, w = _swapping(rng, 5), rng.standard_normal(5), rng.standard_normal(5)
    ai = np.linalg.inv(a)
    x, vjp_fn = ad.vjp(solved, a, b, backend="interp")
    da, db = vjp_fn(w)
    lam = ai.T @ w
    assert relative_error(x, ai @ b) <= 1e-13
    assert relative_error(db, lam) <= 1e-13
    assert relative_error(da, -np.outer(lam, x)) <= 1e-13
    g = ad.grad(determinant, backend="interp")(a)
    assert relative_error(g, np.linalg.det(a) * ai.T) <= 1e-13
    g = ad.grad(log_determinant, backend="interp")(a)
    assert relative_error(g, ai.T) <= 1e-13
    m = rng.standard_normal((5, 5))
    g = ad.grad(inverse_sum, backend="interp")(a, m)
    assert relative_error(g, -ai.T @ m @ ai.T) <= 1e-13


def _cofactors(a):
    n = a.shape[0]
    c = np.empty_like(a)
    for i in range(n):
        for j in range(n):
            minor = np.delete(np.delete(a, i, 0), j, 1)
            c[i, j] = (-1) ** (i + j) * np.linalg.det(minor)
    return c


@pytest.mark.parametrize("a", [
    np.array([[1.0, 2.0, 3.0], [2.0, 4.0, 7.0], [3.0, 6.0, 1.0]]),   # zero pivot at step 1
    np.array([[0.0, 1.0, 2.0], [0.0, 3.0, 1.0], [0.0, 5.0, 4.0]]),   # at step 0
    np.array([[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [1.0, 1.0, 1.0]]),   # at the last step
    np.array([[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [3.0, 6.0, 9.0]])],  # rank 1: zero gradient
    ids=["middle", "first", "last", "rank-one"])
def test_det_of_a_singular_matrix_is_zero_and_its_gradient_the_cofactors(a):
    """numba's det of a singular matrix is 0 and its slogdet (0, -inf), with no error; the
    gradient of det there is the cofactor matrix (the adjugate's transpose), whose entries
    are not zero where the rank is n - 1, also where the zero pivot comes before the last
    step (where the loops swap the zero column last). The zero is +0.0, as numba's."""
    assert determinant(a) == 0.0 == njit_of(determinant_of)(a)
    assert not np.signbit(determinant(a)) and not np.signbit(njit_of(determinant_of)(a))
    assert ad.kernel(slogdet_of, backend="interp")(a) == (0.0, -np.inf) == njit_of(
        slogdet_of)(a)
    g = ad.grad(determinant, backend="interp")(a)
    np.testing.assert_allclose(g, _cofactors(a), rtol=1e-13, atol=1e-13)
    v = np.random.default_rng(1).standard_normal(a.shape)
    h = 1e-5
    fd = (np.linalg.det(a + h * v) - np.linalg.det(a - h * v)) / (2 * h)
    assert abs(np.sum(g * v) - fd) <= 1e-8


def solve_in_place(a, b):
    b[:] = np.linalg.solve(a, b)


def inverse_of(a):
    return np.linalg.inv(a)


@pytest.mark.parametrize("backend", INTERP_FAST)
def test_a_singular_matrix_stops_solve_and_inv_at_the_users_line(backend):
    a = np.array([[1.0, 2.0], [2.0, 4.0]])
    with pytest.raises(ad.KernelAssertionError, match="np.linalg.solve: the matrix is "
                                                      "singular") as info:
        ad.kernel(solve_in_place, backend=backend)(a, np.ones(2))
    assert f"test_linalg_solve.py:{solve_in_place.__code__.co_firstlineno + 1}:" \
        in str(info.value)
    with pytest.raises(np.linalg.LinAlgError, match="singular"):
        njit_of(solve_in_place)(a, np.ones(2))
    with pytest.raises(ad.KernelAssertionError, match="np.linalg.inv: the matrix is singular"):
        ad.kernel(inverse_of, backend="interp")(np.zeros((3, 3)))


def determinant_of(a):
    return np.linalg.det(a)


def slogdet_of(a):
    return np.linalg.slogdet(a)


@pytest.mark.parametrize("fn, args, words", [
    (solve_in_place, (np.ones((2, 3)), np.ones(2)), "np.linalg.solve of a matrix that is not "
                                                    "square"),
    (solve_in_place, (np.eye(3), np.ones(2)), "right-hand side's first axis is not as long"),
    (solve_in_place, (np.array([[1.0, np.nan], [0.0, 1.0]]), np.ones(2)), "inf or NaN"),
    (solve_in_place, (np.eye(2), np.array([1.0, np.inf])), "inf or NaN"),
    (inverse_of, (np.ones((3, 2)),), "np.linalg.inv of a matrix that is not square"),
    (determinant_of, (np.array([[np.inf]]),), "np.linalg.det: an element is inf or NaN")],
    ids=["not-square", "lengths", "nan", "inf-rhs", "inv-not-square", "det-inf"])
def test_invalid_arguments_stop_at_the_users_line(fn, args, words):
    with pytest.raises(ad.KernelAssertionError, match=words) as info:
        ad.kernel(fn, backend="interp")(*args)
    assert f"test_linalg_solve.py:{fn.__code__.co_firstlineno + 1}:" in str(info.value)


def of_integers(a):
    return np.linalg.det(a)


def of_a_stack(a):
    return np.linalg.inv(a)


def of_mixed_dtypes(a):
    return np.linalg.solve(a, np.ones(a.shape[0]))


def of_a_tensor_rhs(a):
    return np.linalg.solve(a, np.ones((a.shape[0], 2, 2)))


@pytest.mark.parametrize("fn, arg, words", [
    (of_integers, np.eye(3, dtype=np.int64), "np.linalg.det of a matrix of int64"),
    (of_a_stack, np.ones((2, 3, 3)), "np.linalg.inv of a 3-D array"),
    (of_mixed_dtypes, np.eye(2, dtype=np.float32), "a right-hand side of float64"),
    (of_a_tensor_rhs, np.eye(2), "a 3-D right-hand side")])
def test_what_numba_refuses_is_refused_at_its_line(fn, arg, words):
    with pytest.raises(ad.UnsupportedConstruct, match=words) as info:
        ad.kernel(fn, backend="interp")(arg)
    assert f"test_linalg_solve.py:{fn.__code__.co_firstlineno + 1}:" in str(info.value)
    with pytest.raises(numba.TypingError):
        njit_of(fn)(arg)


def solve_each(a, b):
    out = np.empty_like(b)
    for i in range(a.shape[0]):
        out[i] = np.linalg.solve(a[i], b[i])
    return np.sum(out * out)


def solve_each_prange(a, b):
    out = np.empty_like(b)
    for i in numba.prange(a.shape[0]):
        out[i] = np.linalg.solve(a[i], b[i])
    return np.sum(out * out)


def _batch(rng, m=6, n=3):
    a = rng.standard_normal((m, n, n)) + 2.0 * np.eye(n)
    return a[:, rng.permutation(n)], rng.standard_normal((m, n))


BATCH_CASES = [Case("solve_each", ad.kernel(solve_each), _batch),
               Case("solve_each_prange", ad.kernel(solve_each_prange, parallel=True), _batch)]


@pytest.mark.parametrize("case", BATCH_CASES, ids=lambda c: c.name)
def test_a_batch_of_systems_in_a_loop_matches_finite_differences(case):
    check_case(case, "interp")


@pytest.mark.slow
def test_a_batch_solved_in_a_prange_body_on_two_threads_equals_the_serial_loop():
    a, b = _batch(np.random.default_rng(2), m=16)
    parallel = ad.kernel(solve_each_prange, parallel=True, backend="numba")
    serial = ad.kernel(solve_each, backend="interp")
    with numba_threads(2):
        value, (ga, gb) = ad.value_and_grad(parallel, argnums=(0, 1))(a, b)
    sa, sb = ad.grad(serial, argnums=(0, 1))(a, b)
    assert relative_error(value, serial(a, b)) <= 1e-13
    assert relative_error(ga, sa) <= 1e-12 and relative_error(gb, sb) <= 1e-12
