"""Fork-join tasks that write an array under one name and read it under another: numba's
parfor lowering hoists out of a prange body every read of an array from before the loop that
the body does not store into by that very name, and every index of a task (one iteration of
the prange over the tasks) stays the same from iteration to iteration, so the read saw the
array as it was before the join (numba 3.96 against 4.25, and a wrong gradient). The
generated code reads such arrays through views of the body's own
(backend/numba/hoisting.py). Both directions are checked, a write through a view read from
its base and a write to the base read through a view made before the join, on both
backends against plain Python, and the gradient against central differences."""
import math

import numpy as np
import pytest

import hpcad as ad


@ad.kernel
def through_view(x, out):
    w = out[1:4]
    w[0] = x[0] * x[1]
    w[1] = math.sin(x[2])
    return out[1] * out[2] + out[1]       # what w wrote, read from out


@ad.kernel
def through_base(x, out, v):
    out[6] = x[0] * x[2]                  # v is out[5:8]: these are v[1] and v[2]
    out[7] = math.cos(x[1])
    return v[1] * v[2] + v[1]


def two_tasks(x):
    out = np.zeros(9)
    v = out[5:8]
    a, b = ad.join(through_view, (x, out), through_base, (x, out, v))
    return a + b + out[1] * out[6]


def two_tasks_serial(x):
    """two_tasks in plain Python, one task after the other."""
    out = np.zeros(9)
    out[1], out[2] = x[0] * x[1], math.sin(x[2])
    a = out[1] * out[2] + out[1]
    out[6], out[7] = x[0] * x[2], math.cos(x[1])
    b = out[6] * out[7] + out[6]
    return a + b + out[1] * out[6]


@pytest.mark.parametrize("backend", ["interp", "numba"])
def test_tasks_read_what_they_wrote_under_another_name(backend):
    x = np.array([1.0, 2.0, 0.5])
    kernel = ad.kernel(two_tasks, backend=backend)
    assert kernel(x.copy()) == pytest.approx(two_tasks_serial(x), rel=1e-14)
    fd = np.empty_like(x)
    for i in range(x.size):
        up, dn = x.copy(), x.copy()
        up[i] += 1e-6
        dn[i] -= 1e-6
        fd[i] = (two_tasks_serial(up) - two_tasks_serial(dn)) / 2e-6
    np.testing.assert_allclose(ad.grad(kernel)(x.copy()), fd, rtol=1e-7, atol=1e-9)
