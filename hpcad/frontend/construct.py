"""Array construction and views in kernels: np.empty/zeros/ones/full and their `*_like`
forms, np.arange, np.linspace, copies (np.copy, a.copy(), a.flatten()), reshaped views
(a.reshape, a.ravel(): one `mem.reshape` of a C-contiguous base), joins (np.concatenate,
np.stack), np.array of numbers written out, np.cumsum and np.triu/np.tril (lazy, as
np.flip). Everything but the views and the lazy ones allocates a fresh C-contiguous array
(`mem.alloc`) and fills it with a loop nest of loads and stores (np.array: a store per
number), so derivatives flow through them with no rule of their own."""
from __future__ import annotations

import ast
from typing import TYPE_CHECKING

import numpy as np

from ..ir.core import Op, Value
from ..ir.types import SCALARS, ArrayType, ScalarType, f64, i1, i64, promote, scalar_from_dtype
from . import intrinsics as intr
from .arrays import (
    ArrayExpr,
    Dim,
    Flipped,
    Map,
    SameShape,
    Sliced,
    affine,
    as_array_value,
    as_expr,
    const_of,
    converted,
    is_array,
    loop_nest,
    materialize,
    reversed_slice,
    view_of,
    when,
)
from .linalg import memory_transposed
from .words import REQUESTS

if TYPE_CHECKING:
    from .context import LoweringContext

ALLOC = {np.zeros: "zeros", np.empty: "empty", np.ones: "ones", np.full: "full"}
ALLOC_LIKE = {np.zeros_like: "zeros", np.empty_like: "empty", np.ones_like: "ones",
              np.full_like: "full"}


# -- shared pieces: arrays, dtypes, shapes --------------------------------------------------
def alloc(ctx: LoweringContext, dims: list[Value], dtype: ScalarType,
          fill: str = "empty") -> Value:
    return ctx.builder.op1("mem.alloc", dims, ArrayType(dtype, len(dims), "C"), {"fill": fill})


def copy_into(ctx: LoweringContext, src: ArrayExpr, dst: Value, node) -> None:
    """dst[i] = src[i] for every element i of src."""
    def body(ivs, accs):
        v = src.element(ctx, ivs)
        ctx.builder.op("mem.store", [ctx.coerce(v, dst.type.dtype), dst] + ivs)
        return []
    loop_nest(ctx, src.extents(ctx), body, node)


def fill_array(ctx: LoweringContext, arr: Value, dims: list[Value], value: Value,
               node) -> None:
    """A loop nest storing `value` into every element of a fresh array."""
    def body(ivs, accs):
        ctx.builder.op("mem.store", [value, arr] + ivs)
        return []
    loop_nest(ctx, dims, body, node)


def dtype_of(ctx: LoweringContext, node) -> ScalarType:
    """The dtype a `dtype=` argument names: np.float64, float, int, bool, `a.dtype`, or a
    string NumPy reads as one (`"int32"`, `"f8"`), as numba takes it."""
    obj = ctx.static_value(node)
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        obj = node.value
    if isinstance(node, ast.Attribute) and node.attr == "RequestType" and \
            getattr(ctx.static_value(node.value), "__name__", None) == "numba_mpi":
        ctx.unsupported(node, "an array of MPI requests (numba_mpi.RequestType)", REQUESTS)
    if obj is None:
        v = ctx.expr(node)
        obj = None if isinstance(v, (Value, tuple)) else getattr(v, "obj", None)
    if obj is None:
        ctx.unsupported(node, "a dtype that is not a NumPy type, float/int/bool or a.dtype")
    named = intr.numba_scalar(obj)
    if named is not None:
        return SCALARS[named]
    try:
        return scalar_from_dtype(obj)
    except (TypeError, ValueError):
        ctx.unsupported(node, f"the dtype {obj!r}", "use float64, float32, int64, int32 or "
                                                  "bool")


def int_literal(node) -> int | tuple | None:
    """The value of a literal int (or tuple of ints: axis=(0, 1)) in the source, else None."""
    try:
        value = ast.literal_eval(node)
    except ValueError:
        return None
    ok = isinstance(value, int) or (isinstance(value, tuple)
                                    and all(isinstance(k, int) for k in value))
    return value if ok and not isinstance(value, bool) else None


def shape_dims(ctx: LoweringContext, node) -> list[Value]:
    """The i64 extents a shape argument gives: an int, a tuple of ints or `a.shape`."""
    v = ctx.expr(node)
    dims = list(v) if isinstance(v, tuple) else [v]
    return [ctx.coerce_index(ctx.scalar(d, node), node) for d in dims]


def keywords(ctx: LoweringContext, node, allowed: tuple[str, ...], what: str) -> dict:
    """The call's keyword arguments by name; an error for one `what` does not take."""
    out = {}
    for kw in node.keywords:
        if kw.arg not in allowed:
            hint = {"keepdims": "numba does not take keepdims either; index the result "
                                "instead, e.g. s[:, None] is not needed in loops",
                    "order": "only C order is supported"}.get(kw.arg or "", "")
            ctx.unsupported(kw.value, f"the keyword `{kw.arg}=` of {what}", hint)
        out[kw.arg] = kw.value
    return out


def array_arg(ctx: LoweringContext, node, what: str) -> ArrayExpr:
    """The array (or array expression) argument `node` of a call."""
    v = as_expr(ctx, ctx.expr(node), node)
    if v is None:
        ctx.unsupported(node, f"{what} of something that is not an array")
    return v


# -- np.empty / zeros / ones / full and *_like ------------------------------------------------
def call_alloc(ctx: LoweringContext, obj, node) -> Value:
    like = obj in ALLOC_LIKE
    fill = (ALLOC_LIKE if like else ALLOC)[obj]
    name = obj.__name__
    params = ("shape", "fill_value", "dtype") if fill == "full" else ("shape", "dtype")
    if len(node.args) > len(params) or not node.args:
        ctx.unsupported(node, f"np.{name} with {len(node.args)} positional arguments")
    given = dict(zip(params, node.args))
    given.update(keywords(ctx, node, params, f"np.{name}"))
    if like:
        first = array_arg(ctx, given["shape"], f"np.{name}")
        dims, dtype = first.extents(ctx), first.dtype
    else:
        dims, dtype = shape_dims(ctx, given["shape"]), f64
    value = None
    if fill == "full":
        if "fill_value" not in given:
            ctx.unsupported(node, f"np.{name} without a fill value")
        value = ctx.scalar(ctx.expr(given["fill_value"]), node)
        if not like and "dtype" not in given:   # np.full's dtype is its value's
            dtype = value.type
    if "dtype" in given:
        dtype = dtype_of(ctx, given["dtype"])
    if fill in ("zeros", "empty"):
        return alloc(ctx, dims, dtype, fill)
    arr = alloc(ctx, dims, dtype)
    fill_array(ctx, arr, dims, ctx.coerce(value, dtype) if value is not None
               else ctx.const(1, dtype), node)
    return arr


# -- np.arange, np.linspace -------------------------------------------------------------------
def call_arange(ctx: LoweringContext, obj, node) -> Value:
    """np.arange(stop), (start, stop), (start, stop, step): element i is start + i * step,
    ceil((stop - start) / step) of them (numba's formula)."""
    given = dict(keywords(ctx, node, ("dtype",), "np.arange"))
    if not 1 <= len(node.args) <= 3:
        ctx.unsupported(node, f"np.arange with {len(node.args)} arguments")
    vals = [ctx.scalar(ctx.expr(a), a) for a in node.args]
    if len(vals) == 1:
        vals = [ctx.const(0, i64)] + vals
    if len(vals) == 2:
        vals.append(ctx.const(1, i64))
    t = i64
    for v in vals:
        t = promote(t, v.type) if v.type != t else t
    start, stop, step = (ctx.coerce(v, t) for v in vals)
    b = ctx.builder
    ctx.runtime_check(b.op1("arith.cmp", [step, ctx.const(0, t)], i1, {"pred": "ne"}),
                      "np.arange with a step of 0", node)
    if t.is_float:
        count = b.op1("math.ceil", [b.op1("arith.div", [b.op1("arith.sub", [stop, start], t),
                                                          step], t)], t)
        count = ctx.coerce(count, i64)
    else:   # ceil(a / s) == -((-a) // s) for either sign of s
        count = b.op1("arith.neg", [b.op1("arith.floordiv", [
            b.op1("arith.sub", [start, stop], t), step], t)], t)
        count = ctx.coerce(count, i64)
    count = b.op1("arith.max", [count, ctx.const(0, i64)], i64)
    dtype = dtype_of(ctx, given["dtype"]) if "dtype" in given else t
    arr = alloc(ctx, [count], dtype)

    def body(ivs, accs):
        i = ctx.coerce(ivs[0], t)
        v = b.op1("arith.add", [start, b.op1("arith.mul", [i, step], t)], t)
        b.op("mem.store", [ctx.coerce(v, dtype), arr, ivs[0]])
        return []
    loop_nest(ctx, [count], body, node)
    return arr


def call_linspace(ctx: LoweringContext, obj, node) -> Value:
    """np.linspace(start, stop, num=50): start + i * (stop - start) / (num - 1), the last
    element exactly stop (numba's endpoint=True)."""
    given = dict(zip(("start", "stop", "num"), node.args))
    given.update(keywords(ctx, node, ("start", "stop", "num"), "np.linspace"))
    if len(node.args) > 3 or not {"start", "stop"} <= set(given):
        ctx.unsupported(node, "np.linspace without start and stop",
                        "pass np.linspace(start, stop, num)")
    start, stop = (ctx.coerce(ctx.scalar(ctx.expr(given[k]), node), f64)
                   for k in ("start", "stop"))
    num = ctx.coerce_index(ctx.scalar(ctx.expr(given["num"]), node), node) \
        if "num" in given else ctx.const(50, i64)
    return call_linspace_values(ctx, start, stop, num, node)


def call_linspace_values(ctx: LoweringContext, start: Value, stop: Value, num: Value,
                         node) -> Value:
    """np.linspace(start, stop, num) of f64 ends and an i64 count."""
    b = ctx.builder
    one = ctx.const(1, i64)
    div = b.op1("arith.max", [b.op1("arith.sub", [num, one], i64), one], i64)
    step = b.op1("arith.div", [b.op1("arith.sub", [stop, start], f64), ctx.coerce(div, f64)],
                 f64)
    arr = alloc(ctx, [num], f64)

    def body(ivs, accs):
        v = b.op1("arith.add", [start, b.op1("arith.mul", [ctx.coerce(ivs[0], f64), step],
                                             f64)], f64)
        b.op("mem.store", [v, arr, ivs[0]])
        return []
    loop_nest(ctx, [num], body, node)
    when(ctx, b.op1("arith.cmp", [num, one], i1, {"pred": "gt"}),
         lambda: b.op("mem.store", [stop, arr, b.op1("arith.sub", [num, one], i64)]))
    return arr


# -- np.array ---------------------------------------------------------------------------------
def call_array(ctx: LoweringContext, obj, node) -> Value:
    """np.array of numbers written out as a list or tuple (`[a, b]`, `[[1.0, 0.0], [0.0,
    1.0]]`: up to three levels, each item of a level of the same length) or of a tuple
    variable, as numba's: a new C-contiguous array of the numbers' common type (all bool:
    bool; else NumPy's promotion) or `dtype=`; np.array(a) of an array is a copy."""
    given = keywords(ctx, node, ("dtype",), "np.array")
    if len(node.args) != 1:
        ctx.unsupported(node, f"np.array with {len(node.args)} positional arguments",
                        "write np.array([...]) or np.array([...], dtype=np.float64)")
    src = node.args[0]
    if isinstance(src, (ast.List, ast.Tuple)):
        values, shape = _written_out(ctx, src, node)
    else:
        v = ctx.expr(src)
        if not isinstance(v, tuple):
            copy = _k_order_copy(ctx, array_arg(ctx, src, "np.array"), node)
            if "dtype" not in given or dtype_of(ctx, given["dtype"]) == copy.type.dtype:
                return copy
            out = alloc(ctx, [ctx.builder.op1("mem.shape", [copy], i64, {"axis": k})
                              for k in range(copy.type.ndim)], dtype_of(ctx, given["dtype"]))
            copy_into(ctx, as_expr(ctx, copy, node), out, node)
            return out
        values = [_number(ctx, x, src) for x in v]
        shape = (len(values),)
    if not values:
        ctx.unsupported(node, "np.array of an empty list", "use np.empty(0) or np.zeros(0)")
    if "dtype" in given:
        dtype = dtype_of(ctx, given["dtype"])
    elif all(x.type.is_bool for x in values):
        dtype = i1
    else:
        dtype = values[0].type if not values[0].type.is_bool else i64
        for x in values[1:]:
            dtype = promote(dtype, x.type)
    out = alloc(ctx, [ctx.const(d, i64) for d in shape], dtype)
    for k, x in enumerate(values):
        at = [ctx.const(int(i), i64) for i in np.unravel_index(k, shape)]
        ctx.builder.op("mem.store", [ctx.coerce(x, dtype), out, *at])
    return out


def _written_out(ctx: LoweringContext, src, node) -> tuple[list[Value], tuple[int, ...]]:
    """The numbers of a nested list or tuple written in the source, in C order, and its
    shape; an error for a ragged one, an array among them, or more than three levels."""
    if not isinstance(src, (ast.List, ast.Tuple)):
        return [_number(ctx, ctx.expr(src), src)], ()
    if not src.elts:
        return [], (0,)
    parts = [_written_out(ctx, e, node) for e in src.elts]
    inner = parts[0][1]
    if any(p[1] != inner for p in parts):
        ctx.unsupported(src, "np.array of a ragged list (items of different lengths)",
                        "give every row the same number of items")
    if len(inner) + 1 > 3:
        ctx.unsupported(src, "np.array of a list nested more than three levels deep")
    return [x for p in parts for x in p[0]], (len(parts), *inner)


def _number(ctx: LoweringContext, v, node) -> Value:
    """An item of np.array's list: a number (an array or array expression is refused)."""
    if isinstance(v, (ArrayExpr, tuple)) or isinstance(getattr(v, "type", None), ArrayType):
        ctx.unsupported(node, "np.array of a list holding arrays or tuples",
                        "write the numbers out, or use np.stack((a, b)) for arrays")
    return ctx.scalar(v, node)


# -- copies and reshaped views ----------------------------------------------------------------
def call_asarray(ctx: LoweringContext, obj, node) -> Value:
    """np.asarray(a) of an array is a itself, as NumPy's (an array expression or view the
    same as written without np.asarray); of numbers written out, np.array's; with a dtype=
    other than the array's, a converted copy."""
    given = keywords(ctx, node, ("dtype",), "np.asarray")
    if len(node.args) != 1 or isinstance(node.args[0], (ast.List, ast.Tuple)):
        return call_array(ctx, obj, node)
    v = ctx.expr(node.args[0])
    if not is_array(v):
        ctx.unsupported(node, "np.asarray of something that is not an array",
                        "write np.array([...]) of numbers")
    if "dtype" not in given:
        return v
    dtype = dtype_of(ctx, given["dtype"])
    arr = as_array_value(ctx, v, node)
    return arr if arr.type.dtype == dtype else converted(ctx, arr, dtype, node)


def call_copy(ctx: LoweringContext, obj, node) -> Value:
    if len(node.args) != 1 or node.keywords:
        ctx.unsupported(node, "np.copy with other than one argument")
    return _k_order_copy(ctx, array_arg(ctx, node.args[0], "np.copy"), node)


def _k_order_copy(ctx: LoweringContext, v, node) -> Value:
    """np.copy(v), np.array(v): a copy in index order, which NumPy's order='K' copy of a
    transpose is not in memory (ctx.transposed_copies)."""
    copy = materialize(ctx, v, node)
    if memory_transposed(v):
        ctx.transposed_copies.add(copy)
    return copy


def method_copy(ctx: LoweringContext, arr, node) -> Value:
    if node.args or node.keywords:
        ctx.unsupported(node, "a.copy() with arguments")
    return materialize(ctx, arr, node)


def reshape(ctx: LoweringContext, arr, dims: list[Value], node) -> Value:
    """A C-contiguous array viewed with other extents (one of them may be -1: inferred);
    writes through the view reach the base, like NumPy's (a slice is the view it names:
    `u[2:6].reshape(2, 2)` is u's memory). An array expression is computed into a new array
    first."""
    arr = as_array_value(ctx, as_view(ctx, arr), node)
    if arr.type.layout != "C" or _nd_view(arr):
        ctx.unsupported(node, "reshaping an array that may not be C-contiguous (a slice or "
                              "a strided view)",
                        "reshape a copy: x.copy().reshape(...), as numba requires too")
    t = ArrayType(arr.type.dtype, len(dims), "C")
    return ctx.builder.op1("mem.reshape", [arr] + dims, t)


def method_reshape(ctx: LoweringContext, arr, node) -> Value:
    keywords(ctx, node, (), "a.reshape")
    if len(node.args) == 1:
        dims = shape_dims(ctx, node.args[0])
    else:
        dims = [ctx.coerce_index(ctx.scalar(ctx.expr(a), a), a) for a in node.args]
    if not dims:
        ctx.unsupported(node, "reshaping to a 0-d array")
    return reshape(ctx, arr, dims, node)


def as_view(ctx: LoweringContext, arr):
    """A slice as the view it names (C-contiguous where its axes are: `B[1:, :]`, `T[k]`),
    a C-contiguous one of more than one axis as a 1-D view of its base's flat memory (which
    reshapes on every backend); anything else as it is."""
    if isinstance(arr, Value) and arr in ctx.array_views:    # a name bound to a slice
        arr = ctx.array_views[arr]
    if not (isinstance(arr, Sliced) and arr.viewable):
        return arr
    view = view_of(ctx, arr)
    base = arr.base
    if view.type.ndim < 2 or view.type.layout != "C" or (
            isinstance(base.owner, Op) and base.owner.name == "mem.view"):
        return view
    b = ctx.builder
    start, size = ctx.const(0, i64), ctx.const(1, i64)
    for k, axis in enumerate(arr.axes):    # offset of the first element, row-major
        extent = b.op1("mem.shape", [base], i64, {"axis": k})
        start = b.op1("arith.add", [b.op1("arith.mul", [start, extent], i64), axis[1]], i64)
        if axis[0] == "s":
            size = b.op1("arith.mul", [size, axis[3].value], i64)
    flat = b.op1("mem.reshape", [base, ctx.const(-1, i64)], ArrayType(base.type.dtype, 1, "C"))
    end = b.op1("arith.add", [start, size], i64)
    return b.op1("mem.view", [flat, start, end], ArrayType(base.type.dtype, 1, "C"),
                 {"dims": "s"})


def _nd_view(arr: Value) -> bool:
    """A view of more than one axis that as_view could not make a flat one (numba
    reshapes none of them; NumPy's ravel would give a view where it is C-contiguous)."""
    return isinstance(arr.owner, Op) and arr.owner.name == "mem.view" and arr.type.ndim > 1 \
        and arr.type.layout == "C"


def ravel(ctx: LoweringContext, arr, node) -> Value:
    """A 1-D view of a C-contiguous array, a slice of one included (`B[1:, :].ravel()`
    writes B, as NumPy's); any other layout is copied, as numba and NumPy copy it (an array
    expression, a strided view)."""
    arr = as_array_value(ctx, as_view(ctx, arr), node)
    if _nd_view(arr):
        ctx.unsupported(node, "a.ravel() of this view of more than one axis",
                        "ravel a copy, x.copy().ravel(), or the array the view is of")
    if arr.type.layout != "C":
        arr = materialize(ctx, arr, node)
    return arr if arr.type.ndim == 1 else reshape(ctx, arr, [ctx.const(-1, i64)], node)


def method_ravel(ctx: LoweringContext, arr, node) -> Value:
    if node.args or node.keywords:
        ctx.unsupported(node, "a.ravel() with arguments")
    return ravel(ctx, arr, node)


def method_astype(ctx: LoweringContext, arr, node) -> Value:
    """a.astype(dtype): a new array of a's elements converted to dtype, as NumPy's; a float
    converted to an integer type truncates toward zero, and one that is nan, infinite or
    outside the type raises, as int(x) does (numba leaves that value undefined)."""
    if len(node.args) != 1 or node.keywords:
        ctx.unsupported(node, "a.astype() with other than one dtype argument",
                        "write a.astype(np.float64)")
    t = dtype_of(ctx, node.args[0])
    e = as_expr(ctx, arr, node)
    return materialize(ctx, Map(lambda c, vs: c.coerce(vs[0], t), [e], t, node), node)


def method_flatten(ctx: LoweringContext, arr, node) -> Value:
    if node.args or node.keywords:
        ctx.unsupported(node, "a.flatten() with arguments")
    return ravel(ctx, materialize(ctx, arr, node), node)


def call_ravel(ctx: LoweringContext, obj, node) -> Value:
    if len(node.args) != 1 or node.keywords:
        ctx.unsupported(node, "np.ravel with other than one array argument")
    return ravel(ctx, array_arg(ctx, node.args[0], "np.ravel"), node)


def call_reshape(ctx: LoweringContext, obj, node) -> Value:
    if len(node.args) != 2:
        ctx.unsupported(node, "np.reshape without exactly (array, shape)")
    arr = array_arg(ctx, node.args[0], "np.reshape")
    return reshape(ctx, arr, shape_dims(ctx, node.args[1]), node)


# -- joins ------------------------------------------------------------------------------------
def joined_arrays(ctx: LoweringContext, node, what: str) -> tuple[list[ArrayExpr], int]:
    """The arrays of np.concatenate((a, b, ...), axis=k) / np.stack, and k."""
    given = keywords(ctx, node, ("axis",), what)
    if len(node.args) == 2:
        given["axis"] = node.args[1]
    elif len(node.args) != 1:
        ctx.unsupported(node, f"{what} without a tuple of arrays")
    seq = node.args[0]
    if not isinstance(seq, (ast.Tuple, ast.List)) or not seq.elts:
        ctx.unsupported(node, f"{what} of something other than a literal tuple of arrays",
                        f"write {what}((a, b), axis=0)")
    arrays = [array_arg(ctx, e, what) for e in seq.elts]
    axis = int_literal(given["axis"]) if "axis" in given else 0
    if not isinstance(axis, int):
        ctx.unsupported(node, f"{what} with an axis that is not an integer literal")
    if len({a.ndim for a in arrays}) != 1:
        ctx.type_error(node, f"{what} of arrays of different ranks "
                             f"({', '.join(str(a.ndim) for a in arrays)})")
    return arrays, axis


def join_dtype(arrays: list[ArrayExpr]) -> ScalarType:
    t = arrays[0].dtype
    for a in arrays[1:]:
        t = promote(t, a.dtype) if a.dtype != t else t
    return t


def normal_axis(ctx: LoweringContext, axis: int, ndim: int, node) -> int:
    if not -ndim <= axis < ndim:
        ctx.type_error(node, f"axis {axis} is out of bounds for {ndim} dimensions")
    return axis % ndim


def check_extents(ctx: LoweringContext, arrays: list[ArrayExpr], skip: int | None, what: str,
                  node) -> list[Value]:
    """The first array's extents; the others' must equal them (but along axis `skip`),
    checked when the kernel runs, as NumPy checks them."""
    first = arrays[0].extents(ctx)
    for a in arrays[1:]:
        for k, (x, y) in enumerate(zip(first, a.extents(ctx), strict=True)):
            if k != skip and x is not y:
                same = ctx.builder.op1("arith.cmp", [x, y], i1, {"pred": "eq"})
                ctx.runtime_check(same, f"{what}: the arrays' lengths along axis {k} differ",
                                  node)
    return list(first)


def call_concatenate(ctx: LoweringContext, obj, node) -> Value:
    """np.concatenate((a, b, ...), axis=k): each copied into its place along k."""
    arrays, axis = joined_arrays(ctx, node, "np.concatenate")
    return concatenated(ctx, arrays, axis, "np.concatenate", node)


def call_hstack(ctx: LoweringContext, obj, node) -> Value:
    """np.hstack((a, b, ...)): joined along the first axis of vectors, else the second."""
    if node.keywords:
        ctx.unsupported(node, "keyword arguments of np.hstack")
    arrays, _ = joined_arrays(ctx, node, "np.hstack")
    return concatenated(ctx, arrays, 0 if arrays[0].ndim == 1 else 1, "np.hstack", node)


def call_eye(ctx: LoweringContext, obj, node) -> Value:
    """np.eye(n), np.eye(n, m), dtype=: zeros with ones on the main diagonal."""
    given = keywords(ctx, node, ("M", "dtype"), "np.eye")
    if not 1 <= len(node.args) <= 2:
        ctx.unsupported(node, "np.eye with an offset k or more arguments",
                        "write np.eye(n) or np.eye(n, m)")
    rows = shape_dims(ctx, node.args[0])
    cols_node = node.args[1] if len(node.args) == 2 else given.get("M")
    cols = shape_dims(ctx, cols_node) if cols_node is not None else rows
    if len(rows) != 1 or len(cols) != 1:
        ctx.unsupported(node, "np.eye of a shape that is not one integer per axis")
    dtype = dtype_of(ctx, given["dtype"]) if "dtype" in given else f64
    out = alloc(ctx, [rows[0], cols[0]], dtype, fill="zeros")
    diagonal = ctx.builder.op1("arith.min", [rows[0], cols[0]], i64)

    def body(ivs, accs):
        ctx.builder.op("mem.store", [ctx.const(1, dtype), out, ivs[0], ivs[0]])
        return []
    loop_nest(ctx, [diagonal], body, node)
    return out


def concatenated(ctx: LoweringContext, arrays: list[ArrayExpr], axis: int, what: str,
                 node) -> Value:
    axis = normal_axis(ctx, axis, arrays[0].ndim, node)
    dims = check_extents(ctx, arrays, axis, what, node)
    offsets, total = [], ctx.const(0, i64)
    for a in arrays:
        offsets.append(total)
        total = ctx.builder.op1("arith.add", [total, a.extents(ctx)[axis]], i64)
    dims[axis] = total
    out = alloc(ctx, dims, join_dtype(arrays))
    for a, off in zip(arrays, offsets, strict=True):
        copy_into(ctx, a, piece(ctx, out, dims, axis, off, a.extents(ctx)[axis]), node)
    return out


def piece(ctx: LoweringContext, out: Value, dims: list[Value], axis: int, first: Value,
          length: Value) -> Value:
    """The view out[..., first:first + length, ...] along axis (each array of a
    concatenation is copied into its own piece, so a parallel copy owns its elements)."""
    bounds = []
    for k, ext in enumerate(dims):
        bounds += [first, ctx.builder.op1("arith.add", [first, length], i64)] if k == axis \
            else [ctx.const(0, i64), ext]
    t = ArrayType(out.type.dtype, out.type.ndim, "C" if axis == 0 else "A")
    return ctx.builder.op1("mem.view", [out] + bounds, t, {"dims": "s" * out.type.ndim})


def call_stack(ctx: LoweringContext, obj, node) -> Value:
    """np.stack((a, b, ...), axis=k): a new axis k of length len((a, b, ...))."""
    arrays, axis = joined_arrays(ctx, node, "np.stack")
    axis = normal_axis(ctx, axis, arrays[0].ndim + 1, node)
    dims = check_extents(ctx, arrays, None, "np.stack", node)
    dims.insert(axis, ctx.const(len(arrays), i64))
    out = alloc(ctx, dims, join_dtype(arrays))
    for k, a in enumerate(arrays):
        def body(ivs, accs, a=a, k=k):
            at = ivs[:axis] + [ctx.const(k, i64)] + ivs[axis:]
            ctx.builder.op("mem.store", [ctx.coerce(a.element(ctx, ivs), out.type.dtype), out]
                           + at)
            return []
        loop_nest(ctx, a.extents(ctx), body, node)
    return out


# -- np.cumsum --------------------------------------------------------------------------------
def call_flip(ctx: LoweringContext, obj, node) -> ArrayExpr:
    """np.flip(a): every axis reversed, read lazily; of an array or a slice, the slice
    a[::-1, ...] (a view when named, as in NumPy), of another expression a Flipped (a name
    bound to it holds a copy, as NumPy's view of a temporary)."""
    if len(node.args) != 1 or node.keywords:
        ctx.unsupported(node, "np.flip with an axis", "reverse one axis with a slice: a[::-1]")
    inner = array_arg(ctx, node.args[0], "np.flip")
    return reversed_slice(ctx, inner) or Flipped(inner)


class Triangle(SameShape):
    """np.triu(a, k) / np.tril(a, k): a's element where the last two indices (i, j) have
    j - i >= k (upper) or j - i <= k (lower), else 0; read lazily, element by element (a
    select, so derivatives flow to the kept elements only)."""

    def __init__(self, inner: ArrayExpr, k: Value, upper: bool):
        super().__init__(inner)
        self.k, self.upper = k, upper

    def element(self, ctx, idx):
        b = ctx.builder
        offset = b.op1("arith.sub", [idx[-1], idx[-2]], i64)
        kept = b.op1("arith.cmp", [offset, self.k], i1, {"pred": "ge" if self.upper else "le"})
        return b.op1("arith.select", [kept, self.inner.element(ctx, idx),
                                      ctx.const(0, self.dtype)], self.dtype)

    def reads(self):   # element idx reads the inner array's element idx, as a Map
        return self.inner.reads()


def call_triangle(ctx: LoweringContext, obj, node) -> ArrayExpr:
    """np.triu(m, k=0), np.tril(m, k=0) of an array of two or more axes (the last two)."""
    what = f"np.{obj.__name__}"
    given = keywords(ctx, node, ("k",), what)
    if not 1 <= len(node.args) <= 2 or (len(node.args) == 2 and "k" in given):
        ctx.unsupported(node, f"{what} with {len(node.args)} positional arguments",
                        f"write {what}(m) or {what}(m, k)")
    arr = array_arg(ctx, node.args[0], what)
    if arr.ndim < 2:
        ctx.unsupported(node, f"{what} of an array with fewer than two axes")
    k_node = node.args[1] if len(node.args) == 2 else given.get("k")
    k = ctx.const(0, i64) if k_node is None else ctx.scalar(ctx.expr(k_node), node)
    if k.type != i64:
        ctx.unsupported(k_node, f"the offset k of {what} that is not an integer")
    return Triangle(arr, k, obj is np.triu)


class Difference(ArrayExpr):
    """np.diff(a, axis=k) of an array expression, read lazily: element idx is a's element
    one further along the axis less a's element at idx (the stencil `a[1:] - a[:-1]`); the
    axis is one shorter (empty where it had at most one element)."""

    def __init__(self, inner: ArrayExpr, axis: int):
        self.inner, self.axis = inner, axis
        self.dtype, self.ndim = inner.dtype, inner.ndim
        self._dims: list[Dim] | None = None

    def dims(self, ctx):
        if self._dims is None:
            dims = list(self.inner.dims(ctx))
            d, b = dims[self.axis], ctx.builder
            shorter = b.op1("arith.sub", [d.value, ctx.const(1, i64)], i64)
            length = b.op1("arith.max", [ctx.const(0, i64), shorter], i64)
            if isinstance(d.key, tuple) and len(d.key) == 4 and d.key[0] == "len":
                key = d.key[:3] + (d.key[3] - 1,)      # the key of a[..., 1:] and a[..., :-1]
            else:
                key = None if d.key is None else ("diff", d.key)
            dims[self.axis] = Dim(length, key)
            self._dims = dims
        return self._dims

    def one(self, axis):
        return axis != self.axis and self.inner.one(axis)

    def element(self, ctx, idx):
        ahead = list(idx)
        ahead[self.axis] = affine(ctx, ctx.const(1, i64), 1, idx[self.axis])
        return ctx.builder.op1("arith.sub", [self.inner.element(ctx, ahead),
                                             self.inner.element(ctx, idx)], self.dtype)

    def reads(self):   # two positions of the inner arrays: never only the one a store writes
        return [(arr, ("diff", key)) for arr, key in self.inner.reads()]


def call_diff(ctx: LoweringContext, obj, node) -> ArrayExpr:
    """np.diff(a, n=1, axis=-1): the n-th differences along the axis (n and axis integer
    literals), read lazily: n nested Differences."""
    given = dict(zip(("a", "n", "axis"), node.args))
    given.update(keywords(ctx, node, ("n", "axis"), "np.diff"))
    if not 1 <= len(node.args) <= 3:
        ctx.unsupported(node, f"np.diff with {len(node.args)} positional arguments",
                        "write np.diff(a), np.diff(a, n) or np.diff(a, axis=k)")
    arr = array_arg(ctx, node.args[0], "np.diff")
    n = int_literal(given["n"]) if "n" in given else 1
    axis = int_literal(given["axis"]) if "axis" in given else -1
    if not isinstance(n, int) or n < 1:
        ctx.unsupported(node, "np.diff with an order n that is not an integer literal of at "
                              "least 1", "write the order as a literal: np.diff(a, 2)")
    if not isinstance(axis, int):
        ctx.unsupported(node, "np.diff with an axis that is not an integer literal")
    if arr.dtype == i1:
        ctx.unsupported(node, "np.diff of a boolean array (NumPy compares neighbours with !=)",
                        "write the comparison of two slices: m[1:] != m[:-1]")
    axis = normal_axis(ctx, axis, arr.ndim, node)
    out: ArrayExpr = arr
    for _ in range(n):
        out = Difference(out, axis)
    return out


class Rolled(SameShape):
    """np.roll(a, shift, axis=k) read lazily: element i along the axis is a's element
    (i - shift) mod the axis's length; `start` is shift mod the length, taken once."""

    def __init__(self, inner: ArrayExpr, axis: int, start: Value):
        super().__init__(inner)
        self.axis, self.start = axis, start

    def element(self, ctx, idx):
        b = ctx.builder
        length = self.inner.dims(ctx)[self.axis].value
        back = b.op1("arith.sub", [idx[self.axis], self.start], i64)
        wraps = b.op1("arith.cmp", [back, ctx.const(0, i64)], i1, {"pred": "lt"})
        at = list(idx)
        at[self.axis] = b.op1("arith.select", [wraps, b.op1("arith.add", [back, length], i64),
                                               back], i64)
        return self.inner.element(ctx, at)

    def reads(self):   # other positions of the inner arrays than a store at idx writes
        return [(arr, ("rolled", key)) for arr, key in self.inner.reads()]


def call_roll(ctx: LoweringContext, obj, node) -> ArrayExpr:
    """np.roll(a, shift) of a vector, np.roll(a, shift, axis=k) of any array (an integer
    shift, the axis an integer literal)."""
    given = dict(zip(("a", "shift", "axis"), node.args))
    given.update(keywords(ctx, node, ("shift", "axis"), "np.roll"))
    if not 1 <= len(node.args) <= 3 or "shift" not in given:
        ctx.unsupported(node, "np.roll without an array and a shift",
                        "write np.roll(a, shift) or np.roll(a, shift, axis=k)")
    arr = array_arg(ctx, node.args[0], "np.roll")
    axis_node = given.get("axis")
    if axis_node is None or (isinstance(axis_node, ast.Constant) and axis_node.value is None):
        if arr.ndim != 1:
            ctx.unsupported(node, f"np.roll of a {arr.ndim}-D array without an axis (it "
                                  f"rolls the flattened array)",
                            "pass axis=k, or roll the flattened copy: np.roll(a.ravel(), s)")
        axis = 0
    else:
        literal = int_literal(axis_node)
        if not isinstance(literal, int):
            ctx.unsupported(node, "np.roll with an axis that is not an integer literal "
                                  "(several axes at once included)")
        axis = normal_axis(ctx, literal, arr.ndim, node)
    shift = ctx.scalar(ctx.expr(given["shift"]), node)
    if not (isinstance(shift.type, ScalarType) and shift.type.is_int):
        ctx.unsupported(given["shift"], "a shift of np.roll that is not an integer",
                        "pass an integer shift (several axes: one np.roll per axis)")
    b = ctx.builder
    length = arr.dims(ctx)[axis].value
    nonzero = b.op1("arith.max", [length, ctx.const(1, i64)], i64)   # (an empty axis)
    start = b.op1("arith.mod", [ctx.coerce(shift, i64), nonzero], i64)
    return Rolled(arr, axis, start)


class Tiled(ArrayExpr):
    """np.tile(a, reps) read lazily: a's axes (padded with length-1 axes on the left to the
    result's rank) each repeated reps[k] times; element idx is a's element at idx mod a's
    lengths along a's axes (the leading axes of the result that a lacks only count)."""

    def __init__(self, inner: ArrayExpr, reps: list[Value]):
        self.inner, self.dtype = inner, inner.dtype
        self.ndim = max(inner.ndim, len(reps))
        self.reps = [None] * (self.ndim - len(reps)) + list(reps)   # None: once
        self.lead = self.ndim - inner.ndim
        self._dims: list[Dim] | None = None

    def dims(self, ctx):
        if self._dims is None:
            inner = self.inner.dims(ctx)
            dims = []
            for k, rep in enumerate(self.reps):
                d = inner[k - self.lead] if k >= self.lead else None
                if rep is None or const_of(rep) == 1:
                    dims.append(d or Dim(ctx.const(1, i64), ("const", 1), one=True))
                elif d is None:
                    dims.append(Dim(rep, ("const", const_of(rep)) if const_of(rep) is not None
                                    else None))
                else:
                    dims.append(Dim(ctx.builder.op1("arith.mul", [d.value, rep], i64)))
            self._dims = dims
        return self._dims

    def one(self, axis):
        rep = self.reps[axis]
        once = rep is None or const_of(rep) == 1
        return once and (axis < self.lead or self.inner.one(axis - self.lead))

    def element(self, ctx, idx):
        inner = self.inner.dims(ctx)
        at = []
        for k in range(self.inner.ndim):
            i, rep = idx[k + self.lead], self.reps[k + self.lead]
            once = rep is None or const_of(rep) == 1
            at.append(i if once else ctx.builder.op1("arith.mod", [i, inner[k].value], i64))
        return self.inner.element(ctx, at)

    def reads(self):   # other positions of the inner arrays than a store at idx writes
        return [(arr, ("tiled", key)) for arr, key in self.inner.reads()]


def call_tile(ctx: LoweringContext, obj, node) -> ArrayExpr:
    """np.tile(a, reps) of an array (expression), reps an integer or a tuple of integers."""
    given = dict(zip(("A", "reps"), node.args))
    given.update(keywords(ctx, node, ("A", "reps"), "np.tile"))
    if len(node.args) > 2 or set(given) != {"A", "reps"}:
        ctx.unsupported(node, "np.tile without an array and the repetitions",
                        "write np.tile(a, reps), reps an integer or a tuple of integers")
    arr = array_arg(ctx, given["A"], "np.tile")
    reps = _counts(ctx, ctx.expr(given["reps"]), given["reps"], "np.tile", node)
    return Tiled(arr, reps)


def _counts(ctx: LoweringContext, v, reps_node, what: str, node) -> list[Value]:
    """The integer repetition counts v (an integer or a tuple of integers), each checked not
    negative when the kernel runs, as NumPy's ValueError."""
    counts = []
    for r in (list(v) if isinstance(v, tuple) else [v]):
        r = ctx.scalar(r, reps_node)
        if not (isinstance(r.type, ScalarType) and r.type.is_int):
            ctx.unsupported(reps_node, f"repetitions of {what} that are not integers",
                            "pass an integer or a tuple of integers")
        r = ctx.coerce(r, i64)
        if const_of(r) is None or const_of(r) < 0:
            ctx.runtime_check(ctx.builder.op1("arith.cmp", [r, ctx.const(0, i64)], i1,
                                              {"pred": "ge"}),
                              f"{what}: a negative count of repetitions", node)
        counts.append(r)
    return counts


class Repeated(ArrayExpr):
    """np.repeat(a, r, axis=k) read lazily: each element of a along the axis r times in a
    row, element idx reading a's at idx[k] // r; without an axis, of a's elements in C
    order (a vector)."""

    def __init__(self, inner: ArrayExpr, r: Value, axis: int | None):
        self.inner, self.r, self.axis, self.dtype = inner, r, axis, inner.dtype
        self.ndim = 1 if axis is None else inner.ndim
        self._dims: list[Dim] | None = None

    def dims(self, ctx):
        if self._dims is None:
            b = ctx.builder
            inner = self.inner.extents(ctx)
            if self.axis is None:
                n = inner[0]
                for e in inner[1:]:
                    n = b.op1("arith.mul", [n, e], i64)
                self._dims = [Dim(b.op1("arith.mul", [n, self.r], i64))]
            else:
                dims = list(self.inner.dims(ctx))
                dims[self.axis] = Dim(b.op1("arith.mul", [dims[self.axis].value, self.r],
                                            i64))
                self._dims = dims
        return self._dims

    def element(self, ctx, idx):
        b = ctx.builder
        axis = 0 if self.axis is None else self.axis
        source = b.op1("arith.floordiv", [idx[axis], self.r], i64)
        if self.axis is not None:
            return self.inner.element(ctx, [*idx[:axis], source, *idx[axis + 1:]])
        at = []
        for e in reversed(self.inner.extents(ctx)[1:]):   # the C-order element number
            at.append(b.op1("arith.mod", [source, e], i64))
            source = b.op1("arith.floordiv", [source, e], i64)
        return self.inner.element(ctx, [source, *at[::-1]])

    def reads(self):   # other positions of the inner arrays than a store at idx writes
        return [(arr, ("repeated", key)) for arr, key in self.inner.reads()]


def call_repeat(ctx: LoweringContext, obj, node) -> ArrayExpr:
    """np.repeat(a, repeats) (a's elements in C order, each repeated) and
    np.repeat(a, repeats, axis=k) (k an integer literal), repeats an integer."""
    given = dict(zip(("a", "repeats", "axis"), node.args))
    given.update(keywords(ctx, node, ("repeats", "axis"), "np.repeat"))
    if not 2 <= len(given) <= 3 or "repeats" not in given or "a" not in given:
        ctx.unsupported(node, "np.repeat without an array and a count",
                        "write np.repeat(a, r) or np.repeat(a, r, axis=k)")
    arr = array_arg(ctx, given["a"], "np.repeat")
    v = ctx.expr(given["repeats"])
    if isinstance(v, tuple) or is_array(v):
        ctx.unsupported(given["repeats"], "np.repeat with a count per element",
                        "repeat by one integer, or write the loop")
    r, = _counts(ctx, v, given["repeats"], "np.repeat", node)
    axis_node = given.get("axis")
    axis = None
    if axis_node is not None and not (isinstance(axis_node, ast.Constant)
                                      and axis_node.value is None):
        literal = int_literal(axis_node)
        if not isinstance(literal, int):
            ctx.unsupported(axis_node, "np.repeat with an axis that is not an integer literal")
        axis = normal_axis(ctx, literal, arr.ndim, node)
    return Repeated(arr, r, axis)


def call_histogram(ctx: LoweringContext, obj, node) -> tuple[Value, Value]:
    """np.histogram(a, bins, range=(lo, hi)) with a count of equal bins, as numba's: the
    tuple (counts, edges). Without a range the bins span a's smallest to largest element
    (NaNs skipped). Element v goes to bin floor((v - lo) * bins / (hi - lo)) where that is
    a bin, v == hi to the last one; nothing is counted when hi == lo. The counts are int64,
    with no derivative; the edges are np.linspace(lo, hi, bins + 1), which differentiates
    through lo and hi."""
    given = dict(zip(("a", "bins", "range"), node.args))
    given.update(keywords(ctx, node, ("bins", "range"), "np.histogram"))
    if not 1 <= len(node.args) <= 3:
        ctx.unsupported(node, f"np.histogram with {len(node.args)} positional arguments")
    arr = array_arg(ctx, node.args[0], "np.histogram")
    b = ctx.builder
    bins = ctx.expr(given["bins"]) if "bins" in given else ctx.const(10, i64)
    if not isinstance(bins, Value) or not isinstance(bins.type, ScalarType) or \
            not bins.type.is_int:
        ctx.unsupported(given.get("bins", node), "np.histogram with bins that are not a "
                                                 "count (an array of edges)",
                        "pass the number of equal bins, and a range=(lo, hi) if needed")
    bins = ctx.coerce(bins, i64)
    ctx.runtime_check(b.op1("arith.cmp", [bins, ctx.const(0, i64)], i1, {"pred": "gt"}),
                      "np.histogram with a count of bins that is not positive", node)
    dims = arr.extents(ctx)

    def value(ivs) -> Value:
        return ctx.coerce(arr.element(ctx, ivs), f64)
    span = given.get("range")
    if span is not None and not (isinstance(span, ast.Constant) and span.value is None):
        ends = ctx.expr(span)
        if not isinstance(ends, tuple) or len(ends) != 2:
            ctx.unsupported(span, "a range of np.histogram that is not a pair (lo, hi)")
        lo, hi = (ctx.coerce(ctx.scalar(e, span), f64) for e in ends)
    else:
        lo, hi = loop_nest(ctx, dims, lambda ivs, accs: [
            b.op1("arith.min", [accs[0], value(ivs)], f64),
            b.op1("arith.max", [accs[1], value(ivs)], f64)], node,
            [ctx.const(float("inf"), f64), ctx.const(float("-inf"), f64)], ["min", "max"])
    ctx.runtime_check(b.op1("arith.cmp", [lo, hi], i1, {"pred": "le"}),
                      "np.histogram's range: its low end is above its high end (or the "
                      "array is empty, or all NaN)", node)
    counts = alloc(ctx, [bins], i64, fill="zeros")
    last = b.op1("arith.sub", [bins, ctx.const(1, i64)], i64)
    nbins = ctx.coerce(bins, f64)

    def count(at: Value) -> None:
        old = b.op1("mem.load", [counts, at], i64)
        b.op("mem.store", [b.op1("arith.add", [old, ctx.const(1, i64)], i64), counts, at])

    def counted() -> None:
        ratio = b.op1("arith.div", [nbins, b.op1("arith.sub", [hi, lo], f64)], f64)

        def body(ivs, accs):
            v = value(ivs)
            at = b.op1("math.floor", [b.op1("arith.mul", [
                b.op1("arith.sub", [v, lo], f64), ratio], f64)], f64)
            inside = b.op1("arith.and", [
                b.op1("arith.cmp", [at, ctx.const(0.0, f64)], i1, {"pred": "ge"}),
                b.op1("arith.cmp", [at, nbins], i1, {"pred": "lt"})], i1)
            when(ctx, inside, lambda: count(ctx.coerce(at, i64)), lambda: when(ctx,
                b.op1("arith.cmp", [v, hi], i1, {"pred": "eq"}), lambda: count(last)))
            return []
        loop_nest(ctx, dims, body, node, serial=True)
    when(ctx, b.op1("arith.cmp", [hi, lo], i1, {"pred": "gt"}), counted)
    edges = call_linspace_values(ctx, lo, hi, b.op1("arith.add", [bins, ctx.const(1, i64)],
                                                   i64), node)
    return counts, edges


def call_cumulative(ctx: LoweringContext, obj, node) -> Value:
    """np.cumsum(a) / np.cumprod(a): the running sums (products) of a's elements in C order
    (a 1-D result); with axis=k, along axis k, a's shape."""
    name = f"np.{obj.__name__}"
    given = keywords(ctx, node, ("axis",), name)
    if len(node.args) == 2:
        given["axis"] = node.args[1]
    elif len(node.args) != 1:
        ctx.unsupported(node, f"{name} without exactly an array and an optional axis")
    arr = array_arg(ctx, node.args[0], name)
    dtype = arr.dtype if arr.dtype.is_float else i64
    combine = _RUNNING[obj]
    if "axis" not in given or (isinstance(given["axis"], ast.Constant)
                               and given["axis"].value is None):
        src = arr if arr.ndim == 1 else as_expr(ctx, ravel(ctx, arr, node), node)
        return running(ctx, src, 0, dtype, combine, node)
    axis = int_literal(given["axis"])
    if not isinstance(axis, int):
        ctx.unsupported(node, f"{name} with an axis that is not an integer literal")
    return running(ctx, arr, normal_axis(ctx, axis, arr.ndim, node), dtype, combine, node)


# the running function -> (its op, its start)
_RUNNING = {np.cumsum: ("arith.add", 0), np.cumprod: ("arith.mul", 1)}


def running(ctx: LoweringContext, src: ArrayExpr, axis: int, dtype: ScalarType, combine,
            node) -> Value:
    """out[..., i, ...] = src[..., 0, ...] (op) ... (op) src[..., i, ...] along axis, `combine`
    its (op, start): a serial loop along axis inside a (parallel) nest over the other
    axes."""
    dims = src.extents(ctx)
    out = alloc(ctx, dims, dtype)
    b = ctx.builder
    name, start = combine

    def lane(ivs, accs):
        def step(inner, sums):
            at = ivs[:axis] + inner + ivs[axis:]
            s = b.op1(name, [sums[0], ctx.coerce(src.element(ctx, at), dtype)], dtype)
            b.op("mem.store", [s, out] + at)
            return [s]
        loop_nest(ctx, [dims[axis]], step, node, [ctx.const(start, dtype)])
        return []
    loop_nest(ctx, dims[:axis] + dims[axis + 1:], lane, node)
    return out


# -- array attributes -------------------------------------------------------------------------
def attribute(ctx: LoweringContext, arr, attr: str, node):
    """a.shape, a.ndim, a.size, a.dtype of an array or an array expression."""
    e = as_expr(ctx, arr, node)
    if attr == "shape":
        return tuple(e.extents(ctx))
    if attr == "ndim":
        return ctx.const(e.ndim, i64)
    if attr == "size":
        size = ctx.const(1, i64)
        for ext in e.extents(ctx):
            size = ctx.builder.op1("arith.mul", [size, ext], i64)
        return size
    if attr == "dtype":
        return ctx.wrap_static(e.dtype.np_dtype.type, node)
    ctx.unsupported(node, f"the array attribute `{attr}`",
                    "arrays have .shape, .ndim, .size and .dtype")


# function -> the rule lowering a call of it (expressions.INTRINSICS)
INTRINSICS = [(ALLOC, call_alloc), (ALLOC_LIKE, call_alloc), ({np.arange}, call_arange),
              ({np.linspace}, call_linspace), ({np.copy}, call_copy),
              ({np.ravel}, call_ravel), ({np.reshape}, call_reshape),
              ({np.concatenate}, call_concatenate), ({np.stack}, call_stack),
              ({np.cumsum, np.cumprod}, call_cumulative), ({np.hstack}, call_hstack),
              ({np.eye}, call_eye), ({np.asarray}, call_asarray),
              ({np.flip}, call_flip), ({np.triu, np.tril}, call_triangle),
              ({np.array}, call_array), ({np.diff}, call_diff), ({np.roll}, call_roll),
              ({np.histogram}, call_histogram), ({np.tile}, call_tile),
              ({np.repeat}, call_repeat)]
# array method -> its rule(ctx, array or array expression, call node)
METHODS = {"copy": method_copy, "reshape": method_reshape, "ravel": method_ravel,
           "flatten": method_flatten, "astype": method_astype}
ATTRIBUTES = ("shape", "ndim", "size", "dtype")
