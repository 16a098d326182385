"""GradBench eval gmm: the objective against a NumPy log posterior written from the spec
(evals/gmm/README.md: mixture of Gaussians with precision Q^T Q, Wishart prior, log-det by
slogdet, not by the sum of q) and the jacobian against central differences of it, through
the eval's functions (numba) and the kernel's gradient on the interpreter."""
import math

import numpy as np
import pytest

import hpcad as ad
from hpcad.gradbench.evals import gmm

D, K, N = 3, 2, 5


def make_input(seed=0, d=D, k=K, n=N, m=2, gamma=1.3) -> dict:
    rng = np.random.default_rng(seed)
    return {"d": d, "k": k, "n": n, "m": m, "gamma": gamma,
            "x": rng.normal(size=(n, d)).tolist(), "alpha": rng.normal(size=k).tolist(),
            "mu": rng.uniform(size=(k, d)).tolist(),
            "q": (0.5 * rng.normal(size=(k, d))).tolist(),
            "l": (0.5 * rng.normal(size=(k, d * (d - 1) // 2))).tolist()}


def factor(q, lower, d):
    """Q: exp(q) on the diagonal, lower (GradBench's l) below it column by column."""
    Q = np.diag(np.exp(q))
    Q[np.array([r for c in range(d) for r in range(c + 1, d)], dtype=int),
      np.array([c for c in range(d) for r in range(c + 1, d)], dtype=int)] = lower
    return Q


def log_multigamma(a, p):
    return p * (p - 1) / 4 * math.log(math.pi) + sum(math.lgamma(a + (1 - j) / 2)
                                                    for j in range(1, p + 1))


def reference(raw, alpha, mu, q, lower) -> float:
    d, n, m, gamma = raw["d"], raw["n"], raw["m"], raw["gamma"]
    x = np.array(raw["x"])
    log_phi = alpha - np.log(np.sum(np.exp(alpha)))
    precisions = [factor(q[k], lower[k], d).T @ factor(q[k], lower[k], d)
                  for k in range(len(alpha))]
    total = 0.0
    for i in range(n):
        terms = []
        for k, P in enumerate(precisions):
            r = x[i] - mu[k]
            terms.append(log_phi[k] - 0.5 * d * math.log(2 * math.pi)
                         + 0.5 * np.linalg.slogdet(P)[1] - 0.5 * r @ P @ r)
        top = max(terms)
        total += top + math.log(sum(math.exp(t - top) for t in terms))
    dof = d + m + 1
    v_inv = gamma * gamma * np.eye(d)
    for P in precisions:     # log Wishart density of the precision, V = I / gamma^2
        total += ((dof - d - 1) / 2 * np.linalg.slogdet(P)[1] - np.trace(v_inv @ P) / 2
                  - dof * d / 2 * math.log(2) - dof / 2 * np.linalg.slogdet(np.linalg.inv(
                      v_inv))[1] - log_multigamma(dof / 2, d))
    return float(total)


def params(raw):
    return [np.array(raw[name], dtype=float) for name in ("alpha", "mu", "q", "l")]


def fd_gradient(raw, h=1e-6):
    ps = params(raw)
    grads = []
    for j, p in enumerate(ps):
        g = np.zeros_like(p)
        for idx in np.ndindex(p.shape):
            up = [a.copy() for a in ps]
            down = [a.copy() for a in ps]
            up[j][idx] += h
            down[j][idx] -= h
            g[idx] = (reference(raw, *up) - reference(raw, *down)) / (2 * h)
        grads.append(g)
    return grads


@pytest.mark.parametrize("seed,m", [(0, 0), (1, 2)])
def test_objective_is_the_log_posterior(seed, m):
    raw = make_input(seed, m=m)
    assert gmm.objective(raw) == pytest.approx(reference(raw, *params(raw)), rel=1e-10)


def test_jacobian_matches_central_differences():
    raw = make_input(3, m=1)
    got = gmm.jacobian(raw)
    assert set(got) == {"alpha", "mu", "q", "l"}
    for name, fd in zip(("alpha", "mu", "q", "l"), fd_gradient(raw), strict=True):
        np.testing.assert_allclose(np.array(got[name]), fd, rtol=1e-6, atol=1e-7)


def test_interpreter_gradient_matches_central_differences():
    raw = make_input(4, d=2, k=3, n=4)
    args, const = gmm.prepare(raw)
    value, grads = ad.value_and_grad(gmm.log_posterior, argnums=(0, 1, 2, 3),
                                     backend="interp")(*args)
    assert value + const == pytest.approx(reference(raw, *params(raw)), rel=1e-10)
    for g, fd in zip(grads, fd_gradient(raw), strict=True):
        np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-7)


def test_one_dimension_has_no_lower_part():
    raw = make_input(5, d=1, k=2, n=3)
    assert raw["l"] == [[], []]
    assert gmm.objective(raw) == pytest.approx(reference(raw, *params(raw)), rel=1e-10)
    assert gmm.jacobian(raw)["l"] == [[], []]


@pytest.mark.parametrize("d", [5, 6, 9])
def test_several_column_blocks(d):
    """d past one block of four columns (padded rows and columns, blocks off the diagonal):
    objective and jacobian against the reference and its central differences."""
    raw = make_input(6 + d, d=d, k=3, n=7, m=1)
    assert gmm.objective(raw) == pytest.approx(reference(raw, *params(raw)), rel=1e-10)
    got = gmm.jacobian(raw)
    for name, fd in zip(("alpha", "mu", "q", "l"), fd_gradient(raw), strict=True):
        np.testing.assert_allclose(np.array(got[name]), fd, rtol=1e-6, atol=1e-7)


def test_terms_below_the_smallest_term():
    """A component far from most points: their terms of the log-sum-exp lie below
    gmm.LOWEST_EXPONENT (raised to it by the kernel), those of the point beside it do not;
    objective and jacobian against the reference (every term as it is) and its central
    differences."""
    raw = make_input(21, d=2, k=3, n=6, m=1)
    x = np.array(raw["x"])
    x[5] = [40.0, 40.5]
    mu = np.array(raw["mu"])
    mu[2] = [40.2, 40.1]
    raw["x"], raw["mu"] = x.tolist(), mu.tolist()
    args, _ = gmm.prepare(raw)
    terms = np.array([[a - 0.5 * np.sum((factor(qk, lk, 2) @ (xi - mk)) ** 2) + np.sum(qk)
                       for xi in x] for a, mk, qk, lk in zip(*args[:4], strict=True)])
    below = terms - terms.max(axis=0) < gmm.LOWEST_EXPONENT
    assert below.any() and not below.all(axis=1).any()
    assert gmm.objective(raw) == pytest.approx(reference(raw, *params(raw)), rel=1e-10)
    got = gmm.jacobian(raw)
    for name, fd in zip(("alpha", "mu", "q", "l"), fd_gradient(raw), strict=True):
        np.testing.assert_allclose(np.array(got[name]), fd, rtol=1e-6, atol=1e-7)
