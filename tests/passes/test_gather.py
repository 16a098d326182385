"""Gather form with its neighbours fused in (passes/gather.py, passes/carry.py): the copy
adjoint and the rest of the stencil's adjoint (zeroing, parameter sums) run inside the
gather loop, whose loads of what earlier iterations stored become carried values. The
gradient must equal the unfused one (1e-12: only the parameter sums are reassociated) at
every size, the tiny ones whose interior loop is empty included."""

import numpy as np
import pytest

import hpcad as ad
from benchmarks.burgers import burgers
from hpcad.backend.interp import run_function
from hpcad.ir.clone import clone_function
from hpcad.ir.core import walk
from hpcad.passes.carry import carry_stored
from hpcad.passes.race import Accesses


@ad.kernel
def wide(u, c, nsteps):
    """A five-point stencil whose copy back skips two elements at each end."""
    n = u.shape[0]
    tmp = np.zeros(n)
    for t in range(nsteps):
        for i in range(2, n - 2):
            tmp[i] = c * (u[i - 2] + u[i + 2]) + u[i] * u[i + 1] - 0.5 * u[i - 1]
        for i in range(2, n - 2):
            u[i] = tmp[i]
    s = 0.0
    for i in range(n):
        s += u[i] * u[i]
    return s


ACT = {burgers: ("dup", "active", "active", "const"), wide: ("dup", "active", "const")}


def _args(kernel, n):
    u = np.sin(np.linspace(0.0, 3.0, n)) + 0.1
    return (u, 0.05, 0.2, 3) if kernel is burgers else (u, 0.3, 3)


def _gradient(kernel, args, backend):
    spec = kernel.specialize(args)
    fn = spec.derivative("reverse", ACT[kernel], True)
    flat = []
    for a, kind in zip(args, ACT[kernel], strict=True):
        flat.append(a.copy() if isinstance(a, np.ndarray) else a)
        if kind == "dup":
            flat.append(np.zeros_like(a))
    out = kernel.run(fn, flat + [1.0], backend)
    return flat[1], out[1:]


def _finite_differences(kernel, args, h=1e-6):
    """Central differences of the kernel w.r.t. each element of u and each float."""
    def f(xs):
        return kernel.py_func(*[x.copy() if isinstance(x, np.ndarray) else x
                                       for x in xs])
    out = []
    for k, a in enumerate(args):
        if isinstance(a, int):
            continue
        for e in range(a.size) if isinstance(a, np.ndarray) else [None]:
            plus, minus = list(args), list(args)
            if e is None:
                plus[k], minus[k] = a + h, a - h
            else:
                plus[k], minus[k] = a.copy(), a.copy()
                plus[k][e] += h
                minus[k][e] -= h
            out.append((f(plus) - f(minus)) / (2 * h))
    return np.array(out)


@pytest.mark.parametrize("backend", ["numba", "interp"])
@pytest.mark.parametrize("kernel", [burgers, wide])
@pytest.mark.parametrize("n", [3, 4, 5, 6, 7, 40])
def test_fused_gradient_matches_finite_differences_at_every_size(kernel, n, backend):
    """The gather with its neighbours fused in, at sizes whose interior, head or tail is
    empty."""
    args = _args(kernel, n)
    du, scalars = _gradient(kernel, args, backend)
    np.testing.assert_allclose(np.concatenate([du, scalars]),
                               _finite_differences(kernel, args), rtol=1e-6, atol=1e-8)


def test_fused_gradient_matches_finite_differences():
    u, c, d, steps = _args(burgers, 30)
    du, (dc, dd) = _gradient(burgers, (u, c, d, steps), "numba")
    h = 1e-6
    f = burgers.py_func

    def bumped(k, e):
        x = u.copy()
        x[k] += e
        return x
    assert dc == pytest.approx((f(u.copy(), c + h, d, steps) - f(u.copy(), c - h, d, steps))
                               / (2 * h), rel=1e-6)
    assert dd == pytest.approx((f(u.copy(), c, d + h, steps) - f(u.copy(), c, d - h, steps))
                               / (2 * h), rel=1e-6)
    for k in (0, 1, 7, 28, 29):
        fd = (f(bumped(k, h), c, d, steps) - f(bumped(k, -h), c, d, steps)) / (2 * h)
        assert du[k] == pytest.approx(fd, rel=1e-6, abs=1e-9)


def _interior(kernel, args):
    fn = kernel.specialize(args).derivative("reverse", ACT[kernel], True)
    return [op for op in walk(fn.body) if op.name == "scf.for"
            and op.attrs.get("sums") == "any order" and any(
                o.name == "mem.store" for o in op.regions[0].ops)]


def test_fused_interior_carries_what_it_stored():
    """Burgers: the interior gather loop reads d_tmp once per iteration (the element the
    copy adjoint adds to); d_tmp[j] and d_tmp[j-1] come from registers; it carries the two
    parameter sums."""
    loop = max(_interior(burgers, _args(burgers, 40)), key=lambda op: len(op.results))
    body = loop.regions[0]
    d_tmp = next(op.operands[1] for op in body.ops if op.name == "mem.store"
                 and op.operands[0].owner.name == "arith.add")
    assert sum(op.name == "mem.load" and op.operands[0] is d_tmp for op in body.ops) == 1
    assert len(loop.results) >= 4      # two sums, d_tmp[j], d_tmp[j-1] (and d_u[j])


@ad.kernel
def recurrence(a, b):
    for i in range(1, a.shape[0] - 1):
        a[i + 1] = 0.5 * a[i] + a[i - 1] * b[i]
        a[i] = a[i] + 1.0
        b[i - 1] += a[i]
    return a[a.shape[0] - 1] + b[0]


@pytest.mark.parametrize("n", [2, 3, 4, 9])
def test_carry_stored_keeps_the_meaning_of_a_loop(n):
    """A primal loop that reads what its last two iterations stored (a[i-1]: the later
    store, a[i] = a[i] + 1, of the iteration before): after carry_stored it loads `a` only
    before the loop and computes the same."""
    a, b = np.linspace(1.0, 2.0, n), np.linspace(-1.0, 0.5, n)
    fn = clone_function(recurrence.specialize((a, b)).primal)
    (loop,) = [op for op in walk(fn.body) if op.name == "scf.for"]
    assert carry_stored(loop, Accesses(fn))
    assert not any(op.name == "mem.load" and op.operands[0] is fn.args[0]
                   for op in loop.regions[0].ops)
    a1, b1, a2, b2 = a.copy(), b.copy(), a.copy(), b.copy()
    expected = recurrence.py_func(a1, b1)
    assert run_function(fn, [a2, b2])[0] == expected
    np.testing.assert_array_equal(a2, a1)
    np.testing.assert_array_equal(b2, b1)
