"""Constant folding and algebraic simplification. Only rewrites that give bit-identical
results on every backend (x*1 -> x, x - 0.0 -> x but not x + 0.0, which is +0.0 where x is
-0.0, pow(x, 2.0) -> x*x, integer folding, branches on constants, checks that always hold);
float constant folding is limited to exact IEEE operations."""
from __future__ import annotations

import math
import operator

from ..ir.core import Block, Function, Op
from ..ir.dialects import view_axis_bounds
from ..ir.types import ScalarType, f64, i1, i64
from .rewrite import rewrite_block

_FOLD = {"arith.add": operator.add, "arith.sub": operator.sub, "arith.mul": operator.mul}
_CMP = {"eq": operator.eq, "ne": operator.ne, "lt": operator.lt, "le": operator.le,
        "gt": operator.gt, "ge": operator.ge}
_EXACT_TYPES = (f64, i64, i1)  # Python arithmetic on these is the backends' arithmetic


def _const(v):
    op = v.owner
    if isinstance(op, Op) and op.name == "arith.const":
        return op.attrs["value"]
    return None


def _is(v, x) -> bool:
    c = _const(v)
    return c is not None and not isinstance(c, bool) and c == x


def _mk_const(new_ops, value, t):
    op = Op("arith.const", [], [t], {"value": value})
    new_ops.append(op)
    return op.result


def _simplify(op: Op, new_ops: list):
    rule = _RULES.get(op.name)
    if rule is None:
        return None
    t = op.results[0].type if op.results else None
    return rule(op, op.operands, [_const(a) for a in op.operands], t, new_ops)


def _folding(rule):
    """add, sub, mul: fold constant operands of exact types first (an int64 result that
    overflows stays unfolded), else the algebraic rule."""
    def fold(op, args, consts, t, new_ops):
        if t in _EXACT_TYPES and t != i1 and None not in consts:
            value = _FOLD[op.name](*consts)
            if t == i64 and not -2**63 <= value < 2**63:
                return None
            return [_mk_const(new_ops, value, t)]
        return rule(op, args, consts, t, new_ops)
    return fold


def _zero(v, t, negative: bool) -> bool:
    """v is the constant 0; for a float type, the zero of the sign asked for: x + (-0.0) and
    x - 0.0 are x for every x, but x + 0.0 and x - (-0.0) are +0.0 where x is -0.0."""
    c = _const(v)
    if c is None or isinstance(c, bool) or c != 0:
        return False
    if not t.is_float:
        return True
    return (math.copysign(1.0, c) < 0) == negative


def _add(op, args, consts, t, new_ops):
    if _zero(args[1], t, negative=True):
        return [args[0]]
    if _zero(args[0], t, negative=True):
        return [args[1]]
    return None


def _sub(op, args, consts, t, new_ops):
    if _zero(args[1], t, negative=False):
        return [args[0]]
    if not t.is_float:
        inner = args[0].owner  # (a + c) - c == a in wrapping integer arithmetic
        if isinstance(inner, Op) and inner.name == "arith.add" and inner.operands[1] is args[1]:
            return [inner.operands[0]]
    return None


def _mul(op, args, consts, t, new_ops):
    for a, b in (args, args[::-1]):
        if _is(b, 1):
            return [a]
        if _is(b, -1):
            neg = Op("arith.neg", [a], [t])
            new_ops.append(neg)
            return [neg.result]
        if _is(b, 0) and not t.is_float:
            return [b]
    return None


def _floordiv(op, args, consts, t, new_ops):
    return [args[0]] if not t.is_float and _is(args[1], 1) else None


def _div(op, args, consts, t, new_ops):
    return [args[0]] if _is(args[1], 1) else None


def _neg(op, args, consts, t, new_ops):
    inner = args[0].owner
    if isinstance(inner, Op) and inner.name == "arith.neg":
        return [inner.operands[0]]
    if consts[0] is not None and t in _EXACT_TYPES:
        return [_mk_const(new_ops, -consts[0], t)]
    return None


def _pow(op, args, consts, t, new_ops):
    if not t.is_float:
        return None
    if _is(args[1], 1):
        return [args[0]]
    if _is(args[1], 2):
        sq = Op("arith.mul", [args[0], args[0]], [t])
        new_ops.append(sq)
        return [sq.result]
    return None


def _cast(op, args, consts, t, new_ops):
    if args[0].type == t:
        return [args[0]]
    if consts[0] is not None and args[0].type in (i64, i1) and t in (f64, i64):
        value = float(consts[0]) if t == f64 else int(consts[0])
        if t == i64 or abs(consts[0]) < 2**53:
            return [_mk_const(new_ops, value, t)]
    return None


def _cmp(op, args, consts, t, new_ops):
    if None not in consts and args[0].type in _EXACT_TYPES:
        return [_mk_const(new_ops, _CMP[op.attrs["pred"]](*consts), i1)]
    if args[0] is args[1] and not args[0].type.is_float:
        return [_mk_const(new_ops, op.attrs["pred"] in ("eq", "le", "ge"), i1)]
    return None


def _not(op, args, consts, t, new_ops):
    if consts[0] is not None:
        return [_mk_const(new_ops, not consts[0], i1)]
    inner = args[0].owner
    if isinstance(inner, Op) and inner.name == "arith.not":
        return [inner.operands[0]]
    return None


def _and_or(op, args, consts, t, new_ops):
    absorbing = op.name == "arith.or"  # x or True == True; x and False == False
    for a, b in (args, args[::-1]):
        c = _const(b)
        if c is not None:
            return [b] if c == absorbing else [a]
    return None


def _choice(cond, a, b, t, new_ops):
    """`a if cond else b` without a select where one is not needed: a where both are a,
    cond (not cond) where a and b are the booleans True and False (False and True)."""
    if a is b:
        return a
    if t == i1 and {_const(a), _const(b)} == {True, False} \
            and isinstance(_const(a), bool) and isinstance(_const(b), bool):
        if _const(a):
            return cond
        neg = Op("arith.not", [cond], [i1])
        new_ops.append(neg)
        return neg.result
    return None


def _select(op, args, consts, t, new_ops):
    if consts[0] is not None:
        return [args[1] if consts[0] else args[2]]
    chosen = _choice(args[0], args[1], args[2], t, new_ops)
    return None if chosen is None else [chosen]


def _if(op, args, consts, t, new_ops):
    """A branch on a constant is the branch taken; a branch whose two sides only yield
    scalars computed before it (`continue` flags, conditional constants) is a choice of
    those values, which later rules and passes see through (arrays a branch chooses stay a
    branch: no backend selects arrays)."""
    if consts[0] is not None:
        return _splice(op.regions[0 if consts[0] else 1], new_ops)
    if len(op.regions) == 2 and all(len(r.ops) == 1 for r in op.regions) \
            and all(isinstance(r.type, ScalarType) for r in op.results):
        picked = []
        for r, a, b in zip(op.results, op.regions[0].ops[0].operands,
                           op.regions[1].ops[0].operands, strict=True):
            chosen = _choice(args[0], a, b, r.type, new_ops)
            if chosen is None:
                sel = Op("arith.select", [args[0], a, b], [r.type])
                new_ops.append(sel)
                chosen = sel.result
            picked.append(chosen)
        return picked
    return None


def _shape(op, args, consts, t, new_ops):
    """A fresh array's length along an axis is the extent it was allocated with, and a
    view's the length its bounds give: hi - lo for a unit-step slice, the length a slice
    with a step states (every view hpcad makes lies within its base, or is empty with
    hi = lo: frontend/arrays.py `slice_axis`; passes/index_ranges.py reads them so too).
    Loops over such arrays then have a range known before the array exists, from the
    values that made it: tape layout inside a parallel loop needs that."""
    made, axis = args[0].owner, op.attrs["axis"]
    if isinstance(made, Op) and made.name == "mem.alloc":
        return [made.operands[axis]]
    if not (isinstance(made, Op) and made.name == "mem.view"):
        return None
    parts = view_axis_bounds(made, axis)
    if parts is None or len(parts) == 1:
        return None if parts is None else [parts[0]]
    span = Op("arith.sub", [parts[1], parts[0]], [i64])
    new_ops.append(span)
    return [span.result]


def _assert(op, args, consts, t, new_ops):
    """A check that always holds costs nothing."""
    return [] if consts[0] is True else None


# op name -> rule(op, operands, their constant values or None, result type, new ops)
# -> replacement values, or None to keep the op
_RULES = {
    "arith.add": _folding(_add), "arith.sub": _folding(_sub), "arith.mul": _folding(_mul),
    "arith.floordiv": _floordiv,
    "arith.div": _div, "arith.neg": _neg, "arith.pow": _pow, "arith.cast": _cast,
    "arith.cmp": _cmp, "arith.not": _not, "arith.and": _and_or, "arith.or": _and_or,
    "arith.select": _select, "scf.if": _if, "mem.shape": _shape, "rt.assert": _assert,
}


def _splice(block: Block, new_ops: list):
    """Inline a region's ops; its yield's operands replace the op's results."""
    *body, term = block.ops
    new_ops.extend(body)
    return list(term.operands)


def simplify(fn: Function) -> bool:
    return rewrite_block(fn.body, _simplify)
