"""IR verifier: every op is known and well-typed, every use is dominated by its definition
(defined earlier in the same block or an enclosing one), regions end in the right terminator.
Errors name the offending op, its function and its kernel location."""
from __future__ import annotations

from typing import NoReturn

from ..errors import IRVerifyError, where
from .core import Block, Function, Module, Op, Value
from .dialects import OPS, check_attributes
from .types import ArrayType, ScalarType

_TERMINATED = {"scf.for": "scf.yield", "scf.if": "scf.yield", "par.parallel_for": "scf.yield",
               "par.join": "scf.yield"}


def _fail(fn: Function, op: Op, msg: str) -> NoReturn:
    loc = f" (kernel {where(op.loc)})" if op.loc else ""
    raise IRVerifyError(f"in @{fn.name}: op '{op.name}'{loc}: {msg}")


def _check_op(fn: Function, op: Op, last: bool, visible: set[Value],
              module: Module | None) -> None:
    """op alone: known, its operands in scope, its place, its regions, its attributes and
    its type rule (`last`: whether it ends its block)."""
    spec = OPS.get(op.name)
    if spec is None:
        _fail(fn, op, "unknown op")
    for v in op.operands:
        if v not in visible:
            _fail(fn, op, f"uses %{v.name} before its definition or outside its scope")
    if spec.effect == "terminator" and not last:
        _fail(fn, op, "terminator in the middle of a block")
    if len(op.regions) != spec.regions and spec.regions >= 0 and op.name != "func.call":
        _fail(fn, op, f"expects {spec.regions} regions ({', '.join(spec.region_names)}), "
                      f"has {len(op.regions)}")
    if op.name == "func.call":
        _check_call(fn, op, module)
    msg = check_attributes(op) or (spec.check(op) if spec.check else None)
    if msg:
        _fail(fn, op, msg)


def _region_terminators(op: Op) -> list[str | None]:
    """The op each of op's regions must end in (None: any)."""
    if op.name == "scf.while":
        return ["scf.condition", "scf.yield"]
    return [_TERMINATED.get(op.name)] * len(op.regions)


def verify_function(fn: Function, module: Module | None = None) -> None:
    visible: set[Value] = set()

    def block(b: Block, expected_term: str | None) -> None:
        added = list(b.args)
        visible.update(b.args)
        for k, op in enumerate(b.ops):
            _check_op(fn, op, k == len(b.ops) - 1, visible, module)
            for region, ends_in in zip(op.regions, _region_terminators(op), strict=True):
                block(region, ends_in)
            visible.update(op.results)
            added += op.results
        term = b.terminator
        if expected_term and (term is None or term.name != expected_term):
            raise IRVerifyError(f"in @{fn.name}: region of '{b.parent.name if b.parent else '?'}'"
                                f" must end in {expected_term}")
        visible.difference_update(added)

    block(fn.body, "func.return")
    ret = fn.body.terminator
    assert ret is not None, "block() checked that the body ends in func.return"
    if [v.type for v in ret.operands] != list(fn.result_types):
        _fail(fn, ret, f"returns {[str(v.type) for v in ret.operands]}, "
                       f"function declares {[str(t) for t in fn.result_types]}")
    for a in fn.args:
        if not isinstance(a.type, (ScalarType, ArrayType)) and not str(a.type).startswith("!"):
            raise IRVerifyError(f"in @{fn.name}: argument %{a.name} has bad type {a.type}")


def _check_call(fn: Function, op: Op, module: Module | None) -> None:
    callee = op.attrs.get("callee")
    if module is None:
        return
    target = module.functions.get(callee) if isinstance(callee, str) else None
    if target is None:
        _fail(fn, op, f"calls unknown function @{callee}")
    if [v.type for v in op.operands] != [a.type for a in target.args]:
        _fail(fn, op, f"argument types differ from @{callee}'s")
    if [r.type for r in op.results] != list(target.result_types):
        _fail(fn, op, f"result types differ from @{callee}'s")


def verify_module(module: Module) -> None:
    for fn in module.functions.values():
        verify_function(fn, module)
