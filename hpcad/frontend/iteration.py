"""What a `for` loop iterates over, as numba's nopython mode allows: range(), arrays (the
elements of a 1-D array, the sub-array views a[k] of an n-D one; a slice iterates over its
view, an array expression over its value computed before the loop, as in NumPy),
enumerate() and zip() of those, nested; np.ndindex(shape) (index tuples), `a.flat` (the
elements of any array, C order) and tuples of numbers (`for kr in (0, 1)`). Each is a
`Source`: a length (i64, computed before the loop) and the item at position k (emitted in
the body), so every such loop lowers to the plain `scf.for` over k in [0, length) that
statements.stmt_for builds, and AD, parallel loops and the passes see nothing new. To add
an iterable: a Source class and a row in CALLS (or a case in `source`)."""
from __future__ import annotations

import ast
import builtins
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..ir.core import Value
from ..ir.dialects import int_const
from ..ir.types import ArrayType, ScalarType, i1, i64
from . import arrays

if TYPE_CHECKING:
    from .context import LoweringContext

Item = Value | tuple


class Source:
    """An iterable: its length, and its item at position k (0 <= k < length)."""

    def length(self, ctx: LoweringContext) -> Value:
        raise NotImplementedError

    def item(self, ctx: LoweringContext, k: Value) -> Item:
        raise NotImplementedError


@dataclass
class RangeSource(Source):
    """range(lb, ub, step): the item at k is lb + k * step."""
    lb: Value
    ub: Value
    step: Value
    node: ast.AST

    def length(self, ctx: LoweringContext) -> Value:
        """len(range(lb, ub, step)) = max(0, (ub - lb + step - sign(step)) // step)."""
        b = ctx.builder
        c = int_const(self.step)
        if c is None or c == 0:
            zero = ctx.const(0, i64)
            ctx.runtime_check(b.op1("arith.cmp", [self.step, zero], i1, {"pred": "ne"}),
                              "range() step must not be zero; give the loop a non-zero step",
                              self.node)
            up = b.op1("arith.cmp", [self.step, zero], i1, {"pred": "gt"})
            sign = b.op1("arith.select", [up, ctx.const(1, i64), ctx.const(-1, i64)], i64)
        else:
            sign = ctx.const(1 if c > 0 else -1, i64)
        span = b.op1("arith.sub", [self.ub, self.lb], i64)
        if c != 1:
            span = b.op1("arith.add", [span, b.op1("arith.sub", [self.step, sign], i64)], i64)
            span = b.op1("arith.floordiv", [span, self.step], i64)
        return b.op1("arith.max", [span, ctx.const(0, i64)], i64)

    def item(self, ctx: LoweringContext, k: Value) -> Item:
        offset = k if int_const(self.step) == 1 else \
            ctx.builder.op1("arith.mul", [k, self.step], i64)
        if int_const(self.lb) == 0:
            return offset
        return ctx.builder.op1("arith.add", [self.lb, offset], i64)


@dataclass
class ArraySource(Source):
    """An array: its elements (1-D) or the views a[k] along its first axis (n-D)."""
    array: Value

    def length(self, ctx: LoweringContext) -> Value:
        return ctx.builder.op1("mem.shape", [self.array], i64, {"axis": 0})

    def item(self, ctx: LoweringContext, k: Value) -> Item:
        t = self.array.type
        assert isinstance(t, ArrayType)
        if t.ndim == 1:
            return ctx.builder.op1("mem.load", [self.array, k], t.dtype)
        bounds: list[Value] = []
        for axis in range(1, t.ndim):
            bounds += [ctx.const(0, i64),
                       ctx.builder.op1("mem.shape", [self.array], i64, {"axis": axis})]
        row = ArrayType(t.dtype, t.ndim - 1, t.layout)
        return ctx.builder.op1("mem.view", [self.array, k] + bounds, row,
                               {"dims": "i" + "s" * (t.ndim - 1)})


@dataclass
class StridedSource(Source):
    """A 1-D slice with a step (a[::2]): its elements, read from the base array in the loop
    (as a NumPy view is read: what the body writes into the base, later items see)."""
    expr: arrays.ArrayExpr

    def length(self, ctx: LoweringContext) -> Value:
        return self.expr.extents(ctx)[0]

    def item(self, ctx: LoweringContext, k: Value) -> Item:
        return self.expr.element(ctx, [k])


@dataclass
class EnumerateSource(Source):
    """enumerate(inner, start): the item at k is (start + k, inner's item at k)."""
    inner: Source
    start: Value

    def length(self, ctx: LoweringContext) -> Value:
        return self.inner.length(ctx)

    def item(self, ctx: LoweringContext, k: Value) -> Item:
        count = k if int_const(self.start) == 0 else \
            ctx.builder.op1("arith.add", [self.start, k], i64)
        return (count, self.inner.item(ctx, k))


@dataclass
class ZipSource(Source):
    """zip(a, b, ...): as long as the shortest (with strict=True: all must be as long, a
    KernelAssertionError otherwise); the item at k is the tuple of their items at k."""
    sources: list[Source]
    strict: bool
    node: ast.AST

    def length(self, ctx: LoweringContext) -> Value:
        lengths = [s.length(ctx) for s in self.sources]
        shortest = lengths[0]
        for n in lengths[1:]:
            if self.strict:
                same = ctx.builder.op1("arith.cmp", [shortest, n], i1, {"pred": "eq"})
                ctx.runtime_check(same, "zip(strict=True) of sequences of different "
                                        "lengths; make them equally long, or drop "
                                        "strict=True to stop at the shortest", self.node)
            shortest = ctx.builder.op1("arith.min", [shortest, n], i64)
        return shortest

    def item(self, ctx: LoweringContext, k: Value) -> Item:
        return tuple(s.item(ctx, k) for s in self.sources)


@dataclass
class NdindexSource(Source):
    """np.ndindex(shape): the index tuples of an array of that shape in C order, the item at
    k being k unravelled (its last index varies fastest)."""
    dims: list[Value]

    def length(self, ctx: LoweringContext) -> Value:
        n = ctx.const(1, i64)
        for d in self.dims:
            n = ctx.builder.op1("arith.mul", [n, d], i64)
        return n

    def item(self, ctx: LoweringContext, k: Value) -> Item:
        idx = []
        for d in reversed(self.dims[1:]):
            idx.append(ctx.builder.op1("arith.mod", [k, d], i64))
            k = ctx.builder.op1("arith.floordiv", [k, d], i64)
        return tuple([k, *idx[::-1]]) if self.dims else ()


@dataclass
class FlatSource(Source):
    """a.flat: the elements of an array of any rank in C order, read in the loop."""
    expr: arrays.ArrayExpr

    def length(self, ctx: LoweringContext) -> Value:
        return NdindexSource(self.expr.extents(ctx)).length(ctx)

    def item(self, ctx: LoweringContext, k: Value) -> Item:
        idx = NdindexSource(self.expr.extents(ctx)).item(ctx, k)
        assert isinstance(idx, tuple)
        return self.expr.element(ctx, list(idx))


@dataclass
class TupleSource(Source):
    """A tuple of numbers (or of tuples of numbers, all of one structure and item types):
    `for kr in (0, 1)`, as numba iterates over a homogeneous tuple. Its items are evaluated
    once, before the loop, as Python evaluates the tuple; the item at k is chosen from them
    by comparing k with each position."""
    items: tuple

    def length(self, ctx: LoweringContext) -> Value:
        return ctx.const(len(self.items), i64)

    def item(self, ctx: LoweringContext, k: Value) -> Item:
        return _choose(ctx, k, list(self.items))


def _choose(ctx: LoweringContext, k: Value, items: list) -> Item:
    """items[k], for items of one structure (numbers, or tuples of them)."""
    if isinstance(items[0], tuple):
        return tuple(_choose(ctx, k, [it[j] for it in items]) for j in range(len(items[0])))
    chosen = items[-1]
    for pos in range(len(items) - 2, -1, -1):
        here = ctx.builder.op1("arith.cmp", [k, ctx.const(pos, i64)], i1, {"pred": "eq"})
        chosen = ctx.builder.op1("arith.select", [here, items[pos], chosen], items[pos].type)
    return chosen


def _tuple_shape(item) -> object:
    """The structure and item types of a tuple's item (None where it holds an array or an
    object that is not a number)."""
    if isinstance(item, tuple):
        shapes = [_tuple_shape(i) for i in item]
        return None if any(s is None for s in shapes) else tuple(shapes)
    if isinstance(item, Value) and isinstance(item.type, ScalarType):
        return item.type
    return None


def _type_words(shape) -> str:
    """A tuple item's structure and types in NumPy's words: float64, (int64, float64)."""
    if isinstance(shape, tuple):
        return "(" + ", ".join(_type_words(s) for s in shape) + ")"
    return str(shape.np_dtype)


def _tuple_source(ctx: LoweringContext, node: ast.AST, items: tuple) -> Source:
    shapes = [_tuple_shape(i) for i in items]
    if not items or any(s is None for s in shapes):
        ctx.unsupported(node, "a `for` loop over a tuple that is empty or holds arrays",
                        "loop over range() and index the arrays, or put the numbers in a "
                        "tuple")
    if any(s != shapes[0] for s in shapes):
        ctx.unsupported(node, "a `for` loop over a tuple whose items differ in type "
                              f"({', '.join(_type_words(s) for s in shapes)})",
                        "write the items with one type (all integers, or all floats: "
                        "`(0.0, 1.0)`), as numba requires")
    return TupleSource(items)


def _ndindex(ctx: LoweringContext, node: ast.Call) -> Source:
    """np.ndindex(shape) or np.ndindex(n0, n1, ...)."""
    if node.keywords or not node.args:
        ctx.unsupported(node, "this call of np.ndindex()",
                        "write np.ndindex(a.shape) or np.ndindex(n, m)")
    values = [ctx.expr(a) for a in node.args]
    if len(values) == 1 and isinstance(values[0], tuple):
        values = list(values[0])
    dims = []
    for v in values:
        v = ctx.scalar(v, node)
        if not (isinstance(v.type, ScalarType) and v.type.is_int):
            ctx.unsupported(node, "np.ndindex of lengths that are not integers")
        dims.append(ctx.coerce(v, i64))
    return NdindexSource(dims)


def _range(ctx: LoweringContext, node: ast.Call) -> Source:
    if node.keywords or not 1 <= len(node.args) <= 3:
        ctx.unsupported(node, "range() with keywords or more than 3 arguments")
    lb, ub, step = ctx.range_bounds(node)
    return RangeSource(lb, ub, step, node)


def _enumerate(ctx: LoweringContext, node: ast.Call) -> Source:
    if node.keywords or not 1 <= len(node.args) <= 2:
        ctx.unsupported(node, "this call of enumerate()",
                        "write enumerate(a) or enumerate(a, start), start by position "
                        "(as numba takes it)")
    start = ctx.coerce_index(ctx.expr(node.args[1]), node) if len(node.args) == 2 \
        else ctx.const(0, i64)
    return EnumerateSource(source(ctx, node.args[0]), start)


def _zip(ctx: LoweringContext, node: ast.Call) -> Source:
    strict = False
    for kw in node.keywords:
        value = ctx.static_value(kw.value) if not isinstance(kw.value, ast.Constant) \
            else kw.value.value
        if kw.arg != "strict" or not isinstance(value, bool):
            ctx.unsupported(node, f"zip() with the keyword `{kw.arg}=`",
                            "zip takes the sequences and at most strict=True or False")
        strict = value
    if not node.args:
        ctx.unsupported(node, "zip() of nothing", "zip at least one array or range()")
    return ZipSource([source(ctx, a) for a in node.args], strict, node)


# the built-ins a loop may iterate over -> how to read their call
CALLS = {builtins.range: _range, builtins.enumerate: _enumerate, builtins.zip: _zip,
         np.ndindex: _ndindex}


def source(ctx: LoweringContext, node: ast.AST) -> Source:
    """The Source of a loop's iterable (the arrays it reads evaluated here, once)."""
    if isinstance(node, ast.Call):
        read = CALLS.get(ctx.static_value(node.func))
        if read is not None:
            return read(ctx, node)
    if isinstance(node, ast.Attribute) and node.attr == "flat":   # for v in a.flat
        base = ctx.expr(node.value)
        if arrays.is_array(base):
            return FlatSource(arrays.as_expr(ctx, base, node))
    value = ctx.expr(node)
    if isinstance(value, arrays.ArrayExpr):
        if isinstance(value, arrays.Sliced) and not value.plain_view:
            if value.ndim == 1:
                return StridedSource(value)
            if not value.viewable:
                ctx.unsupported(node, "a `for` loop over the rows of a slice with np.newaxis",
                                "loop over range() and index the array")
        value = arrays.bind(ctx, value, node)   # a slice's view, an expression's new array
    if isinstance(value, Value) and isinstance(value.type, ArrayType):
        return ArraySource(value)
    if isinstance(value, tuple):
        return _tuple_source(ctx, node, value)
    what = "a number" if isinstance(value, Value) and isinstance(value.type, ScalarType) \
        else "this object"
    ctx.unsupported(node, f"a `for` loop over {what}",
                    "loop over range(), an array, enumerate() or zip() of those")
