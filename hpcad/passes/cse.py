"""Common-subexpression elimination of pure ops, scoped by region: a value computed in an
enclosing block is reused inside nested regions, never the other way around."""
from __future__ import annotations

from ..ir.core import Block, Function, Op, Value
from ..ir.dialects import is_pure
from .rewrite import resolve


def _attr(v) -> tuple:
    """An attribute's value as a key: a float by its bits (0.0 == -0.0 in Python, but a
    constant -0.0 merged into 0.0 changes x + c, 1 / c, np.copysign(1.0, c))."""
    return ("float", v.hex()) if isinstance(v, float) else (type(v).__name__, v)


def _key(op: Op):
    attrs = tuple(sorted((k, _attr(v)) for k, v in op.attrs.items()))
    return (op.name, tuple(id(v) for v in op.operands), attrs,
            tuple(r.type for r in op.results))


def _cse_block(block: Block, scope: dict, replace: dict[Value, Value]) -> bool:
    local = dict(scope)
    changed = False
    kept = []
    for op in block.ops:
        op.operands = [resolve(replace, v) for v in op.operands]
        for r in op.regions:
            changed |= _cse_block(r, local, replace)
        if op.regions or not is_pure(op):
            kept.append(op)
            continue
        key = _key(op)
        prev = local.get(key)
        if prev is None:
            local[key] = op
            kept.append(op)
        else:
            for a, b in zip(op.results, prev.results):
                replace[a] = b
            changed = True
    block.ops = kept
    return changed


def cse(fn: Function) -> bool:
    return _cse_block(fn.body, {}, {})
