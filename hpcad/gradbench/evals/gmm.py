"""GradBench eval `gmm`: the log posterior of a Gaussian mixture model with a Wishart prior on
its precision matrices (`objective`) and its gradient with respect to alpha, mu, q and l
(`jacobian`), as GradBench's evals/gmm/README.md defines them.

Component k's precision matrix is Q_k^T Q_k, with Q_k lower triangular: diagonal exp(q[k]) and
the strictly lower part l[k] filled column by column. The kernel works on all points at once,
with the point index innermost, so that every loop over points runs along memory and
vectorizes without reordering a sum: the points are transposed into columns, Q_k x_i - Q_k mu_k
is built two rows at a time from blocks of four columns of Q_k (each load of a point's
coordinate serves eight products, in the reverse sweep too, where those products become sums
over the points), and the log-sum-exp over components runs over rows of per-point arrays.

The log-sum-exp takes its exponents no lower than LOWEST_EXPONENT: exp(LOWEST_EXPONENT),
about 1e-261, and anything smaller are far below the rounding of a point's sum, which also
holds its largest term, exp(0) = 1, so the value does not change; those terms' share of the
gradient (zero now) was as small. Far from most components (large d) many terms would
underflow to subnormal numbers, each of which, carried through the products of the reverse
sweep, costs many CPUs many times a normal operation. `max` rather than a branch keeps both
sweeps of that loop free of branches and the reverse one indexed by (k, i).
"""
from __future__ import annotations

import math

import numpy as np

import hpcad as ad
from hpcad.gradbench.protocol import evaluation

LOG_2PI = math.log(2.0 * math.pi)
LOWEST_EXPONENT = -600.0   # exp(-600) ~ 1e-261: below half an ulp of 1 by far, yet its
                           # products in the reverse sweep stay clear of subnormals (< 2.2e-308)


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
def unpack(fq, qdiag, lower):
    """fq[k] = Q_k (zero outside it): exp(q[k]) on the diagonal, l[k] below it by columns."""
    n_comp, d = qdiag.shape
    for k in range(n_comp):
        p = 0
        for c in range(d):
            fq[k, c, c] = qdiag[k, c]
            for r in range(c + 1, d):
                fq[k, r, c] = lower[k, p]
                p += 1


@ad.kernel
def add_distances(beta_k, fq_k, qmu_k, xt, y0, y1):
    """beta_k[i] -= |Q_k x_i - Q_k mu_k|^2 / 2 for all points (y0, y1: scratch)."""
    dp, n = xt.shape
    for r in range(0, dp, 2):
        for i in range(n):
            y0[i] = -qmu_k[r]
            y1[i] = -qmu_k[r + 1]
        for c in range(0, r + 2, 4):    # columns c .. c + 3 of rows r and r + 1
            a0 = fq_k[r, c]
            a1 = fq_k[r, c + 1]
            a2 = fq_k[r, c + 2]
            a3 = fq_k[r, c + 3]
            b0 = fq_k[r + 1, c]
            b1 = fq_k[r + 1, c + 1]
            b2 = fq_k[r + 1, c + 2]
            b3 = fq_k[r + 1, c + 3]
            for i in range(n):
                x0 = xt[c, i]
                x1 = xt[c + 1, i]
                x2 = xt[c + 2, i]
                x3 = xt[c + 3, i]
                y0[i] += a0 * x0 + a1 * x1 + a2 * x2 + a3 * x3
                y1[i] += b0 * x0 + b1 * x1 + b2 * x2 + b3 * x3
        for i in range(n):
            beta_k[i] -= 0.5 * (y0[i] * y0[i] + y1[i] * y1[i])


@ad.kernel
def sum_logsumexp(beta):
    """The sum over points i of log sum_k exp(beta[k, i]), all points at once; exponents below
    LOWEST_EXPONENT (relative to the point's largest) count as LOWEST_EXPONENT (the module's
    docstring)."""
    n_comp, n = beta.shape
    top = np.zeros(n)
    for i in range(n):
        top[i] = beta[0, i]
    for k in range(1, n_comp):
        for i in range(n):
            if beta[k, i] > top[i]:
                top[i] = beta[k, i]
    s = np.zeros(n)
    for k in range(n_comp):
        for i in range(n):
            s[i] += math.exp(max(beta[k, i] - top[i], LOWEST_EXPONENT))
    total = 0.0
    for i in range(n):
        total += top[i] + math.log(s[i])
    return total


@ad.kernel
def log_posterior(alpha, mu, q, lower, x, gamma, m):
    """The log posterior less its constant terms (see `constant`)."""
    n, d = x.shape
    n_comp = len(alpha)
    dp = (d + 3) // 4 * 4               # d padded to whole blocks of 4 columns
    qdiag = np.exp(q)
    sum_q = np.sum(q, axis=1)
    fq = np.zeros((n_comp, dp, dp))
    unpack(fq, qdiag, lower)
    qmu = np.zeros((n_comp, dp))        # Q_k mu_k
    for k in range(n_comp):
        for r in range(d):
            v = 0.0
            for c in range(r + 1):
                v += fq[k, r, c] * mu[k, c]
            qmu[k, r] = v
    xt = np.zeros((dp, n))              # the points as columns, zero rows below d
    for i in range(n):
        for j in range(d):
            xt[j, i] = x[i, j]
    y0 = np.zeros(n)
    y1 = np.zeros(n)
    beta = np.zeros((n_comp, n))        # alpha_k + log det Q_k - |Q_k (x_i - mu_k)|^2 / 2
    for k in range(n_comp):
        base = alpha[k] + sum_q[k]
        for i in range(n):
            beta[k, i] = base
        add_distances(beta[k], fq[k], qmu[k], xt, y0, y1)
    frob = np.sum(qdiag * qdiag) + np.sum(lower * lower)
    prior = -0.5 * gamma * gamma * frob + m * np.sum(sum_q)
    return sum_logsumexp(beta) - n * logsumexp(alpha) + prior


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
