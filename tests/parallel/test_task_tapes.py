"""Spawned tasks inside a time loop whose loops save values for the reverse sweep, over a
range each step computes anew (`spawn(f, u, 0, mid)` with `mid = splits[t]`): the numba
backend makes room for a task's saved values before the tasks start (a task cannot grow a
buffer), so the gradient compiles, under store-all and checkpointed plans, and matches the
interpreter and central differences. A task whose loop's length only the task knows (a
while loop) is refused with its line and what to write."""
import copy
import inspect
import math

import numpy as np
import pytest

import hpcad as ad


@ad.kernel
def chunk(u, lo, hi, c):
    s = 0.1
    for i in range(lo, hi):
        s += math.sin(c * u[i] * s)
    return s


@ad.kernel
def evolve(u, splits, c, nsteps):
    n = u.shape[0]
    a = 0.0
    for t in range(nsteps):
        mid = splits[t]
        h1 = ad.spawn(chunk, u, 0, mid, c)
        h2 = ad.spawn(chunk, u, mid, n, c)
        a = a + ad.sync(h1) * ad.sync(h2)
        for i in range(n):
            u[i] = u[i] * 0.9 + 0.01 * a * math.cos(u[i])
    return a


@ad.kernel
def rows(a, lo, hi, c):
    s = 0.1
    for i in range(lo, hi):
        for j in range(a.shape[1]):      # an inner loop: its pushes reserved per row
            s += math.sin(c * a[i, j] * s)
    return s


@ad.kernel
def evolve_rows(a, splits, c, nsteps):
    n = a.shape[0]
    acc = 0.0
    for t in range(nsteps):
        mid = splits[t]
        h1 = ad.spawn(rows, a, 0, mid, c)
        h2 = ad.spawn(rows, a, mid, n, c)
        acc = acc + ad.sync(h1) * ad.sync(h2)
        for i in range(n):
            for j in range(a.shape[1]):
                a[i, j] = a[i, j] * 0.9 + 0.01 * acc * math.cos(a[i, j])
    return acc


@ad.kernel
def until_large(u, c):
    s = 0.1
    k = 0
    while s < 2.0 and k < u.shape[0]:
        s += math.exp(c * u[k] * s)    # saved in a while loop
        k += 1
    return s


@ad.kernel
def stepping_until(u, c, nsteps):
    a = 0.0
    for t in range(nsteps):
        h = ad.spawn(until_large, u, c)
        a = a + ad.sync(h)
        u[0] = u[0] * 0.5 + 0.01 * a
    return a


def _args(n: int, nsteps: int):
    rng = np.random.default_rng(3)
    u = rng.uniform(0.1, 1.0, n)
    splits = rng.integers(1, n - 1, nsteps).astype(np.int64)
    return u, splits, 0.3, nsteps


def _fd(args, eps=1e-6):
    u = args[0]
    out = np.empty_like(u)
    for k in range(u.shape[0]):
        hi, lo = copy.deepcopy(args), copy.deepcopy(args)
        hi[0][k] += eps
        lo[0][k] -= eps
        out[k] = (evolve.py_func(*hi) - evolve.py_func(*lo)) / (2 * eps)
    return out


@pytest.mark.parametrize("snapshots", ["store_all", 2])
def test_tasks_saving_in_loops_over_ranges_set_each_step_match_finite_differences(snapshots):
    small = _args(12, 4)
    got = ad.grad(ad.checkpoint(ad.kernel(evolve.py_func, backend="interp"), snapshots))(
        *copy.deepcopy(small))
    np.testing.assert_allclose(got, _fd(small), rtol=1e-6, atol=1e-9)


@pytest.mark.slow   # (numba compiles the derivative: seconds)
@pytest.mark.parametrize("snapshots", ["store_all", 2])
def test_tasks_saving_in_loops_over_ranges_set_each_step_compile_and_match(snapshots):
    small = _args(12, 4)
    want = ad.grad(ad.checkpoint(ad.kernel(evolve.py_func, backend="interp"), snapshots))(
        *copy.deepcopy(small))
    numba_k = ad.checkpoint(ad.kernel(evolve.py_func, backend="numba"), snapshots)
    got = ad.grad(numba_k)(*copy.deepcopy(small))
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)
    # over a thousand saved values per task and step: the buffers grow before the tasks
    large = _args(3000, 3)
    interp_k = ad.checkpoint(ad.kernel(evolve.py_func, backend="interp"), snapshots)
    np.testing.assert_allclose(ad.grad(numba_k)(*copy.deepcopy(large)),
                               ad.grad(interp_k)(*copy.deepcopy(large)), rtol=1e-12,
                               atol=1e-15)


@pytest.mark.slow   # (numba compiles the derivative: seconds)
def test_a_task_loop_nest_inside_a_time_loop_compiles_and_matches_finite_differences():
    """The inner loop of a task's nest reserves room for its pushes before each row; the
    buffer grew before the join to hold them all, so the reservation inside the task is
    no grow (a task rebinding a buffer the tasks share did not compile: numba's 'Use of
    reduction variable tape_1 in an unsupported reduction function')."""
    rng = np.random.default_rng(5)
    args = (rng.uniform(0.1, 1.0, (8, 3)), np.array([2, 5, 3], dtype=np.int64), 0.3, 3)
    got = ad.grad(ad.kernel(evolve_rows.py_func, backend="numba"))(*copy.deepcopy(args))
    want = ad.grad(ad.kernel(evolve_rows.py_func, backend="interp"))(*copy.deepcopy(args))
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)
    fd = np.empty_like(args[0])
    for k in np.ndindex(fd.shape):
        hi, lo = copy.deepcopy(args), copy.deepcopy(args)
        hi[0][k] += 1e-6
        lo[0][k] -= 1e-6
        fd[k] = (evolve_rows.py_func(*hi) - evolve_rows.py_func(*lo)) / 2e-6
    np.testing.assert_allclose(got, fd, rtol=1e-6, atol=1e-9)


def test_a_task_loop_whose_length_only_the_task_knows_is_refused_at_its_line():
    args = (np.linspace(0.1, 1.0, 6), 0.4, 3)
    ad.grad(ad.kernel(stepping_until.py_func, backend="interp"))(*copy.deepcopy(args))
    with pytest.raises(ad.HpcadError) as info:
        ad.grad(ad.kernel(stepping_until.py_func, backend="numba"))(*copy.deepcopy(args))
    lines, start = inspect.getsourcelines(until_large.py_func)
    line = start + next(k for k, text in enumerate(lines) if "while" in text)
    text = str(info.value)
    assert text.startswith(f"{inspect.getsourcefile(until_large.py_func)}:{line}: "), text
    assert "compute the loop's range before the spawn" in text and "backend='interp'" in text
