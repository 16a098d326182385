"""Loop fusion merges adjacent loops only when every shared array is touched at the same
element by the same iteration, and keeps results right (checked against plain Python)."""
import numpy as np

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
