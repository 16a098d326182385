"""Expression lowering: names, constants, arithmetic with NumPy/numba type promotion,
comparisons, short-circuit `and`/`or`, indexing, attributes and calls (intrinsics from
`intrinsics.py`, array allocation, other kernels). Each expression kind has its rule in
EXPRESSIONS; calls go through the table of intrinsics (intrinsics.py)."""
from __future__ import annotations

import ast
import builtins
import inspect
import math
import random
from typing import TYPE_CHECKING

import numpy as np

from ..ir.core import Block, Op, Value, walk
from ..ir.effects import writes
from ..ir.types import SCALARS, ArrayType, f32, f64, i1, i32, i64, promote, spoken
from . import (
    arrays,
    closures,
    construct,
    library,
    linalg,
    mpi,
    mpi_arguments,
    mpi_persistent,
    nested,
    parallel,
    reductions,
    words,
)
from . import intrinsics as intr
from .markers import (
    InlinedFunction,
    marker_of,
    mpi_framework_of,
    mpi_function,
    numba_declared_types,
    numba_python_function,
    user_function,
)
from .syntax import has_side_effect_free_shape

if TYPE_CHECKING:
    from .context import LoweringContext

_BINOPS = {ast.Add: "add", ast.Sub: "sub", ast.Mult: "mul", ast.Div: "div",
           ast.FloorDiv: "floordiv", ast.Mod: "mod", ast.Pow: "pow"}
_BITOPS = {ast.LShift: "shl", ast.RShift: "shr", ast.BitAnd: "bitand", ast.BitOr: "bitor",
           ast.BitXor: "bitxor"}
_BOOL_ARRAY_OPS = {"add": "arith.or", "mul": "arith.and"}
_CMPOPS = {ast.Eq: "eq", ast.NotEq: "ne", ast.Lt: "lt", ast.LtE: "le", ast.Gt: "gt",
           ast.GtE: "ge"}


class Static:
    """A compile-time Python object met in kernel code (a module, a function, a kernel)."""

    def __init__(self, obj):
        self.obj = obj


def expr_constant(ctx: LoweringContext, node):
    if isinstance(node.value, (bool, int, float)):
        return ctx.python_const(node.value)
    ctx.unsupported(node, *words.constant(node.value))


def expr_name(ctx: LoweringContext, node):
    return ctx.lookup(node)


def expr_tuple(ctx: LoweringContext, node):
    return tuple(ctx.expr(e) for e in node.elts)


def expr_binop(ctx: LoweringContext, node):
    return binop(ctx, node.op, ctx.expr(node.left), ctx.expr(node.right), node)


def binop(ctx: LoweringContext, op, a, b, node, element: bool = False) -> Value:
    """`a op b`. On scalars (element False) integers compute in int64, as numba's do
    (`x * y` of two int32 numbers does not wrap at 2**31); element by element in an array
    expression or a NumPy ufunc (element True) int32 stays int32, as NumPy's arrays do."""
    if isinstance(op, ast.MatMult):
        return linalg.product(ctx, a, b, node)
    if arrays.is_array(a) or arrays.is_array(b):
        return arrays.elementwise(
            ctx, lambda c, vs: binop(c, op, vs[0], vs[1], node, element=True), [a, b], node)
    if type(op) in _BITOPS:
        return bitop(ctx, _BITOPS[type(op)], a, b, node, element)
    kind = _BINOPS.get(type(op))
    if kind is None:
        ctx.unsupported(node, *words.describe(op, words.OPERATORS))
    a, b = ctx.scalar(a, node), ctx.scalar(b, node)
    if element and a.type.is_bool and b.type.is_bool and kind in _BOOL_ARRAY_OPS:
        # NumPy's and numba's bool arrays: m1 + m2 is m1 or m2, m1 * m2 is m1 and m2
        return ctx.builder.op1(_BOOL_ARRAY_OPS[kind], [a, b], i1)
    if kind == "pow" and not element and a.type.is_float:
        n = int_constant(b)
        if n is not None and abs(n) <= 0x10000:
            return integer_power(ctx, a, n)
    t = scalar_int(promote(a.type, b.type), element)
    if kind == "div" and not t.is_float:
        t = f64
    if kind == "pow" and b.type.is_float and not t.is_float:
        t = f64
    if kind == "pow" and a.type == f32 and not b.type.is_float:
        t = f32     # float32 ** an integer stays float32, in numba and NumPy
    return ctx.builder.op1(f"arith.{kind}", [ctx.coerce(a, t), ctx.coerce(b, t)], t)


def int_constant(v: Value) -> int | None:
    """The value of an integer constant (or of its negation: `-2`), else None."""
    owner = v.owner
    if not isinstance(owner, Op) or v.type.is_float or v.type.is_bool:
        return None
    if owner.name == "arith.const":
        return int(owner.attrs["value"])
    if owner.name == "arith.neg":
        inner = int_constant(owner.operands[0])
        return None if inner is None else -inner
    return None


def integer_power(ctx: LoweringContext, x: Value, n: int) -> Value:
    """x ** n of a float number and an integer constant as numba computes it (and its
    `x ** k` of an integer variable): multiplications by squaring, `x ** 3` is
    `x * (x * x)`, and 1 / that for a negative n, which rounds differently from the C
    library's pow in the last bit for many x. Its derivative is the multiplications'."""
    b = ctx.builder
    result, square, e = None, x, abs(n)
    while e:
        if e & 1:
            result = square if result is None else b.op1("arith.mul", [result, square], x.type)
        e >>= 1
        if e:
            square = b.op1("arith.mul", [square, square], x.type)
    if result is None:
        result = ctx.const(1.0, x.type)
    if n < 0:
        result = b.op1("arith.div", [ctx.const(1.0, x.type), result], x.type)
    return result


def scalar_int(t, element: bool):
    """The type an integer op on scalars computes in: int64 for int32 operands, as numba
    (whose integer arithmetic is at least 64 bits wide), unless element by element."""
    return i64 if t == i32 and not element else t


def bitop(ctx: LoweringContext, kind, a, b, node, element: bool = False) -> Value:
    """Integer shifts and bitwise logic (`&`, `|` of two bools are logical and/or)."""
    a, b = ctx.scalar(a, node), ctx.scalar(b, node)
    if a.type.is_bool and b.type.is_bool and kind in ("bitand", "bitor"):
        return ctx.builder.op1("arith.and" if kind == "bitand" else "arith.or", [a, b], i1)
    if a.type.is_bool and b.type.is_bool and kind == "bitxor":    # a bool, as in Python
        return ctx.builder.op1("arith.cmp", [a, b], i1, {"pred": "ne"})
    if a.type.is_float or b.type.is_float:
        ctx.type_error(node, f"bit operations need integers, got {spoken(a.type)} and "
                             f"{spoken(b.type)}; "
                             f"reinterpret float bits with an array view, "
                             f"e.g. a.view(np.int32)")
    t = scalar_int(promote(a.type, b.type), element)
    return ctx.builder.op1(f"arith.{kind}", [ctx.coerce(a, t), ctx.coerce(b, t)], t)


def expr_unaryop(ctx: LoweringContext, node):
    return unaryop(ctx, node.op, ctx.expr(node.operand), node)


def unaryop(ctx: LoweringContext, op, v, node, element: bool = False):
    if arrays.is_array(v):
        return arrays.elementwise(ctx, lambda c, vs: unaryop(c, op, vs[0], node, True), [v],
                                  node)
    v = ctx.scalar(v, node)
    if isinstance(op, ast.Not):
        return ctx.builder.op1("arith.not", [ctx.truth(v, node)], i1)
    if isinstance(op, ast.UAdd):
        return v
    if isinstance(op, ast.USub):
        if v.type.is_bool or scalar_int(v.type, element) != v.type:
            v = ctx.coerce(v, i64)
        return ctx.builder.op1("arith.neg", [v], v.type)
    if isinstance(op, ast.Invert) and v.type.is_bool:
        return ctx.builder.op1("arith.not", [v], i1)
    if isinstance(op, ast.Invert) and v.type.is_int:     # ~x == -x - 1 == x ^ -1
        t = scalar_int(v.type, element)
        return ctx.builder.op1("arith.bitxor", [ctx.coerce(v, t), ctx.const(-1, t)], t)
    ctx.unsupported(node, *words.describe(op, words.OPERATORS))


def expr_compare(ctx: LoweringContext, node):
    for op in node.ops:   # `x in t`, `x is None`: name the operator, not its operands
        if type(op) not in _CMPOPS:
            ctx.unsupported(node, *words.describe(op, words.OPERATORS))
    left = ctx.expr(node.left)
    result = None
    for op, right_node in zip(node.ops, node.comparators, strict=True):
        right = ctx.expr(right_node)
        if len(node.ops) > 1 and (arrays.is_array(left) or arrays.is_array(right)):
            ctx.unsupported(node, "a chained comparison of arrays (a < b < c)",
                            "combine two comparisons with &: (a < b) & (b < c)")
        c = compare(ctx, op, left, right, node)
        result = c if result is None else ctx.builder.op1("arith.and", [result, c], i1)
        left = right
    return result


def compare(ctx: LoweringContext, op, left, right, node):
    if isinstance(left, tuple) and isinstance(right, tuple):
        return _compare_tuples(ctx, op, left, right, node)
    if arrays.is_array(left) or arrays.is_array(right):
        return arrays.elementwise(ctx, lambda c, vs: compare(c, op, vs[0], vs[1], node),
                                  [left, right], node)
    left, right = ctx.scalar(left, node), ctx.scalar(right, node)
    pred = _CMPOPS[type(op)]
    t = promote(left.type, right.type) if left.type != right.type else left.type
    return ctx.builder.op1("arith.cmp", [ctx.coerce(left, t), ctx.coerce(right, t)],
                           i1, {"pred": pred})


def _compare_tuples(ctx: LoweringContext, op, left: tuple, right: tuple, node) -> Value:
    """`a.shape == b.shape`: tuples are equal where they have the same length and equal
    items (compared as numbers, nested tuples item by item), as in Python and numba."""
    if not isinstance(op, (ast.Eq, ast.NotEq)):
        ctx.unsupported(node, "ordering tuples with < <= > >=",
                        "compare their items one by one")
    same = ctx.const(len(left) == len(right), i1)
    if len(left) == len(right):
        for a, b in zip(left, right):
            same = ctx.builder.op1("arith.and", [same, compare(ctx, ast.Eq(), a, b, node)], i1)
    if isinstance(op, ast.NotEq):
        same = ctx.builder.op1("arith.not", [same], i1)
    return same


def expr_boolop(ctx: LoweringContext, node):
    is_and = isinstance(node.op, ast.And)
    left = ctx.condition(node.values[0])
    for right_node in node.values[1:]:
        left = short_circuit(ctx, left, lambda n=right_node: ctx.condition(n), is_and,
                                  eager=has_side_effect_free_shape(right_node))
    return left


def short_circuit(ctx: LoweringContext, left: Value, right_fn, is_and: bool,
                  eager: bool = False) -> Value:
    """`left and right()` / `left or right()`, evaluating right() only when needed
    unless it is free of effects and cannot fail (then one arith op is cheaper)."""
    if eager:
        return ctx.builder.op1("arith.and" if is_and else "arith.or", [left, right_fn()], i1)
    taken, skipped = Block(), Block()
    with ctx.at(taken):
        ctx.builder.op("scf.yield", [right_fn()])
    with ctx.at(skipped):
        ctx.builder.op("scf.yield", [ctx.const(not is_and, i1)])
    regions = [taken, skipped] if is_and else [skipped, taken]
    return ctx.builder.op("scf.if", [left], [i1], regions=regions).result


def expr_ifexp(ctx: LoweringContext, node):
    cond = ctx.condition(node.test)
    blocks, vals = [], []
    for branch in (node.body, node.orelse):
        b = Block()
        with ctx.at(b):
            v = ctx.expr(branch)
            if isinstance(v, (arrays.Sliced, arrays.ArrayExpr)) or \
                    isinstance(v, Value) and isinstance(v.type, ArrayType):
                ctx.unsupported(node, "a conditional expression choosing between arrays",
                                f"write it as an if statement (if {ast.unparse(node.test)}: "
                                f"t = {ast.unparse(node.body)} / else: t = "
                                f"{ast.unparse(node.orelse)}), or index the arrays")
            vals.append(ctx.scalar(v, branch))
        blocks.append(b)
    t = vals[0].type if vals[0].type == vals[1].type else promote(vals[0].type, vals[1].type)
    for b, v in zip(blocks, vals, strict=True):
        with ctx.at(b):
            ctx.builder.op("scf.yield", [ctx.coerce(v, t)])
    return ctx.builder.op("scf.if", [cond], [t], regions=blocks).result


def expr_subscript(ctx: LoweringContext, node):
    base = ctx.expr(node.value)
    with arrays.evaluated_once(ctx, node, base=False) as once:   # u[count(c)]: one call
        return _subscript_of(ctx, arrays.spread_tuple_index(ctx, once, base), base)


def _subscript_of(ctx: LoweringContext, node, base):
    if isinstance(base, tuple):
        if isinstance(node.slice, ast.Slice):   # a.shape[:2]
            bounds = [None if b is None else arrays.static_int(b)
                      for b in (node.slice.lower, node.slice.upper, node.slice.step)]
            if any(b is None and n is not None for b, n in zip(
                    bounds, (node.slice.lower, node.slice.upper, node.slice.step))) \
                    or bounds[2] == 0:
                ctx.unsupported(node, "slicing a tuple with bounds that are not integer "
                                      "constants", "write the bounds as numbers: t[:2]")
            return base[slice(*bounds)]
        k = arrays.static_int(node.slice)
        if k is None:
            ctx.unsupported(node, "indexing a tuple with a non-constant index")
        if not -len(base) <= k < len(base):
            ctx.type_error(node, f"tuple index {k} out of range: `{ast.unparse(node.value)}` "
                                 f"holds {len(base)} item{'s' * (len(base) != 1)}")
        return base[k]
    if isinstance(base, arrays.Sliced):   # not a unit-step view (a step, np.newaxis)
        if not base.viewable:
            ctx.unsupported(node, f"indexing `{ast.unparse(node.value)}`, a slice with "
                                  f"np.newaxis,", "index the array itself, or copy the slice "
                                                  "first: v = x[:, np.newaxis].copy()")
        base = arrays.view_of(ctx, base)   # x[::-1][:-1]: a slice of the stepped view
    if isinstance(base, arrays.ArrayExpr):
        values = arrays.element_indices(ctx, base, node)
        if values is not None and len(values) == 1 and arrays.is_array(values[0]) and \
                arrays.as_expr(ctx, values[0], node).dtype.is_bool:   # np.exp(a)[a > 0]
            return arrays.masked_values(ctx, arrays.materialize(ctx, base, node), values[0],
                                        node)
        if values is not None:
            return arrays.element_of(ctx, base, node, values)
        # sliced or indexed with fewer indices than axes, `(a - b)[:, 1:]`: NumPy's
        # temporary, as a name bound to the expression would hold it
        base = arrays.materialize(ctx, base, node)
    mask = boolean_index(ctx, node, base)
    if mask is not None:
        return arrays.masked_values(ctx, base, mask, node)
    index = array_index(ctx, node, base)
    if index is not None:
        return arrays.gathered(ctx, base, index, node)
    if is_view(ctx, node, base):
        sliced = arrays.subscript(ctx, base, node)
        return arrays.view_of(ctx, sliced) if sliced.plain_view else sliced
    arr, idx = subscript_parts(ctx, node, base)
    return ctx.builder.op1("mem.load", [arr] + idx, arr.type.dtype)


def array_index(ctx: LoweringContext, node, base):
    """The array of an array read `a[idx]` by one array of indices (NumPy integer-array
    indexing of the first axis), else None."""
    if not (isinstance(base, Value) and isinstance(base.type, ArrayType)) \
            or isinstance(node.slice, (ast.Slice, ast.Tuple)) or arrays.is_newaxis(ctx, node.slice):
        return None
    index = ctx.expr(node.slice)
    return index if arrays.is_array(index) else None


def boolean_index(ctx: LoweringContext, node, base):
    """The boolean array of an array read `a[mask]` (NumPy boolean indexing), else None."""
    if not (isinstance(base, Value) and isinstance(base.type, ArrayType)) \
            or isinstance(node.slice, (ast.Slice, ast.Tuple)) or arrays.is_newaxis(ctx, node.slice):
        return None
    index = ctx.expr(node.slice)
    e = arrays.as_expr(ctx, index, node) if arrays.is_array(index) else None
    return index if e is not None and e.dtype.is_bool else None


def is_view(ctx: LoweringContext, node, base) -> bool:
    """Whether base[...] selects more than one element (a slice, np.newaxis, or fewer
    indices than axes)."""
    nodes = arrays.index_nodes(node)
    return isinstance(base, Value) and isinstance(base.type, ArrayType) and (
        any(isinstance(i, ast.Slice) or arrays.is_newaxis(ctx, i) for i in nodes)
        or len(nodes) < base.type.ndim)


def refuse_subscript(ctx: LoweringContext, node, arr):
    """Say why `arr[...]` cannot be indexed: a view hpcad holds as an expression (a slice
    with a step, a transpose, np.flip, an array expression), a global array or tuple (numba
    freezes them as constants; hpcad takes arrays as arguments), or no array at all."""
    text = ast.unparse(node.value)
    if isinstance(arr, arrays.ArrayExpr):
        ctx.unsupported(node, f"indexing `{text}` (a transpose, np.flip or an array "
                              f"expression) again",
                        "index the array itself in one subscript (A.T[i, j] is A[j, i]), "
                        "or copy it into a named array first")
    obj = getattr(arr, "obj", None)
    if isinstance(obj, (np.ndarray, tuple, list)):
        kind = "array" if isinstance(obj, np.ndarray) else "tuple" if \
            isinstance(obj, tuple) else "list"
        ctx.unsupported(node, f"indexing the global {kind} `{text}`",
                        "pass its values to the kernel as an array argument (numba would "
                        "freeze them at compile time; hpcad kernels take arrays as arguments)")
    ctx.unsupported(node, "indexing something that is not an array")


def subscript_parts(ctx: LoweringContext, node, base=None):
    arr = ctx.expr(node.value) if base is None else base
    if not isinstance(arr, Value) or not isinstance(arr.type, ArrayType):
        refuse_subscript(ctx, node, arr)
    index_nodes = arrays.index_nodes(node)
    indices = [ctx.expr(i) for i in index_nodes]
    if any(arrays.is_array(i) for i in indices):
        ctx.unsupported(node, "indexing with an array (fancy or boolean indexing) here",
                        "read x[idx] with one vector of integers idx for the first axis, "
                        "or a[mask] with a boolean mask of the array's shape; otherwise "
                        "loop over the indices (x[idx[k]] = v[k])")
    if len(index_nodes) != arr.type.ndim:
        ctx.unsupported(node, f"indexing a {arr.type.ndim}-D array with "
                              f"{len(index_nodes)} indices",
                        "give one index per dimension, e.g. a[i, j]")
    return arr, [ctx.coerce_index(v, i) for v, i in zip(indices, index_nodes, strict=True)]


def expr_attribute(ctx: LoweringContext, node):
    base = ctx.expr(node.value) if not (isinstance(node.value, ast.Name)
                                        and node.value.id not in ctx.env) \
        else ctx.lookup(node.value)
    if isinstance(base, Static):
        if node.attr == "type" and isinstance(base.obj, type) and \
                issubclass(base.obj, np.generic):
            return base   # `a.dtype` is held as its scalar type, whose dtype's .type it is
        if not hasattr(base.obj, node.attr):
            ctx.unsupported(node, f"the attribute `{node.attr}`")
        return ctx.wrap_static(getattr(base.obj, node.attr), node)
    if mpi_arguments.is_comm(ctx, base):
        return mpi.comm_attribute(ctx, base, node.attr, node)
    if node.attr == "T" and arrays.is_array(base):
        return linalg.transpose(ctx, base, node)
    if node.attr == "shape" and isinstance(base, Value) and isinstance(base.type, ArrayType):
        return tuple(extent(ctx, base, k) for k in range(base.type.ndim))
    if arrays.is_array(base) and node.attr in construct.ATTRIBUTES:
        return construct.attribute(ctx, base, node.attr, node)
    ctx.unsupported(node, f"the attribute `{node.attr}`",
                    words.ARRAY_METHODS.get(node.attr, "") if arrays.is_array(base) else "")


def expr_call(ctx: LoweringContext, node):
    if isinstance(node.func, ast.Attribute):
        base = ctx.expr(node.func.value) if not (isinstance(node.func.value, ast.Name)
                                                 and node.func.value.id not in ctx.env) \
            else ctx.lookup(node.func.value)
        if mpi_arguments.is_comm(ctx, base):
            return mpi.comm_method(ctx, base, node.func.attr, node)
        if mpi_arguments.is_request(ctx, base):
            return mpi.request_method(ctx, base, node.func.attr, node)
        if mpi_persistent.is_persistent(base):
            return mpi_persistent.method(ctx, base, node.func.attr, node)
        if isinstance(base, Value) and isinstance(base.type, ArrayType) \
                and node.func.attr == "view":
            return bitcast(ctx, base, node)
        if arrays.is_array(base) and node.func.attr == "dot":
            return linalg.method_dot(ctx, base, node)
        if arrays.is_array(base) and node.func.attr in ARRAY_METHODS:
            return ARRAY_METHODS[node.func.attr](ctx, base, node)
    fn = ctx.expr(node.func)
    if not isinstance(fn, Static):
        ctx.unsupported(node, "calling something that is not a function")
    obj = fn.obj
    kernel_rule = kernel_call_rule(obj)
    if kernel_rule is not None:
        return kernel_rule(ctx, obj, node)
    marker = marker_of(obj)
    if marker is not None:
        return parallel.call_marker(ctx, marker, node)
    mpi_call = mpi_function(obj)
    if mpi_call is not None:
        return mpi.lower_mpi(ctx, mpi_call, mpi.world(ctx), node)
    if mpi_framework_of(obj) is not None:
        comm = getattr(obj, "__self__", None)
        mpi.unsupported_mpi(ctx, node, hint=" on a communicator that is not a kernel argument; "
                                 "pass the communicator to the kernel"
                                 if getattr(comm, "Get_rank", None) is not None else "")
    handler = intrinsic_rule(obj) or (call_user_function if user_function(obj) else None)
    if handler is None:
        ctx.unsupported(node, f"calling `{ast.unparse(node.func)}`", _no_rule_hint(obj))
    if node.keywords and handler not in TAKE_KEYWORDS:
        ctx.unsupported(node, "keyword arguments in this call")
    return handler(ctx, obj, node)


def call_user_function(ctx: LoweringContext, fn, node):
    """A call of a plain Python function of the user's code (markers.user_function): inlined
    from its source as a kernel's."""
    return call_kernel(ctx, InlinedFunction(fn), node)


def kernel_call_rule(obj):
    """The rule lowering a call of another kernel, of a derivative of one taken in kernel
    code (nested.py) or of a function defined in the kernel (closures.py), else None."""
    if getattr(obj, "__hpcad_kernel__", False):
        return call_kernel
    if isinstance(obj, closures.LocalFunction):
        return closures.call_local
    if numba_python_function(obj) is not None:
        return call_numba_function
    return nested.call_rule(obj)


def call_numba_function(ctx: LoweringContext, dispatcher, node):
    """A call of a `numba.njit` function: its Python function inlined as a kernel's."""
    return call_kernel(ctx, InlinedFunction(numba_python_function(dispatcher),
                                            numba_declared_types(dispatcher)), node)


# numba's names of the scalar types, as hpcad's
_NUMBA_TYPE_NAMES = {"float64": "f64", "float32": "f32", "int64": "i64", "int32": "i32",
                     "bool": "i1"}


def check_declared_types(ctx: LoweringContext, kernel, args, node) -> None:
    """A call of a numba.njit function compiled for declared signatures only: the arguments
    must have one signature's types (numba would convert others; the inlined Python code
    would compute with them as they are)."""
    declared = getattr(kernel, "declared", ())
    if not declared:
        return

    def fits(sig) -> bool:
        if len(sig) != len(args):
            return False
        for (kind, name, ndim), a in zip(sig, args, strict=True):
            t = a.type
            if kind == "array" and not (isinstance(t, ArrayType) and t.ndim == ndim
                                        and t.dtype.name == _NUMBA_TYPE_NAMES.get(name)):
                return False
            if kind == "scalar" and not (not isinstance(t, ArrayType)
                                         and t.name == _NUMBA_TYPE_NAMES.get(name)):
                return False
        return True
    if not any(fits(sig) for sig in declared):
        given = ", ".join(spoken(a.type) for a in args)
        ctx.unsupported(node, f"calling the @numba.njit function `{kernel.__name__}`, "
                              f"compiled for declared signatures only, with arguments of other "
                              f"types ({given})",
                        "pass arguments of a declared signature's types (numba would convert "
                        "them; hpcad inlines the Python code for the types it is given), or "
                        "declare no signature")


def intrinsic_rule(obj):
    """The rule lowering a call of obj if it is an intrinsic (intrinsics.py), else None."""
    try:
        return next((lower for group, lower in INTRINSICS if obj in group), None)
    except TypeError:  # unhashable object
        return None


def float_of(ctx: LoweringContext, v: Value) -> Value:
    return v if v.type.is_float else ctx.coerce(v, f64)


def elementwise_call(arity, scalar_rule):
    """The rule of a call applying scalar_rule(ctx, obj, scalars, node) element by element
    when an argument is an array (NumPy's ufuncs), `arity` arguments (None: two or more)."""
    def lower(ctx: LoweringContext, obj, node):
        if node.keywords:
            ctx.unsupported(node, "keyword arguments in this call")
        if arity is not None and len(node.args) != arity:
            ctx.unsupported(node, f"this call with {len(node.args)} arguments "
                                  f"(expects {arity})")
        vals = [ctx.expr(a) for a in node.args]
        return arrays.elementwise(ctx, lambda c, vs: scalar_rule(c, obj, vs, node), vals, node)
    return lower


def unary_math(ctx: LoweringContext, obj, vals, node):
    x = float_of(ctx, vals[0])
    return ctx.builder.op1(f"math.{intr.UNARY_MATH[obj]}", [x], x.type)


def int_rounding(ctx: LoweringContext, obj, vals, node):
    (x,) = vals
    if not x.type.is_float:
        return ctx.coerce(x, i64)
    r = ctx.builder.op1(f"math.{intr.INT_ROUNDING[obj]}", [x], x.type)
    return ctx.coerce(r, i64)


def absolute(ctx: LoweringContext, obj, vals, node):
    return ctx.builder.op1("math.abs", [vals[0]], vals[0].type)


def call_minmax(ctx: LoweringContext, obj, node):
    if obj in (builtins.min, builtins.max):
        vals = [ctx.expr(a) for a in node.args]
        if any(arrays.is_array(v) for v in vals):
            ctx.unsupported(node, f"{obj.__name__}() of arrays",
                            f"use np.{obj.__name__}imum(a, b) element by element, or "
                            f"np.{obj.__name__}(a) / a.{obj.__name__}() for one element")
        if len(vals) < 2:
            ctx.unsupported(node, "min()/max() of fewer than two scalars")
        return minmax(ctx, obj, [ctx.scalar(v, node) for v in vals], node)
    return elementwise_call(2, minmax)(ctx, obj, node)


def minmax(ctx: LoweringContext, obj, vals, node):
    """min/max as Python's (a NaN counts only as the first argument), np.minimum/np.maximum
    (a NaN on either side is the answer) and np.fmin/np.fmax (a NaN loses to a number)."""
    kind = "min" if obj in intr.MIN else "max"
    acc = vals[0]
    for v in vals[1:]:
        t = promote(acc.type, v.type) if acc.type != v.type else acc.type
        a, b = ctx.coerce(acc, t), ctx.coerce(v, t)
        acc = ctx.builder.op1(f"arith.{kind}", [a, b], t)    # b if b > a else a
        if t.is_float and obj in (np.minimum, np.maximum):
            acc = ctx.builder.op1("arith.select", [is_nan(ctx, b), b, acc], t)
        elif t.is_float and obj in (np.fmin, np.fmax):
            acc = ctx.builder.op1("arith.select", [is_nan(ctx, a), b, acc], t)
    return acc


def is_nan(ctx: LoweringContext, x: Value) -> Value:
    return ctx.builder.op1("arith.cmp", [x, x], i1, {"pred": "ne"})


def power(ctx: LoweringContext, obj, vals, node):
    x, y = vals
    if obj is math.pow:
        x, y = float_of(ctx, x), float_of(ctx, y)
    return binop(ctx, ast.Pow(), x, y, node, element=obj is np.power)


def binary_math(ctx: LoweringContext, obj, vals, node):
    a, b = vals
    t = promote(float_of(ctx, a).type, float_of(ctx, b).type)
    return ctx.builder.op1(f"math.{intr.BINARY_MATH[obj]}", [ctx.coerce(a, t),
                                                              ctx.coerce(b, t)], t)


def float_class(ctx: LoweringContext, obj, vals, node):
    """isnan, isinf, isfinite as comparisons: x != x, |x| == inf, |x| < inf."""
    (x,) = vals
    test = intr.FLOAT_CLASS[obj]
    if not x.type.is_float:
        return ctx.const(test == "isfinite", i1)
    if test == "isnan":
        return ctx.builder.op1("arith.cmp", [x, x], i1, {"pred": "ne"})
    size = ctx.builder.op1("math.abs", [x], x.type)
    inf = ctx.const(math.inf, x.type)
    return ctx.builder.op1("arith.cmp", [size, inf], i1,
                           {"pred": "eq" if test == "isinf" else "lt"})


def call_round(ctx: LoweringContext, obj, node):
    """round(x): the nearest int, halves to even; round(x, n): numba's formula (x scaled
    by 10**n, rounded, scaled back; x itself where the scaling overflows)."""
    if node.keywords or not 1 <= len(node.args) <= 2:
        ctx.unsupported(node, "this call of round()", "write round(x) or round(x, 2)")
    x = ctx.scalar(ctx.expr(node.args[0]), node.args[0])
    if len(node.args) == 1:
        if not x.type.is_float:
            return ctx.coerce(x, i64)
        return ctx.coerce(ctx.builder.op1("math.rint", [x], x.type), i64)
    digits = arrays.static_int(node.args[1])
    if digits is None or not x.type.is_float:
        ctx.unsupported(node, "round(x, n) of an integer or with n not a constant",
                        "round a float to a literal number of digits, e.g. round(x, 2)")
    return round_digits(ctx, x, digits)


def call_np_round(ctx: LoweringContext, obj, node):
    """np.round(x, decimals=0) (np.around): element by element, halves to even; a float
    stays a float (round_digits: numba's formula), an integer is unchanged."""
    keywords = {k.arg: k.value for k in node.keywords}
    if not 1 <= len(node.args) <= 2 or set(keywords) - {"decimals"} or (
            len(node.args) == 2 and keywords):
        ctx.unsupported(node, "this call of np.round", "write np.round(x) or np.round(x, 2)")
    given = node.args[1] if len(node.args) == 2 else keywords.get("decimals")
    digits = 0 if given is None else arrays.static_int(given)
    if digits is None:
        ctx.unsupported(node, "np.round with a number of decimals that is not a constant",
                        "round to a literal number of digits, e.g. np.round(x, 2)")

    def rule(c: LoweringContext, vals):
        (x,) = vals
        if not x.type.is_float:
            if digits < 0:
                c.unsupported(node, "np.round of integers to negative decimals",
                              "round a float: np.round(x * 1.0, -1)")
            return x
        if digits == 0:
            return c.builder.op1("math.rint", [x], x.type)
        return round_digits(c, x, digits)
    return arrays.elementwise(ctx, rule, [ctx.expr(node.args[0])], node)


def ufunc_operator(ctx: LoweringContext, obj, vals, node):
    """np.add(a, b), np.mod(a, b), ...: the operator, element by element (NumPy's types)."""
    return binop(ctx, getattr(ast, intr.UFUNC_OPERATORS[obj])(), vals[0], vals[1], node,
                 element=True)


def ufunc_comparison(ctx: LoweringContext, obj, vals, node):
    """np.less(a, b), np.equal(a, b), ...: the comparison, element by element."""
    return compare(ctx, getattr(ast, intr.UFUNC_COMPARISONS[obj])(), vals[0], vals[1], node)


def negative(ctx: LoweringContext, obj, vals, node):
    return unaryop(ctx, ast.USub(), vals[0], node, element=True)


def call_divmod(ctx: LoweringContext, obj, node):
    """divmod(a, b) of numbers: (a // b, a % b), as Python's and numba's."""
    if len(node.args) != 2:
        ctx.unsupported(node, "divmod() without exactly two arguments")
    a, b = (ctx.expr(n) for n in node.args)
    if arrays.is_array(a) or arrays.is_array(b):
        ctx.unsupported(node, "divmod() of arrays", "write (a // b, a % b)")
    return (binop(ctx, ast.FloorDiv(), a, b, node), binop(ctx, ast.Mod(), a, b, node))


def trunc(ctx: LoweringContext, obj, vals, node):
    """math.trunc (an int) and np.trunc (a float): toward zero, ceil below 0, floor above."""
    (x,) = vals
    if not x.type.is_float:
        return x if obj is np.trunc else ctx.coerce(x, i64)
    b = ctx.builder
    below = b.op1("arith.cmp", [x, ctx.const(0.0, x.type)], i1, {"pred": "lt"})
    r = b.op1("arith.select", [below, b.op1("math.ceil", [x], x.type),
                               b.op1("math.floor", [x], x.type)], x.type)
    return r if obj is np.trunc else ctx.coerce(r, i64)


def round_digits(ctx: LoweringContext, x: Value, digits: int) -> Value:
    b, t = ctx.builder, x.type
    if digits < 0:
        scale = ctx.const(10.0 ** -digits, t)
        y = b.op1("math.rint", [b.op1("arith.div", [x, scale], t)], t)
        return b.op1("arith.mul", [y, scale], t)
    # 10**(n - 22) * 1e22 for n > 22: each factor is exact, their product may overflow
    powers = (10.0 ** (digits - 22), 1e22) if digits > 22 else (10.0 ** digits, 1.0)
    first, second = (ctx.const(p, t) for p in powers)
    y = b.op1("arith.mul", [b.op1("arith.mul", [x, first], t), second], t)
    back = b.op1("arith.div", [b.op1("arith.div", [b.op1("math.rint", [y], t), second], t),
                               first], t)
    overflows = b.op1("arith.cmp", [b.op1("math.abs", [y], t), ctx.const(math.inf, t)], i1,
                      {"pred": "eq"})
    return b.op1("arith.select", [overflows, x, back], t)


def where(ctx: LoweringContext, obj, vals, node):
    cond, a, b = vals
    t = promote(a.type, b.type) if a.type != b.type else a.type
    return ctx.builder.op1("arith.select", [ctx.truth(cond, node), ctx.coerce(a, t),
                                            ctx.coerce(b, t)], t)


def clip(ctx: LoweringContext, obj, vals, node):
    x, lo, hi = vals
    t = promote(promote(x.type, lo.type), hi.type)
    low = ctx.builder.op1("arith.max", [ctx.coerce(x, t), ctx.coerce(lo, t)], t)
    return ctx.builder.op1("arith.min", [low, ctx.coerce(hi, t)], t)


def sign(ctx: LoweringContext, obj, vals, node):
    (x,) = vals
    t = x.type if not x.type.is_bool else i64
    zero = ctx.const(0, x.type)
    gt = ctx.builder.op1("arith.cmp", [x, zero], i1, {"pred": "gt"})
    lt = ctx.builder.op1("arith.cmp", [x, zero], i1, {"pred": "lt"})
    s = ctx.builder.op1("arith.sub", [ctx.coerce(gt, t), ctx.coerce(lt, t)], t)
    if not t.is_float:
        return s
    # nan and the zeros are their own sign, as numba's np.sign gives them (x * 0.0: that
    # value, with derivative 0)
    nonzero = ctx.builder.op1("arith.or", [gt, lt], i1)
    itself = ctx.builder.op1("arith.mul", [x, zero], t)
    return ctx.builder.op1("arith.select", [nonzero, s, itself], t)


def square(ctx: LoweringContext, obj, vals, node):
    return binop(ctx, ast.Mult(), vals[0], vals[0], node, element=True)


def logical(ctx: LoweringContext, obj, vals, node):
    kind = intr.LOGICAL[obj]
    bools = [ctx.truth(v, node) for v in vals]
    if kind == "not":
        return ctx.builder.op1("arith.not", bools, i1)
    return ctx.builder.op1(f"arith.{kind}", bools, i1)


def cast(ctx: LoweringContext, obj, vals, node):
    return ctx.coerce(vals[0], SCALARS[intr.CASTS[obj]])


def call_len(ctx: LoweringContext, obj, node):
    if len(node.args) != 1:
        ctx.unsupported(node, "len() with more than one argument")
    arr = ctx.expr(node.args[0])
    if isinstance(arr, tuple):
        return ctx.const(len(arr), i64)
    if isinstance(arr, arrays.ArrayExpr) and arr.ndim > 0:   # len(u[::2]), len(x[idx])
        return arr.dims(ctx)[0].value
    if not isinstance(arr, Value) or not isinstance(arr.type, ArrayType):
        ctx.unsupported(node, "len() of something that is not an array")
    return extent(ctx, arr, 0)


def extent(ctx: LoweringContext, arr: Value, axis: int) -> Value:
    """arr.shape[axis]: an array allocated in the kernel has the length it was allocated with
    (so a loop over it, e.g. in a prange body, has a range the tape can be sized by)."""
    owner = arr.owner
    if isinstance(owner, Op) and owner.name == "mem.alloc":
        return owner.operands[axis]
    return ctx.builder.op1("mem.shape", [arr], i64, {"axis": axis})


def bitcast(ctx: LoweringContext, arr: Value, node) -> Value:
    """a.view(np.int32): the same memory read as another dtype of the same width."""
    if len(node.args) != 1 or node.keywords:
        ctx.unsupported(node, "view() without exactly one dtype argument")
    dtype = construct.dtype_of(ctx, node.args[0])
    if dtype.bits != arr.type.dtype.bits or dtype.is_bool or arr.type.dtype.is_bool:
        ctx.unsupported(node, f"viewing a {arr.type.dtype.np_dtype} array as {dtype.np_dtype}",
                        "view as a dtype of the same width (float32 <-> int32, "
                        "float64 <-> int64)")
    t = ArrayType(dtype, arr.type.ndim, arr.type.layout)
    return ctx.builder.op1("mem.bitcast", [arr], t)


def call_kernel(ctx: LoweringContext, kernel, node):
    views: dict[Value, arrays.ArrayExpr] = {}
    args = kernel_arguments(ctx, kernel.py_func, node, views)
    check_declared_types(ctx, kernel, args, node)
    callee = ctx.program.function_for(kernel.py_func, [a.type for a in args],
                                      ctx.loc_of(node))
    attrs = {"callee": callee.name}
    if getattr(kernel, "is_custom", False):   # AD uses its rules, not its body (ad/custom.py)
        attrs["custom"] = callee.name
        ctx.program.module.rules[callee.name] = kernel
    written = may_write(callee) if views else set()
    if views:
        refuse_copied_view_aliases(ctx, kernel.py_func, args, views, written, node)
    op = ctx.builder.op("func.call", args, list(callee.result_types), attrs)
    for k, a in enumerate(args):
        if k in written and a in views:
            write_back(ctx, views[a], a, node)
    if not op.results:
        return None
    return op.results[0] if len(op.results) == 1 else tuple(op.results)


def view_base(e: arrays.ArrayExpr) -> Value:
    """The array a view expression (numpy_view) shows."""
    while isinstance(e, (linalg.Transposed, arrays.Flipped)):
        e = e.inner
    return e.arr if isinstance(e, arrays.Ref) else e.base


def refuse_copied_view_aliases(ctx: LoweringContext, py_func, args, views, written,
                               node) -> None:
    """A view hpcad passes as a copy (a slice with a step, a transpose, np.flip: `views`)
    of an array that another argument of the same call shows too, where the callee writes
    either: in NumPy the callee sees its writes through one in the other at once; the copy
    would not (`smooth(z, z[::-1])` read z's old elements). Refused."""
    names = list(inspect.signature(py_func).parameters)
    def memory(a):
        return arrays.root(view_base(views[a]) if a in views else a)
    for k, a in enumerate(args):
        if a not in views:
            continue
        for j, b in enumerate(args):
            if j != k and isinstance(b, Value) and isinstance(b.type, ArrayType) and \
                    (k in written or j in written) and memory(b) is memory(a):
                ctx.unsupported(node, f"calling kernel '{py_func.__name__}' with '{names[k]}' a "
                                      f"slice with a step, a transpose or np.flip of an array "
                                      f"that '{names[j]}' shows too, where the kernel writes "
                                      f"'{names[k if k in written else j]}'",
                                "hpcad passes such a view as a copy, which would not see the "
                                "call's writes through the other argument; pass the array "
                                "once and index it in the kernel, or pass a copy "
                                "(e.g. z[::-1].copy())")


def may_write(fn) -> set[int]:
    """Positions of fn's array arguments it may write: those whose memory a store (or a call)
    in its body reaches; every array argument where a write reaches memory of unknown
    origin (an array carried by a loop, returned by a call)."""
    roots = {arrays.root(a) for o in walk(fn.body) for a in writes(o)}
    if any(r not in fn.args and not (isinstance(r.owner, Op) and r.owner.name == "mem.alloc")
           for r in roots):
        return {k for k, a in enumerate(fn.args) if isinstance(a.type, ArrayType)}
    return {k for k, a in enumerate(fn.args) if a in roots}


def write_back(ctx: LoweringContext, view: arrays.ArrayExpr, arr: Value, node) -> None:
    """A kernel called on a view hpcad passes as a copy (a slice with a step, a transpose,
    np.flip) wrote into that copy: store it back into the viewed elements, so that the call
    writes what NumPy's view would have (`scale(y[::2], c)` scales every other element of
    y)."""
    src: arrays.ArrayExpr = arrays.Ref(arr)
    inner = view
    while isinstance(inner, (linalg.Transposed, arrays.Flipped)):
        src = linalg.Transposed(src, None) if isinstance(inner, linalg.Transposed) else \
            arrays.Flipped(src)
        inner = inner.inner
    if isinstance(inner, arrays.Ref):
        inner = arrays.whole(ctx, inner.arr)
    if not isinstance(inner, arrays.Sliced) or any(a[0] == "n" for a in inner.axes):
        ctx.unsupported(node, "passing this array expression to a kernel that writes it",
                        "pass a named array or a slice of one")
    arrays.fill(ctx, inner, src, node)


def kernel_arguments(ctx: LoweringContext, py_func, node,
                     views: dict | None = None) -> list[Value]:
    """The callee's arguments in parameter order, bound as Python binds a call:
    positional, then keywords, then the parameters' defaults. An array expression is
    passed as a new array; where it is a view in NumPy (a slice with a step, a transpose,
    np.flip), `views` gets that array -> the expression, for call_kernel's write-back."""
    if any(isinstance(a, ast.Starred) for a in node.args) or \
            any(kw.arg is None for kw in node.keywords):
        ctx.unsupported(node, "*args or **kwargs in a call to a kernel",
                        "pass the arguments by position or by name")
    def argument(a):     # an array expression is passed as a new array, as NumPy would
        v = ctx.expr(a)
        if not isinstance(v, arrays.ArrayExpr):
            return v
        arr = arrays.as_array_value(ctx, v, a)
        if views is not None and numpy_view(v):
            views[arr] = v
        return arr
    given = [(a, argument(a)) for a in node.args]
    named = {kw.arg: (kw.value, argument(kw.value)) for kw in node.keywords}
    signature = inspect.signature(py_func)
    try:
        bound = signature.bind(*given, **named)
    except TypeError as e:
        file, line = ctx.program.def_loc(py_func)
        ctx.type_error(node, f"call of kernel '{py_func.__name__}{signature}' (defined at "
                             f"{file}:{line}): {e}")
    args = []
    for name, param in signature.parameters.items():
        arg_node, v = bound.arguments[name] if name in bound.arguments else \
            (node, ctx.wrap_static(param.default, node))
        if isinstance(getattr(v, "obj", None), np.ndarray):
            ctx.unsupported(arg_node, f"passing the array `{ast.unparse(arg_node)}` from "
                                      f"outside the kernel (a global, or a variable of the "
                                      f"function that made it: numba freezes it as a "
                                      f"constant) as argument '{name}' of kernel "
                                      f"'{py_func.__name__}'",
                            "pass it to the kernel as an array argument")
        if not isinstance(v, Value):
            ctx.unsupported(arg_node, f"passing {words.value(getattr(v, 'obj', v))} "
                                      f"as argument '{name}' of kernel "
                                      f"'{py_func.__name__}'",
                            "kernel arguments are numbers and arrays")
        args.append(v)
    return args


def numpy_view(e: arrays.ArrayExpr) -> bool:
    """Whether NumPy would give this array expression as a view of an array's memory."""
    while isinstance(e, (linalg.Transposed, arrays.Flipped)):
        e = e.inner
    return isinstance(e, (arrays.Sliced, arrays.Ref))


# intrinsic functions (intrinsics.py) -> the rule lowering a call of one
INTRINSICS = [(intr.UNARY_MATH, elementwise_call(1, unary_math)),
              (intr.INT_ROUNDING, elementwise_call(1, int_rounding)),
              (intr.ABS, elementwise_call(1, absolute)), (intr.MIN, call_minmax),
              (intr.MAX, call_minmax), (intr.POW, elementwise_call(2, power)),
              (intr.BINARY_MATH, elementwise_call(2, binary_math)),
              (intr.FLOAT_CLASS, elementwise_call(1, float_class)),
              (intr.WHERE, elementwise_call(3, where)),
              (intr.CLIP, elementwise_call(3, clip)), (intr.SIGN, elementwise_call(1, sign)),
              (intr.SQUARE, elementwise_call(1, square)),
              (intr.LOGICAL_NOT, elementwise_call(1, logical)),
              (intr.LOGICAL_BINARY, elementwise_call(2, logical)),
              (intr.CASTS, elementwise_call(1, cast)), ({builtins.len}, call_len),
              (intr.ROUND, call_round), (intr.NP_ROUND, call_np_round),
              (intr.TRUNC, elementwise_call(1, trunc)), (linalg.FUNCTIONS, linalg.call),
              *linalg.INTRINSICS, ({np.interp}, library.call_interp),
              ({np.cov}, library.call_cov), ({np.sort}, library.call_sort),
              ({np.argsort}, library.call_argsort), ({np.median}, library.call_median),
              ({np.searchsorted}, library.call_searchsorted), ({np.trace}, library.call_trace),
              ({np.bincount}, library.call_bincount),
              (intr.UFUNC_OPERATORS, elementwise_call(2, ufunc_operator)),
              (intr.UFUNC_COMPARISONS, elementwise_call(2, ufunc_comparison)),
              (intr.NEGATIVE, elementwise_call(1, negative)), (intr.DIVMOD, call_divmod),
              *construct.INTRINSICS, *reductions.INTRINSICS]

# the rules that read keyword arguments themselves (dtype=, axis=, ...)
TAKE_KEYWORDS = {rule for _, rule in [*construct.INTRINSICS, *reductions.INTRINSICS]} | {
    call_np_round, call_user_function, library.call_interp, library.call_cov,
    library.call_sort, library.call_argsort, library.call_median,
    library.call_searchsorted, library.call_trace, library.call_bincount}

# array method name -> the rule lowering a.name(...) (the array or array expression, the call)
ARRAY_METHODS = {**construct.METHODS, **reductions.METHODS, **linalg.METHODS,
                 **library.METHODS}

# expression kind -> its rule (LoweringContext.expr)
EXPRESSIONS = {
    ast.Constant: expr_constant,
    ast.Name: expr_name,
    ast.Tuple: expr_tuple,
    ast.BinOp: expr_binop,
    ast.UnaryOp: expr_unaryop,
    ast.Compare: expr_compare,
    ast.BoolOp: expr_boolop,
    ast.IfExp: expr_ifexp,
    ast.Subscript: expr_subscript,
    ast.Attribute: expr_attribute,
    ast.Call: expr_call,
    ast.List: mpi.request_list,   # a list of MPI requests only
    ast.Lambda: closures.expr_lambda,
}


def _no_rule_hint(obj) -> str:
    """What to do about a call hpcad has no rule for: random numbers are drawn before the
    kernel; a numba.njit function is made a kernel instead; a Python function can be a
    kernel; a ufunc's unbuffered `at` is a loop of accumulations."""
    owner = getattr(obj, "__self__", None)
    if (getattr(obj, "__module__", None) or "").startswith("numpy.random") or \
            isinstance(owner, (random.Random, np.random.Generator, np.random.RandomState)):
        return ("random numbers are not drawn inside hpcad kernels (a derivative must see the "
                "numbers the kernel saw): draw them before the call, "
                "`z = np.random.default_rng(seed).standard_normal((n, m))`, and pass the array "
                "as an argument")
    if type(obj).__name__ == "DUFunc" and type(obj).__module__.startswith("numba."):
        return ("it is a @numba.vectorize ufunc, which hpcad does not inline: decorate its "
                "scalar function with @numba.njit (or @hpcad.kernel) instead and call it on "
                "the elements in a loop, `for i in range(x.shape[0]): out[i] = f(x[i])`")
    if hasattr(obj, "py_func") and hasattr(obj, "signatures"):
        return ("it is compiled by numba (@numba.njit), and hpcad cannot see inside compiled "
                "code: decorate the Python function with @hpcad.kernel instead (hpcad compiles "
                "it with numba itself)")
    if getattr(obj, "__module__", None) == "cmath":
        return ("kernels compute real numbers: carry the real and imaginary parts as two "
                "floats (cmath.exp(1j * t) is math.cos(t) + 1j * math.sin(t))")
    known = words.FUNCTIONS.get(f"{getattr(obj, '__module__', None)}."
                                f"{getattr(obj, '__name__', None)}")
    if known is not None:
        return known
    if getattr(obj, "__name__", None) == "<lambda>":
        return ("define it with `def` (hpcad inlines a function of your code from its "
                "source, which a lambda shares with the line around it)")
    if callable(obj) and hasattr(obj, "__code__"):
        return ("it is a function of an installed library, which hpcad does not inline: "
                "write what it computes in the kernel, or in a function of your own")
    if isinstance(getattr(obj, "__self__", None), np.ufunc) and obj.__name__ == "at":
        return ("write it as a loop over the indices, for np.add.at(out, idx, x): "
                "`for i in range(idx.shape[0]): out[idx[i]] += x[i]` (repeated indices "
                "accumulate, as with np.add.at)")
    return "see the supported-construct list in the README"
