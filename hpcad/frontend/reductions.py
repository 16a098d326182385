"""Reductions in kernels: np.sum, np.prod, np.min/np.max (np.amin/np.amax), np.argmin/
np.argmax, np.mean (np.average without weights), np.var/np.std (with ddof=), np.any/np.all
and np.linalg.norm, as functions and as array methods,
over arrays and lazy array expressions (nothing is allocated for `np.sum(x * y)`). A
whole-array reduction is one loop nest carrying its accumulator, of reduction kind
add/mul/min/max so that a parallel=True kernel runs it as a parallel reduction; with
`axis=` the result is a fresh array, each element reduced by an inner loop. min/max follow
numba: a NaN anywhere is the answer; argmin/argmax give the first occurrence (the first
NaN, if any)."""
from __future__ import annotations

import ast
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..ir.core import Value
from ..ir.types import ScalarType, f64, i1, i64
from . import library
from .arrays import as_array_value, as_expr, loop_nest
from .construct import alloc, int_literal, keywords, normal_axis

if TYPE_CHECKING:
    from collections.abc import Callable

    from .context import LoweringContext


@dataclass(frozen=True)
class Reducer:
    """How one reduction combines elements: its IR op and parallel reduction kind, and the
    accumulator's start (None: the identity of `extreme`, +-inf or the integer limit)."""
    kind: str               # add | mul | min | max
    start: float | None     # the initial accumulator
    widen: bool             # integers and bools accumulate in int64 (numba's sum/prod)


REDUCERS = {
    "sum": Reducer("add", 0, True),
    "prod": Reducer("mul", 1, True),
    "min": Reducer("min", None, False),
    "max": Reducer("max", None, False),
}


# -- what is reduced: an array or an array expression ------------------------------------------
def source(ctx: LoweringContext, v, node):
    """The ArrayExpr of an array operand (arrays.as_expr), or an error naming the call."""
    expr = as_expr(ctx, v, node)
    if expr is None:
        ctx.unsupported(node, "reducing something that is not an array",
                        "pass an array or an array expression")
    return expr


def flat_element(ctx: LoweringContext, expr, extents: list[Value], flat: Value) -> Value:
    """Element number `flat` (C order) of expr."""
    idx = []
    for ext in reversed(extents[1:]):
        idx.append(ctx.builder.op1("arith.mod", [flat, ext], i64))
        flat = ctx.builder.op1("arith.floordiv", [flat, ext], i64)
    idx.append(flat)
    return expr.element(ctx, idx[::-1])


def element_count(ctx: LoweringContext, extents: list[Value]) -> Value:
    n = extents[0]
    for ext in extents[1:]:
        n = ctx.builder.op1("arith.mul", [n, ext], i64)
    return n


def acc_type(dtype: ScalarType, r: Reducer) -> ScalarType:
    return i64 if r.widen and not dtype.is_float else dtype


def start_value(ctx: LoweringContext, r: Reducer, t: ScalarType) -> Value:
    if r.start is not None:
        return ctx.const(r.start, t)
    if t.is_float:
        return ctx.const(math.inf if r.kind == "min" else -math.inf, t)
    if t.is_bool:
        return ctx.const(r.kind == "min", t)
    info = np.iinfo(t.np_dtype)
    return ctx.const(info.max if r.kind == "min" else info.min, t)


def is_nan(ctx: LoweringContext, v: Value) -> Value:
    return ctx.builder.op1("arith.cmp", [v, v], i1, {"pred": "ne"})


def combine(ctx: LoweringContext, r: Reducer, acc: Value, v: Value) -> Value:
    """acc (op) v; for min/max the accumulator comes first, so on a tie it stays (the first
    occurrence wins, as passes/extrema.py's derivative rule assumes)."""
    return ctx.builder.op1(f"arith.{r.kind}", [acc, ctx.coerce(v, acc.type)], acc.type)


# -- whole-array reductions -------------------------------------------------------------------
def reduce_all(ctx: LoweringContext, expr, r: Reducer, node) -> Value:
    """One accumulator over every element. min/max of floats also count NaNs (an add
    reduction beside it), the result is NaN when there is one; min/max over several axes
    run one flat loop, whose element passes/extrema.py can recompute from the loop
    variable in a parallel kernel."""
    t = acc_type(expr.dtype, r)
    extents = expr.extents(ctx)
    nan_check = r.kind in ("min", "max") and t.is_float
    flat = r.kind in ("min", "max") and len(extents) > 1
    space = [element_count(ctx, extents)] if flat else extents
    if r.kind in ("min", "max"):
        check_nonempty(ctx, element_count(ctx, extents), r.kind, node)

    def body(ivs, accs):
        v = flat_element(ctx, expr, extents, ivs[0]) if flat else expr.element(ctx, ivs)
        v = ctx.coerce(v, t)
        out = [combine(ctx, r, accs[0], v)]
        if nan_check:
            out.append(ctx.builder.op1("arith.add", [accs[1], ctx.coerce(is_nan(ctx, v), i64)],
                                       i64))
        return out
    inits = [start_value(ctx, r, t)] + ([ctx.const(0, i64)] if nan_check else [])
    # a product stays serial: hpcad differentiates parallel sums, min and max only
    kinds = None if r.kind == "mul" else [r.kind] + (["add"] if nan_check else [])
    results = loop_nest(ctx, space, body, node, carried=inits, kinds=kinds)
    if not nan_check:
        return results[0]
    seen = ctx.builder.op1("arith.cmp", [results[1], ctx.const(0, i64)], i1, {"pred": "gt"})
    return ctx.builder.op1("arith.select", [seen, ctx.const(math.nan, t), results[0]], t)


def arg_extreme(ctx: LoweringContext, expr, kind: str, node) -> Value:
    """np.argmin/np.argmax over the flattened array: the extreme m (a parallel reduction),
    then the first element number where it is attained (a min reduction over numbers);
    when m is NaN, the first NaN's."""
    m = reduce_all(ctx, expr, REDUCERS[kind], node)
    extents = expr.extents(ctx)
    none = ctx.const(2 ** 62, i64)
    nan = is_nan(ctx, m) if m.type.is_float else None

    def body(ivs, accs):
        v = flat_element(ctx, expr, extents, ivs[0])
        hit = ctx.builder.op1("arith.cmp", [ctx.coerce(v, m.type), m], i1, {"pred": "eq"})
        if nan is not None:
            both = ctx.builder.op1("arith.and", [nan, is_nan(ctx, v)], i1)
            hit = ctx.builder.op1("arith.or", [hit, both], i1)
        number = ctx.builder.op1("arith.select", [hit, ivs[0], none], i64)
        return [ctx.builder.op1("arith.min", [accs[0], number], i64)]
    first, = loop_nest(ctx, [element_count(ctx, extents)], body, node, carried=[none],
                       kinds=["min"])
    return first


def check_nonempty(ctx: LoweringContext, length: Value, kind: str, node) -> None:
    """min/max of no elements: NumPy and numba raise (there is no identity to return)."""
    some = ctx.builder.op1("arith.cmp", [length, ctx.const(0, i64)], i1, {"pred": "gt"})
    ctx.runtime_check(some, f"a {kind}imum (or arg{kind}) of an empty array", node)


# -- reductions along an axis: a fresh array --------------------------------------------------
def along_axis(ctx: LoweringContext, expr, axis: int, dtype: ScalarType, node,
               step: Callable, inits: list[Value], finish: Callable) -> Value:
    """out[rest] = finish(accumulators after step(v, accs) over expr[..., k, ...] along
    axis); the outer nest over the result's elements is parallel in a parallel kernel, the
    inner one along axis serial."""
    extents = expr.extents(ctx)
    rest = extents[:axis] + extents[axis + 1:]
    out = alloc(ctx, rest, dtype)

    def element(ivs, accs):
        def inner(k, acc):
            return step(expr.element(ctx, ivs[:axis] + k + ivs[axis:]), k[0], acc)
        final = loop_nest(ctx, [extents[axis]], inner, node, inits)
        ctx.builder.op("mem.store", [ctx.coerce(finish(final), dtype), out] + ivs)
        return []
    loop_nest(ctx, rest, element, node)
    return out


def reduce_axis(ctx: LoweringContext, expr, r: Reducer, axis: int, node) -> Value:
    t = acc_type(expr.dtype, r)
    nan_check = r.kind in ("min", "max") and t.is_float
    if r.kind in ("min", "max"):
        check_nonempty(ctx, expr.extents(ctx)[axis], r.kind, node)

    def step(v, k, accs):
        v = ctx.coerce(v, t)
        out = [combine(ctx, r, accs[0], v)]
        if nan_check:   # the first NaN stays (a comparison with NaN is false)
            out[0] = ctx.builder.op1("arith.select", [is_nan(ctx, v), v, out[0]], t)
            keep = is_nan(ctx, accs[0])
            out[0] = ctx.builder.op1("arith.select", [keep, accs[0], out[0]], t)
        return out
    return along_axis(ctx, expr, axis, t, node, step, [start_value(ctx, r, t)],
                      lambda accs: accs[0])


def arg_axis(ctx: LoweringContext, expr, kind: str, axis: int, node) -> Value:
    """argmin/argmax along axis: the first index of the extreme (of the first NaN)."""
    r = REDUCERS[kind]
    t = expr.dtype
    pred = "lt" if kind == "min" else "gt"
    check_nonempty(ctx, expr.extents(ctx)[axis], kind, node)

    def step(v, k, accs):
        best, where = accs
        take = ctx.builder.op1("arith.cmp", [v, best], i1, {"pred": pred})
        if t.is_float:
            fresh_nan = ctx.builder.op1("arith.and", [is_nan(ctx, v), ctx.builder.op1(
                "arith.not", [is_nan(ctx, best)], i1)], i1)
            take = ctx.builder.op1("arith.or", [take, fresh_nan], i1)
        return [ctx.builder.op1("arith.select", [take, v, best], t),
                ctx.builder.op1("arith.select", [take, k, where], i64)]
    return along_axis(ctx, expr, axis, i64, node, step,
                      [start_value(ctx, r, t), ctx.const(0, i64)], lambda accs: accs[1])


# -- the calls ---------------------------------------------------------------------------------
def parse_axis(ctx: LoweringContext, node, given: dict, ndim: int) -> int | None:
    """The axis= of a reduction (None: all), normalized; a tuple covering every axis is
    None too."""
    axis_node = given.get("axis")
    if axis_node is None or (isinstance(axis_node, ast.Constant) and axis_node.value is None):
        return None
    axis = int_literal(axis_node)
    if isinstance(axis, tuple):
        if sorted(a % ndim for a in axis) == list(range(ndim)) and len(axis) == ndim:
            return None
        if len(axis) == 1:
            axis = axis[0]
    if not isinstance(axis, int):
        ctx.unsupported(axis_node, "an axis= that is not an integer literal (or a tuple of "
                                   "all axes)", "reduce one axis at a time")
    if ndim == 1 and normal_axis(ctx, axis, 1, node) == 0:
        return None
    return normal_axis(ctx, axis, ndim, node)


def operands(ctx: LoweringContext, node, what: str, params=("axis",), method=False,
             keyword_only: tuple[str, ...] = ()) -> dict:
    """{parameter: node} of np.<what>(a, axis) (`a` too) or of the method a.<what>(axis)."""
    given = dict(keywords(ctx, node, params + keyword_only + (() if method else ("a",)),
                          what))
    args = list(node.args)
    if "a" not in given and not method:
        if not args:
            ctx.unsupported(node, f"{what} without an array")
        given["a"] = args.pop(0)
    if len(args) > len(params):
        ctx.unsupported(node, f"{what} with {len(node.args)} positional arguments")
    given.update(zip(params, args))
    return given


def lower_reduction(ctx: LoweringContext, name: str, expr, given: dict, node) -> Value:
    axis = parse_axis(ctx, node, given, expr.ndim)
    if name in ("var", "std"):
        return variance(ctx, expr, axis, ddof(ctx, given.get("ddof")), name == "std", node)
    if name in ("argmin", "argmax"):
        kind = name[3:]
        return arg_extreme(ctx, expr, kind, node) if axis is None else \
            arg_axis(ctx, expr, kind, axis, node)
    if name in ("mean", "average"):
        return mean(ctx, expr, axis, node)
    if name in ("any", "all"):
        return any_all(ctx, name, expr, axis, node)
    r = REDUCERS[name]
    return reduce_all(ctx, expr, r, node) if axis is None else \
        reduce_axis(ctx, expr, r, axis, node)


def any_all(ctx: LoweringContext, name: str, expr, axis: int | None, node) -> Value:
    """np.any/np.all of every element (a NaN is true, no element: False/True), as numba's:
    the count of true elements, compared with 0 or with the element count."""
    if axis is not None:
        ctx.unsupported(node, f"np.{name} with axis=", f"loop over the other axis and call "
                                                       f"np.{name} on each slice")
    count = reduce_all(ctx, _Mapped(expr, i1, lambda v: v), REDUCERS["sum"], node)
    total = ctx.const(0, i64) if name == "any" else element_count(ctx, expr.extents(ctx))
    return ctx.builder.op1("arith.cmp", [count, total], i1,
                           {"pred": "gt" if name == "any" else "eq"})


def mean(ctx: LoweringContext, expr, axis: int | None, node) -> Value:
    t = expr.dtype if expr.dtype.is_float else f64
    b = ctx.builder
    if axis is None:
        total = ctx.coerce(reduce_all(ctx, expr, REDUCERS["sum"], node), t)
        count = element_count(ctx, expr.extents(ctx))
        return b.op1("arith.div", [total, ctx.coerce(count, t)], t)
    count = ctx.coerce(expr.extents(ctx)[axis], t)

    def step(v, k, accs):
        return [b.op1("arith.add", [accs[0], ctx.coerce(v, t)], t)]
    return along_axis(ctx, expr, axis, t, node, step, [ctx.const(0, t)],
                      lambda accs: b.op1("arith.div", [accs[0], count], t))


def ddof(ctx: LoweringContext, node) -> int:
    """The ddof= of np.var/np.std: an integer literal (0 when not given)."""
    if node is None:
        return 0
    value = int_literal(node)
    if not isinstance(value, int) or value < 0:
        ctx.unsupported(node, "a ddof= that is not a non-negative integer literal",
                        "write the number, e.g. ddof=1")
    return value


def variance(ctx: LoweringContext, expr, axis: int | None, dd: int, root: bool,
             node) -> Value:
    """np.var (np.std where root) as NumPy computes it: the mean first, then the sum of
    squared deviations from it, divided by the count less ddof (nan where that is not
    positive, as NumPy's with its warning)."""
    t = expr.dtype if expr.dtype.is_float else f64
    b = ctx.builder
    m = mean(ctx, expr, axis, node)
    if axis is None:
        count = element_count(ctx, expr.extents(ctx))
        deviations = _Mapped(expr, t, lambda v: _square(ctx, b.op1("arith.sub", [v, m], t)))
        total = reduce_all(ctx, deviations, REDUCERS["sum"], node)
        return _scaled(ctx, total, count, dd, root, t)
    count = expr.extents(ctx)[axis]
    deviations = _Deviations(expr, as_expr(ctx, m, node), axis, t)

    def step(v, k, accs):
        return [b.op1("arith.add", [accs[0], v], t)]
    return along_axis(ctx, deviations, axis, t, node, step, [ctx.const(0, t)],
                      lambda accs: _scaled(ctx, accs[0], count, dd, root, t))


def _square(ctx: LoweringContext, v: Value) -> Value:
    return ctx.builder.op1("arith.mul", [v, v], v.type)


def _scaled(ctx: LoweringContext, total: Value, count: Value, dd: int, root: bool,
            t: ScalarType) -> Value:
    """total / (count - dd) where count > dd, else nan; its square root where root."""
    b = ctx.builder
    n = b.op1("arith.sub", [count, ctx.const(dd, i64)], i64)
    positive = b.op1("arith.cmp", [n, ctx.const(0, i64)], i1, {"pred": "gt"})
    v = b.op1("arith.div", [total, ctx.coerce(n, t)], t)
    v = b.op1("arith.select", [positive, v, ctx.const(math.nan, t)], t)
    return b.op1("math.sqrt", [v], t) if root else v


class _Deviations:
    """(expr - m)**2 where m holds expr's mean along axis (m's index: expr's without it)."""

    def __init__(self, expr, m, axis: int, t: ScalarType):
        self.expr, self.m, self.axis, self.dtype, self.ndim = expr, m, axis, t, expr.ndim

    def extents(self, ctx: LoweringContext) -> list[Value]:
        return self.expr.extents(ctx)

    def element(self, ctx: LoweringContext, idx: list[Value]) -> Value:
        v = ctx.coerce(self.expr.element(ctx, idx), self.dtype)
        mean_here = self.m.element(ctx, idx[:self.axis] + idx[self.axis + 1:])
        return _square(ctx, ctx.builder.op1("arith.sub", [v, mean_here], self.dtype))


def call_reduction(ctx: LoweringContext, obj, node) -> Value:
    name = FUNCTIONS[obj]
    given = operands(ctx, node, f"np.{obj.__name__}", PARAMETERS.get(name, ("axis",)),
                     keyword_only=KEYWORD_ONLY.get(name, ()))
    if given.get("weights") is not None:
        ctx.unsupported(given["weights"], "np.average with weights=",
                        "compute np.sum(a * w) / np.sum(w)")
    return lower_reduction(ctx, name, source(ctx, ctx.expr(given["a"]), node), given, node)


def method_reduction(ctx: LoweringContext, arr, node) -> Value:
    name = node.func.attr
    given = operands(ctx, node, f"a.{name}()", method=True,
                     keyword_only=KEYWORD_ONLY.get(METHOD_NAMES[name], ()))
    return lower_reduction(ctx, METHOD_NAMES[name], source(ctx, arr, node), given, node)


# -- np.linalg.norm ----------------------------------------------------------------------------
def call_norm(ctx: LoweringContext, obj, node) -> Value:
    """np.linalg.norm(x): the 2-norm of a vector, the Frobenius norm of a matrix;
    ord=1 and ord=np.inf of vectors; ord=1, -1, np.inf, -np.inf of matrices (the largest or
    smallest column or row sum of |x|: library.matrix_norm_sums)."""
    given = operands(ctx, node, "np.linalg.norm", ("ord", "axis"))
    if "axis" in given:
        ctx.unsupported(given["axis"], "np.linalg.norm with axis=",
                        "compute np.sqrt(np.sum(x * x, axis=k))")
    value = ctx.expr(given["a"])
    expr = source(ctx, value, node)
    order = norm_order(ctx, given.get("ord"), expr.ndim)
    b = ctx.builder
    t = expr.dtype if expr.dtype.is_float else f64
    if expr.ndim > 2:
        ctx.unsupported(node, f"np.linalg.norm of a {expr.ndim}-D array")
    if isinstance(order, tuple):   # a matrix's largest or smallest row or column sum
        matrix = as_array_value(ctx, value, node)
        by_rows, largest = (ctx.const(flag, i1) for flag in order)
        return library.inline(ctx, library.matrix_norm_sums, [matrix, by_rows, largest],
                              node)[0]
    if order == "inf":
        return reduce_all(ctx, _Mapped(expr, t, lambda v: b.op1("math.abs", [v], t)),
                          REDUCERS["max"], node)
    if order == 1:
        return reduce_all(ctx, _Mapped(expr, t, lambda v: b.op1("math.abs", [v], t)),
                          REDUCERS["sum"], node)
    squares = _Mapped(expr, t, lambda v: b.op1("arith.mul", [v, v], t))
    return b.op1("math.sqrt", [reduce_all(ctx, squares, REDUCERS["sum"], node)], t)


def norm_order(ctx: LoweringContext, node, ndim: int):
    """2 (also the Frobenius norm of a matrix), 1 or "inf"; for a matrix's ord=1, -1, np.inf
    or -np.inf, its _MATRIX_SUMS row; an error for other orders."""
    if node is None or (getattr(node, "value", 0) is None):
        return 2
    value = _order_value(ctx, node)
    if value == "fro" and ndim == 2:
        return 2
    if ndim == 2 and not isinstance(value, str) and value in _MATRIX_SUMS:
        return _MATRIX_SUMS[value]
    if ndim == 1 and value in (1, 2):
        return value
    if ndim == 1 and value == math.inf:
        return "inf"
    ctx.unsupported(node, f"np.linalg.norm with ord={ast.unparse(node)} of a {ndim}-D array",
                    "vectors take ord=None, 1, 2 or np.inf, matrices ord=None, 'fro', 1, -1, "
                    "np.inf or -np.inf (ord=2, -2 and 'nuc' need singular values, which "
                    "kernels do not compute)")


def _order_value(ctx: LoweringContext, node):
    """The value of an ord= written in the call or known when compiling (`-np.inf` too),
    else None."""
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        inner = _order_value(ctx, node.operand)
        return -inner if isinstance(inner, (int, float)) and not isinstance(inner, bool) \
            else None
    value = ctx.static_value(node)
    if value is None:
        lit = int_literal(node)
        value = lit if lit is not None else getattr(node, "value", None)
    return value


# a matrix's ord= -> (summing rows, the largest sum): numba's np.linalg.norm
_MATRIX_SUMS = {1: (False, True), -1: (False, False), math.inf: (True, True),
                -math.inf: (True, False)}


class _Mapped:
    """expr with f applied to each element (converted to t first)."""

    def __init__(self, expr, t: ScalarType, f):
        self.expr, self.dtype, self.ndim, self.f = expr, t, expr.ndim, f

    def extents(self, ctx: LoweringContext) -> list[Value]:
        return self.expr.extents(ctx)

    def element(self, ctx: LoweringContext, idx: list[Value]) -> Value:
        return self.f(ctx.coerce(self.expr.element(ctx, idx), self.dtype))


FUNCTIONS = {np.sum: "sum", np.prod: "prod", np.min: "min", np.max: "max", np.amin: "min",
             np.amax: "max", np.argmin: "argmin", np.argmax: "argmax", np.mean: "mean",
             np.any: "any", np.all: "all", np.average: "average", np.var: "var", np.std: "std"}
METHOD_NAMES = {"sum": "sum", "prod": "prod", "min": "min", "max": "max", "mean": "mean",
                "argmin": "argmin", "argmax": "argmax", "any": "any", "all": "all",
                "var": "var", "std": "std"}
# the parameters a reduction takes besides the array, positional in this order (the others:
# axis only), and those it takes as keywords only (NumPy's dtype= and out= come between)
PARAMETERS = {"average": ("axis", "weights")}
KEYWORD_ONLY = {"var": ("ddof",), "std": ("ddof",)}
# function -> the rule lowering a call of it (expressions.INTRINSICS)
INTRINSICS = [(FUNCTIONS, call_reduction), ({np.linalg.norm}, call_norm)]
# array method -> its rule(ctx, array or array expression, call node)
METHODS = {name: method_reduction for name in METHOD_NAMES}
