"""Every test kernel's IR, and its forward and reverse derivatives' IR, prints, parses and
prints again identically, and verifies."""

import numpy as np
import pytest

from hpcad.api import float_kinds
from hpcad.ir import parse_function, print_function, verify_function
from tests.ad.kernels import CASES


def _round_trip(fn):
    text = print_function(fn)
    again = parse_function(text)
    verify_function(again)
    assert print_function(again) == text


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_kernel_ir_round_trips(case):
    args = case.make_args(np.random.default_rng(0))
    k = case.kernel
    spec = k.specialize(k.bind(args))
    _round_trip(spec.primal)
    kinds = tuple(float_kinds(k, args, set(range(len(args)))))
    for mode in ("forward", "reverse"):
        _round_trip(spec.derivative(mode, kinds, True))


def test_bit_operations_and_kept_rule_calls_round_trip():
    """Bit casts and shifts (the primal), the calls to rule kernels AD reads (func.call
    {custom}, fwd calls with residual results) and the derivatives."""
    from tests.ad import custom_kernels as ck
    v = np.linspace(0.5, 2.0, 4)
    spec = ck.sum_scaled_inv_sqrt.specialize((v,))
    _round_trip(spec.primal)
    assert "mem.bitcast" in print_function(spec.primal)
    for mode in ("forward", "reverse"):
        kept = spec.rules.for_mode(mode)
        assert 'custom = "bits_inv_sqrt"' in print_function(kept)
        _round_trip(kept)
        _round_trip(spec.derivative(mode, ("dup",), True))


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_rule_calls_at_width_round_trip_with_their_lane_ops(mode):
    """At width 3 a rule is called once per lane: vec.extract, vec.insert and vec.lane (the
    array rule's cotangent and tangent arrays) print, parse back and verify."""
    from tests.ad import custom_kernels as ck
    spec = ck.scaled_energy.specialize((np.linspace(0.3, 1.7, 6), 0.7))
    fn = spec.derivative(mode, ("dup", "active"), True, width=3)
    text = print_function(fn)
    for op in ("vec.extract", "vec.insert", "vec.lane"):
        assert op in text, op
    _round_trip(fn)
