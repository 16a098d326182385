"""Adjoints of scratch arrays (ad/reverse.py, scratch_adjoints): an array each time step
fills and then reads at the same elements (heat's `tmp`) gets its adjoint stored by the
step's one read and never zeroed; any other shape of use keeps accumulate-and-zero. Every
variant's gradient matches central finite differences on both backends."""
import numpy as np
import pytest

import hpcad as ad
from hpcad.ir import print_function
from hpcad.ir.core import walk


@ad.kernel
def one_read(u, c, nsteps):
    n = u.shape[0]
    tmp = np.zeros(n)
    for t in range(nsteps):
        for i in range(1, n - 1):
            tmp[i] = u[i] + c * np.sin(u[i - 1] - 2.0 * u[i] + u[i + 1])
        for i in range(1, n - 1):
            u[i] = tmp[i]
    s = 0.0
    for i in range(n):
        s += u[i] * u[i]
    return s


@ad.kernel
def two_reads(u, v, c, nsteps):
    """tmp read by two loops."""
    n = u.shape[0]
    tmp = np.zeros(n)
    for t in range(nsteps):
        for i in range(1, n - 1):
            tmp[i] = u[i] + c * (u[i - 1] - 2.0 * u[i] + u[i + 1])
        for i in range(1, n - 1):
            v[i] = v[i] + 0.5 * tmp[i]
        for i in range(1, n - 1):
            u[i] = tmp[i]
    s = 0.0
    for i in range(n):
        s += u[i] * u[i] + v[i]
    return s


@ad.kernel
def read_in_branch(u, c, nsteps):
    """tmp read only where u > 0.5: elsewhere nothing writes its adjoint in a step."""
    n = u.shape[0]
    tmp = np.zeros(n)
    for t in range(nsteps):
        for i in range(1, n - 1):
            tmp[i] = u[i] + c * (u[i - 1] - 2.0 * u[i] + u[i + 1])
        for i in range(1, n - 1):
            if u[i] > 0.5:
                u[i] = tmp[i]
    s = 0.0
    for i in range(n):
        s += u[i] * u[i]
    return s


def _scratch_ops(kernel, args):
    activity = tuple("dup" if isinstance(a, np.ndarray) else "active"
                     if isinstance(a, float) else "const" for a in args)
    fn = kernel.specialize(args).derivative("reverse", activity, True)
    d_tmp = next(op.results[0] for op in walk(fn.body) if op.name == "mem.alloc"
                 and op.results[0].name == "d_tmp")
    return [op for op in walk(fn.body) if d_tmp in op.operands
            and op.name in ("mem.store", "mem.accumulate")], fn


def _zeroing(op) -> bool:
    """A store of the constant 0 (the zeroing of an accumulated adjoint)."""
    value = op.operands[0].owner
    return op.name == "mem.store" and getattr(value, "name", None) == "arith.const" \
        and value.attrs["value"] == 0


def _check_fd(kernel, args, backend):
    nums = tuple(k for k, a in enumerate(args) if not isinstance(a, int))
    grads = ad.grad(kernel, argnums=nums, backend=backend)(
        *[a.copy() if isinstance(a, np.ndarray) else a for a in args])
    eps = 1e-6
    for k, g in zip(nums, grads, strict=True):
        a = args[k]
        for e in (range(a.size) if isinstance(a, np.ndarray) else [None]):
            plus = [x.copy() if isinstance(x, np.ndarray) else x for x in args]
            minus = [x.copy() if isinstance(x, np.ndarray) else x for x in args]
            if e is None:
                plus[k] += eps
                minus[k] -= eps
                got = g
            else:
                plus[k][e] += eps
                minus[k][e] -= eps
                got = g[e]
            fd = (kernel.py_func(*plus) - kernel.py_func(*minus)) / (2 * eps)
            assert abs(got - fd) <= 1e-6 * max(1.0, abs(fd)), (k, e, got, fd)


@pytest.mark.parametrize("backend", ["interp", "numba"])
def test_scratch_adjoint_is_stored_once_per_step_and_never_zeroed(backend):
    args = (np.linspace(0.6, 1.4, 9), 0.2, 4)
    ops, fn = _scratch_ops(one_read, args)
    # the step's read's adjoint stored (passes/overwrite.py keeps only the stores of the
    # last iterations, which the step reads after its loop); no accumulation, no zeroing
    assert ops and all(op.name == "mem.store" and not _zeroing(op) for op in ops), \
        print_function(fn)
    _check_fd(one_read, args, backend)


@pytest.mark.parametrize("backend", ["interp", "numba"])
@pytest.mark.slow
def test_a_read_in_a_branch_keeps_accumulating_and_zeroing(backend):
    args = (np.linspace(0.3, 1.2, 9), 0.2, 4)
    ops, fn = _scratch_ops(read_in_branch, args)
    assert any(op.name == "mem.accumulate" for op in ops) and any(map(_zeroing, ops)), \
        print_function(fn)
    _check_fd(read_in_branch, args, backend)


@pytest.mark.parametrize("backend", ["interp", "numba"])
@pytest.mark.slow
def test_two_reading_loops(backend):
    """The optimizer fuses the two reading loops (one load of tmp[i] per step is left):
    the gradient is right either way."""
    args = (np.linspace(0.3, 1.2, 9), np.linspace(-1.0, 1.0, 9), 0.2, 4)
    _check_fd(two_reads, args, backend)
