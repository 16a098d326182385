"""ADBench's Gaussian mixture model objective written as loops, differentiated with respect to
the mixture weights (alphas), the means and the inverse Cholesky factors (icf) by one call of
ad.grad(argnums=(0, 1, 2)), then checked against central finite differences along random
directions; exits with status 1 if a check fails.

    python examples/gmm.py
"""
import math
import sys

import numpy as np

import hpcad as ad

LOG_2PI = math.log(2.0 * math.pi)


@ad.kernel
def logsumexp(a):
    mx = a[0]
    for k in range(1, len(a)):
        if a[k] > mx:
            mx = a[k]
    s = 0.0
    for k in range(len(a)):
        s += math.exp(a[k] - mx)
    return mx + math.log(s)


@ad.kernel
def gmm_objective(alphas, means, icf, x, wishart_gamma, wishart_m):
    # Component k's inverse Cholesky factor Q_k has diagonal exp(icf[k, :d]) and strictly
    # lower part icf[k, d:], stored column by column (ADBench's layout).
    n, d = x.shape
    n_comp = len(alphas)
    qdiag = np.zeros((n_comp, d))
    sum_qs = np.zeros(n_comp)
    for k in range(n_comp):
        for j in range(d):
            sum_qs[k] += icf[k, j]
            qdiag[k, j] = math.exp(icf[k, j])
    xcentered = np.zeros(d)
    qxcentered = np.zeros(d)
    main_term = np.zeros(n_comp)
    slse = 0.0
    for i in range(n):
        for k in range(n_comp):
            for j in range(d):
                xcentered[j] = x[i, j] - means[k, j]
                qxcentered[j] = qdiag[k, j] * xcentered[j]
            lparam = d
            for col in range(d):
                for row in range(col + 1, d):
                    qxcentered[row] += icf[k, lparam] * xcentered[col]
                    lparam += 1
            sqnorm = 0.0
            for j in range(d):
                sqnorm += qxcentered[j] * qxcentered[j]
            main_term[k] = alphas[k] + sum_qs[k] - 0.5 * sqnorm
        slse += logsumexp(main_term)
    lse_alphas = logsumexp(alphas)
    # Log Wishart prior, less its multivariate log-gamma term (a constant of n_dof and d).
    n_dof = d + wishart_m + 1
    prior = 0.0
    for k in range(n_comp):
        frob = 0.0
        for j in range(d):
            frob += qdiag[k, j] * qdiag[k, j]
        for j in range(d, icf.shape[1]):
            frob += icf[k, j] * icf[k, j]
        prior += 0.5 * wishart_gamma * wishart_gamma * frob - wishart_m * sum_qs[k]
    prior -= n_comp * n_dof * d * (math.log(wishart_gamma) - 0.5 * math.log(2.0))
    return -n * d * 0.5 * LOG_2PI + slse - n * lse_alphas + prior


def main() -> int:
    rng = np.random.default_rng(2024)
    d, n_comp, n = 4, 5, 50
    alphas = rng.standard_normal(n_comp)
    means = rng.standard_normal((n_comp, d))
    icf = 0.3 * rng.standard_normal((n_comp, d + d * (d - 1) // 2))
    x = rng.standard_normal((n, d))
    params = (alphas, means, icf)
    data = (x, 1.0, 0)          # points, Wishart gamma and m (the prior's hyperparameters)

    gradient = ad.grad(gmm_objective, argnums=(0, 1, 2))(*params, *data)
    print(f"objective          {gmm_objective(*params, *data):.10e}")
    for name, g in zip(("alphas", "means", "icf"), gradient):
        print(f"|d f / d {name:6s}|  {np.linalg.norm(g):.10e}")

    # Central differences along random directions v: (f(p + h v) - f(p - h v)) / 2h should
    # match sum_k <grad_k, v_k>; the error of the difference itself is ~1e-9 relative here.
    h, rtol, failed = 1e-6, 1e-6, False
    for trial in range(3):
        v = [rng.standard_normal(p.shape) for p in params]
        plus = gmm_objective(*[p + h * vk for p, vk in zip(params, v)], *data)
        minus = gmm_objective(*[p - h * vk for p, vk in zip(params, v)], *data)
        fd = (plus - minus) / (2.0 * h)
        directional = sum(float(np.vdot(g, vk)) for g, vk in zip(gradient, v))
        error = abs(fd - directional) / max(abs(fd), abs(directional))
        failed |= error > rtol
        print(f"direction {trial}: AD {directional:+.12e}  FD {fd:+.12e}  rel. error {error:.1e}")
    print("gradient check FAILED" if failed else "gradient check passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
