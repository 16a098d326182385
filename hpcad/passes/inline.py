"""Inline every `func.call` into its caller, so AD and the optimizer see one function (calls
to kernels with custom derivative rules may be kept for AD, see ad/custom.py)."""
from __future__ import annotations

from ..errors import UnsupportedConstruct
from ..ir.clone import clone_op
from ..ir.core import Block, Function, Module, Value, replace_uses


def inline_calls(module: Module, keep_custom: bool = False) -> Function:
    """Inline calls in the entry function (recursively), except, with `keep_custom`, calls
    to kernels with custom rules; returns the entry function and drops the callees from the
    module."""
    fn = module.main
    _inline_block(fn.body, module, depth=0, keep=keep_custom)
    module.functions = {fn.name: fn}
    return fn


def _inline_block(block: Block, module: Module, depth: int, keep: bool = False) -> None:
    if depth > 64:
        raise UnsupportedConstruct("kernel calls nest more than 64 deep (recursion?)")
    out = []
    replace: dict[Value, Value] = {}
    for op in block.ops:
        op.operands = [replace.get(v, v) for v in op.operands]
        for r in op.regions:
            replace_uses(r, replace)
            _inline_block(r, module, depth, keep)
        if op.name != "func.call" or (keep and "custom" in op.attrs):
            out.append(op)
            continue
        callee = module.functions[op.attrs["callee"]]
        vmap = dict(zip(callee.args, op.operands))
        body = Block()
        body.ops = [clone_op(o, vmap) for o in callee.body.ops]
        _inline_block(body, module, depth + 1, keep)
        ret = body.ops.pop()
        for o in body.ops:
            o.parent = block
            if o.loc is None:
                o.loc = op.loc
        out.extend(body.ops)
        for r, v in zip(op.results, ret.operands):
            replace[r] = v
    block.ops = out

