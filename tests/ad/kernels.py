"""Test kernels for hpcad's derivatives, each exercising a language feature or a classic AD
benchmark (ADBench GMM, LSTM and bundle adjustment), and CASES: every kernel with a recipe for
small random arguments at which it is smooth, so finite differences are a valid reference.
Every kernel is also plain Python; test_kernels_plain.py checks that before any AD runs."""
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

import hpcad as ad
from hpcad.kernels import gmm, stencils


@dataclass(frozen=True)
class Case:
    """A kernel and its arguments, with the finite-difference step (relative to the largest
    float input) and the tolerances its checks use; see harness.py for what each bounds."""
    name: str
    kernel: object
    make_args: Callable[[np.random.Generator], tuple]
    eps: float = 1e-6
    fd_rtol: float = 1e-6
    dot_rtol: float = 1e-10
    value_rtol: float = 1e-12


# ---------------------------------------------------------------------------------------------
# Time stepping in place
# ---------------------------------------------------------------------------------------------

heat1d_explicit = stencils.heat


@ad.kernel
def jacobi2d_swap(u, f, h2, nsteps):
    n, m = u.shape
    v = np.empty_like(u)
    for i in range(n):
        for j in range(m):
            v[i, j] = u[i, j]
    for step in range(nsteps):
        for i in range(1, n - 1):
            for j in range(1, m - 1):
                v[i, j] = 0.25 * (u[i - 1, j] + u[i + 1, j] + u[i, j - 1] + u[i, j + 1]
                                  - h2 * f[i, j] * u[i, j])
        u, v = v, u
    loss = 0.0
    for i in range(n):
        for j in range(m):
            loss += u[i, j] * u[i, j]
    return loss


@ad.kernel
def advect_periodic(u, c, nsteps):
    n = len(u)
    old = np.empty(n)
    for step in range(nsteps):
        for i in range(n):
            old[i] = u[i]
        for i in range(n):
            u[i] = old[i] - c * (old[i] - old[i - 1]) + 0.1 * c * old[i] * old[i - 1]
    s = 0.0
    for i in range(n):
        s += u[i] * u[i] * (i + 1)
    return s


# ---------------------------------------------------------------------------------------------
# Control flow
# ---------------------------------------------------------------------------------------------

@ad.kernel
def newton_cbrt(a):
    n = len(a)
    total = 0.0
    for i in range(n):
        x = a[i]
        dx = 1.0
        it = 0
        while abs(dx) > 1e-13 * x and it < 60:
            dx = (x * x * x - a[i]) / (3.0 * x * x)
            x -= dx
            it += 1
        total += x * (i + 1)
    return total


@ad.kernel
def exp_series_while(x):
    total = 0.0
    for i in range(len(x)):
        term = 1.0
        s = 1.0
        k = 1
        while math.fabs(term) > 1e-17 * s:
            term *= x[i] / k
            s += term
            k += 1
        total += s * (i % 3 + 1)
    return total


@ad.kernel
def piecewise_branches(x, c):
    s = 0.0
    for i in range(len(x)):
        xi = x[i]
        if xi > 1.0:
            s += c * xi * xi
        elif xi > 0.0:
            s += math.sin(xi) * c
        elif -1.0 < xi <= 0.0:
            s -= xi * xi * xi
        else:
            s += math.exp(xi) / c
    return s


@ad.kernel
def ternary_select(x, y, flag):
    s = 0.0
    for i in range(len(x)):
        a = x[i] if x[i] > y[i] else y[i] * y[i]
        b = x[i] * y[i] if (x[i] > 0.0 and not y[i] > 0.5) or i % 4 == 0 else x[i] - y[i]
        s += a * b if flag else a + b
    return s


@ad.kernel
def break_continue(x, limit):
    s = 0.0
    for i in range(len(x)):
        if x[i] < 0.0:
            continue
        if s > limit:
            break
        s += x[i] * x[i]
    return s * limit


@ad.kernel
def while_break(x, limit):
    i = 0
    s = 0.0
    while i < len(x):
        s += math.sqrt(x[i])
        if s > limit:
            break
        i += 1
    return s * s


@ad.kernel
def negative_steps(c, x):
    # Horner's scheme runs over range(n - 1, -1, -1); the pair sum over range(hi, lo, -2).
    p = 0.0
    for k in range(len(c) - 1, -1, -1):
        p = p * x + c[k]
    s = 0.0
    for i in range(len(c) - 1, 0, -2):
        s += c[i] * c[i - 1]
    return p + s


@ad.kernel
def reverse_recurrence(x, a):
    n = len(x)
    y = np.zeros(n)
    y[n - 1] = x[n - 1]
    for i in range(n - 2, -1, -1):
        y[i] = a * y[i + 1] + x[i] * x[i]
    s = 0.0
    for i in range(n):
        s += y[i] / (i + 1)
    return s


@ad.kernel
def data_dependent_step(x, stride):
    n = len(x)
    s = 0.0
    for i in range(0, n, stride):
        s += x[i] * x[i]
    step = 1 + int(x[0] * x[0])
    for i in range(n - 1, -1, -step):
        s += math.sin(x[i])
    return s


@ad.kernel
def continued_fraction(c, n):
    p_prev, p = 1.0, c[0]
    q_prev, q = 0.0, 1.0
    for k in range(1, n):
        p_prev, p = p, c[k] * p + p_prev
        q_prev, q = q, c[k] * q + q_prev
    return p / q


# ---------------------------------------------------------------------------------------------
# Kernels calling kernels
# ---------------------------------------------------------------------------------------------

@ad.kernel
def softplus(z):
    return math.log1p(math.exp(z))


@ad.kernel
def activate_into(out, x, w):
    for i in range(len(x)):
        out[i] = softplus(w * x[i]) * x[i]


@ad.kernel
def nested_calls(x, w):
    y = np.zeros(len(x))
    activate_into(y, x, w)
    s = 0.0
    for i in range(len(y)):
        s += y[i] * softplus(y[i] - 1.0)
    return s


@ad.kernel
def lotka_volterra_rhs(x, y, a, b):
    return a * x - b * x * y, b * x * y - a * y


@ad.kernel
def lotka_volterra_rk4(x, y, a, b, dt, nsteps):
    for step in range(nsteps):
        k1x, k1y = lotka_volterra_rhs(x, y, a, b)
        k2x, k2y = lotka_volterra_rhs(x + 0.5 * dt * k1x, y + 0.5 * dt * k1y, a, b)
        k3x, k3y = lotka_volterra_rhs(x + 0.5 * dt * k2x, y + 0.5 * dt * k2y, a, b)
        k4x, k4y = lotka_volterra_rhs(x + dt * k3x, y + dt * k3y, a, b)
        x += dt / 6.0 * (k1x + 2.0 * k2x + 2.0 * k3x + k4x)
        y += dt / 6.0 * (k1y + 2.0 * k2y + 2.0 * k3y + k4y)
    return x, y


# ---------------------------------------------------------------------------------------------
# Local arrays, reductions, indexing
# ---------------------------------------------------------------------------------------------

@ad.kernel
def local_temporaries(x):
    n = len(x)
    prefix = np.zeros(n + 1)
    ones = np.ones(n)
    scratch = np.empty(n)
    weighted = np.zeros_like(x)
    paired = np.empty_like(x)
    counts = np.zeros(n, dtype=np.int64)
    grid = np.zeros((n, 2), dtype=np.float64)
    for i in range(n):
        prefix[i + 1] = prefix[i] + x[i] * ones[i]
        counts[i] = i % 3
    for i in range(n):
        scratch[i] = prefix[i + 1] - prefix[i // 2]
        weighted[i] = scratch[i] * (counts[i] + 1)
        grid[i, 0] = weighted[i]
        grid[i, 1] = math.exp(-0.1 * prefix[i] * prefix[i])
    for i in range(n):
        paired[i] = grid[i, 0] * scratch[i] + grid[n - 1 - i, 1]
    s = 0.0
    for i in range(n):
        s += paired[i]
    return s


@ad.kernel
def dot_product(x, y):
    s = 0.0
    for i in range(len(x)):
        s += x[i] * y[i]
    return s


@ad.kernel
def product_reduction(x):
    p = 1.0
    for i in range(len(x)):
        p *= x[i]
    return p


@ad.kernel
def max_by_branch(x):
    m = x[0]
    s = 0.0
    for i in range(len(x)):
        if x[i] > m:
            m = x[i]
        s += x[i]
    return m * s


@ad.kernel
def min_max_builtins(x, y):
    lo = x[0]
    hi = x[0]
    s = 0.0
    for i in range(len(x)):
        lo = min(lo, x[i])
        hi = max(hi, x[i])
        s += max(x[i], y[i], 0.5) * min(x[i], y[i])
    return (hi - lo) * s


logsumexp = gmm.logsumexp   # max by branches, then a shifted sum of exps


@ad.kernel
def scatter_repeated(x, idx, w):
    y = np.zeros(len(w))
    for i in range(len(x)):
        y[idx[i]] += x[i]
    s = 0.0
    for j in range(len(y)):
        s += w[j] * y[j] * y[j]
    return s


@ad.kernel
def scatter_into_argument(y, x, idx):
    for i in range(len(x)):
        y[idx[i]] += x[i] * x[i]
    s = 0.0
    for j in range(len(y)):
        s += y[j] * y[j] * y[j]
    return s


@ad.kernel
def gather_repeated(x, idx):
    s = 0.0
    t = 0.0
    for i in range(len(idx)):
        s += x[idx[i]]
        t += x[idx[i]] * x[i % len(x)]
    return s * t


@ad.kernel
def csr_matvec_norm(data, indices, indptr, x):
    nrows = len(indptr) - 1
    s = 0.0
    for i in range(nrows):
        yi = 0.0
        for jj in range(indptr[i], indptr[i + 1]):
            yi += data[jj] * x[indices[jj]]
        s += yi * yi
    return s


@ad.kernel
def index_arithmetic(x, w):
    n = len(x)
    s = 0.0
    for i in range(2 * n):
        s += x[i // 2] * w[i % 3] + x[(i * 7) % n] * x[n - 1 - i // 2]
    s += x[-1] * x[-2] * w[-3]
    return s


@ad.kernel
def matmul_frobenius(a, b):
    n, k = a.shape
    m = b.shape[1]
    c = np.zeros((n, m))
    for i in range(n):
        for j in range(m):
            for q in range(k):
                c[i, j] += a[i, q] * b[q, j]
    s = 0.0
    for i in range(n):
        for j in range(m):
            s += c[i, j] * c[i, j]
    return math.sqrt(s)


@ad.kernel
def back_substitution(r, b):
    n = len(b)
    x = np.zeros(n)
    for i in range(n - 1, -1, -1):
        acc = b[i]
        for j in range(i + 1, n):
            acc -= r[i, j] * x[j]
        x[i] = acc / r[i, i]
    s = 0.0
    for i in range(n):
        s += x[i] * x[i]
    return s


@ad.kernel
def stencil3d(a, c):
    n0, n1, n2 = a.shape
    out = np.zeros((n0, n1, n2))
    for i in range(1, n0 - 1):
        for j in range(1, n1 - 1):
            for k in range(1, n2 - 1):
                out[i, j, k] = c * a[i, j, k] ** 2 - (
                    a[i - 1, j, k] + a[i + 1, j, k] + a[i, j - 1, k]
                    + a[i, j + 1, k] + a[i, j, k - 1] + a[i, j, k + 1]) / 6.0
    s = a[-1, -1, -1] * a[0, 0, 0]
    for i in range(n0):
        for j in range(n1):
            for k in range(n2):
                s += out[i, j, k] * a[i, j, k]
    return s


@ad.kernel
def float32_weighted_norm(x32, w):
    s = 0.0
    for i in range(len(x32)):
        s += w[i] * x32[i] * x32[i]
    return math.sqrt(s)


@ad.kernel
def float32_inplace_relax(a32, alpha, nsteps):
    for step in range(nsteps):
        for i in range(len(a32)):
            a32[i] = a32[i] * (1.0 - alpha) + alpha * math.tanh(a32[i])
    s = 0.0
    for i in range(len(a32)):
        s += a32[i] * a32[i]
    return s


@ad.kernel
def mean_and_variance(x):
    n = len(x)
    mean = 0.0
    for i in range(n):
        mean += x[i]
    mean /= n
    var = 0.0
    for i in range(n):
        d = x[i] - mean
        var += d * d
    var /= n - 1
    return mean, var


# ---------------------------------------------------------------------------------------------
# Arithmetic and elementary functions
# ---------------------------------------------------------------------------------------------

@ad.kernel
def powers(x, p):
    s = 0.0
    for i in range(len(x)):
        xi = x[i]
        s += (xi ** 2 + xi ** 3 - 0.5 * xi ** -1 + xi ** 0.5 + xi ** 2.5 + xi ** p
              + 0.1 * p ** xi + 2.0 ** xi)
    k = 2 ** 3
    return s / k


@ad.kernel
def math_functions(x, y):
    s = 0.0
    for i in range(len(x)):
        a = x[i]
        b = y[i]
        s += (math.sin(a) * math.cos(b) + math.tan(0.5 * a) + math.exp(-a * b) + math.log(b)
              + math.log1p(a * a) + math.expm1(0.3 * b) + math.sqrt(a + b) + math.tanh(a - b)
              + math.fabs(a - 1.5) + (b - math.floor(b)) + math.pow(b, a))
    return s


@ad.kernel
def numpy_functions(x, y):
    s = 0.0
    for i in range(len(x)):
        a = x[i]
        b = y[i]
        s += (np.sin(a) * np.cos(b) + np.tan(0.5 * a) + np.exp(-a * b) + np.log(b)
              + np.log1p(a * a) + np.expm1(0.3 * b) + np.sqrt(a + b) + np.tanh(a - b)
              + np.fabs(a - 1.5) + (b - np.floor(b)) + np.pow(b, a))
    return s


@ad.kernel
def abs_floordiv_mod(x, period):
    s = 0.0
    for i in range(len(x)):
        r = x[i] % period
        q = x[i] // period
        s += r * r + q * x[i] + abs(x[i]) * -r
    return s + float(len(x)) * period


# ---------------------------------------------------------------------------------------------
# ADBench objectives
# ---------------------------------------------------------------------------------------------

# The GMM objective of hpcad/kernels/gmm.py, which examples/gmm.py and the benchmark run.
gmm_objective = gmm.gmm_objective


@ad.kernel
def sigmoid(z):
    return 1.0 / (1.0 + math.exp(-z))


@ad.kernel
def lstm_layer(main_params, state, layer, x_in):
    # ADBench's element-wise LSTM cell: row 2*layer of main_params holds the four gates'
    # weights, row 2*layer+1 their biases; rows 2*layer and 2*layer+1 of state hold the
    # hidden and cell values, updated in place.
    b = len(x_in)
    w = 2 * layer
    for j in range(b):
        hidden = state[w, j]
        forget = sigmoid(x_in[j] * main_params[w, j] + main_params[w + 1, j])
        ingate = sigmoid(hidden * main_params[w, b + j] + main_params[w + 1, b + j])
        outgate = sigmoid(x_in[j] * main_params[w, 2 * b + j] + main_params[w + 1, 2 * b + j])
        change = math.tanh(hidden * main_params[w, 3 * b + j] + main_params[w + 1, 3 * b + j])
        state[w + 1, j] = state[w + 1, j] * forget + ingate * change
        state[w, j] = outgate * math.tanh(state[w + 1, j])


@ad.kernel
def lstm_objective(main_params, extra_params, state, sequence):
    n_layers = main_params.shape[0] // 2
    n_steps, b = sequence.shape
    h = np.empty_like(state)
    for i in range(2 * n_layers):
        for j in range(b):
            h[i, j] = state[i, j]
    x_in = np.zeros(b)
    ypred = np.zeros(b)
    total = 0.0
    count = 0
    for t in range(n_steps - 1):
        for j in range(b):
            x_in[j] = sequence[t, j] * extra_params[0, j]
        for layer in range(n_layers):
            lstm_layer(main_params, h, layer, x_in)
            for j in range(b):
                x_in[j] = h[2 * layer, j]
        sum_exp = 0.0
        for j in range(b):
            ypred[j] = x_in[j] * extra_params[1, j] + extra_params[2, j]
            sum_exp += math.exp(ypred[j])
        lse = math.log(sum_exp + 2.0)
        for j in range(b):
            total += sequence[t + 1, j] * (ypred[j] - lse)
        count += b
    return -total / count


@ad.kernel
def ba_objective(cams, points, weights, feats, obs):
    # ADBench's bundle adjustment: camera = rotation (angle-axis), centre, focal length,
    # principal point, two radial distortion coefficients; returns the sum of squared
    # weighted reprojection errors plus the weight errors (1 - w^2)^2.
    total = 0.0
    for o in range(obs.shape[0]):
        c = obs[o, 0]
        p = obs[o, 1]
        x0 = points[p, 0] - cams[c, 3]
        x1 = points[p, 1] - cams[c, 4]
        x2 = points[p, 2] - cams[c, 5]
        r0, r1, r2 = cams[c, 0], cams[c, 1], cams[c, 2]
        sqtheta = r0 * r0 + r1 * r1 + r2 * r2
        if sqtheta != 0.0:
            theta = math.sqrt(sqtheta)
            costheta = math.cos(theta)
            sintheta = math.sin(theta)
            w0 = r0 / theta
            w1 = r1 / theta
            w2 = r2 / theta
            tmp = (w0 * x0 + w1 * x1 + w2 * x2) * (1.0 - costheta)
            y0 = x0 * costheta + (w1 * x2 - w2 * x1) * sintheta + w0 * tmp
            y1 = x1 * costheta + (w2 * x0 - w0 * x2) * sintheta + w1 * tmp
            y2 = x2 * costheta + (w0 * x1 - w1 * x0) * sintheta + w2 * tmp
        else:
            y0 = x0 + r1 * x2 - r2 * x1
            y1 = x1 + r2 * x0 - r0 * x2
            y2 = x2 + r0 * x1 - r1 * x0
        px = -y0 / y2
        py = -y1 / y2
        rsq = px * px + py * py
        distortion = 1.0 + cams[c, 9] * rsq + cams[c, 10] * rsq * rsq
        ex = weights[o] * (px * distortion * cams[c, 6] + cams[c, 7] - feats[o, 0])
        ey = weights[o] * (py * distortion * cams[c, 6] + cams[c, 8] - feats[o, 1])
        total += ex * ex + ey * ey
    for o in range(len(weights)):
        werr = 1.0 - weights[o] * weights[o]
        total += werr * werr
    return total


# ---------------------------------------------------------------------------------------------
# Argument recipes: sizes stay small (the interpreter is slow) and points stay away from kinks
# ---------------------------------------------------------------------------------------------

def _near(rng, centers, halfwidth, n):
    """n values, each within halfwidth of one of centers: keeps branch points at a distance."""
    return rng.choice(np.asarray(centers), n) + rng.uniform(-halfwidth, halfwidth, n)


def _distinct(rng, n, lo, hi):
    """n values in [lo, hi] in random order, any two at least 0.6 * (hi - lo) / (n - 1) apart."""
    gap = (hi - lo) / (n - 1)
    return rng.permutation(np.linspace(lo, hi, n)) + rng.uniform(-0.2 * gap, 0.2 * gap, n)


def _repeated_indices(rng, n, size):
    """size > n indices into range(n), shuffled: every slot at least once, some more often."""
    idx = np.concatenate([np.arange(n), rng.integers(0, n, size - n)])
    return rng.permutation(idx)


def _break_args(rng):
    x = _near(rng, [-1.0, 1.0], 0.5, 14)
    partial = np.cumsum(np.where(x > 0.0, x * x, 0.0))
    positive = np.flatnonzero(x > 0.0)
    # The loop breaks once s exceeds limit; put limit halfway between two partial sums.
    k = positive[len(positive) // 2]
    limit = float(0.5 * (partial[k - 1] + partial[k])) if k > 0 else float(0.5 * partial[k])
    return x, limit


def _while_break_args(rng):
    x = rng.uniform(0.5, 2.0, 15)
    partial = np.cumsum(np.sqrt(x))     # the loop breaks after the tenth element
    return x, float(0.5 * (partial[8] + partial[9]))


def _data_step_args(rng):
    x = rng.uniform(-1.0, 1.0, 17)
    x[0] = math.sqrt(2.5) + rng.uniform(-0.05, 0.05)   # int(x[0]**2) == 2: step 3
    return x, 2


def _min_max_args(rng):
    x = _distinct(rng, 10, 1.0, 4.0)
    y = x + rng.choice([-1.0, 1.0], 10) * rng.uniform(0.2, 0.4, 10)
    # Two pairs below 0.5, where max(x[i], y[i], 0.5) takes the constant.
    x[:2] = np.array([0.1, 0.25]) + rng.uniform(-0.02, 0.02, 2)
    y[:2] = np.array([0.3, 0.05]) + rng.uniform(-0.02, 0.02, 2)
    return x, y


def _csr_args(rng):
    ncols = 5
    indptr = np.array([0, 2, 5, 6, 9, 11, 13], dtype=np.int32)     # six rows
    indices = rng.integers(0, ncols, indptr[-1]).astype(np.int32)
    return rng.uniform(0.5, 1.5, indptr[-1]), indices, indptr, rng.uniform(-1.0, 1.0, ncols)


def _back_substitution_args(rng):
    r = np.triu(rng.uniform(-0.5, 0.5, (6, 6))) + np.diag(rng.uniform(1.5, 2.5, 6))
    return r, rng.standard_normal(6)


def _floordiv_mod_args(rng):
    period = 1.3 + rng.uniform(-0.05, 0.05)
    k = rng.integers(-3, 4, 10)
    x = period * (k + rng.uniform(0.2, 0.8, 10))   # x / period stays away from integers
    return x, float(period)


def gmm_args(rng, d=3, n_comp=4, n=6):
    alphas = rng.standard_normal(n_comp)
    means = rng.standard_normal((n_comp, d))
    icf = 0.3 * rng.standard_normal((n_comp, d + d * (d - 1) // 2))
    x = rng.standard_normal((n, d))
    return alphas, means, icf, x, 1.0 + 0.1 * float(rng.uniform()), 2


def _lstm_args(rng, n_layers=2, b=3, n_steps=4):
    main_params = 0.5 * rng.standard_normal((2 * n_layers, 4 * b))
    extra_params = 0.5 * rng.standard_normal((3, b))
    state = 0.5 * rng.standard_normal((2 * n_layers, b))
    sequence = rng.standard_normal((n_steps, b))
    return main_params, extra_params, state, sequence


def _ba_args(rng, n_cams=2, n_points=3):
    cams = np.zeros((n_cams, 11))
    cams[:, 0:3] = 0.2 * rng.standard_normal((n_cams, 3))
    # Camera 1 does not rotate: the sqtheta == 0 branch, whose formula is the first-order one
    # of the other, so the objective stays smooth where FD steps leave the branch.
    cams[1, 0:3] = 0.0
    cams[:, 3:6] = 0.1 * rng.standard_normal((n_cams, 3))
    cams[:, 6] = rng.uniform(0.8, 1.2, n_cams)
    cams[:, 7:9] = 0.1 * rng.standard_normal((n_cams, 2))
    cams[:, 9:11] = 0.01 * rng.standard_normal((n_cams, 2))
    points = rng.standard_normal((n_points, 3))
    points[:, 2] = rng.choice([-5.0, 5.0], n_points) + rng.uniform(-0.5, 0.5, n_points)
    obs = np.array([[0, 0], [0, 1], [1, 1], [1, 2], [0, 2]], dtype=np.int64)
    weights = rng.uniform(0.5, 1.5, len(obs))
    feats = 0.5 * rng.standard_normal((len(obs), 2))
    return cams, points, weights, feats, obs


# float32 arrays round every stored primal, tangent and adjoint to 6e-8 relative, and the plain
# Python run rounds its float32 arithmetic elsewhere (NumPy keeps float32 * float in float32),
# while the FD reference runs on float64 copies: agreement is near 1e-7 (a float64 model of
# float32 stores gives 1e-8 on the derivative, 3e-7 on the value), so these cases allow 1e-5.
_FLOAT32_TOLERANCES = dict(fd_rtol=1e-5, dot_rtol=1e-5, value_rtol=1e-5)

CASES: list[Case] = [
    Case("heat1d_explicit", heat1d_explicit,
         lambda rng: (rng.uniform(0.5, 1.5, 12), 0.23 + 0.02 * float(rng.uniform()), 20)),
    Case("jacobi2d_swap", jacobi2d_swap,
         lambda rng: (rng.uniform(0.0, 1.0, (6, 5)), rng.uniform(0.5, 1.5, (6, 5)), 0.3, 7)),
    Case("advect_periodic", advect_periodic,
         lambda rng: (rng.uniform(0.5, 1.5, 10), 0.4 + 0.1 * float(rng.uniform()), 6)),
    Case("newton_cbrt", newton_cbrt, lambda rng: (rng.uniform(0.5, 8.0, 8),)),
    Case("exp_series_while", exp_series_while, lambda rng: (rng.uniform(0.2, 2.0, 6),)),
    Case("piecewise_branches", piecewise_branches,
         lambda rng: (_near(rng, [-1.6, -0.5, 0.5, 1.6], 0.3, 16), 1.5)),
    Case("ternary_select", ternary_select,
         lambda rng: (_near(rng, [-0.7, 1.8], 0.2, 12), _near(rng, [0.0, 1.0], 0.3, 12), True)),
    Case("break_continue", break_continue, _break_args),
    Case("while_break", while_break, _while_break_args),
    Case("negative_steps", negative_steps,
         lambda rng: (rng.standard_normal(9), 0.7 + 0.1 * float(rng.uniform()))),
    Case("reverse_recurrence", reverse_recurrence,
         lambda rng: (rng.standard_normal(10), 0.8)),
    Case("data_dependent_step", data_dependent_step, _data_step_args),
    Case("continued_fraction", continued_fraction, lambda rng: (rng.uniform(1.0, 3.0, 8), 8)),
    Case("softplus", softplus, lambda rng: (float(rng.standard_normal()),)),
    Case("nested_calls", nested_calls,
         lambda rng: (rng.standard_normal(8), 0.5 + float(rng.uniform()))),
    Case("lotka_volterra_rhs", lotka_volterra_rhs,
         lambda rng: (1.0 + float(rng.uniform()), 0.5 + float(rng.uniform()), 1.1, 0.4)),
    Case("lotka_volterra_rk4", lotka_volterra_rk4,
         lambda rng: (1.0 + float(rng.uniform()), 0.5 + float(rng.uniform()), 0.6, 0.3, 0.1,
                      12)),
    Case("local_temporaries", local_temporaries, lambda rng: (rng.standard_normal(9),)),
    Case("dot_product", dot_product,
         lambda rng: (rng.standard_normal(20), rng.standard_normal(20))),
    Case("product_reduction", product_reduction, lambda rng: (rng.uniform(0.8, 1.25, 15),)),
    Case("max_by_branch", max_by_branch, lambda rng: (_distinct(rng, 12, -2.0, 2.0),)),
    Case("min_max_builtins", min_max_builtins, _min_max_args),
    Case("logsumexp", logsumexp, lambda rng: (rng.standard_normal(7),)),
    Case("scatter_repeated", scatter_repeated,
         lambda rng: (rng.standard_normal(15), _repeated_indices(rng, 5, 15),
                      rng.uniform(0.5, 1.5, 5))),
    Case("scatter_into_argument", scatter_into_argument,
         lambda rng: (rng.standard_normal(6), rng.standard_normal(12),
                      _repeated_indices(rng, 6, 12).astype(np.int32))),
    Case("gather_repeated", gather_repeated,
         lambda rng: (rng.standard_normal(6), _repeated_indices(rng, 6, 14))),
    Case("csr_matvec_norm", csr_matvec_norm, _csr_args),
    Case("index_arithmetic", index_arithmetic,
         lambda rng: (rng.standard_normal(9), rng.standard_normal(3))),
    Case("matmul_frobenius", matmul_frobenius,
         lambda rng: (rng.standard_normal((4, 3)), rng.standard_normal((3, 5)))),
    Case("back_substitution", back_substitution, _back_substitution_args),
    Case("stencil3d", stencil3d,
         lambda rng: (rng.uniform(0.5, 1.5, (4, 4, 3)), 0.7 + 0.1 * float(rng.uniform()))),
    Case("float32_weighted_norm", float32_weighted_norm,
         lambda rng: (rng.uniform(0.5, 1.5, 12).astype(np.float32), rng.uniform(0.5, 1.5, 12)),
         **_FLOAT32_TOLERANCES),
    Case("float32_inplace_relax", float32_inplace_relax,
         lambda rng: (rng.uniform(0.5, 1.5, 10).astype(np.float32), 0.3, 5),
         **_FLOAT32_TOLERANCES),
    Case("mean_and_variance", mean_and_variance, lambda rng: (rng.standard_normal(11),)),
    Case("powers", powers,
         lambda rng: (rng.uniform(0.5, 2.0, 8), 1.5 + 0.1 * float(rng.uniform()))),
    Case("math_functions", math_functions,
         lambda rng: (rng.uniform(0.2, 1.2, 8), _near(rng, [0.75, 1.5, 2.25], 0.15, 8))),
    Case("numpy_functions", numpy_functions,
         lambda rng: (rng.uniform(0.2, 1.2, 8), _near(rng, [0.75, 1.5, 2.25], 0.15, 8))),
    Case("abs_floordiv_mod", abs_floordiv_mod, _floordiv_mod_args),
    Case("gmm_objective", gmm_objective, gmm_args),
    Case("lstm_objective", lstm_objective, _lstm_args),
    Case("ba_objective", ba_objective, _ba_args),
]
