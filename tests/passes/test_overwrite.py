"""passes/overwrite.py: a store that a later iteration of its loop overwrites unread runs
once, for the last iterations, after the loop; memory ends up bitwise the same, at every
trip count (none included: n = 1), ascending and descending, on both backends."""
import numpy as np
import pytest

import hpcad as ad
from hpcad.ir import print_function
from hpcad.ir.clone import clone_function
from hpcad.ir.core import walk
from hpcad.passes.overwrite import sink_overwritten


@ad.kernel
def zero_ahead(a, b):
    """a[j+1] = 0, then the next iteration's a[j] = ... overwrites it."""
    for j in range(a.shape[0] - 1):
        x = a[j + 1]
        a[j + 1] = 0.0
        a[j] = x * 2.0 + b[j]
    return a[0]


@ad.kernel
def two_ahead(a, c):
    """t stored at a[j+2], overwritten two iterations later; the loop carries t out."""
    prev = 0.0
    cur = 0.0
    for j in range(a.shape[0] - 2):
        t = a[j + 2] * c
        a[j + 2] = t
        a[j] = prev + 0.5 * cur
        prev = cur
        cur = t
    return prev + cur


@ad.kernel
def zero_behind(a, b):
    """Ascending, a[j] = 0 is never overwritten later; descending, it is, by a[j+1] = ..."""
    for j in range(a.shape[0] - 1):
        x = a[j]
        a[j] = 0.0
        a[j + 1] = x * 2.0 + b[j]
    return a[0]


@ad.kernel
def read_between(a):
    """a[j+1] = 0 is read by the next iteration before its a[j] = ... overwrites it."""
    for j in range(a.shape[0] - 1):
        x = a[j]
        a[j + 1] = 0.0
        a[j] = x + 1.0
    return a[0]


def _primal(kernel, args, descending=False):
    fn = clone_function(kernel.specialize(args).primal)
    if descending:
        for op in walk(fn.body):
            if op.name == "scf.for":
                op.attrs["reverse"] = True
    return fn


def _run(kernel, fn, args, backend):
    got = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
    out = kernel.run(fn, got, backend)
    return out, got


@pytest.mark.parametrize("kernel,descending,sunk", [
    (zero_ahead, False, 1), (two_ahead, False, 2), (zero_behind, True, 1)])
@pytest.mark.parametrize("n", [1, 2, 3, 4, 7, 40])
def test_overwritten_stores_leave_the_loop_and_memory_is_the_same(kernel, descending, sunk, n):
    rng = np.random.default_rng(n)
    a = rng.uniform(0.5, 1.5, n)
    args = (a, rng.uniform(-1.0, 1.0, n)) if kernel is not two_ahead else (a, 0.7)
    before = _primal(kernel, args, descending)
    after = _primal(kernel, args, descending)
    assert sink_overwritten(after)
    loop = next(op for op in walk(after.body) if op.name == "scf.for")
    stores = sum(op.name == "mem.store" for op in loop.regions[0].ops)
    assert stores == sum(op.name == "mem.store" for op in walk(before.body)) - 1
    assert print_function(after).count("mem.store") == stores + sunk   # after the loop
    for backend in ("interp", "numba"):
        want_out, want = _run(kernel, before, args, backend)
        got_out, got = _run(kernel, after, args, backend)
        assert got_out == want_out
        for g, w in zip(got, want, strict=True):
            if isinstance(g, np.ndarray):
                np.testing.assert_array_equal(g, w)


def test_stores_read_before_they_are_overwritten_stay():
    a = np.linspace(1.0, 2.0, 6)
    assert not sink_overwritten(_primal(read_between, (a,)))
    assert not sink_overwritten(_primal(zero_behind, (a, a.copy())))   # ascending


def test_heat_reverse_sweep_stores_each_adjoint_once():
    """In heat's gradient the gather loop no longer zeroes d_u[j+1] (the next iteration
    writes d_u[j]) nor stores d_tmp at all (a scratch adjoint that the loops after it read
    only at its last two elements, stored after the loop); the gradient still matches
    finite differences."""
    from hpcad.kernels.stencils import heat
    n, steps, alpha = 40, 5, 0.2
    u = np.sin(np.linspace(0.0, 3.0, n)) + 0.1
    fn = heat.specialize((u, alpha, steps)).derivative("reverse", ("dup", "active", "const"),
                                                       True)
    gather = next(op for op in walk(fn.body) if op.attrs.get("sums") == "any order"
                  and any(o.name == "mem.store" for o in op.regions[0].ops))
    stored = [o.operands[1].name for o in gather.regions[0].ops if o.name == "mem.store"]
    assert stored == ["d_u"], print_function(fn)
    g = ad.grad(heat, argnums=(0, 1))(u.copy(), alpha, steps)
    eps = 1e-6
    for k in (0, 7, n - 1):
        e = np.zeros(n)
        e[k] = eps
        fd = (heat(u + e, alpha, steps) - heat(u - e, alpha, steps)) / (2 * eps)
        assert abs(g[0][k] - fd) <= 1e-6 * max(1.0, abs(fd))
    fd = (heat(u.copy(), alpha + eps, steps) - heat(u.copy(), alpha - eps, steps)) / (2 * eps)
    assert abs(g[1] - fd) <= 1e-6 * max(1.0, abs(fd))


SCRATCH = """
func @f(%a: f64[::1], %out: f64[::1], %steps: i64) -> () {
  %0 = arith.const {value = 0} : i64
  %1 = arith.const {value = 1} : i64
  %z = arith.const {value = 0.0} : f64
  %n = mem.shape %a {axis = 0} : i64
  %m = arith.sub %n, %1 : i64
  %s = mem.alloc %n {fill = "zeros", scratch = true} : f64[::1]
  scf.for %0, %steps, %1 {
  ^(%t: i64):
    %w = scf.for %0, %m, %1, %z : f64 {
    ^(%j: i64, %prev: f64):
      %j1 = arith.add %j, %1 : i64
      %x = mem.load %a, %j1 : f64
      %y = arith.add %x, %prev : f64
      mem.store %y, %s, %j1
      scf.yield %y
    }
    %r = mem.load %s, READ : f64
    mem.accumulate %r, %out, %0
    scf.yield
  }
  func.return
}
"""


@pytest.mark.parametrize("read,sunk", [("%m", True), ("%j1.2", False), ("%0", False)])
@pytest.mark.parametrize("n", [1, 2, 3, 6])
def test_scratch_stores_that_only_the_last_iterations_need(read, sunk, n):
    """A loop stores s[j+1] into a scratch array; after it the step reads s[m], the last
    iteration's element (stored once after the loop, from the value the loop carries out),
    or s[m-1] (the last two iterations' elements: the loop carries one value only, so the
    stores stay), or s[0] (not bounded below by the loop's end: the stores stay). Memory
    ends up the same on both backends."""
    from hpcad.ir.parser import parse_module
    from hpcad.passes.overwrite import sink_scratch_stores
    text = SCRATCH.replace("READ", read)
    if read == "%j1.2":
        text = text.replace("    %r = mem.load", "    %j1.2 = arith.sub %m, %1 : i64\n"
                            "    %r = mem.load")
    before, after = parse_module(text).main, parse_module(text).main
    assert sink_scratch_stores(after) == sunk
    loop = next(op for op in walk(after.body) if op.name == "scf.for"
                and op.regions[0].args[0].name == "j")
    assert any(o.name == "mem.store" for o in loop.regions[0].ops) != sunk
    a = np.linspace(1.0, 2.0, n)
    for backend in ("interp", "numba"):
        want, got = np.zeros(1), np.zeros(1)
        zero_ahead.run(before, [a, want, 3], backend)
        zero_ahead.run(after, [a, got, 3], backend)
        np.testing.assert_array_equal(got, want)
