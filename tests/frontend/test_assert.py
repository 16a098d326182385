"""`assert` in kernels: checked when the kernel runs, on both backends and in the primal part
of its derivatives; a failed one is a KernelAssertionError (an AssertionError too) naming the
kernel's file:line and the condition, a passing one changes nothing."""
import inspect
import warnings

import numpy as np
import pytest

import hpcad as ad
from tests.ad.harness import INTERP_FAST
from tests.ad.kernels import Case
from tests.frontend.construct_check import check_construct, run_on
from tests.frontend.construct_kernels import checked_energy, checked_heat, checked_in_prange

BACKENDS = INTERP_FAST


def _line_of(kernel, text: str) -> str:
    lines, start = inspect.getsourcelines(kernel.py_func)
    line = start + next(k for k, source in enumerate(lines) if text in source)
    return f"{inspect.getsourcefile(kernel.py_func)}:{line}"


def _args(rng):
    return rng.uniform(-1.0, 1.0, 6), 0.7


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kernel", [checked_energy, checked_in_prange], ids=lambda k: k.__name__)
def test_passing_asserts_leave_value_and_derivatives_as_numba_and_fd(kernel, backend):
    check_construct(Case(kernel.__name__, kernel, _args), backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_failing_assert_is_an_error_at_its_line_with_its_message(backend):
    x = np.array([0.1, 0.2])
    with pytest.raises(ad.KernelAssertionError) as info:
        run_on(checked_energy, backend, (x, -1.0))
    assert str(info.value) == (f"{_line_of(checked_energy, 'c must be positive')}: "
                               f"`assert c > 0.0` failed: c must be positive")
    assert isinstance(info.value, AssertionError)


@pytest.mark.parametrize("backend", BACKENDS)
def test_failing_assert_without_message_names_its_condition(backend):
    x = np.array([0.1, 12.0])
    with pytest.raises(ad.KernelAssertionError, match="`assert x\\[i\\] < 10.0` failed") as info:
        run_on(checked_energy, backend, (x, 1.0))
    assert str(info.value).startswith(_line_of(checked_energy, "each element") + ": ")


@pytest.mark.parametrize("backend", BACKENDS)
def test_failing_assert_in_a_prange_body_is_raised(backend):
    x = np.array([0.1, 12.0, 0.3, 0.5])
    with pytest.raises(ad.KernelAssertionError) as info:
        run_on(checked_in_prange, backend, (x, 1.0))
    assert str(info.value).startswith(_line_of(checked_in_prange, "x too large") + ": ")


@pytest.mark.parametrize("backend", BACKENDS)
def test_derivatives_check_the_assert_in_their_primal_part(backend):
    x = np.array([0.1, 0.2])
    with pytest.raises(ad.KernelAssertionError, match="c must be positive"):
        ad.grad(checked_energy, backend=backend)(x, -1.0)
    with pytest.raises(ad.KernelAssertionError, match="c must be positive"):
        ad.jvp(checked_energy, (x, -1.0), (x, 1.0), backend=backend)


def test_assert_message_must_be_a_string_literal():
    @ad.kernel
    def bad(x):
        assert x > 0.0, x
        return x

    with pytest.raises(ad.UnsupportedConstruct, match="an assert message that is not a "
                                                       "string literal"):
        bad(1.0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_hessian_vector_product_of_a_kernel_with_asserts(backend):
    """Forward over reverse keeps the check too, and H v is the central difference of the
    gradient along v."""
    x, c, v = np.array([0.3, -0.4, 0.8]), 0.7, np.array([1.0, -0.5, 0.25])
    hv = ad.hvp(checked_energy, backend=backend)(x, c, v)
    grad = ad.grad(checked_energy, backend="interp")
    eps = 1e-5
    np.testing.assert_allclose(hv, (grad(x + eps * v, c) - grad(x - eps * v, c)) / (2 * eps),
                               rtol=1e-7)
    with pytest.raises(ad.KernelAssertionError, match="c must be positive"):
        ad.hvp(checked_energy, backend=backend)(x, -1.0, v)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("schedule", ["segments", "revolve"])
def test_checkpointed_time_loop_with_an_assert(schedule, backend):
    """The assert in the time loop leaves it checkpointable: the gradient is the store-all
    one, which matches finite differences; a failing assert is raised."""
    u, direction = np.sin(np.linspace(0.0, 3.0, 12)), np.linspace(-1.0, 1.0, 12)
    stored = ad.grad(checked_heat, backend=backend)(u.copy(), 0.2, 20)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ad.HpcadWarning)   # (a loop it cannot checkpoint)
        checkpointed = ad.grad(ad.checkpoint(checked_heat, snapshots=3, schedule=schedule),
                               backend=backend)(u.copy(), 0.2, 20)
    np.testing.assert_array_equal(checkpointed, stored)
    eps, f = 1e-6, checked_heat.py_func
    fd = (f(u + eps * direction, 0.2, 20) - f(u - eps * direction, 0.2, 20)) / (2 * eps)
    assert float(stored @ direction) == pytest.approx(fd, rel=1e-7)
    with pytest.raises(ad.KernelAssertionError, match="blew up"):
        ad.grad(ad.checkpoint(checked_heat, snapshots=3, schedule=schedule),
                backend=backend)(u.copy(), 0.7, 60)
