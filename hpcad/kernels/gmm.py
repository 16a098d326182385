"""ADBench's Gaussian mixture model objective written as loops (the layout of ADBench's GMM:
icf holds each component's inverse Cholesky factor, log-diagonal first, then the strictly
lower part column by column), and the logsumexp it calls."""
import math

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
