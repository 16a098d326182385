"""Inline every `func.call` into its caller, so AD and the optimizer see one function (calls
to kernels with custom derivative rules may be kept for AD, see ad/custom.py). A callee
holding a tape (a derivative called in a kernel: frontend/nested.py) gets fresh tape slots
at each place it is inlined, so that each copy's tape is its own."""
from __future__ import annotations

from ..errors import UnsupportedConstruct
from ..ir.clone import clone_op
from ..ir.core import Block, Function, Module, Op, Value, replace_uses, walk


def inline_calls(module: Module, keep_custom: bool = False) -> Function:
    """Inline calls in the entry function (recursively), except, with `keep_custom`, calls
    to kernels with custom rules; returns the entry function and drops the callees from the
    module."""
    fn = module.main
    slots = [max((_slot_count(f.body.ops) for f in module.functions.values()), default=0)]
    _inline_block(fn.body, module, depth=0, keep=keep_custom, slots=slots)
    module.functions = {fn.name: fn}
    return fn


def _inline_block(block: Block, module: Module, depth: int, keep: bool = False,
                  slots: list[int] | None = None) -> None:
    if depth > 64:
        raise UnsupportedConstruct("kernel calls nest more than 64 deep (recursion?)")
    out = []
    replace: dict[Value, Value] = {}
    for op in block.ops:
        op.operands = [replace.get(v, v) for v in op.operands]
        for r in op.regions:
            replace_uses(r, replace)
            _inline_block(r, module, depth, keep, slots)
        if op.name != "func.call" or (keep and "custom" in op.attrs):
            out.append(op)
            continue
        callee = module.functions[op.attrs["callee"]]
        vmap = dict(zip(callee.args, op.operands))
        body = Block()
        body.ops = [clone_op(o, vmap) for o in callee.body.ops]
        _fresh_slots(body.ops, slots)
        _inline_block(body, module, depth + 1, keep, slots)
        ret = body.ops.pop()
        for o in body.ops:
            o.parent = block
            if o.loc is None:
                o.loc = op.loc
        out.extend(body.ops)
        for r, v in zip(op.results, ret.operands):
            replace[r] = v
    block.ops = out



def _tape_ops(ops: list[Op]):
    for op in ops:
        if op.dialect == "tape":
            yield op
        for r in op.regions:
            yield from (o for o in walk(r) if o.dialect == "tape")


def _slot_count(ops: list[Op]) -> int:
    return 1 + max((o.attrs["slot"] for o in _tape_ops(ops)), default=-1)


def _fresh_slots(ops: list[Op], slots: list[int] | None) -> None:
    """Move the tape slots of ops (a copy of a callee) past every slot taken so far."""
    n = _slot_count(ops)
    if not n or slots is None:
        return
    for o in _tape_ops(ops):
        o.attrs = {**o.attrs, "slot": o.attrs["slot"] + slots[0]}
    slots[0] += n
