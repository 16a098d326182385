"""Checks a test case's derivatives three ways: ad.jvp and ad.vjp against central finite
differences of the kernel's plain Python function along random directions, ad.jvp against
ad.vjp by the dot-product test <J v, w> == <v, J^T w>, and that neither touched its inputs.
Input: a kernels.Case and a backend name; failures are assertion errors naming the case."""
import copy
import functools
import os
import zlib

import numpy as np
import pytest

import hpcad as ad

BACKENDS = ["interp", "numba"]
SLOW = pytest.mark.slow
# both backends, the numba one (seconds of compiling per case) in the slow tier only
INTERP_FAST = ["interp", pytest.param("numba", marks=SLOW)]


# The interpreter and numba share everything up to the backend, so a file of many cases
# compiles with numba (seconds to tens of seconds a case, cold) only the cases that its
# ON_NUMBA tuple names, each for numba code no other of its cases generates; the others run on
# the interpreter. HPCAD_ALL_KERNELS=1 runs every case of every such file on numba too.
ALL_KERNELS = os.environ.get("HPCAD_ALL_KERNELS", "") not in ("", "0")


def on_numba(name: str, chosen) -> bool:
    """Whether the case called name runs on numba: it is in chosen (None: every case), or
    HPCAD_ALL_KERNELS=1."""
    return ALL_KERNELS or chosen is None or name in chosen


def on_backends(cases, fast_on_numba=(), numba=None):
    """Parametrize a test by (case, backend): every case on the interpreter, and on numba
    those that on_numba(name, numba) takes. numba compiles each case's derivatives (seconds
    apiece), so only the cases named in fast_on_numba run on numba in the fast tier
    (`pytest -m "not slow"`); the others there are marked slow."""
    return pytest.mark.parametrize("case, backend", [
        pytest.param(case, backend, id=f"{case.name}-{backend}",
                     marks=SLOW if backend == "numba" and case.name not in fast_on_numba
                     else ())
        for case in cases for backend in BACKENDS
        if backend == "interp" or on_numba(case.name, numba)])


@functools.cache
def njit_of(py_func, parallel: bool = False):
    """numba.njit of a plain Python function, the reference that tests on both backends
    compare hpcad's results with: compiled once per process (each numba.njit call would
    compile it again)."""
    import numba
    return numba.njit(parallel=parallel)(py_func)


def slow_unless(cases, fast=(), numba=None):
    """Parametrize a test (one that runs on numba) by case, the cases not named in `fast`
    marked slow, those that on_numba(name, numba) does not take left out."""
    return pytest.mark.parametrize("case", [
        pytest.param(case, id=case.name, marks=() if case.name in fast else SLOW)
        for case in cases if on_numba(case.name, numba)])

# relative_error(a, b) = |a - b| / max(|a|, |b|, TINY). TINY only keeps 0/0 out: a derivative
# that is exactly zero on both sides counts as a match, anything else is measured relative to
# itself. The cases are built so that every checked derivative is far above FD noise
# (test_kernels_plain.py checks that), so no absolute floor is needed to hide noise.
TINY = 1e-30


def relative_error(a, b) -> float:
    """Largest |a - b| relative to the larger of |a|, |b| (max norms for arrays)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    scale = max(np.max(np.abs(a), initial=0.0), np.max(np.abs(b), initial=0.0), TINY)
    return float(np.max(np.abs(a - b), initial=0.0) / scale)


def case_rng(case) -> np.random.Generator:
    """A generator seeded by the case's name: each case draws the same numbers on every run."""
    return np.random.default_rng(zlib.crc32(case.name.encode()))


def is_active(arg) -> bool:
    """Float scalars and float arrays carry derivatives; ints, bools, int arrays are constant."""
    if isinstance(arg, np.ndarray):
        return arg.dtype.kind == "f"
    return isinstance(arg, float)


def random_direction(rng: np.random.Generator, args: tuple) -> tuple:
    """A tangent per argument: standard normal, of the argument's shape and dtype if active."""
    def tangent(arg):
        if not is_active(arg):
            return None
        if isinstance(arg, np.ndarray):
            return rng.standard_normal(arg.shape).astype(arg.dtype)
        return float(rng.standard_normal())
    return tuple(tangent(arg) for arg in args)


def as_outputs(value) -> np.ndarray:
    """A kernel's return, a float or a tuple of floats, as a 1-D float64 array."""
    values = value if isinstance(value, tuple) else (value,)
    return np.array([float(v) for v in values])


def as_cotangent(like, weights: np.ndarray):
    """weights shaped like the kernel's return: a float, or a tuple of floats."""
    if isinstance(like, tuple):
        return tuple(float(w) for w in weights)
    return float(weights[0])


def inner(direction: tuple, cotangents: tuple) -> float:
    """sum_k <v_k, c_k> over the active arguments."""
    return float(sum(np.vdot(np.asarray(v, dtype=np.float64), np.asarray(c, dtype=np.float64))
                     for v, c in zip(direction, cotangents, strict=True) if v is not None))


def fd_step(case, args: tuple) -> float:
    """The case's relative step, scaled by the largest float input so that x + h v moves x."""
    largest = max((np.max(np.abs(a)) for a in args if is_active(a)), default=1.0)
    return case.eps * max(1.0, float(largest))


def shifted(args: tuple, direction: tuple, h: float) -> tuple:
    """Fresh copies of args moved by h * direction. Float32 arrays become float64: a float32
    step would be rounded to the array's precision, so the FD reference is the same formula
    evaluated in float64 (the case's tolerances say how far float32 AD may stray from it)."""
    def shift(arg, v):
        if v is None:
            return copy.deepcopy(arg)
        if isinstance(arg, np.ndarray):
            return arg.astype(np.float64) + h * v.astype(np.float64)
        return arg + h * v
    return tuple(shift(arg, v) for arg, v in zip(args, direction, strict=True))


def central_difference(py_func, args: tuple, direction: tuple, h: float) -> np.ndarray:
    """(f(x + h v) - f(x - h v)) / 2h for each output, on fresh copies (kernels write args)."""
    plus = as_outputs(py_func(*shifted(args, direction, h)))
    minus = as_outputs(py_func(*shifted(args, direction, -h)))
    return (plus - minus) / (2.0 * h)


def _assert_unchanged(what: str, values: tuple, before: tuple) -> None:
    for k, (now, then) in enumerate(zip(values, before, strict=True)):
        if isinstance(then, np.ndarray):
            assert now.dtype == then.dtype and np.array_equal(now, then), \
                f"{what} modified argument {k}"
        else:
            assert now == then, f"{what} modified argument {k}"


def _assert_cotangent_kinds(name: str, args: tuple, cotangents: tuple) -> None:
    assert isinstance(cotangents, tuple) and len(cotangents) == len(args), \
        f"{name}: vjp_fn must return one entry per argument"
    for k, (arg, ct) in enumerate(zip(args, cotangents, strict=True)):
        if not is_active(arg):
            assert ct is None, f"{name}: cotangent of constant argument {k} must be None"
        elif isinstance(arg, np.ndarray):
            assert isinstance(ct, np.ndarray) and ct.shape == arg.shape, \
                f"{name}: cotangent of argument {k} must be an array of shape {arg.shape}"
        else:
            assert isinstance(ct, (float, np.floating)), \
                f"{name}: cotangent of float argument {k} must be a float"


def check_case(case, backend: str) -> None:
    """Forward vs FD, reverse vs FD (one unit cotangent per output), dot-product test."""
    rng = case_rng(case)
    args = case.make_args(rng)
    v = random_direction(rng, args)
    fd = central_difference(case.kernel.py_func, args, v, fd_step(case, args))
    expected = as_outputs(case.kernel.py_func(*copy.deepcopy(args)))
    jv = _check_forward(case, backend, args, v, fd, expected)
    like, vjp_fn = _check_reverse(case, backend, args, v, fd, expected)

    args_before = copy.deepcopy(args)
    w = rng.standard_normal(len(fd))
    lhs = float(np.dot(jv, w))
    rhs = inner(v, vjp_fn(as_cotangent(like, w)))
    err = relative_error(lhs, rhs)
    assert err <= case.dot_rtol, \
        f"{case.name}: dot-product test <Jv, w> {lhs!r} vs <v, J^T w> {rhs!r} ({err:.2e})"
    _assert_unchanged("vjp_fn", args, args_before)


def _check_forward(case, backend, args, v, fd, expected) -> np.ndarray:
    """ad.jvp along v: its value is the plain function's, its tangent the FD one per output."""
    args_before, v_before = copy.deepcopy(args), copy.deepcopy(v)
    out, tangent_out = ad.jvp(case.kernel, args, v, backend=backend)
    _assert_unchanged("jvp", args, args_before)
    _assert_unchanged("jvp (tangents)", v, v_before)
    assert isinstance(tangent_out, tuple) == isinstance(out, tuple), \
        f"{case.name}: tangent_out must have the structure of out"
    value, jv = as_outputs(out), as_outputs(tangent_out)
    assert relative_error(value, expected) <= case.value_rtol, \
        f"{case.name}: jvp value {value} != plain Python {expected}"
    for j in range(len(fd)):
        err = relative_error(jv[j], fd[j])
        assert err <= case.fd_rtol, \
            f"{case.name}: output {j}: jvp {jv[j]!r} vs FD {fd[j]!r} (rel. error {err:.2e})"
    return jv


def _check_reverse(case, backend, args, v, fd, expected) -> tuple:
    """ad.vjp: for each output j, <v, J^T e_j> is the FD derivative of output j along v.
    Returns the primal output (the cotangents' template) and vjp_fn."""
    args_before = copy.deepcopy(args)
    out, vjp_fn = ad.vjp(case.kernel, *args, backend=backend)
    _assert_unchanged("vjp", args, args_before)
    assert relative_error(as_outputs(out), expected) <= case.value_rtol, \
        f"{case.name}: vjp value {out} != plain Python {expected}"
    for j in range(len(fd)):
        cotangents = vjp_fn(as_cotangent(out, np.eye(len(fd))[j]))
        _assert_cotangent_kinds(case.name, args, cotangents)
        vjv = inner(v, cotangents)
        err = relative_error(vjv, fd[j])
        assert err <= case.fd_rtol, \
            f"{case.name}: output {j}: <v, vjp> {vjv!r} vs FD {fd[j]!r} (rel. error {err:.2e})"
    _assert_unchanged("vjp_fn", args, args_before)
    return out, vjp_fn
