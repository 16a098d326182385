"""Activity analysis: values that cannot influence an active output, or are not influenced
by an active input, produce no derivative code."""
import numpy as np

import hpcad as ad
from hpcad.ir import print_function
from hpcad.passes.activity import ACTIVE, CONST, analyze


@ad.kernel
def two_parts(x, a, out):
    for i in range(len(a)):
        out[i] = a[i] * a[i]
    s = 0.0
    for i in range(len(a)):
        s += x * a[i]
    return s


ARGS = (1.5, np.arange(4.0), np.zeros(4))
KINDS = (ACTIVE, CONST, CONST)


def test_inactive_loop_gets_no_adjoint_loop():
    spec = two_parts.specialize(ARGS)
    rev = print_function(spec.derivative("reverse", KINDS, True))
    # one reverse loop, for `s` only; `a` is never written, so the reverse sweep reloads
    # a[i] instead of taping it
    assert rev.count("{reverse = true}") == 1, rev
    assert "mem.accumulate" not in rev and "tape." not in rev, rev


def test_inactive_values_have_no_tangents():
    spec = two_parts.specialize(ARGS)
    fwd = spec.derivative("forward", KINDS, True)
    text = print_function(fwd)
    assert "d_out" not in text and "d_a" not in text, text
    act = analyze(spec.primal, list(KINDS), True)
    loads_of_a = [op for op in _walk(spec.primal.body) if op.name == "mem.load"]
    assert loads_of_a and not any(act.active(op.results[0]) for op in loads_of_a)


def test_value_not_reaching_output_is_inactive():
    @ad.kernel
    def unused(x):
        y = x * x
        z = y + 1.0
        return x * 3.0

    spec = unused.specialize((2.0,))
    analyze(spec.primal, [ACTIVE], True)
    rev = print_function(spec.derivative("reverse", (ACTIVE,), True))
    assert "arith.add" not in rev, rev
    assert ad.grad(unused)(2.0) == 3.0


def _walk(block):
    for op in block.ops:
        yield op
        for r in op.regions:
            yield from _walk(r)
