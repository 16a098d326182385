"""The Lennard-Jones force kernel (hpcad/kernels/particles.py), a prange over particles with
an inner loop over all the others: the reverse derivative of its energy and of a weighted
sum of its forces, against central finite differences of the plain Python function and
against the serial kernel's derivative, on both backends at 1 and 2 threads; and the form
its adjoint takes (per-thread copies of d_x, not atomic adds: passes/race.py)."""
import numpy as np
import pytest

import hpcad as ad
from hpcad.cli import default_activity
from hpcad.ir.printer import print_function
from hpcad.kernels.particles import lattice, lj_forces, lj_forces_prange
from tests.ad.harness import BACKENDS, relative_error
from tests.parallel.test_parallel_derivatives import numba_threads

N = 27                 # particles on a jittered 3 x 3 x 3 lattice
EPS, SIGMA = 0.8, 1.1
STEP = 1e-6
FD_RTOL = 1e-6
TWIN_RTOL = 1e-12      # parallel vs serial: the same sums, in another order
ACTIVITY = (ad.Duplicated, ad.Duplicated, ad.Active, ad.Active)


def _problem():
    rng = np.random.default_rng(7)
    x = lattice(N, spacing=1.2, jitter=0.1, seed=3)
    weights = rng.standard_normal((N, 3))      # seed of the forces: d loss / d f
    direction = rng.standard_normal((N, 3))
    return x, weights, direction


def _loss(x, weights, eps, sigma) -> float:
    """energy + <weights, forces>, from the plain Python function."""
    f = np.zeros_like(x)
    e = lj_forces_prange.py_func(x.copy(), f, eps, sigma)
    return e + float(np.sum(weights * f))


def _gradient(kernel, backend, x, weights):
    """(d loss / d x, d loss / d eps, d loss / d sigma) from hpcad's reverse derivative."""
    rev = ad.autodiff(kernel, activity=ACTIVITY, backend=backend)
    d_x = np.zeros_like(x)
    _, d_eps, d_sigma = rev(x.copy(), d_x, np.zeros_like(x), weights.copy(), EPS, SIGMA)
    return d_x, d_eps, d_sigma


def _central(fun, h=STEP) -> float:
    return (fun(h) - fun(-h)) / (2.0 * h)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("backend", BACKENDS)
def test_gradient_matches_finite_differences_and_the_serial_kernel(backend, threads):
    x, weights, v = _problem()
    with numba_threads(threads):
        d_x, d_eps, d_sigma = _gradient(lj_forces_prange, backend, x, weights)
        serial = _gradient(lj_forces, backend, x, weights)
    fd_x = _central(lambda h: _loss(x + h * v, weights, EPS, SIGMA))
    assert relative_error(float(np.sum(d_x * v)), fd_x) <= FD_RTOL
    fd_eps = _central(lambda h: _loss(x, weights, EPS + h, SIGMA))
    assert relative_error(d_eps, fd_eps) <= FD_RTOL
    fd_sigma = _central(lambda h: _loss(x, weights, EPS, SIGMA + h))
    assert relative_error(d_sigma, fd_sigma) <= FD_RTOL
    for k, (a, b) in enumerate(zip((d_x, d_eps, d_sigma), serial, strict=True)):
        assert relative_error(a, b) <= TWIN_RTOL, f"gradient {k}: parallel vs serial"


def test_energy_gradient_is_minus_the_forces():
    x, _, _ = _problem()
    f = np.zeros_like(x)
    lj_forces_prange(x.copy(), f, EPS, SIGMA)
    d_x, _, _ = _gradient(lj_forces_prange, "numba", x, np.zeros_like(x))
    assert relative_error(d_x, -f) <= 1e-12


def test_gradient_is_the_same_run_after_run_on_two_threads():
    """Copies per chunk of iterations, added in chunk order: the same bits every run."""
    x, weights, _ = _problem()
    with numba_threads(2):
        runs = [_gradient(lj_forces_prange, "numba", x, weights)[0] for _ in range(5)]
    assert all(np.array_equal(runs[0], r) for r in runs[1:])


def test_adjoint_accumulates_into_per_thread_copies():
    x, _, _ = _problem()
    spec = lj_forces_prange.specialize(lj_forces_prange.bind((x, np.zeros_like(x), EPS, SIGMA)))
    ir = print_function(spec.derivative("reverse", default_activity(spec), True))
    assert 'race_free = "private copies"' in ir and "atomic" not in ir, ir
