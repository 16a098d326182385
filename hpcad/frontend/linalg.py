"""Linear algebra in kernels: `A @ B`, `np.matmul`, `np.dot`, `a.dot(b)`, `np.outer`, `.T`,
`np.transpose`, `np.linalg.cholesky`, `solve`, `inv`, `det` and `slogdet`. A product of
matrices and vectors is one
`linalg.matmul` op writing a fresh array (a BLAS call in the numba backend, a matrix product
again in its derivatives: ad/rules/linalg.py); the dot of two vectors is a sum loop, like any
reduction. A transpose is a lazy `Transposed` array expression: a product reads a transposed
array through the op's transpose flag (no copy), anything else reads its elements with the
indices swapped. Operands that are other array expressions are computed into arrays first.
The Cholesky factor
and the LU factorization (solve, inv, det, slogdet) are functions written with loops
(library.py), inlined as calls of kernels."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..ir.core import Value
from ..ir.types import ArrayType, f64, i1, i64, promote
from . import arrays, library

if TYPE_CHECKING:
    from .context import LoweringContext


class Transposed(arrays.ArrayExpr):
    """The transpose of an array expression (its axes reversed); `source` is the array Value
    it transposes, when it is one (a product then sets a flag instead of reading it)."""

    view_like = True   # NumPy binds a view; a name bound to one holds a copy (statements.py)

    def __init__(self, inner: arrays.ArrayExpr, source: Value | None):
        self.inner, self.source = inner, source
        self.dtype, self.ndim = inner.dtype, inner.ndim

    def dims(self, ctx):
        return self.inner.dims(ctx)[::-1]

    def one(self, axis):
        return self.inner.one(self.ndim - 1 - axis)

    def element(self, ctx, idx):
        return self.inner.element(ctx, list(idx)[::-1])

    def reads(self):   # never the positions a store into the inner array writes
        return [(arr, ("transposed", key)) for arr, key in self.inner.reads()]


def memory_transposed(v) -> bool:
    """Whether NumPy would lay an array expression of two or more axes out in Fortran order
    (a transpose, or an element-wise expression of one, which NumPy gives its operands'
    order): its memory order is not its index order."""
    return isinstance(v, arrays.ArrayExpr) and v.ndim >= 2 and any(
        isinstance(key, tuple) and key[:1] == ("transposed",) for _, key in v.reads())


def transpose(ctx: LoweringContext, v, node):
    """`v.T`, `np.transpose(v)`: a vector as it is, else the axes reversed (lazily)."""
    e = arrays.as_expr(ctx, v, node)
    if e is None:
        ctx.unsupported(node, "the transpose of a scalar")
    if isinstance(e, Transposed):
        return e.source if e.source is not None else e.inner
    if e.ndim == 1:
        return v
    return Transposed(e, v if isinstance(v, Value) else None)


def method_transpose(ctx: LoweringContext, v, node):
    """`v.transpose()`, as `v.T`; with axes (`v.transpose(1, 0)`) refused."""
    if node.args or node.keywords:
        ctx.unsupported(node, "`transpose` with axes", "write a.T, which reverses all axes")
    return transpose(ctx, v, node)


# array methods (expressions.ARRAY_METHODS)
METHODS = {"transpose": method_transpose}


def product(ctx: LoweringContext, a, b, node, what: str = "a matrix product (@)"):
    """a @ b for arrays of one or two dimensions: a scalar for two vectors, else a new
    array."""
    if not (arrays.is_array(a) and arrays.is_array(b)):
        ctx.unsupported(node, f"{what} with a scalar operand",
                        "multiply by a scalar with *")
    fused = _fused_product(ctx, a, b, node)
    if fused is not None:
        return fused
    (x, ta), (y, tb) = _operand(ctx, a, node, what), _operand(ctx, b, node, what)
    t = _float_type(x, y)
    x, y = arrays.converted(ctx, x, t, node), arrays.converted(ctx, y, t, node)
    rows, inner_a = _axes(ctx, x, ta, left=True)
    inner_b, cols = _axes(ctx, y, tb, left=False)
    _check_inner(ctx, inner_a, inner_b, node)
    if rows is None and cols is None:
        return _vector_dot(ctx, x, y, node)
    shape = [d.value for d in (rows, cols) if d is not None]
    out = ctx.builder.op1("mem.alloc", shape, ArrayType(t, len(shape), "C"), {"fill": "empty"})
    attrs = {k: True for k, flag in (("transpose_a", ta), ("transpose_b", tb)) if flag}
    ctx.builder.op("linalg.matmul", [x, y, out], [], attrs)
    return out


def dot(ctx: LoweringContext, a, b, node):
    """np.dot / a.dot(b): a product, or a scalar times an array."""
    if not (arrays.is_array(a) and arrays.is_array(b)):
        return arrays.elementwise(ctx, lambda c, vs: c.builder.op1(
            "arith.mul", *_promoted(c, vs)), [a, b], node)
    return product(ctx, a, b, node, "np.dot")


def method_dot(ctx: LoweringContext, base, node):
    """a.dot(b)."""
    if len(node.args) != 1 or node.keywords:
        ctx.unsupported(node, "a.dot() without exactly one argument", "write a.dot(b)")
    return dot(ctx, base, ctx.expr(node.args[0]), node)


def outer(ctx: LoweringContext, a, b, node):
    """np.outer of two vectors: a new matrix."""
    (x, _), (y, _) = _operand(ctx, a, node, "np.outer"), _operand(ctx, b, node, "np.outer")
    if x.type.ndim != 1 or y.type.ndim != 1:
        ctx.unsupported(node, "np.outer of arrays that are not 1-D",
                        "pass vectors, e.g. np.outer(a.ravel(), b.ravel())")
    t = _float_type(x, y)
    x, y = arrays.converted(ctx, x, t, node), arrays.converted(ctx, y, t, node)
    shape = [ctx.builder.op1("mem.shape", [v], i64, {"axis": 0}) for v in (x, y)]
    out = ctx.builder.op1("mem.alloc", shape, ArrayType(t, 2, "C"), {"fill": "empty"})
    ctx.builder.op("linalg.outer", [x, y, out], [])
    return out


def _fused_product(ctx: LoweringContext, a, b, node):
    """A product with a vector whose other operand is an element-wise expression
    (`(dx * w) @ mass`, `np.dot(x - y, x - y)`): one reduction nest reading the
    expression's elements, no temporary (a matrix-vector product is bound by memory, not
    by BLAS); None when both operands are arrays or both are matrices."""
    ea, eb = arrays.as_expr(ctx, a, node), arrays.as_expr(ctx, b, node)
    lazy = [isinstance(e, arrays.Map) or isinstance(e, Transposed) and e.source is None
            for e in (ea, eb)]
    if not any(lazy) or ea.ndim > 2 or eb.ndim > 2 or (ea.ndim == 2 and eb.ndim == 2):
        return None
    t = promote(ea.dtype, eb.dtype)
    t = t if t.is_float else f64
    da, db = ea.dims(ctx), eb.dims(ctx)
    _check_inner(ctx, da[-1], db[0], node)

    def summed(outer: list[Value]) -> Value:
        """sum over k of a[outer.., k] * b[k, outer..]"""
        def body(ivs, accs):
            k = ivs[0]
            x = ctx.coerce(ea.element(ctx, outer + [k] if ea.ndim == 2 else [k]), t)
            y = ctx.coerce(eb.element(ctx, [k] + outer if eb.ndim == 2 else [k]), t)
            return [ctx.builder.op1("arith.add", [accs[0], ctx.builder.op1(
                "arith.mul", [x, y], t)], t)]
        (total,) = arrays.loop_nest(ctx, [da[-1].value], body, node,
                                    carried=[ctx.const(0.0, t)], kinds=["add"])
        return total
    if ea.ndim == 1 and eb.ndim == 1:
        return summed([])
    length = da[0] if ea.ndim == 2 else db[1]
    out = ctx.builder.op1("mem.alloc", [length.value], ArrayType(t, 1, "C"), {"fill": "empty"})

    def row(ivs, accs):
        ctx.builder.op("mem.store", [summed(ivs), out, ivs[0]])
        return []
    arrays.loop_nest(ctx, [length.value], row, node)
    return out


def _promoted(ctx: LoweringContext, vs: list[Value]) -> tuple[list[Value], object]:
    t = promote(vs[0].type, vs[1].type)
    return [ctx.coerce(v, t) for v in vs], t


def _operand(ctx: LoweringContext, v, node, what: str) -> tuple[Value, bool]:
    """An operand as an array Value and whether the product reads it transposed."""
    if isinstance(v, Transposed) and v.source is not None and v.ndim == 2:
        return v.source, True
    arr = arrays.as_array_value(ctx, v, node)
    if arr.type.ndim > 2:
        ctx.unsupported(node, f"{what} of a {arr.type.ndim}-D array",
                        "multiply 2-D slices of it in a loop")
    return arr, False


def _float_type(x: Value, y: Value):
    t = promote(x.type.dtype, y.type.dtype)
    return t if t.is_float else f64


def _axes(ctx: LoweringContext, arr: Value, transposed: bool, left: bool):
    """(outer axis or None for a vector, inner axis) of a left operand; (inner, outer) of a
    right one. Axes are arrays.Dim (lengths known equal compare equal)."""
    dims = arrays.as_expr(ctx, arr, None).dims(ctx)
    if len(dims) == 1:
        return (None, dims[0]) if left else (dims[0], None)
    first, second = dims[::-1] if transposed else dims
    return first, second


def _check_inner(ctx: LoweringContext, a: arrays.Dim, b: arrays.Dim, node) -> None:
    if a.same(b):
        return
    same = ctx.builder.op1("arith.cmp", [a.value, b.value], i1, {"pred": "eq"})
    ctx.runtime_check(same, "matrix product of arrays whose inner axes have different "
                            "lengths (the left operand's last axis must be as long as the "
                            "right operand's first)", node)


def _vector_dot(ctx: LoweringContext, x: Value, y: Value, node) -> Value:
    """The sum of x[i] * y[i] (a reduction loop)."""
    n = ctx.builder.op1("mem.shape", [x], i64, {"axis": 0})
    t = x.type.dtype

    def body(ivs, accs):
        xi = ctx.builder.op1("mem.load", [x, ivs[0]], t)
        yi = ctx.builder.op1("mem.load", [y, ivs[0]], t)
        return [ctx.builder.op1("arith.add", [accs[0], ctx.builder.op1(
            "arith.mul", [xi, yi], t)], t)]
    (total,) = arrays.loop_nest(ctx, [n], body, node, carried=[ctx.const(0.0, t)],
                                kinds=["add"])
    return total


# function object -> how a call of it lowers: (ctx, argument values, node) -> value
FUNCTIONS = {
    np.matmul: lambda ctx, args, node: product(ctx, *args, node, "np.matmul"),
    np.dot: lambda ctx, args, node: dot(ctx, *args, node),
    np.outer: lambda ctx, args, node: outer(ctx, *args, node),
    np.transpose: lambda ctx, args, node: transpose(ctx, *args, node),
}
_ARITY = {np.matmul: 2, np.dot: 2, np.outer: 2, np.transpose: 1}


def _square_float(ctx: LoweringContext, arr: Value, what: str, node) -> arrays.Dim:
    """Refuses a matrix `arr` of integers or bools (numba's linear algebra takes float
    matrices only) and stops the kernel where it is not square; its number of rows."""
    if not arr.type.dtype.is_float:
        name = arr.type.dtype.np_dtype.name
        ctx.unsupported(node, f"{what} of a matrix of {name} (numba takes float matrices "
                              f"only)", "convert it first: a * 1.0")
    rows, cols = arrays.as_expr(ctx, arr, node).dims(ctx)
    square = ctx.builder.op1("arith.cmp", [rows.value, cols.value], i1, {"pred": "eq"})
    ctx.runtime_check(square, f"{what} of a matrix that is not square", node)
    return rows


def _sole_square_matrix(ctx: LoweringContext, node, what: str, each: str) -> Value:
    """The one argument of np.linalg's `what` (inv, det, slogdet): a square float matrix
    (_square_float); each: what to write for a stack of matrices."""
    arr = library.sole_array(ctx, node, what, 2, "pass the matrix alone",
                             f"{each} each 2-D matrix in a loop")
    _square_float(ctx, arr, what, node)
    return arr


def call_cholesky(ctx: LoweringContext, obj, node) -> Value:
    """np.linalg.cholesky(a) of a square float matrix: a call of `cholesky`, inlined."""
    arr = library.sole_array(ctx, node, "np.linalg.cholesky", 2,
                             "pass the matrix alone (the lower factor is returned)",
                             "factor each 2-D matrix in a loop")
    _square_float(ctx, arr, "np.linalg.cholesky", node)
    factor, positive = library.inline(ctx, library.cholesky, [arr], node)
    ctx.runtime_check(positive, "np.linalg.cholesky: the matrix is not positive definite",
                      node)
    return factor


def _finite_check(ctx: LoweringContext, finite: Value, what: str, node) -> None:
    ctx.runtime_check(finite, f"{what}: an element is inf or NaN (numba raises "
                              f"'Array must not contain infs or NaNs' here)", node)


def _singular_check(ctx: LoweringContext, nonsingular: Value, what: str, node) -> None:
    ctx.runtime_check(nonsingular, f"{what}: the matrix is singular (its LU factorization "
                                   f"has a zero pivot; numba raises 'Matrix is singular to "
                                   f"machine precision' here)", node)


def call_solve(ctx: LoweringContext, obj, node) -> Value:
    """np.linalg.solve(a, b) of a square float matrix and a vector or matrix b of its dtype
    (numba's rules): LU with partial pivoting and substitution (library.lu_factor), inlined;
    a singular matrix stops the kernel at the call's line, as numba raises there."""
    what = "np.linalg.solve"
    if len(node.args) != 2 or node.keywords:
        ctx.unsupported(node, f"{what} with these arguments", "write np.linalg.solve(a, b)")
    a, b = (arrays.as_array_value(ctx, ctx.expr(n), n) for n in node.args)
    if a.type.ndim != 2:
        ctx.unsupported(node, f"{what} of a {a.type.ndim}-D array",
                        "solve with each 2-D matrix in a loop")
    if b.type.ndim not in (1, 2):
        ctx.unsupported(node, f"{what} with a {b.type.ndim}-D right-hand side",
                        "pass a vector or a matrix (one system per column)")
    rows = _square_float(ctx, a, what, node)
    if b.type.dtype != a.type.dtype:
        ctx.unsupported(node, f"{what} of a matrix of {a.type.dtype.np_dtype.name} and a "
                              f"right-hand side of {b.type.dtype.np_dtype.name} (numba takes "
                              f"one dtype)", "convert the right-hand side: b.astype(a.dtype)")
    length = arrays.as_expr(ctx, b, node).dims(ctx)[0]
    if not rows.same(length):
        same = ctx.builder.op1("arith.cmp", [rows.value, length.value], i1, {"pred": "eq"})
        ctx.runtime_check(same, f"{what}: the right-hand side's first axis is not as long "
                                f"as the matrix's (numba: 'system is not dimensionally "
                                f"valid')", node)
    fn = library.solve_vector if b.type.ndim == 1 else library.solve_matrix
    x, nonsingular, finite = library.inline(ctx, fn, [a, b], node)
    _finite_check(ctx, finite, what, node)
    _singular_check(ctx, nonsingular, what, node)
    return x


def call_inv(ctx: LoweringContext, obj, node) -> Value:
    """np.linalg.inv(a) of a square float matrix: the solve with the identity's columns; a
    singular matrix stops the kernel at the call's line."""
    what = "np.linalg.inv"
    arr = _sole_square_matrix(ctx, node, what, "invert")
    x, nonsingular, finite = library.inline(ctx, library.inverse, [arr], node)
    _finite_check(ctx, finite, what, node)
    _singular_check(ctx, nonsingular, what, node)
    return x


def call_det(ctx: LoweringContext, obj, node) -> Value:
    """np.linalg.det(a) of a square float matrix, float64 as numba's: the product of the LU
    factor's pivots times the permutation's sign; 0 for a singular matrix, with no error."""
    what = "np.linalg.det"
    arr = _sole_square_matrix(ctx, node, what, "take the determinant of")
    det, finite = library.inline(ctx, library.determinant, [arr], node)
    _finite_check(ctx, finite, what, node)
    return det


def call_slogdet(ctx: LoweringContext, obj, node) -> tuple[Value, Value]:
    """np.linalg.slogdet(a) of a square float matrix: (sign, log of |det|), float64 as
    numba's; (0.0, -inf) for a singular matrix, with no error."""
    what = "np.linalg.slogdet"
    arr = _sole_square_matrix(ctx, node, what, "take the determinant of")
    sign, logabs, finite = library.inline(ctx, library.sign_log_determinant, [arr], node)
    _finite_check(ctx, finite, what, node)
    return sign, logabs


# np.linalg functions written with loops (library.py) -> their rules (expressions.INTRINSICS)
INTRINSICS = [({np.linalg.cholesky}, call_cholesky), ({np.linalg.solve}, call_solve),
              ({np.linalg.inv}, call_inv), ({np.linalg.det}, call_det),
              ({np.linalg.slogdet}, call_slogdet)]


def call(ctx: LoweringContext, obj, node):
    """The intrinsic rule of the functions in FUNCTIONS (frontend/expressions.py)."""
    if len(node.args) != _ARITY[obj] or node.keywords:
        ctx.unsupported(node, f"np.{obj.__name__} with these arguments",
                        f"pass {_ARITY[obj]} positional argument(s), no out= or axes=")
    return FUNCTIONS[obj](ctx, [ctx.expr(a) for a in node.args], node)
