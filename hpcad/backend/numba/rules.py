"""The numba writer's registry: op name -> the rule that writes that op's Python source.
Each writer module (codegen, tape, parallel, mpi_codegen, vector) registers its rules beside
them with `@rule("dialect.op")`; a rule is called as rule(writer, op, depth), where the writer
(writer.py) holds the state of the function being written. An op without a rule is an
error that names it."""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ...errors import HpcadError, where
from ...ir.core import Op

if TYPE_CHECKING:
    from .writer import Writer

Rule = Callable[["Writer", Op, int], None]

RULES: dict[str, Rule] = {}


def rule(*names: str) -> Callable[[Rule], Rule]:
    """Register the decorated function as the writer rule of the ops `names`."""
    def register(fn: Rule) -> Rule:
        for name in names:
            if name in RULES:
                raise AssertionError(f"two numba writer rules for '{name}'")
            RULES[name] = fn
        return fn
    return register


def rule_for(op: Op) -> Rule:
    """The writer rule of op, or an HpcadError naming the op when there is none."""
    found = RULES.get(op.name)
    if found is None:
        raise HpcadError(f"{where(op.loc)}: the numba backend has no rule to write the op "
                         f"'{op.name}'; use backend='interp', or add a rule for it with "
                         f"@rule({op.name!r}) (hpcad/backend/numba/rules.py)")
    return found
