"""A parallel loop with a plain body that carries float sums or nothing (a user's prange
reduction, the gather's interior summing a parameter's adjoint, heat's stencil loops) runs
on numba as a prange over `_nthreads` chunks, each chunk's iterations in an outlined
function whose sums LLVM may reorder and whose indices are unsigned (it vectorizes them; in
numba's parfor body it did not: heat 1-D's parallel gradient), the partial sums added in
chunk order after the loop. The source has that form; gradients agree with central
differences on both backends; and on numba the results at 1 and 2 threads are bitwise
equal (the chunks depend on NUMBA_NUM_THREADS only)."""
import math
import re

import numba
import numpy as np
import pytest

import hpcad as ad
from hpcad.backend.numba.codegen import generate
from hpcad.cli import default_activity
from hpcad.kernels import stencils
from tests.ad.harness import BACKENDS, relative_error
from tests.parallel.test_parallel_derivatives import numba_threads

FD_RTOL = 1e-6


@ad.kernel
def two_sums(x, w):
    s = 0.0
    q = 0.0
    for i in numba.prange(x.shape[0]):
        s += w[i] * math.sin(x[i]) * x[i]
        q += x[i] * x[i]
    return s * q


def _x(n: int) -> np.ndarray:
    return np.linspace(0.1, 2.0, n)


def _heat_args(n: int) -> tuple:
    return (np.sin(np.linspace(0.0, 3.0, n)) + 0.1, 0.2, 3)


def _central_gradient(py_func, args: tuple, argnums: tuple, h: float = 1e-6) -> list:
    """d f / d args[k] for k in argnums, element by element, by central differences (on
    copies: the kernels write their arguments)."""
    def f(k, index, delta):
        moved = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
        if index is None:
            moved[k] = moved[k] + delta
        else:
            moved[k][index] += delta
        return py_func(*moved)
    out = []
    for k in argnums:
        if isinstance(args[k], np.ndarray):
            g = np.empty_like(args[k])
            for index in np.ndindex(args[k].shape):
                g[index] = (f(k, index, h) - f(k, index, -h)) / (2 * h)
        else:
            g = (f(k, None, h) - f(k, None, -h)) / (2 * h)
        out.append(g)
    return out


def _source(kernel, args, which: str) -> str:
    spec = kernel.specialize(kernel.bind(args))
    fn = spec.primal if which == "primal" else \
        spec.derivative("reverse", default_activity(spec), True)
    return generate(fn, which)[0]


def _chunk_calls(source: str, which: str) -> list[str]:
    """The outlined functions called in the body of a prange over `_nthreads` chunks."""
    return re.findall(r"for \w+ in prange\(_nthreads\):\n(?:.*\n){2}\s+(?:(?:\w+, )+= )?"
                      rf"({which}_loop\d+)\(", source)


def _stores_partial_sums(source: str) -> bool:
    """Whether chunks store partial sums, added in chunk order after the loop."""
    return bool(re.search(r"(\w+_parts)\[chunk\w*\] = \w+\n\s+for (\w+) in range\(_nthreads\):"
                          r"\n(?:\s+\w+ \+= \w+_parts\[\2\]\n)+", source))


def test_user_prange_sums_run_as_outlined_chunks():
    source = _source(two_sums, (_x(8), _x(8)), "primal")
    assert _chunk_calls(source, "primal"), source
    assert _stores_partial_sums(source), source
    assert re.search(r"^def primal_loop\d+\(", source, re.M), source


def test_gather_parameter_sum_runs_as_outlined_chunks():
    """heat 1-D's gradient: the gather's interior carries alpha's adjoint."""
    source = _source(stencils.heat_prange, _heat_args(40), "grad")
    calls = _chunk_calls(source, "grad")
    assert len(calls) >= 2, source      # the primal's sum of squares and alpha's adjoint
    gather = [c for c in calls if "alpha" in source.split(f"def {c}(")[1].split(")")[0]
              and "d_tmp" in source.split(f"def {c}(")[1].split(")")[0]]
    assert gather, source
    assert _stores_partial_sums(source), source


def test_plain_parallel_loops_without_sums_run_as_outlined_chunks():
    """heat 1-D's primal loops (no sums): each a prange over chunks of an outlined loop."""
    source = _source(stencils.heat_prange, _heat_args(40), "primal")
    assert len(_chunk_calls(source, "primal")) == 3, source
    assert "prange(1," not in source, source


@pytest.mark.parametrize("backend", BACKENDS)
def test_user_prange_sums_gradient_matches_central_differences(backend):
    x, w = _x(23), np.cos(_x(23))
    got = ad.grad(two_sums, argnums=(0, 1), backend=backend)(x, w)
    want = _central_gradient(two_sums.py_func, (x, w), (0, 1))
    for a, b in zip(got, want, strict=True):
        assert relative_error(a, b) <= FD_RTOL


@pytest.mark.parametrize("backend", BACKENDS)
def test_gather_sum_gradient_matches_central_differences(backend):
    args = _heat_args(37)
    got = ad.grad(stencils.heat_prange, argnums=(0, 1), backend=backend)(*args)
    want = _central_gradient(stencils.heat_prange.py_func, args, (0, 1))
    for a, b in zip(got, want, strict=True):
        assert relative_error(a, b) <= FD_RTOL


def test_sums_on_one_and_two_threads_are_bitwise_equal():
    threads = min(2, numba.config.NUMBA_NUM_THREADS)
    x = _x(5001)
    heat = _heat_args(5001)
    results = []
    for n in (1, threads):
        with numba_threads(n):
            results.append((two_sums(x, np.cos(x)),
                            *ad.grad(two_sums, argnums=(0, 1), backend="numba")(x, np.cos(x)),
                            *ad.grad(stencils.heat_prange, argnums=(0, 1),
                                     backend="numba")(heat[0].copy(), *heat[1:])))
    for a, b in zip(*results, strict=True):
        assert np.array_equal(a, b)


@ad.kernel
def inner_loop_sums(x, c, steps):
    """Sums whose iterations run an inner loop (no outlined chunk): numba's own prange
    reduction added its threads' partial sums in the order tbb's scheduling picked."""
    s = 0.0
    q = 0.0
    for i in numba.prange(x.shape[0]):
        y = x[i]
        for _ in range(steps):
            y = y * math.cos(c * y) + 0.1
        s += y * y
        q += math.sin(y) * c
    return s * q


def _inner_args(n: int) -> tuple:
    return (np.sin(np.linspace(0.0, 7.0, n)) + 0.3, 0.7, 3)


def test_prange_sums_around_inner_loops_run_in_chunks():
    source = _source(inner_loop_sums, _inner_args(8), "primal")
    assert _stores_partial_sums(source), source
    assert re.search(r"for chunk\w* in prange\(_nthreads\):", source), source


@pytest.mark.parametrize("backend", BACKENDS)
def test_prange_sums_around_inner_loops_match_central_differences(backend):
    args = _inner_args(17)
    got = ad.grad(inner_loop_sums, argnums=(0, 1), backend=backend)(*args)
    want = _central_gradient(inner_loop_sums.py_func, args, (0, 1))
    for a, b in zip(got, want, strict=True):
        assert relative_error(a, b) <= FD_RTOL


def test_prange_sums_around_inner_loops_are_the_same_on_every_thread_count_and_call():
    """The value and gradient on 1 and 2 threads, and from 4 Python threads calling at
    once (each call of several sizes), are bitwise the serial ones."""
    from concurrent.futures import ThreadPoolExecutor
    threads = min(2, numba.config.NUMBA_NUM_THREADS)
    vag = ad.value_and_grad(inner_loop_sums, argnums=(0, 1), backend="numba")
    sizes = [4001, 37, 2500, 999] * 3

    def run(n):
        value, (dx, dc) = vag(*_inner_args(n))
        return np.concatenate([[value, dc], dx])
    results = []
    for k in (1, threads):
        with numba_threads(k):
            results.append([run(n) for n in sizes])
    with ThreadPoolExecutor(4) as pool:
        results.append(list(pool.map(run, sizes)))
    for other in results[1:]:
        for a, b in zip(results[0], other, strict=True):
            assert np.array_equal(a, b)
