"""Loop fusion merges adjacent loops only when every shared array is touched at the same
element by the same iteration, and keeps results right (checked against plain Python)."""

import numpy as np
import pytest

import hpcad as ad
from benchmarks.heat import heat
from hpcad.ir import print_function
from hpcad.ir.core import walk
from tests.passes.test_gather import wide


@ad.kernel
def chain(a, b, c):
    for i in range(len(a)):
        b[i] = a[i] * 2.0
    for i in range(len(a)):
        c[i] = b[i] + 1.0
    return c[0]


@ad.kernel
def shifted(a, b):
    for i in range(1, len(a)):
        b[i] = a[i] * 2.0
    for i in range(1, len(a)):
        a[i] = b[i - 1]
    return a[1]


def _loops(kernel, args):
    return print_function(kernel.specialize(args).primal).count("scf.for")


def test_elementwise_chain_is_fused_and_correct():
    args = (np.arange(5.0), np.zeros(5), np.zeros(5))
    assert _loops(chain, args) == 1
    expected = chain.py_func(*[x.copy() for x in args])
    for backend in ("interp", "numba"):
        assert chain(*[x.copy() for x in args], ) == expected
        assert ad.grad(chain, backend=backend)(*args)[0] == 2.0


def test_shifted_dependence_is_not_fused():
    args = (np.arange(5.0), np.zeros(5))
    assert _loops(shifted, args) == 2
    expected = shifted.py_func(args[0].copy(), args[1].copy())
    assert shifted(args[0].copy(), args[1].copy()) == expected


@ad.kernel
def through_views(z):
    """The first loop writes z[i] (through b) and reads z[i + 1] (through a); the second
    reads z[i + 1] after the first loop's iteration i + 1 wrote it. One index, `[i]`, names
    different elements of the two views."""
    a = z[1:]
    b = z[:-1]
    for i in range(a.shape[0]):
        b[i] = a[i] * 2.0
    s = 0.0
    for i in range(a.shape[0]):
        s += a[i] * b[i]
    return s


@ad.kernel
def through_row_views(m):
    a = m[1:, :]
    b = m[:-1, :]
    for i in range(a.shape[0]):
        b[i, 0] = a[i, 0] * 2.0
    s = 0.0
    for i in range(a.shape[0]):
        s += a[i, 0] * b[i, 0]
    return s


@pytest.mark.parametrize("backend", ["interp", "numba"])
@pytest.mark.parametrize("kernel, arg", [(through_views, np.array([1.0, 2.0, 3.0, 0.5, 0.25])),
                                         (through_row_views, np.arange(12.0).reshape(4, 3))])
def test_views_of_one_array_at_other_offsets_are_not_fused(kernel, arg, backend):
    assert _loops(kernel, (arg,)) == 2
    expected, after = kernel.py_func(arg.copy()), arg.copy()
    kernel.py_func(after)
    z = arg.copy()
    assert ad.kernel(kernel.py_func, backend=backend)(z) == expected
    np.testing.assert_array_equal(z, after)
    h = 1e-6
    fd = np.array([(kernel.py_func(arg + h * e) - kernel.py_func(arg - h * e)) / (2 * h)
                   for e in np.eye(arg.size).reshape(arg.size, *arg.shape)]).reshape(arg.shape)
    np.testing.assert_allclose(ad.grad(kernel, backend=backend)(arg.copy()), fd, rtol=1e-7,
                               atol=1e-7)


@ad.kernel
def overlapping(a, b, c):
    n = a.shape[0]
    for i in range(n):
        b[i] = a[i] * 2.0
    for i in range(1, n - 1):
        c[i] = a[i - 1] + a[i + 1]
    return b[0] + c[n // 2]


@ad.kernel
def overlapping_dependent(a, b, c):
    n = a.shape[0]
    for i in range(n):
        b[i] = a[i] * 2.0
    for i in range(1, n - 1):
        c[i] = b[i - 1] + b[i + 1]
    return c[n // 2]


def test_loops_over_overlapping_ranges_are_fused_with_peeled_ends():
    """range(n) and range(1, n - 1) touching no common written array: the first loop's
    element 0 and n - 1 run in loops of their own, the rest inside the second loop."""
    for n in (1, 2, 3, 4, 7):
        args = (np.linspace(1.0, 2.0, n), np.zeros(n), np.zeros(n))
        text = print_function(overlapping.specialize(args).primal)
        assert text.count("scf.for") == 3 and text.count("arith.mul") == 3, text
        expected = [x.copy() for x in args]
        value = overlapping.py_func(*expected)
        for backend in ("interp", "numba"):
            got = [x.copy() for x in args]
            overlapping.backend = backend
            assert overlapping(*got) == value
            for g, e in zip(got, expected, strict=True):
                np.testing.assert_array_equal(g, e)
    overlapping.backend = "numba"


def test_loops_with_a_shifted_dependence_are_not_fused_with_peels():
    args = (np.arange(6.0), np.zeros(6), np.zeros(6))
    assert _loops(overlapping_dependent, args) == 2


def test_tape_filled_by_a_split_loop_is_sized_by_its_reserve():
    """The reverse sweep's save of u before each step (`push u[w]` for w in range(n)) is
    split around the stencil loop it is fused into; the tape still holds n values per step
    (an undersized buffer would be written past its end)."""
    from benchmarks.burgers import burgers
    n, steps = 50, 4
    u = np.sin(np.linspace(0.0, 3.0, n)) + 0.1
    k = ad.checkpoint(burgers, "store_all")
    rev = ad.autodiff(k, activity=(ad.Duplicated, ad.Active, ad.Active, ad.Const))
    du = np.zeros(n)
    _, dc, dd = rev(u.copy(), du, 0.05, 0.2, steps)
    (compiled,) = [c for _, c in k.compiled.values()]
    assert compiled.held_bytes()[0] == steps * n * 8
    ref = ad.autodiff(k, activity=(ad.Duplicated, ad.Active, ad.Active, ad.Const),
                      backend="interp")
    du_ref = np.zeros(n)
    _, dc_ref, dd_ref = ref(u.copy(), du_ref, 0.05, 0.2, steps)
    np.testing.assert_allclose(du, du_ref, rtol=1e-12)
    assert dc == pytest.approx(dc_ref, rel=1e-12) and dd == pytest.approx(dd_ref, rel=1e-12)


# -- shifted fusion (derivatives only): a stencil into a buffer, the buffer copied back ----
# heat (benchmarks/heat.py) lags by 1, the five-point `wide` (test_gather.py) by 2

@ad.kernel
def reads_ahead(u, v, c):
    """The second loop reads the buffer one element ahead of where it writes and writes an
    array the first reads one behind: a lag of 1, whose read ahead is the element the
    first loop has just stored."""
    n = u.shape[0]
    tmp = np.zeros(n)
    for i in range(1, n - 1):
        tmp[i] = c * u[i - 1] + u[i]
    for i in range(1, n - 1):
        u[i] = tmp[i] - tmp[i + 1] * v[i]
    return u[n // 2]


@ad.kernel
def lag_three(u, c):
    n = u.shape[0]
    tmp = np.zeros(n)
    for i in range(3, n):
        tmp[i] = c * u[i - 3]
    for i in range(3, n):
        u[i] = tmp[i]
    return u[n - 1]


@ad.kernel
def scattered(u, idx, c):
    n = u.shape[0]
    tmp = np.zeros(n)
    for i in range(n):
        tmp[i] = c * u[i]
    for i in range(n):
        u[idx[i]] = tmp[i]
    return u[0]


@ad.kernel
def periodic(u, c):
    """old[i - 1] at i = 0 is the last element: not an offset the fused loop can carry."""
    n = u.shape[0]
    old = np.empty(n)
    for i in range(n):
        old[i] = u[i]
    for i in range(n):
        u[i] = old[i] - c * old[i - 1]
    return u[0]


@ad.kernel
def rows_in_parallel(u, c):
    """Each parallel iteration runs a stencil into its row of a buffer and copies it back:
    the backend does not compile loops of a parallel body on their own, so they stay two."""
    m, n = u.shape
    tmp = np.zeros((m, n))
    for r in ad.prange(m):
        for i in range(1, n - 1):
            tmp[r, i] = u[r, i] + c * (u[r, i - 1] + u[r, i + 1])
        for i in range(1, n - 1):
            u[r, i] = tmp[r, i]
    return u[0, 1]


def _shift_fused(kernel, args):
    from hpcad.ir.clone import clone_function
    from hpcad.passes.fusion import fuse_shifted
    fn = clone_function(kernel.specialize(args).primal)
    return fn, fuse_shifted(fn)


@pytest.mark.parametrize("kernel,lag", [(heat, 1), (wide, 2), (reads_ahead, 1)])
@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 6, 9, 40])
def test_shifted_fusion_keeps_what_the_loops_compute(kernel, lag, n):
    """The second loop runs `lag` iterations behind the first in one loop, with the ends
    where only one of them runs in loops of their own; memory ends up bitwise as the
    unfused loops leave it, on both backends, at every size (the fused loop empty
    included)."""
    u = np.sin(np.linspace(0.0, 3.0, n)) + 0.1
    args = (u, 0.3, 3) if kernel is not reads_ahead else (u, np.cos(u), 0.3)
    fn, changed = _shift_fused(kernel, args)
    assert changed
    text = print_function(fn)
    assert f"arith.const {{value = {lag}}}" in text and "outline = true" in text, text
    fused = next(op for op in walk(fn.body) if op.attrs.get("outline"))
    assert len(fused.results) >= 1        # the buffer's elements carried, not re-loaded
    expected = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
    value = kernel.py_func(*expected)
    for backend in ("interp", "numba"):
        got = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
        out = kernel.run(fn, got, backend)
        assert out[0] == value
        for g, e in zip(got, expected, strict=True):
            if isinstance(g, np.ndarray):
                np.testing.assert_array_equal(g, e)


def test_shifted_fusion_leaves_far_or_irregular_dependences():
    u = np.linspace(1.0, 2.0, 8)
    assert not _shift_fused(lag_three, (u, 0.5))[1]
    assert not _shift_fused(scattered, (u, np.arange(8)[::-1].copy(), 0.5))[1]
    assert not _shift_fused(periodic, (u, 0.5))[1]
    assert not _shift_fused(rows_in_parallel, (np.ones((3, 8)), 0.5))[1]


def test_shifted_fusion_runs_on_derivatives():
    """The forward sweep of heat's gradient copies the buffer back inside the stencil loop;
    the gradient still matches finite differences."""
    n, steps = 30, 4
    u = np.sin(np.linspace(0.0, 3.0, n)) + 0.1
    spec = heat.specialize((u, 0.3, steps))
    fn = spec.derivative("reverse", ("dup", "active", "const"), True)
    text = print_function(fn)
    # the buffer passes from the stencil to the copy in registers only, so it is gone
    assert "outline = true" in text and "%tmp = mem.alloc" not in text
    du, dc = np.zeros(n), 0.0
    rev = ad.autodiff(heat, activity=(ad.Duplicated, ad.Active, ad.Const))
    _, dc = rev(u.copy(), du, 0.3, steps)
    h = 1e-6
    for k in (0, 1, n // 2, n - 2):
        up, um = u.copy(), u.copy()
        up[k] += h
        um[k] -= h
        fd = (heat.py_func(up, 0.3, steps) - heat.py_func(um, 0.3, steps)) / (2 * h)
        assert du[k] == pytest.approx(fd, rel=1e-6, abs=1e-9)
    fd = (heat.py_func(u.copy(), 0.3 + h, steps) -
          heat.py_func(u.copy(), 0.3 - h, steps)) / (2 * h)
    assert dc == pytest.approx(fd, rel=1e-6)


@ad.kernel
def write_only_scratch(a, keep):
    n = a.shape[0]
    scratch = np.zeros(n)
    kept = np.zeros(n)
    s = 0.0
    for i in range(n):
        scratch[i] = a[i] * 2.0
        kept[i] = a[i] * keep
        s += a[i]
    return s + kept[n - 1]


def test_stores_into_an_array_nobody_reads_are_dropped():
    """dce: a local array only stored into cannot be observed; one that is read keeps its
    stores."""
    args = (np.linspace(1.0, 2.0, 6), 3.0)
    text = print_function(write_only_scratch.specialize(args).primal)
    assert "%scratch" not in text and text.count("mem.store") == 1, text
    assert write_only_scratch(*args) == write_only_scratch.py_func(*args)
