"""Generated kernels (grammar.py) differentiated inside other kernels (nested AD): a kernel
calling ad.grad, ad.jvp or ad.value_and_grad of the generated `main` gives what the Python
API gives for `main`; forward mode over the inner gradient matches central differences of
it, and reverse mode over it (where not refused) matches forward mode. On the interpreter
(one kernel in NUMBA_EVERY also on numba)."""
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import assume, given

import hpcad as ad
from hpcad.errors import DifferentiationError, UnsupportedConstruct
from hpcad.passes.race import RaceError
from tests.generative import checks, found, grammar, profiles
from tests.generative.profiles import generative

NUMBA_EVERY = 25
RTOL = 1e-10
WRAPPERS = '''

@kernel
def nested_grad(u, w, c, nt, v):
    gu, gw, gc = ad.grad(main, argnums=(0, 1, 2))(u, w, c, nt)
    s = gc * v[0]
    for i in range(u.shape[0]):
        s += gu[i] * v[i] + 0.5 * gw[i] * v[i]
    return s


@kernel
def nested_jvp(u, w, c, nt, du):
    _, t = ad.jvp(main, (u, w, c, nt), (du, None, 1.0, None))
    return t


@kernel
def nested_value_and_grad(u, w, c, nt):
    value, gu = ad.value_and_grad(main)(u, w, c, nt)
    return value + 0.1 * np.sum(gu * gu)


@kernel
def nested_grad_rows(us, w, c, nt, v, out):
    for r in ad.prange(us.shape[0]):
        gu = ad.grad(main, argnums=0)(us[r], w, c * (r + 1), nt)
        s = 0.0
        for i in range(gu.shape[0]):
            s += gu[i] * v[i]
        out[r] = s
    return out
'''
# what hpcad may refuse for a nested derivative (a clear error, not a wrong value)
REFUSED = ("reverse mode over a reverse derivative", "its reverse sweep is checkpointed",
           "has a parallel loop", "saves values on a tape")
ROWS = 3


def _nested(gen):
    return replace(gen, source=gen.source + WRAPPERS)


def _module(gen, backend):
    module = checks.load(gen, "hpcad")
    return {name: ad.kernel(getattr(module, name).py_func, backend=backend)
            for name in ("main", "nested_grad", "nested_jvp", "nested_value_and_grad",
                         "nested_grad_rows")}


def _python_side(k, backend, args, v, du):
    """What the nested kernels should return, from the Python API on `main`."""
    gu, gw, gc = ad.grad(k["main"], argnums=(0, 1, 2), backend=backend)(*checks.copies(args))
    grad_value = gc * v[0] + np.sum(gu * v) + 0.5 * np.sum(gw * v)
    _, t = ad.jvp(k["main"], tuple(checks.copies(args)), (du, None, 1.0, None),
                  backend=backend)
    value = k["main"](*checks.copies(args))
    return grad_value, t, value + 0.1 * np.sum(gu * gu)


def _refused(e: Exception) -> bool:
    return isinstance(e, (DifferentiationError, UnsupportedConstruct, RaceError)) and \
        any(r in str(e) for r in REFUSED)


def _check_rows(gen, k, backend, args, v):
    """ad.grad of main taken in a prange loop, one row of u and its own c per iteration:
    each row's gradient is the Python API's (or refused: a taped reverse sweep)."""
    u, w, c, nt = args
    us = np.stack([u * (1.0 - 0.25 * r) for r in range(ROWS)])
    try:
        got = k["nested_grad_rows"](us.copy(), w.copy(), c, nt, v, np.zeros(ROWS))
    except Exception as e:   # noqa: BLE001 - a refusal is allowed, anything else is a finding
        if _refused(e):
            return
        checks.fail(gen, f"nested gradient in a parallel loop on {backend}: "
                         f"{type(e).__name__}: {e}")
    for r in range(ROWS):
        gu = ad.grad(k["main"], argnums=0, backend=backend)(us[r].copy(), w.copy(),
                                                            c * (r + 1), nt)
        if checks.rel(got[r], np.sum(gu * v)) > RTOL:
            checks.fail(gen, f"nested gradient in a parallel loop on {backend}, row {r}: "
                             f"{got[r]!r} vs the Python API's {np.sum(gu * v)!r}")


def _check(gen, backend):
    args = checks.make_args(gen)
    rng = np.random.default_rng([gen.seed, 3])
    v, du = rng.standard_normal(gen.n), rng.standard_normal(gen.n)
    k = _module(gen, backend)
    try:
        got = (k["nested_grad"](*checks.copies(args), v), k["nested_jvp"](*checks.copies(args), du),
               k["nested_value_and_grad"](*checks.copies(args)))
    except Exception as e:   # noqa: BLE001 - a refusal is allowed, anything else is a finding
        if _refused(e):
            return
        checks.fail(gen, f"nested kernels on {backend}: {type(e).__name__}: {e}")
    want = _python_side(k, backend, args, v, du)
    for name, a, b in zip(("grad", "jvp", "value_and_grad"), got, want):
        if checks.rel(a, b) > RTOL:
            checks.fail(gen, f"nested {name} on {backend}: {a!r} vs the Python API's {b!r}")
    _check_second_order(gen, k, backend, args, v, du)
    _check_rows(gen, k, backend, args, v)


def _check_second_order(gen, k, backend, args, v, du):
    """d/du of nested_grad along du: forward mode against central differences of its values,
    reverse mode (unless refused) against forward mode."""
    flat = tuple(checks.copies(args)) + (v,)
    try:
        _, fwd = ad.jvp(k["nested_grad"], flat, (du, None, None, None, None), backend=backend)
    except Exception as e:   # noqa: BLE001
        if _refused(e):
            return
        checks.fail(gen, f"forward over the nested gradient on {backend}: {e}")

    def at(h, step=1e-6):
        moved = list(checks.copies(args))
        moved[0] = moved[0] + h * step * du
        return k["nested_grad"](*moved, v)
    fd, coarse = (at(1) - at(-1)) / 2e-6, (at(10) - at(-10)) / 2e-5
    if np.isfinite(fd) and checks.rel(fd, coarse) < 1e-4 and checks.rel(fwd, fd) > 1e-5 and \
            abs(fwd - fd) > 1e-7:
        checks.fail(gen, f"forward over the nested gradient on {backend}: {fwd!r} vs central "
                         f"differences {fd!r}")
    try:
        rev = ad.grad(k["nested_grad"], argnums=0, backend=backend)(*checks.copies(args), v)
    except Exception as e:   # noqa: BLE001
        if _refused(e):
            return
        checks.fail(gen, f"reverse over the nested gradient on {backend}: {e}")
    if checks.rel(float(np.sum(rev * du)), fwd) > 1e-9:
        checks.fail(gen, f"reverse over the nested gradient on {backend}: <grad, du> "
                         f"{float(np.sum(rev * du))!r} vs forward {fwd!r}")


@pytest.mark.slow
@pytest.mark.timeout(profiles.time_limit(1200))
@generative(ci_examples=60)
@given(gen=grammar.serial_kernels(plain=True))
def test_nested_derivatives_of_generated_kernels_match_the_python_api(gen):
    assume(checks.usable(checks.plain_run(gen, checks.make_args(gen))[0]))
    gen = _nested(gen)
    for backend in ["interp"] + (["numba"] if checks.on_numba_too(gen, NUMBA_EVERY) else []):
        _check(gen, backend)


@pytest.mark.parametrize("backend", ["interp", pytest.param("numba", marks=pytest.mark.slow)])
@pytest.mark.parametrize("name", sorted(found.NESTED))
def test_found_nested_kernels_match_the_python_api_and_finite_differences(name, backend,
                                                                          request):
    feature, _, gen = found.NESTED[name]
    found.expect_known_bug(request, feature)
    _check(_nested(gen), backend)
