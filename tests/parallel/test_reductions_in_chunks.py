"""Reductions of a prange on the numba backend never go through numba's own parfor reduction
analysis (backend/numba/parallel.py, chunk_sums): a product, min or max of a top-level
prange, and its sums at width W > 1, run in chunks of consecutive iterations combined in
chunk order; a prange inside parallel code, which numba runs serially, is a serial range.
numba's analysis stops its compiler ("unexpected cycle in lookup()") on a reduction whose
value was carried through an inner loop and chosen there by a comparison (a row's
maximum), which this file's kernels all have. Values are compared with numba.njit of the
serial loops, derivatives with central differences of that function."""
import numba
import numpy as np
import pytest

import hpcad as ad
from tests.ad.harness import relative_error


def row_scores(A):
    n, m = A.shape
    p = 1.0
    s = 0.0
    for i in numba.prange(n):
        best = -1e30
        for j in range(m):
            best = max(best, A[i, j])
        p *= 1.0 + 0.1 * best            # a product of a top-level prange
        for j in numba.prange(m):        # a prange in a prange: a sum carried by both
            s += A[i, j] * best
    return p + s


def log_sum_exp_rows(X, mu):
    n, d = X.shape
    tot = 0.0
    for i in numba.prange(n):
        best = -1e30
        scores = np.zeros(mu.shape[0])
        for k in range(mu.shape[0]):
            acc = 0.0
            for j in range(d):
                acc -= (X[i, j] - mu[k, j]) ** 2
            scores[k] = acc
            best = max(best, acc)
        s = 0.0
        for k in range(mu.shape[0]):
            s += np.exp(scores[k] - best)
        tot += best + np.log(s)
    return tot


def _serial(f):
    """numba.njit of f without parallel=True, which runs its pranges as serial ranges."""
    return numba.njit(f)


def _matrix(n, m, seed):
    return np.random.default_rng(seed).uniform(0.5, 1.5, (n, m))


def test_product_and_nested_sum_of_row_maxima_compile_and_match_numba():
    A = _matrix(7, 5, 1)
    got = ad.kernel(parallel=True, backend="numba")(row_scores)(A)
    assert relative_error(got, _serial(row_scores)(A)) <= 1e-14


@pytest.mark.slow
def test_width_3_forward_of_a_sum_of_row_log_sum_exps_matches_central_differences():
    X, mu = _matrix(9, 2, 2), _matrix(3, 2, 3)
    rng = np.random.default_rng(4)
    dX, dmu = rng.standard_normal((3,) + X.shape), rng.standard_normal((3,) + mu.shape)
    df = ad.autodiff(ad.kernel(parallel=True, backend="numba")(log_sum_exp_rows),
                     mode="forward", activity=(ad.Duplicated, ad.Duplicated), width=3)
    value, tangents = df(X.copy(), dX, mu.copy(), dmu)
    serial = _serial(log_sum_exp_rows)
    assert relative_error(value, serial(X, mu)) <= 1e-14
    h = 1e-6
    for lane in range(3):
        fd = (serial(X + h * dX[lane], mu + h * dmu[lane])
              - serial(X - h * dX[lane], mu - h * dmu[lane])) / (2 * h)
        assert relative_error(tangents[lane], fd) <= 1e-6


def scaled_squares(x, c):
    out = np.zeros(x.shape[0])
    for i in numba.prange(x.shape[0]):
        out[i] = c * x[i] * x[i]
    r = np.zeros(3)
    for i in range(x.shape[0]):
        r[i % 3] += out[i] * out[i]
    return r


@pytest.mark.slow
def test_lane_sums_of_a_batched_reverse_sweep_run_in_chunks():
    """A width-3 reverse sweep (the Jacobian of three results) carries only the lanes of
    c's adjoint through the prange's adjoint: it too runs in chunks, each adding into its
    own row, the rows combined in chunk order (it used per-thread rows, whose iterations
    numba's scheduling picks, before); the generated source shows the form, the Jacobian is
    the analytic one."""
    from hpcad.backend.numba.codegen import generate
    x = np.linspace(0.5, 1.5, 11)
    k = ad.kernel(scaled_squares, parallel=True, backend="numba")
    fn = k.specialize((x, 0.7)).derivative("reverse", ("const", "active"), True, width=3)
    source = generate(fn, "f")[0]
    assert "prange(_nthreads)" in source and "get_thread_id()" not in source, source
    J = ad.jacobian(k, argnums=1, mode="rev")(x, 0.7)
    expected = [2.0 * 0.7 * np.sum(x[j::3] ** 4) for j in range(3)]
    assert relative_error(np.ravel(J), np.array(expected)) <= 1e-13
