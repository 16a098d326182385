"""Parallel test kernels (hpcad.prange, numba.prange, join, spawn/sync, par_map, par_sum), each
with a serial twin: the same arithmetic written with plain `range` loops and direct calls, so
the parallel kernel's derivatives can be checked against the twin's as well as against finite
differences. CASES pairs each kernel with small random arguments at which it is smooth; a few
kernels at the end are used by single tests. (Named par_kernels, not kernels: tests/ad has a
kernels.py, and test module basenames must be unique.)"""
import math
from collections.abc import Callable
from dataclasses import dataclass

import numba
import numpy as np

import hpcad as ad

# How the reverse sweep keeps its accumulations into shadow arrays race-free (docs/architecture.md):
OWN = "own"            # each iteration (task) accumulates only into its own elements
GATHERED = "gathered"  # stencil-shaped: each element computed once by an iteration of its own
COLORED = "colored"    # stencil-shaped, where no gather fits: two-colour chunks, plain +=
PRIVATE = "private"    # irregular, in inner loops: per-thread copies, added after the loop
ATOMIC = "atomic"      # irregular or shared between tasks: atomic float adds, any order
ADJOINT_FORMS = (OWN, GATHERED, COLORED, PRIVATE, ATOMIC)


@dataclass(frozen=True)
class ParallelCase:
    """A parallel kernel, its serial twin and its arguments, with the finite-difference step
    and tolerances tests/ad/harness.py reads, and the race-free form its adjoint should take
    (one of ADJOINT_FORMS). Array gradients are the same bitwise from run to run unless the
    adjoint adds atomically or they use the value of a parallel sum (whose last bit depends on
    how numba's threads group the partial sums): `sum_in_gradient`."""
    name: str
    kernel: object
    serial: object
    make_args: Callable[[np.random.Generator], tuple]
    adjoint: str
    sum_in_gradient: bool = False
    eps: float = 1e-6
    fd_rtol: float = 1e-6
    dot_rtol: float = 1e-10
    value_rtol: float = 1e-12


# ---------------------------------------------------------------------------------------------
# 1-D stencil with overlapping reads: iteration i reads u[i-1], u[i], u[i+1], so the adjoint's
# accumulations into du from neighbouring iterations collide.
# ---------------------------------------------------------------------------------------------

@ad.kernel
def stencil1d(u, c):
    n = u.shape[0]
    out = np.zeros(n)
    for i in ad.prange(1, n - 1):
        out[i] = u[i - 1] - 2.0 * u[i] * u[i] + c * math.sin(u[i + 1])
    loss = 0.0
    for i in range(n):
        loss += out[i] * out[i]
    return loss


@ad.kernel
def stencil1d_serial(u, c):
    n = u.shape[0]
    out = np.zeros(n)
    for i in range(1, n - 1):
        out[i] = u[i - 1] - 2.0 * u[i] * u[i] + c * math.sin(u[i + 1])
    loss = 0.0
    for i in range(n):
        loss += out[i] * out[i]
    return loss


# ---------------------------------------------------------------------------------------------
# 2-D five-point stencil, prange over rows; linear in u inside the row loop (numba backend
# limitation: nothing in the sequential j loop may need saving for the reverse sweep).
# ---------------------------------------------------------------------------------------------

@ad.kernel
def stencil2d_rows(u, k):
    n, m = u.shape
    v = np.zeros((n, m))
    for i in ad.prange(1, n - 1):
        for j in range(1, m - 1):
            v[i, j] = u[i, j] + k * (u[i - 1, j] + u[i + 1, j] + u[i, j - 1] + u[i, j + 1]
                                     - 4.0 * u[i, j])
    loss = 0.0
    for i in range(n):
        for j in range(m):
            loss += v[i, j] * v[i, j]
    return loss


@ad.kernel
def stencil2d_rows_serial(u, k):
    n, m = u.shape
    v = np.zeros((n, m))
    for i in range(1, n - 1):
        for j in range(1, m - 1):
            v[i, j] = u[i, j] + k * (u[i - 1, j] + u[i + 1, j] + u[i, j - 1] + u[i, j + 1]
                                     - 4.0 * u[i, j])
    loss = 0.0
    for i in range(n):
        for j in range(m):
            loss += v[i, j] * v[i, j]
    return loss


# ---------------------------------------------------------------------------------------------
# Gather through an index array with repeats: the adjoint scatters into dx, several
# iterations hitting the same element.
# ---------------------------------------------------------------------------------------------

@ad.kernel
def gather_repeated(w, x, idx):
    s = 0.0
    for i in ad.prange(idx.shape[0]):
        s += w[i] * math.sin(x[idx[i]])
    return s


@ad.kernel
def gather_repeated_serial(w, x, idx):
    s = 0.0
    for i in range(idx.shape[0]):
        s += w[i] * math.sin(x[idx[i]])
    return s


# ---------------------------------------------------------------------------------------------
# Gather form: every iteration reads and writes only its own elements, so the adjoint writes
# only its own elements too and needs no atomics (numba.prange marker).
# ---------------------------------------------------------------------------------------------

@ad.kernel
def elementwise(u, c):
    n = u.shape[0]
    out = np.zeros(n)
    for i in numba.prange(n):
        out[i] = u[i] * u[i] + c * math.exp(-u[i])
    loss = 0.0
    for i in range(n):
        loss += out[i] * out[i]
    return loss


@ad.kernel
def elementwise_serial(u, c):
    n = u.shape[0]
    out = np.zeros(n)
    for i in range(n):
        out[i] = u[i] * u[i] + c * math.exp(-u[i])
    loss = 0.0
    for i in range(n):
        loss += out[i] * out[i]
    return loss


# ---------------------------------------------------------------------------------------------
# Reductions: sum (written -=), max, min; the extrema at points without ties.
# ---------------------------------------------------------------------------------------------

@ad.kernel
def sum_reduction(u, c):
    s = 0.0
    for i in ad.prange(u.shape[0]):
        s -= 0.5 * u[i] * u[i] - math.exp(c * u[i]) * u[i]
    return s


@ad.kernel
def sum_reduction_serial(u, c):
    s = 0.0
    for i in range(u.shape[0]):
        s -= 0.5 * u[i] * u[i] - math.exp(c * u[i]) * u[i]
    return s


@ad.kernel
def max_reduction(u, c):
    m = -1.0e300
    for i in numba.prange(u.shape[0]):
        m = max(m, u[i] * u[i] + c * u[i])
    return m


@ad.kernel
def max_reduction_serial(u, c):
    m = -1.0e300
    for i in range(u.shape[0]):
        m = max(m, u[i] * u[i] + c * u[i])
    return m


@ad.kernel
def min_reduction(u, c):
    m = 1.0e300
    for i in ad.prange(u.shape[0]):
        m = min(m, math.sin(u[i]) * c + u[i])
    return m


@ad.kernel
def min_reduction_serial(u, c):
    m = 1.0e300
    for i in range(u.shape[0]):
        m = min(m, math.sin(u[i]) * c + u[i])
    return m


# ---------------------------------------------------------------------------------------------
# Nested prange: both loops parallel; a[j] is read by every row, so da collides across rows.
# ---------------------------------------------------------------------------------------------

@ad.kernel
def nested_prange(u, a):
    n, m = u.shape
    v = np.zeros((n, m))
    for i in ad.prange(n):
        for j in ad.prange(m):
            v[i, j] = a[j] * math.sin(u[i, j]) + u[i, j] * u[i, j]
    loss = 0.0
    for i in range(n):
        for j in range(m):
            loss += v[i, j] * v[i, j]
    return loss


@ad.kernel
def nested_prange_serial(u, a):
    n, m = u.shape
    v = np.zeros((n, m))
    for i in range(n):
        for j in range(m):
            v[i, j] = a[j] * math.sin(u[i, j]) + u[i, j] * u[i, j]
    loss = 0.0
    for i in range(n):
        for j in range(m):
            loss += v[i, j] * v[i, j]
    return loss


# ---------------------------------------------------------------------------------------------
# Time loop around prange stencils: 1-D explicit heat with a nonlinear reaction term, updated
# in place through a temporary.
# ---------------------------------------------------------------------------------------------

@ad.kernel
def heat_prange(u, alpha, nsteps):
    n = u.shape[0]
    tmp = np.zeros(n)
    for step in range(nsteps):
        for i in ad.prange(1, n - 1):
            tmp[i] = u[i] + alpha * (u[i - 1] - 2.0 * u[i] + u[i + 1]) - 0.05 * u[i] * u[i]
        for i in ad.prange(1, n - 1):
            u[i] = tmp[i]
    loss = 0.0
    for i in range(n):
        loss += u[i] * u[i]
    return loss


@ad.kernel
def heat_prange_serial(u, alpha, nsteps):
    n = u.shape[0]
    tmp = np.zeros(n)
    for step in range(nsteps):
        for i in range(1, n - 1):
            tmp[i] = u[i] + alpha * (u[i - 1] - 2.0 * u[i] + u[i + 1]) - 0.05 * u[i] * u[i]
        for i in range(1, n - 1):
            u[i] = tmp[i]
    loss = 0.0
    for i in range(n):
        loss += u[i] * u[i]
    return loss


# ---------------------------------------------------------------------------------------------
# Fork-join: join of two kernels that both read x; spawn/sync of four tasks over chunks.
# ---------------------------------------------------------------------------------------------

@ad.kernel
def squares(x, c):
    s = 0.0
    for i in range(x.shape[0]):
        s += c * x[i] * x[i]
    return s


@ad.kernel
def sine_dot(x, y):
    s = 0.0
    for i in range(x.shape[0]):
        s += math.sin(x[i]) * y[i]
    return s


@ad.kernel
def join_two(x, y, c):
    a, b = ad.join(squares, (x, c), sine_dot, (x, y))
    return a * b + a


@ad.kernel
def join_two_serial(x, y, c):
    a = squares(x, c)
    b = sine_dot(x, y)
    return a * b + a


@ad.kernel
def chunk_energy(u, lo, hi):
    s = 0.0
    for i in range(lo, hi):
        s += math.cos(u[i]) * u[i + 1]
    return s


@ad.kernel
def spawn_four(u):
    q = (u.shape[0] - 1) // 4
    h1 = ad.spawn(chunk_energy, u, 0, q)
    h2 = ad.spawn(chunk_energy, u, q, 2 * q)
    h3 = ad.spawn(chunk_energy, u, 2 * q, 3 * q)
    h4 = ad.spawn(chunk_energy, u, 3 * q, u.shape[0] - 1)
    r1 = ad.sync(h1)
    r2 = ad.sync(h2)
    r3 = ad.sync(h3)
    r4 = ad.sync(h4)
    return r1 * r2 + r3 * r4


@ad.kernel
def spawn_four_serial(u):
    q = (u.shape[0] - 1) // 4
    r1 = chunk_energy(u, 0, q)
    r2 = chunk_energy(u, q, 2 * q)
    r3 = chunk_energy(u, 2 * q, 3 * q)
    r4 = chunk_energy(u, 3 * q, u.shape[0] - 1)
    return r1 * r2 + r3 * r4


# ---------------------------------------------------------------------------------------------
# Parallel iterators: par_map (own element only) and par_sum (reads the next element too).
# ---------------------------------------------------------------------------------------------

@ad.kernel
def softsquare(i, u, c):
    return c * u[i] * u[i] + math.tanh(u[i])


@ad.kernel
def neighbour_product(i, u, c):
    return u[i] * u[(i + 1) % u.shape[0]] + c * math.cos(u[i])


@ad.kernel
def par_map_loss(u, c):
    n = u.shape[0]
    out = np.zeros(n)
    ad.par_map(softsquare, n, out, u, c)
    loss = 0.0
    for i in range(n):
        loss += out[i] * out[i]
    return loss


@ad.kernel
def par_map_loss_serial(u, c):
    n = u.shape[0]
    out = np.zeros(n)
    for i in range(n):
        out[i] = softsquare(i, u, c)
    loss = 0.0
    for i in range(n):
        loss += out[i] * out[i]
    return loss


@ad.kernel
def par_sum_ring(u, c):
    return ad.par_sum(neighbour_product, u.shape[0], u, c)


@ad.kernel
def par_sum_ring_serial(u, c):
    s = 0.0
    for i in range(u.shape[0]):
        s += neighbour_product(i, u, c)
    return s


# ---------------------------------------------------------------------------------------------
# A per-iteration scratch array (private to the iteration; so must its shadow be), prange on
# the inner loop of a 2-D stencil (nonlinear: the sequential outer loop may save values), and
# a join whose tasks write output arrays.
# ---------------------------------------------------------------------------------------------

@ad.kernel
def private_scratch(u, c):
    n = u.shape[0]
    out = np.zeros(n)
    for i in ad.prange(n):
        w = np.zeros(3)
        w[0] = u[i] * c
        w[1] = w[0] * u[i]
        w[2] = math.sin(w[1])
        out[i] = w[0] * w[2] + w[1]
    loss = 0.0
    for i in range(n):
        loss += out[i] * out[i]
    return loss


@ad.kernel
def private_scratch_serial(u, c):
    n = u.shape[0]
    out = np.zeros(n)
    for i in range(n):
        w = np.zeros(3)
        w[0] = u[i] * c
        w[1] = w[0] * u[i]
        w[2] = math.sin(w[1])
        out[i] = w[0] * w[2] + w[1]
    loss = 0.0
    for i in range(n):
        loss += out[i] * out[i]
    return loss


@ad.kernel
def stencil2d_inner(u, k):
    n, m = u.shape
    v = np.zeros((n, m))
    for i in range(1, n - 1):
        for j in ad.prange(1, m - 1):
            v[i, j] = (k * u[i, j] * u[i, j] + u[i - 1, j] * u[i + 1, j]
                       - math.sin(u[i, j - 1] * u[i, j + 1]))
    loss = 0.0
    for i in range(n):
        for j in range(m):
            loss += v[i, j] * v[i, j]
    return loss


@ad.kernel
def stencil2d_inner_serial(u, k):
    n, m = u.shape
    v = np.zeros((n, m))
    for i in range(1, n - 1):
        for j in range(1, m - 1):
            v[i, j] = (k * u[i, j] * u[i, j] + u[i - 1, j] * u[i + 1, j]
                       - math.sin(u[i, j - 1] * u[i, j + 1]))
    loss = 0.0
    for i in range(n):
        for j in range(m):
            loss += v[i, j] * v[i, j]
    return loss


@ad.kernel
def fill_squares(u, a):
    for i in range(u.shape[0]):
        a[i] = u[i] * u[i]
    return 0.0


@ad.kernel
def fill_sines(u, b, c):
    for i in range(u.shape[0]):
        b[i] = c * math.sin(u[i])
    return 1.0


@ad.kernel
def join_outputs(u, c):
    n = u.shape[0]
    a = np.zeros(n)
    b = np.zeros(n)
    r, s = ad.join(fill_squares, (u, a), fill_sines, (u, b, c))
    loss = r + s
    for i in range(n):
        loss += a[i] * b[i] + a[i]
    return loss


@ad.kernel
def join_outputs_serial(u, c):
    n = u.shape[0]
    a = np.zeros(n)
    b = np.zeros(n)
    r = fill_squares(u, a)
    s = fill_sines(u, b, c)
    loss = r + s
    for i in range(n):
        loss += a[i] * b[i] + a[i]
    return loss


# ---------------------------------------------------------------------------------------------
# A sum reduction inside a time loop: each step's parallel reduction feeds the loss.
# ---------------------------------------------------------------------------------------------

@ad.kernel
def heat_energy(u, alpha, nsteps):
    n = u.shape[0]
    tmp = np.zeros(n)
    total = 0.0
    for step in range(nsteps):
        for i in ad.prange(1, n - 1):
            tmp[i] = u[i] + alpha * (u[i - 1] - 2.0 * u[i] + u[i + 1])
        e = 0.0
        for i in ad.prange(1, n - 1):
            u[i] = tmp[i]
            e += tmp[i] * tmp[i] * tmp[i]
        total += e * e
    return total


@ad.kernel
def heat_energy_serial(u, alpha, nsteps):
    n = u.shape[0]
    tmp = np.zeros(n)
    total = 0.0
    for step in range(nsteps):
        for i in range(1, n - 1):
            tmp[i] = u[i] + alpha * (u[i - 1] - 2.0 * u[i] + u[i + 1])
        e = 0.0
        for i in range(1, n - 1):
            u[i] = tmp[i]
            e += tmp[i] * tmp[i] * tmp[i]
        total += e * e
    return total


# ---------------------------------------------------------------------------------------------
# Not cases (tests use them directly): a strided prange; max and min reductions with ties,
# whose derivative goes to the first index attaining the extremum; product reductions, whose
# derivative hpcad refuses where it is needed.
# ---------------------------------------------------------------------------------------------

@ad.kernel
def strided(u, c):
    n = u.shape[0]
    out = np.zeros(n)
    for i in ad.prange(0, n - 1, 2):
        out[i] = u[i] * u[i + 1] + c * math.sin(u[i])
    loss = 0.0
    for i in range(n):
        loss += out[i] * out[i]
    return loss


@ad.kernel
def strided_serial(u, c):
    n = u.shape[0]
    out = np.zeros(n)
    for i in range(0, n - 1, 2):
        out[i] = u[i] * u[i + 1] + c * math.sin(u[i])
    loss = 0.0
    for i in range(n):
        loss += out[i] * out[i]
    return loss


@ad.kernel
def tied_max(u):
    m = -1.0e300
    for i in ad.prange(u.shape[0]):
        m = max(m, u[i])
    return m


@ad.kernel
def tied_min(u):
    m = 1.0e300
    for i in numba.prange(u.shape[0]):
        m = min(m, 2.0 * u[i])
    return m

@ad.kernel
def product_reduction(u):
    p = 1.0
    for i in ad.prange(u.shape[0]):
        p *= u[i]
    return p


@ad.kernel
def scaled_by_product(u, c):
    p = 1.0
    for i in ad.prange(c.shape[0]):
        p *= c[i]
    s = 0.0
    for i in range(u.shape[0]):
        s += u[i] * u[i]
    return p * s


# ---------------------------------------------------------------------------------------------
# Pair energy with a cutoff: the sum is updated inside an `if` in an inner loop (numba's
# parfor pass once refused hpcad's code for it: "unexpected cycle in lookup()").
# ---------------------------------------------------------------------------------------------

@ad.kernel
def cutoff_pairs(x, rc2):
    n = x.shape[0]
    e = 0.0
    for i in ad.prange(n):
        for j in range(i + 1, n):
            dx = x[i] - x[j]
            r2 = dx * dx
            if r2 < rc2:
                e += 1.0 / r2 - 1.0 / rc2
    return e


@ad.kernel
def cutoff_pairs_serial(x, rc2):
    n = x.shape[0]
    e = 0.0
    for i in range(n):
        for j in range(i + 1, n):
            dx = x[i] - x[j]
            r2 = dx * dx
            if r2 < rc2:
                e += 1.0 / r2 - 1.0 / rc2
    return e


def lattice(rng, count: int, spacing: float) -> np.ndarray:
    """count points spacing apart, each moved by at most spacing / 8, shuffled: every pair
    distance lies within spacing / 4 of a multiple of spacing."""
    jitter = rng.uniform(-0.125, 0.125, count) * spacing
    return rng.permutation(spacing * np.arange(count) + jitter)


# ---------------------------------------------------------------------------------------------
# Race-free by index arithmetic (passes/race.py): a prange over a flattened 2-D index
# (k // m, k % m), and red-black Gauss-Seidel (rows of one colour, two apart, in parallel).
# ---------------------------------------------------------------------------------------------

@ad.kernel
def flattened2d(u, c):
    n, m = u.shape
    out = np.zeros((n, m))
    for k in ad.prange(n * m):
        i = k // m
        j = k % m
        out[i, j] = math.sin(c * u[i, j]) * u[i, j]
    loss = 0.0
    for i in range(n):
        for j in range(m):
            loss += out[i, j] * out[i, j]
    return loss


@ad.kernel
def flattened2d_serial(u, c):
    n, m = u.shape
    out = np.zeros((n, m))
    for i in range(n):
        for j in range(m):
            out[i, j] = math.sin(c * u[i, j]) * u[i, j]
    loss = 0.0
    for i in range(n):
        for j in range(m):
            loss += out[i, j] * out[i, j]
    return loss


@ad.kernel
def red_black(u, f, h, sweeps):
    n = u.shape[0]
    for sweep in range(sweeps):
        for color in range(2):
            for i in ad.prange(1 + color, n - 1, 2):
                u[i] = 0.5 * (u[i - 1] + u[i + 1]) + h * f[i]
    loss = 0.0
    for i in range(n):
        loss += u[i] * u[i]
    return loss


@ad.kernel
def red_black_serial(u, f, h, sweeps):
    n = u.shape[0]
    for sweep in range(sweeps):
        for color in range(2):
            for i in range(1 + color, n - 1, 2):
                u[i] = 0.5 * (u[i - 1] + u[i + 1]) + h * f[i]
    loss = 0.0
    for i in range(n):
        loss += u[i] * u[i]
    return loss


@ad.kernel
def red_black_rows(u, f, h, sweeps):
    n, m = u.shape
    for sweep in range(sweeps):
        for color in range(2):
            for i in ad.prange(1 + color, n - 1, 2):
                for j in range(1, m - 1):
                    u[i, j] = 0.25 * (u[i - 1, j] + u[i + 1, j] + u[i, j - 1] + u[i, j + 1]) \
                        + h * f[i, j]
    loss = 0.0
    for i in range(n):
        for j in range(m):
            loss += u[i, j] * u[i, j]
    return loss


@ad.kernel
def red_black_rows_serial(u, f, h, sweeps):
    n, m = u.shape
    for sweep in range(sweeps):
        for color in range(2):
            for i in range(1 + color, n - 1, 2):
                for j in range(1, m - 1):
                    u[i, j] = 0.25 * (u[i - 1, j] + u[i + 1, j] + u[i, j - 1] + u[i, j + 1]) \
                        + h * f[i, j]
    loss = 0.0
    for i in range(n):
        for j in range(m):
            loss += u[i, j] * u[i, j]
    return loss


def repeated_indices(rng, size: int, count: int) -> np.ndarray:
    """count indices into range(size), every one of them at least twice."""
    extra = rng.integers(0, size, count - 2 * size)
    return rng.permutation(np.concatenate([np.arange(size), np.arange(size), extra]))


@ad.kernel
def flattened2d_halo(u, c):
    """The flattened pair offset into the interior of a larger array (a halo)."""
    n, m = u.shape
    out = np.zeros((n + 2, m + 1))
    for k in ad.prange(n * m):
        i = k // m
        j = k % m
        out[2 + i, j + 1] = math.sin(c * u[i, j]) * u[i, j]
    loss = 0.0
    for i in range(n + 2):
        for j in range(m + 1):
            loss += (i + 1) * out[i, j] * out[i, j]
    return loss


@ad.kernel
def flattened2d_halo_serial(u, c):
    n, m = u.shape
    out = np.zeros((n + 2, m + 1))
    for i in range(n):
        for j in range(m):
            out[i + 2, j + 1] = math.sin(c * u[i, j]) * u[i, j]
    loss = 0.0
    for i in range(n + 2):
        for j in range(m + 1):
            loss += (i + 1) * out[i, j] * out[i, j]
    return loss


def spread(rng, count: int, lo: float, hi: float) -> np.ndarray:
    """count values in [lo, hi], shuffled, at least (hi - lo) / (2 count) apart: a max or min
    over them has one clear winner that an FD step cannot change."""
    grid = np.linspace(lo, hi, count)
    jitter = rng.uniform(-0.25, 0.25, count) * (hi - lo) / count
    return rng.permutation(grid + jitter)


CASES: list[ParallelCase] = [
    ParallelCase("flattened2d", flattened2d, flattened2d_serial,
                 lambda rng: (rng.uniform(0.5, 1.5, (5, 7)), 0.7), adjoint=OWN),
    ParallelCase("flattened2d_halo", flattened2d_halo, flattened2d_halo_serial,
                 lambda rng: (rng.uniform(0.5, 1.5, (4, 5)), 0.7), adjoint=OWN),
    ParallelCase("red_black", red_black, red_black_serial,
                 lambda rng: (rng.uniform(-1.0, 1.0, 21), rng.uniform(-1.0, 1.0, 21), 0.3, 3),
                 adjoint=COLORED),
    ParallelCase("red_black_rows", red_black_rows, red_black_rows_serial,
                 lambda rng: (rng.uniform(-1.0, 1.0, (9, 6)), rng.uniform(-1.0, 1.0, (9, 6)),
                              0.3, 2), adjoint=COLORED),
    # cutoff 2.5 at spacing 1: every pair distance is at least 0.25 from it
    ParallelCase("cutoff_pairs", cutoff_pairs, cutoff_pairs_serial,
                 lambda rng: (lattice(rng, 14, 1.0), 6.25), adjoint=PRIVATE, eps=1e-7),
    ParallelCase("stencil1d", stencil1d, stencil1d_serial,
                 lambda rng: (rng.uniform(-1.0, 1.0, 40), 0.7), adjoint=GATHERED),
    ParallelCase("stencil2d_rows", stencil2d_rows, stencil2d_rows_serial,
                 lambda rng: (rng.uniform(0.0, 1.0, (8, 7)), 0.2), adjoint=COLORED),
    ParallelCase("gather_repeated", gather_repeated, gather_repeated_serial,
                 lambda rng: (rng.standard_normal(50), rng.standard_normal(12),
                              repeated_indices(rng, 12, 50)), adjoint=ATOMIC),
    ParallelCase("elementwise", elementwise, elementwise_serial,
                 lambda rng: (rng.uniform(-1.0, 1.0, 30), 0.6), adjoint=OWN),
    ParallelCase("sum_reduction", sum_reduction, sum_reduction_serial,
                 lambda rng: (rng.uniform(-1.0, 1.0, 40), 0.8), adjoint=OWN),
    ParallelCase("max_reduction", max_reduction, max_reduction_serial,
                 lambda rng: (spread(rng, 30, 0.0, 3.0), 0.5), adjoint=OWN),
    ParallelCase("min_reduction", min_reduction, min_reduction_serial,
                 lambda rng: (spread(rng, 30, -2.0, 2.0), 0.4), adjoint=OWN),
    ParallelCase("nested_prange", nested_prange, nested_prange_serial,
                 lambda rng: (rng.uniform(-1.0, 1.0, (6, 9)), rng.uniform(0.5, 1.5, 9)),
                 adjoint=ATOMIC),
    ParallelCase("heat_prange", heat_prange, heat_prange_serial,
                 lambda rng: (rng.uniform(0.5, 1.5, 24), 0.2, 15), adjoint=GATHERED),
    ParallelCase("join_two", join_two, join_two_serial,
                 lambda rng: (rng.standard_normal(20), rng.standard_normal(20), 0.9),
                 adjoint=ATOMIC),
    ParallelCase("spawn_four", spawn_four, spawn_four_serial,
                 lambda rng: (rng.standard_normal(41),), adjoint=ATOMIC),
    ParallelCase("par_map", par_map_loss, par_map_loss_serial,
                 lambda rng: (rng.uniform(-1.0, 1.0, 30), 0.7), adjoint=OWN),
    ParallelCase("par_sum", par_sum_ring, par_sum_ring_serial,
                 lambda rng: (rng.uniform(-1.0, 1.0, 30), 0.3), adjoint=ATOMIC),
    ParallelCase("private_scratch", private_scratch, private_scratch_serial,
                 lambda rng: (rng.uniform(-1.0, 1.0, 30), 0.8), adjoint=OWN),
    ParallelCase("stencil2d_inner", stencil2d_inner, stencil2d_inner_serial,
                 lambda rng: (rng.uniform(-1.0, 1.0, (6, 9)), 0.5), adjoint=COLORED),
    ParallelCase("join_outputs", join_outputs, join_outputs_serial,
                 lambda rng: (rng.uniform(-0.3, 1.0, 20), 0.7), adjoint=ATOMIC),
    ParallelCase("heat_energy", heat_energy, heat_energy_serial,
                 lambda rng: (rng.uniform(0.5, 1.5, 20), 0.2, 6), adjoint=GATHERED,
                 sum_in_gradient=True),
]


# ---------------------------------------------------------------------------------------------
# A prange whose body runs a sequential inner loop that computes values the reverse sweep
# needs (saved on the tape): each iteration's tape entries must sit where that iteration
# alone writes and reads them (tests/parallel/test_prange_inner_loops.py).
# ---------------------------------------------------------------------------------------------

@ad.kernel
def heat2d_nonlinear(u0, a, nsteps):
    n, m = u0.shape
    u = np.zeros((n, m))
    for i in range(n):
        for j in range(m):
            u[i, j] = u0[i, j]
    tmp = np.zeros((n, m))
    for t in range(nsteps):
        for i in ad.prange(1, n - 1):
            for j in range(1, m - 1):
                tmp[i, j] = u[i, j] + a * (u[i - 1, j] + u[i + 1, j] + u[i, j - 1]
                                           + u[i, j + 1] - 4.0 * u[i, j]) \
                    - 0.1 * math.sin(u[i, j]) * u[i, j] ** 2
        for i in range(1, n - 1):
            for j in range(1, m - 1):
                u[i, j] = tmp[i, j]
    loss = 0.0
    for i in range(n):
        for j in range(m):
            loss += u[i, j] * u[i, j]
    return loss


@ad.kernel
def heat2d_nonlinear_serial(u0, a, nsteps):
    n, m = u0.shape
    u = np.zeros((n, m))
    for i in range(n):
        for j in range(m):
            u[i, j] = u0[i, j]
    tmp = np.zeros((n, m))
    for t in range(nsteps):
        for i in range(1, n - 1):
            for j in range(1, m - 1):
                tmp[i, j] = u[i, j] + a * (u[i - 1, j] + u[i + 1, j] + u[i, j - 1]
                                           + u[i, j + 1] - 4.0 * u[i, j]) \
                    - 0.1 * math.sin(u[i, j]) * u[i, j] ** 2
        for i in range(1, n - 1):
            for j in range(1, m - 1):
                u[i, j] = tmp[i, j]
    loss = 0.0
    for i in range(n):
        for j in range(m):
            loss += u[i, j] * u[i, j]
    return loss


@ad.kernel
def dense_tanh(W, b, x):
    nsamples, nin = x.shape
    nout = W.shape[0]
    y = np.zeros((nsamples, nout))
    for s in ad.prange(nsamples):
        for o in range(nout):
            acc = b[o]
            for k in range(nin):
                acc += W[o, k] * x[s, k]
            y[s, o] = math.tanh(acc)
    loss = 0.0
    for s in range(nsamples):
        for o in range(nout):
            loss += y[s, o] * y[s, o]
    return loss


@ad.kernel
def dense_tanh_serial(W, b, x):
    nsamples, nin = x.shape
    nout = W.shape[0]
    y = np.zeros((nsamples, nout))
    for s in range(nsamples):
        for o in range(nout):
            acc = b[o]
            for k in range(nin):
                acc += W[o, k] * x[s, k]
            y[s, o] = math.tanh(acc)
    loss = 0.0
    for s in range(nsamples):
        for o in range(nout):
            loss += y[s, o] * y[s, o]
    return loss


@ad.kernel
def md_forces(x, eps):
    n = x.shape[0]
    f = np.zeros(n)
    for i in ad.prange(n):
        fx = 0.0
        for j in range(n):
            if j != i:
                dx = x[i] - x[j]
                r2 = dx * dx + eps
                fx += dx / r2 ** 2
        f[i] = fx
    loss = 0.0
    for i in range(n):
        loss += f[i] * f[i]
    return loss


@ad.kernel
def md_forces_serial(x, eps):
    n = x.shape[0]
    f = np.zeros(n)
    for i in range(n):
        fx = 0.0
        for j in range(n):
            if j != i:
                dx = x[i] - x[j]
                r2 = dx * dx + eps
                fx += dx / r2 ** 2
        f[i] = fx
    loss = 0.0
    for i in range(n):
        loss += f[i] * f[i]
    return loss


@ad.kernel
def csr_tanh(data, x, indptr, indices):
    nrows = indptr.shape[0] - 1
    y = np.zeros(nrows)
    for r in ad.prange(nrows):
        s = 0.0
        for k in range(indptr[r], indptr[r + 1]):
            s += data[k] * x[indices[k]]
        y[r] = math.tanh(s)
    loss = 0.0
    for r in range(nrows):
        loss += y[r] * y[r]
    return loss


@ad.kernel
def csr_tanh_serial(data, x, indptr, indices):
    nrows = indptr.shape[0] - 1
    y = np.zeros(nrows)
    for r in range(nrows):
        s = 0.0
        for k in range(indptr[r], indptr[r + 1]):
            s += data[k] * x[indices[k]]
        y[r] = math.tanh(s)
    loss = 0.0
    for r in range(nrows):
        loss += y[r] * y[r]
    return loss


@ad.kernel
def csr_horner(data, x, z, indptr, indices):
    nrows = indptr.shape[0] - 1
    y = np.zeros(nrows)
    for r in ad.prange(nrows):
        s = 0.0
        for k in range(indptr[r], indptr[r + 1]):
            s = z * s + data[k] * x[indices[k]]
        y[r] = math.tanh(s)
    loss = 0.0
    for r in range(nrows):
        loss += y[r] * y[r]
    return loss


@ad.kernel
def csr_horner_serial(data, x, z, indptr, indices):
    nrows = indptr.shape[0] - 1
    y = np.zeros(nrows)
    for r in range(nrows):
        s = 0.0
        for k in range(indptr[r], indptr[r + 1]):
            s = z * s + data[k] * x[indices[k]]
        y[r] = math.tanh(s)
    loss = 0.0
    for r in range(nrows):
        loss += y[r] * y[r]
    return loss


@ad.kernel
def nested_prange_iterated(u, c):
    n, m = u.shape
    out = np.zeros((n, m))
    for i in ad.prange(n):
        for j in ad.prange(m):
            s = u[i, j]
            for k in range(3):
                s = c * s + math.sin(s)
            out[i, j] = s
    loss = 0.0
    for i in range(n):
        for j in range(m):
            loss += out[i, j] * out[i, j]
    return loss


@ad.kernel
def nested_prange_iterated_serial(u, c):
    n, m = u.shape
    out = np.zeros((n, m))
    for i in range(n):
        for j in range(m):
            s = u[i, j]
            for k in range(3):
                s = c * s + math.sin(s)
            out[i, j] = s
    loss = 0.0
    for i in range(n):
        for j in range(m):
            loss += out[i, j] * out[i, j]
    return loss


def random_csr(rng, nrows: int, ncols: int) -> tuple:
    """(data, indptr, indices) of a random sparse matrix with 0 to 4 entries per row (some
    rows empty, so the rows' inner trip counts differ)."""
    counts = rng.integers(0, 5, nrows)
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    indices = rng.integers(0, ncols, indptr[-1]).astype(np.int64)
    return rng.uniform(-1.0, 1.0, indptr[-1]), indptr, indices


def _csr_args(rng):
    data, indptr, indices = random_csr(rng, 13, 9)
    return data, rng.uniform(-1.0, 1.0, 9), indptr, indices


def _with_scalar(args: tuple, at: int, value: float) -> tuple:
    return args[:at] + (value,) + args[at:]


INNER_LOOP_CASES: list[ParallelCase] = [
    ParallelCase("heat2d_nonlinear", heat2d_nonlinear, heat2d_nonlinear_serial,
                 lambda rng: (rng.uniform(0.0, 1.0, (7, 6)), 0.15, 3), adjoint=COLORED),
    ParallelCase("dense_tanh", dense_tanh, dense_tanh_serial,
                 lambda rng: (rng.uniform(-0.5, 0.5, (3, 4)), rng.uniform(-0.5, 0.5, 3),
                              rng.uniform(-1.0, 1.0, (9, 4))), adjoint=PRIVATE),
    ParallelCase("md_forces", md_forces, md_forces_serial,
                 lambda rng: (np.sort(rng.uniform(0.0, 4.0, 11)), 0.5), adjoint=PRIVATE),
    ParallelCase("csr_tanh", csr_tanh, csr_tanh_serial, _csr_args, adjoint=PRIVATE),
    ParallelCase("csr_horner", csr_horner, csr_horner_serial,
                 lambda rng: _with_scalar(_csr_args(rng), 2, 0.7), adjoint=PRIVATE),
    ParallelCase("nested_prange_iterated", nested_prange_iterated,
                 nested_prange_iterated_serial,
                 lambda rng: (rng.uniform(-1.0, 1.0, (5, 4)), 0.6), adjoint=OWN),
]
