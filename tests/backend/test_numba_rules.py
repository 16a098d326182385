"""The numba writer writes each op through a rule in one table (backend/numba/rules.py): an op
without a rule is an hpcad error that names the op and the kernel line, and every op of the
IR that reaches the writer has a rule."""
import inspect

import pytest

import hpcad as ad
from hpcad.backend.numba.codegen import generate
from hpcad.backend.numba.rules import RULES
from hpcad.frontend.lower import lower_kernel
from hpcad.frontend.signature import typeof
from hpcad.ir.dialects import OPS

# ops the writer never meets: terminators are written by their parent op, and calls are
# inlined before code generation (passes/inline.py)
NOT_WRITTEN = {"scf.yield", "scf.condition", "func.call"}


@ad.kernel
def square(x):
    return x * x


@ad.kernel
def calls_square(x):
    return square(x) + 1.0  # the call


def test_an_op_without_a_writer_rule_is_an_hpcad_error_naming_the_op_and_line():
    module = lower_kernel(calls_square.py_func, (typeof(1.0, "x"),))   # the call not inlined
    with pytest.raises(ad.HpcadError) as info:
        generate(module.functions[module.entry], "calls_square")
    msg = str(info.value)
    lines, start = inspect.getsourcelines(calls_square.py_func)
    line = start + next(k for k, text in enumerate(lines) if "# the call" in text)
    assert "'func.call'" in msg and f"{__file__}:{line}" in msg, msg
    assert "backend='interp'" in msg, msg


def test_every_op_that_reaches_the_writer_has_a_rule():
    assert sorted(set(OPS) - set(RULES) - NOT_WRITTEN) == []
