"""JAX versions of GradBench evals, written here from the evals' specs (evals/<eval>/README.md
in GradBench), for the `gradbench` benchmark: jax.jit, float64, single-threaded XLA
(`one_thread_client`).

    JAX[eval][function] = (prepare(input) -> args, run(*args) -> result, blocking until ready)

Evals without a JAX version here: hello, det (GradBench has no JAX tool for them), and ba,
ht, lstm, particle, saddle (not written yet)."""
from __future__ import annotations

import os
from functools import partial

import numpy as np

# one thread for XLA, as for numba; only effective before jax is first imported (this flag
# keeps Eigen's kernels on the calling thread; one_thread_client below does the rest)
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false")

try:
    import jax
    import jax.numpy as jnp
    from jax.scipy.special import logsumexp as jax_logsumexp
    jax.config.update("jax_enable_x64", True)
except ImportError:   # jax is in the bench extra; the benchmark leaves its rows empty
    jax = jnp = None


def _threads() -> set[int]:
    return {int(t) for t in os.listdir("/proc/self/task")}


def one_thread_client() -> None:
    """Make XLA's CPU client now, with one thread for its computations. The client sizes the
    thread pool that runs a computation's operations by the CPUs the calling thread may use
    when it is made, so it is made while this thread is held to one CPU; the threads it starts
    are then let run on any CPU again, as this one is. Without this, the flag above still
    leaves that pool one thread per CPU, and independent operations run side by side (CPU
    time above wall time). Only effective before jax's CPU client is first made in this
    process (`python -m benchmarks --cases gradbench` alone); a no-op off Linux."""
    if jax is None or not hasattr(os, "sched_setaffinity"):
        return
    allowed, before = os.sched_getaffinity(0), _threads()
    os.sched_setaffinity(0, {min(allowed)})
    try:
        jax.devices("cpu")
    finally:
        os.sched_setaffinity(0, allowed)
        for tid in _threads() - before:
            try:
                os.sched_setaffinity(tid, allowed)
            except OSError:   # a thread that has ended since
                pass


one_thread_client()


def blocking(fn):
    return lambda *args: jax.block_until_ready(fn(*args))


# --- lse: a = max x; a + log sum exp(x - a) -----------------------------------------------
def lse(x):
    a = jnp.max(x)
    return a + jnp.log(jnp.sum(jnp.exp(x - a)))


# --- llsq: 1/2 sum_i (sign(t_i) - sum_j x_j t_i^j)^2, t_i = -1 + 2 i / (n - 1) --------------
@partial(jax.jit, static_argnums=1) if jax else (lambda f: f)
def llsq(x, n):
    t = -1.0 + jnp.arange(n) * 2.0 / (n - 1)
    powers = jnp.cumprod(jnp.concatenate([jnp.ones((n, 1)),
                                          jnp.broadcast_to(t[:, None], (n, x.shape[0] - 1))],
                                         axis=1), axis=1)
    r = jnp.sign(t) - powers @ x
    return 0.5 * jnp.dot(r, r)


# --- ode: RK4 on y_0' = x_0, y_i' = x_i y_{i-1}, y(0) = 0, to t = 2 in s steps --------------
def ode(x, s):
    def slope(y):
        return jnp.concatenate([x[:1], x[1:] * y[:-1]])
    h = 2.0 / s

    def step(y, _):
        k1 = slope(y)
        k2 = slope(y + h / 2 * k1)
        k3 = slope(y + h / 2 * k2)
        k4 = slope(y + h * k3)
        return y + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4), None
    y, _ = jax.lax.scan(step, jnp.zeros_like(x), None, length=s)
    return y


# --- kmeans: sum_i min_j |C_j - P_i|^2; dir = J / (H ones), H diagonal --------------------
def kmeans_cost(points, centroids):
    # |p - c|^2 = |p|^2 + |c|^2 - 2 p.c: one matrix product instead of an (n, k, d) array
    dists = (jnp.sum(points ** 2, 1)[:, None] + jnp.sum(centroids ** 2, 1)[None, :]
             - 2.0 * points @ centroids.T)
    return jnp.sum(jnp.min(dists, axis=1))


def kmeans_dir(points, centroids):
    jac = jax.grad(kmeans_cost, argnums=1)
    j, hess = jax.jvp(lambda c: jac(points, c), (centroids,), (jnp.ones_like(centroids),))
    return j / hess


# --- gmm: the log posterior of a Gaussian mixture with a Wishart prior on the precisions ---
def gmm_objective(alpha, mu, q, lower, x, m, gamma):
    n, d = x.shape
    k = alpha.shape[0]
    rows, cols = np.tril_indices(d, -1)
    order = np.lexsort((rows, cols))   # l fills the strict lower triangle column by column
    Q = jnp.zeros((k, d, d)).at[:, rows[order], cols[order]].set(lower)
    Q = Q + jax.vmap(jnp.diag)(jnp.exp(q))
    centered = x[:, None, :] - mu[None, :, :]
    qx = jnp.einsum("kij,nkj->nki", Q, centered)
    sum_q = jnp.sum(q, axis=1)
    log_likelihood = (jnp.sum(jax_logsumexp(alpha[None] + sum_q[None]
                                            - 0.5 * jnp.sum(qx * qx, axis=2), axis=1))
                      - n * jax_logsumexp(alpha) - 0.5 * n * d * jnp.log(2 * jnp.pi))
    dof = d + m + 1
    log_prior = (jnp.sum(m * sum_q - 0.5 * gamma * gamma * jnp.sum(Q * Q, axis=(1, 2)))
                 + k * (dof * d * jnp.log(gamma) - 0.5 * dof * d * jnp.log(2.0)
                        - jax.scipy.special.multigammaln(0.5 * dof, d)))
    return log_likelihood + log_prior


def _arrays(inp: dict, *names: str):
    return tuple(np.asarray(inp[n], dtype=np.float64) for n in names)


def _gmm_args(inp: dict):
    return (*_arrays(inp, "alpha", "mu", "q", "l", "x"), int(inp["m"]), float(inp["gamma"]))


def functions() -> dict:
    """JAX[eval][function], or {} without jax."""
    if jax is None:
        return {}
    lse_jit, lse_grad = jax.jit(lse), jax.jit(jax.grad(lse))
    llsq_grad = jax.jit(jax.grad(llsq), static_argnums=1)
    ode_jit = jax.jit(ode, static_argnums=1)
    ode_grad = jax.jit(jax.grad(lambda x, s: ode(x, s)[-1]), static_argnums=1)
    gmm_jit = jax.jit(gmm_objective, static_argnums=5)
    gmm_grad = jax.jit(jax.grad(gmm_objective, argnums=(0, 1, 2, 3)), static_argnums=5)
    xs = lambda inp: _arrays(inp, "x")                     # noqa: E731
    x_n = lambda inp: (*_arrays(inp, "x"), int(inp["n"]))  # noqa: E731
    x_s = lambda inp: (*_arrays(inp, "x"), int(inp["s"]))  # noqa: E731
    pc = lambda inp: _arrays(inp, "points", "centroids")   # noqa: E731
    return {
        "lse": {"primal": (xs, blocking(lse_jit)), "gradient": (xs, blocking(lse_grad))},
        "llsq": {"primal": (x_n, blocking(llsq)), "gradient": (x_n, blocking(llsq_grad))},
        "ode": {"primal": (x_s, blocking(ode_jit)), "gradient": (x_s, blocking(ode_grad))},
        "kmeans": {"cost": (pc, blocking(jax.jit(kmeans_cost))),
                   "dir": (pc, blocking(jax.jit(kmeans_dir)))},
        "gmm": {"objective": (_gmm_args, blocking(gmm_jit)),
                "jacobian": (_gmm_args, blocking(gmm_grad))},
    }
