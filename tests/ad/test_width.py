"""Batched derivatives (width W): on every serial test kernel, forward and reverse results
at W in {1, 3, 8} equal W separate unbatched calls (width_check.py), on both backends; the
batched IR keeps W as a vector type (one copy of the derivative code) and round-trips;
shadow-width errors name the argument."""
import numpy as np
import pytest

import hpcad as ad
from harness import BACKENDS, case_rng
from hpcad.ir.core import walk
from hpcad.ir.parser import parse_module
from hpcad.ir.printer import print_function, print_module
from kernels import CASES
from width_check import check_forward, check_reverse

CASE_BY_NAME = {case.name: case for case in CASES}
# numba compiles every (kernel, width, mode): every kernel at W=3, a spread of them at W=8
NUMBA_W8 = ("heat1d_explicit", "jacobi2d_swap", "while_break", "scatter_repeated",
            "float32_inplace_relax", "lotka_volterra_rk4", "gmm_objective", "ba_objective")


def _runs():
    for case in CASES:
        for width in (1, 3, 8):
            for backend in BACKENDS:
                if backend == "numba" and width == 8 and case.name not in NUMBA_W8:
                    continue
                yield pytest.param(case, width, backend,
                                   id=f"{case.name}-W{width}-{backend}")


@pytest.mark.parametrize("case,width,backend", list(_runs()))
def test_batched_equals_separate_calls(case, width, backend):
    rng = case_rng(case)
    args = case.make_args(rng)
    check_forward(case.kernel, args, width, backend, rng)
    check_reverse(case.kernel, args, width, backend, rng)


def test_width_is_a_vector_type_not_copies_of_the_code():
    heat = CASE_BY_NAME["heat1d_explicit"].kernel
    spec = heat.specialize((np.zeros(4), 0.1, 2))
    # unfused: the fused width-1 gather also carries stored values in registers, which
    # arrays of vectors do not (passes/carry.py)
    one = spec.derivative("reverse", ("dup", "active", "const"), True, fused=False)
    eight = spec.derivative("reverse", ("dup", "active", "const"), True, width=8, fused=False)
    text = print_function(eight)
    assert "%d_u: f64x8[::1]" in text and "%seed: f64x8" in text
    assert _op_counts(eight) == _op_counts(one)   # the same code (constants aside)
    text = print_function(spec.derivative("reverse", ("dup", "active", "const"), True,
                                          width=8))
    assert "%d_u: f64x8[::1]" in text and "%seed: f64x8" in text
    module = parse_module(text)
    assert print_module(module).strip() == text.strip()


def _op_counts(fn) -> dict:
    counts: dict = {}
    for op in walk(fn.body):
        if op.name != "arith.const":
            counts[op.name] = counts.get(op.name, 0) + 1
    return counts


def _heat():
    return CASE_BY_NAME["heat1d_explicit"].kernel


def test_shadow_without_the_width_axis_is_an_error():
    df = ad.autodiff(_heat(), mode="reverse", activity=(ad.Duplicated, ad.Active, ad.Const),
                     width=3)
    u = np.ones(5)
    with pytest.raises(ad.ArgumentError, match=r"shadow of 'u' has shape \(5,\), expected "
                                               r"\(3, 5\)"):
        df(u, np.zeros(5), 0.1, 2)


def test_shadow_of_another_width_is_an_error():
    df = ad.autodiff(_heat(), mode="forward", activity=(ad.Duplicated, ad.Dual, ad.Const),
                     width=3)
    with pytest.raises(ad.ArgumentError, match="width 3"):
        df(np.ones(5), np.zeros((4, 5)), 0.1, np.zeros(3), 2)


def test_dual_tangent_must_have_width_entries():
    df = ad.autodiff(_heat(), mode="forward", activity=(ad.Duplicated, ad.Dual, ad.Const),
                     width=3)
    with pytest.raises(ad.ArgumentError, match=r"tangent of 'alpha' at width 3"):
        df(np.ones(5), np.zeros((3, 5)), 0.1, 1.0, 2)


def test_seed_must_have_width_entries():
    df = ad.autodiff(_heat(), mode="reverse", activity=(ad.Duplicated, ad.Active, ad.Const),
                     width=3)
    with pytest.raises(ad.ArgumentError, match="length-3"):
        df(np.ones(5), np.zeros((3, 5)), 0.1, 2, seed=np.ones(2))


@pytest.mark.parametrize("width", [0, -2, 2.5, True])
def test_width_must_be_a_positive_int(width):
    with pytest.raises(ad.ArgumentError, match="width must be a positive int"):
        ad.autodiff(_heat(), mode="reverse", activity=(ad.Duplicated, ad.Active, ad.Const),
                    width=width)


def test_scalar_seed_applies_to_every_direction():
    heat = _heat()
    u = np.linspace(0.0, 1.0, 6)
    df = ad.autodiff(heat, mode="reverse", activity=(ad.Duplicated, ad.Active, ad.Const),
                     width=2, backend="interp")
    shadows = np.zeros((2, 6))
    _, dalpha = df(u.copy(), shadows, 0.2, 3, seed=2.0)
    g = ad.grad(heat, argnums=(0, 1), backend="interp")(u, 0.2, 3)
    assert np.allclose(shadows, 2.0 * g[0], rtol=1e-13, atol=0)
    assert np.allclose(dalpha, 2.0 * g[1], rtol=1e-13, atol=0)
