"""Small kernels whose IR (and derivative IR) is pinned as golden text in tests/ir/golden/."""
import math

import numpy as np

import hpcad as ad


@ad.kernel
def dot(x, y):
    s = 0.0
    for i in range(x.shape[0]):
        s += x[i] * y[i]
    return s


@ad.kernel
def heat_step(u, unew, alpha):
    n = u.shape[0]
    for i in range(1, n - 1):
        unew[i] = u[i] + alpha * (u[i - 1] - 2.0 * u[i] + u[i + 1])
    return unew[n // 2]


@ad.kernel
def branchy(x, a):
    y = 0.0
    for i in range(a.shape[0]):
        if a[i] > 0.0:
            y += math.sin(x * a[i])
        else:
            y -= a[i] * a[i]
    return y


@ad.kernel
def newton_sqrt(c):
    x = c
    while abs(x * x - c) > 1e-12:
        x = 0.5 * (x + c / x)
    return x


@ad.kernel
def heat_steps(u, alpha, nsteps):
    """The reverse shows the 1-D gather with its neighbours fused in and d_tmp carried
    (passes/gather.py, carry.py), and the tape save inside the stencil loop (fusion.py)."""
    n = u.shape[0]
    tmp = np.zeros(n)
    for t in range(nsteps):
        for i in range(1, n - 1):
            tmp[i] = u[i] + alpha * (u[i - 1] - 2.0 * u[i] + u[i + 1])
        for i in range(1, n - 1):
            u[i] = tmp[i]
    return u[n // 2]


@ad.kernel
def jacobi_sweeps(u, v, nsteps):
    """The reverse shows the 2-D gather (passes/gather_nest.py)."""
    n, m = u.shape
    for step in range(nsteps):
        for i in range(1, n - 1):
            for j in range(1, m - 1):
                v[i, j] = 0.25 * (u[i - 1, j] + u[i + 1, j] + u[i, j - 1] + u[i, j + 1])
        u, v = v, u
    return u[n // 2, m // 2]


@ad.kernel
def matvec_t(A, x, y):
    """Matrix products (linalg.matmul with a transpose flag): the forward adds a product per
    operand with a tangent, the reverse an outer product for A and a product for x."""
    return np.dot(y, A.T @ x)


@ad.kernel
def array_stencil(u, v, nsteps):
    """NumPy array syntax (frontend/arrays.py): each slice statement is one nest over the
    target's indices, the slices read as u[i + c]; the reverse shows the 2-D gather."""
    for _ in range(nsteps):
        v[1:-1, 1:-1] = 0.25 * (u[:-2, 1:-1] + u[2:, 1:-1] + u[1:-1, :-2] + u[1:-1, 2:])
        u[1:-1, 1:-1] = np.where(v[1:-1, 1:-1] > 0.0, v[1:-1, 1:-1], 0.5 * v[1:-1, 1:-1])
    return u[1, 1]


@ad.kernel
def bilinear(x, c):
    return c * x[0] * x[1] + x[0] * x[0]


@ad.kernel
def nested_grad(x, c):
    """A gradient taken inside a kernel (frontend/nested.py): the primal holds the inner
    reverse sweep inlined (the gradient a zeroed array it accumulates into); its own
    derivatives differentiate that sweep again."""
    g = ad.grad(bilinear, argnums=0)(x, c)
    return g[0] * g[1]


GOLDEN = {
    "dot": (dot, "float64[::1], float64[::1]"),
    "heat_step": (heat_step, "float64[::1], float64[::1], float64"),
    "branchy": (branchy, "float64, float64[::1]"),
    "newton_sqrt": (newton_sqrt, "float64"),
    "heat_steps": (heat_steps, "float64[::1], float64, int64"),
    "jacobi_sweeps": (jacobi_sweeps, "float64[:, ::1], float64[:, ::1], int64"),
    "matvec_t": (matvec_t, "float64[:, ::1], float64[::1], float64[::1]"),
    "array_stencil": (array_stencil, "float64[:, ::1], float64[:, ::1], int64"),
    "nested_grad": (nested_grad, "float64[::1], float64"),
}
