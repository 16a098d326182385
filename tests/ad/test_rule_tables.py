"""The rule tables (hpcad/ad/rules/): every op the IR can hold has its rule in each mode or
is named here as one that mode never meets; an op whose rule is missing is an error at the
kernel's line naming the op, in each mode; and a row registered in the table is what both
modes differentiate with."""
import inspect
import math

import numpy as np
import pytest

import hpcad as ad
from hpcad.ad.rules import JVP, VJP
from hpcad.ad.rules.arith import PARTIALS, defpartials
from hpcad.ad.rules.registry import unruled_ops

BACKENDS = ["interp", "numba"]


@ad.kernel
def sum_of_sines(x):
    s = 0.0
    for i in range(len(x)):
        s += math.sin(x[i])  # the sine
    return s


def _sine_line() -> str:
    lines, start = inspect.getsourcelines(sum_of_sines.py_func)
    return f"{__file__}:{start + next(k for k, line in enumerate(lines) if 'the sine' in line)}"


def _fresh():
    return ad.kernel(sum_of_sines.py_func)


def test_every_op_has_a_rule_in_each_mode_it_can_meet():
    """Vector ops only exist in derivatives of width > 1, which AD never reads; the tape
    and progress ops only in reverse derivatives, which forward mode reads (Hessian-vector
    products) and reverse mode never does."""
    vector = ["vec.extract", "vec.insert", "vec.lane"]
    reverse_output = ["tape.push", "tape.pop", "tape.advance", "tape.retreat",
                      "tape.reserve", "rt.progress"]
    missing = unruled_ops()
    assert sorted(missing["forward"]) == sorted(vector)
    assert sorted(missing["reverse"]) == sorted(vector + reverse_output)


@pytest.mark.parametrize("backend", BACKENDS)
def test_op_without_reverse_rule_is_an_error_naming_it_at_its_line(backend, monkeypatch):
    monkeypatch.delitem(VJP, "math.sin")
    with pytest.raises(ad.DifferentiationError) as info:
        ad.grad(_fresh(), backend=backend)(np.ones(3))
    msg = str(info.value)
    assert msg.startswith(_sine_line()) and "no reverse-mode rule for 'math.sin'" in msg, msg


@pytest.mark.parametrize("backend", BACKENDS)
def test_op_without_forward_rule_is_an_error_naming_it_at_its_line(backend, monkeypatch):
    monkeypatch.delitem(JVP, "math.sin")
    with pytest.raises(ad.DifferentiationError) as info:
        ad.jvp(_fresh(), (np.ones(3),), (np.ones(3),), backend=backend)
    msg = str(info.value)
    assert msg.startswith(_sine_line()) and "no forward-mode rule for 'math.sin'" in msg, msg


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_row_registered_in_the_table_serves_both_modes(backend, monkeypatch):
    """sin registered afresh with the partial 2 cos(x) (twice the true one): forward and
    reverse mode both give twice the analytic derivative, so both read the new row."""
    monkeypatch.delitem(JVP, "math.sin")
    monkeypatch.delitem(VJP, "math.sin")
    monkeypatch.setitem(PARTIALS, "math.sin", PARTIALS["math.sin"])
    defpartials("math.sin", lambda b, x, r: b.mul(2.0, b.math("cos", x)))
    x = np.array([0.3, -1.2, 2.0])
    twice = 2.0 * np.cos(x)
    np.testing.assert_allclose(ad.grad(_fresh(), backend=backend)(x), twice, rtol=1e-13)
    direction = np.array([1.0, 0.5, -2.0])
    _, dot = ad.jvp(_fresh(), (x,), (direction,), backend=backend)
    assert dot == pytest.approx(float(twice @ direction), rel=1e-13)
