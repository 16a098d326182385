"""GradBench eval `gmm`: the log posterior of a Gaussian mixture model with a Wishart prior on
its precision matrices (`objective`) and its gradient with respect to alpha, mu, q and l
(`jacobian`), as GradBench's evals/gmm/README.md defines them.

Component k's precision matrix is Q_k^T Q_k, with Q_k lower triangular: diagonal exp(q[k]) and
the strictly lower part l[k] filled column by column. The kernel unpacks l into one square
matrix per component (rows of the transposed factor, so that the inner loop runs along
memory), then applies Q_k to each centered point in place, one column at a time.
"""
from __future__ import annotations

import math

import numpy as np

import hpcad as ad
from hpcad.gradbench.protocol import evaluation

LOG_2PI = math.log(2.0 * math.pi)


@ad.kernel
def logsumexp(v):
    mx = v[0]
    for k in range(1, len(v)):
        if v[k] > mx:
            mx = v[k]
    s = 0.0
    for k in range(len(v)):
        s += math.exp(v[k] - mx)
    return mx + math.log(s)


@ad.kernel
def log_posterior(alpha, mu, q, lower, x, gamma, m):
    """The log posterior less its constant terms (see `constant`)."""
    n, d = x.shape
    n_comp = len(alpha)
    qdiag = np.exp(q)
    sum_q = np.sum(q, axis=1)
    # lt[k, c, r] = Q_k[r, c] below the diagonal: lower[k] (GradBench's l[k]) unpacked
    lt = np.zeros((n_comp, d, d))
    for k in range(n_comp):
        p = 0
        for c in range(d):
            for r in range(c + 1, d):
                lt[k, c, r] = lower[k, p]
                p += 1
    xc = np.zeros(d)
    qxc = np.zeros(d)
    beta = np.zeros(n_comp)
    slse = 0.0
    for i in range(n):
        for k in range(n_comp):
            for j in range(d):
                xc[j] = x[i, j] - mu[k, j]
                qxc[j] = qdiag[k, j] * xc[j]
            for c in range(d):          # qxc = Q_k xc, one column of Q_k at a time
                for r in range(c + 1, d):
                    qxc[r] += lt[k, c, r] * xc[c]
            sqnorm = 0.0
            for j in range(d):
                sqnorm += qxc[j] * qxc[j]
            beta[k] = alpha[k] + sum_q[k] - 0.5 * sqnorm
        slse += logsumexp(beta)
    frob = np.sum(qdiag * qdiag) + np.sum(lower * lower)
    prior = -0.5 * gamma * gamma * frob + m * np.sum(sum_q)
    return slse - n * logsumexp(alpha) + prior


def log_multigamma(a: float, p: int) -> float:
    """log Gamma_p(a), the multivariate gamma function."""
    return 0.25 * p * (p - 1) * math.log(math.pi) + sum(math.lgamma(a - 0.5 * j)
                                                         for j in range(p))


def constant(d: int, k: int, n: int, m: int, gamma: float) -> float:
    """The terms of the log posterior that depend on no independent variable."""
    n_dof = d + m + 1
    return (-0.5 * n * d * LOG_2PI
            + k * (n_dof * d * math.log(gamma / math.sqrt(2.0)) - log_multigamma(0.5 * n_dof, d)))


def prepare(raw: dict) -> tuple:
    """(alpha, mu, q, l, x, gamma, m) as arrays (l 2-D also when d = 1), and the constant term."""
    d = raw["d"]
    k = raw["k"]
    lower = np.array(raw["l"], dtype=np.float64).reshape(k, d * (d - 1) // 2)
    args = (np.array(raw["alpha"], dtype=np.float64), np.array(raw["mu"], dtype=np.float64),
            np.array(raw["q"], dtype=np.float64), lower, np.array(raw["x"], dtype=np.float64),
            float(raw["gamma"]), int(raw["m"]))
    return args, constant(d, k, raw["n"], int(raw["m"]), float(raw["gamma"]))


def independent(grads: tuple) -> dict:
    return {name: g.tolist() for name, g in zip(("alpha", "mu", "q", "l"), grads, strict=True)}


@evaluation(prepare=prepare, output=float)
def objective(prepared: tuple) -> float:
    args, const = prepared
    return log_posterior(*args) + const


@evaluation(prepare=prepare, output=independent)
def jacobian(prepared: tuple) -> tuple:
    args, _ = prepared
    return ad.grad(log_posterior, argnums=(0, 1, 2, 3))(*args)


FUNCTIONS = {"objective": objective, "jacobian": jacobian}


def warm() -> None:
    rng = np.random.default_rng(0)
    d, k, n = 3, 2, 4
    raw = {"d": d, "k": k, "n": n, "m": 0, "gamma": 1.0,
           "alpha": rng.normal(size=k).tolist(), "mu": rng.normal(size=(k, d)).tolist(),
           "q": rng.normal(size=(k, d)).tolist(), "l": rng.normal(size=(k, 3)).tolist(),
           "x": rng.normal(size=(n, d)).tolist()}
    objective(raw)
    jacobian(raw)
