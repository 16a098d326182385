"""Loop fusion merges adjacent loops only when every shared array is touched at the same
element by the same iteration, and keeps results right (checked against plain Python)."""
import numpy as np
import pytest

import hpcad as ad
from hpcad.ir import print_function


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
            for g, e in zip(got, expected):
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
