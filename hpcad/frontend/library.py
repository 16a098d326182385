"""NumPy functions that hpcad writes as Python functions with loops, inlined where a kernel
calls them as a call of another kernel is (`inline`): they compile, parallelize and
differentiate as any kernel code does, with no rule of their own. The `ok` result of each
that can be given invalid input says whether it was valid; the call site checks it
(`rt.assert`) so that an error names the user's line. np.linalg.cholesky (linalg.py),
np.linalg.solve, inv, det and slogdet (linalg.py, on `lu_factor`), np.interp (`call_interp`),
np.searchsorted (`call_searchsorted`), np.bincount (`call_bincount`), np.trace (`call_trace`),
np.cov (`call_cov`), and the sorts (`call_sort`, `call_argsort`, `call_median`, the methods
a.sort() and a.argsort()): one merge sort of indices, `stable_order`."""
from __future__ import annotations

import ast
import math
from typing import TYPE_CHECKING

import numpy as np

from ..ir.core import Value
from ..ir.types import ScalarType, f64, i64
from . import arrays
from .markers import InlinedFunction

if TYPE_CHECKING:
    from .context import LoweringContext


def inline(ctx: LoweringContext, py_func, args: list[Value], node) -> tuple[Value, ...]:
    """The results of py_func(*args), lowered as a kernel and called (inlined later)."""
    callee = ctx.program.function_for(py_func, [a.type for a in args], ctx.loc_of(node))
    return tuple(ctx.builder.op("func.call", args, list(callee.result_types),
                                {"callee": callee.name}).results)


def cholesky(a):
    """The lower-triangular L with L @ L.T == a, for a symmetric positive definite a, from
    its lower triangle (LAPACK's potrf reads that triangle too); and whether every pivot
    was positive."""
    n = a.shape[0]
    factor = np.zeros((n, n), a.dtype)
    positive = True
    for j in range(n):
        s = a[j, j]
        for k in range(j):
            s -= factor[j, k] * factor[j, k]
        positive = positive and s > 0.0
        d = math.sqrt(s) if s > 0.0 else 1.0
        factor[j, j] = d
        for i in range(j + 1, n):
            t = a[i, j]
            for k in range(j):
                t -= factor[i, k] * factor[j, k]
            factor[i, j] = t / d
    return factor, positive


# -- LU: np.linalg.solve, inv, det, slogdet (linalg.py) ------------------------------------
# For a fixed order of pivots the LU formulas below are rational functions of the matrix equal
# to A^-1 b and det(A) wherever the pivots are nonzero, so the derivative of the loops is the
# true derivative, also where two pivot candidates tie (either order is such a formula); the
# comparisons that choose the pivots carry no derivative.
def lu_factor(a):
    """The LU factorization with partial pivoting of a copy of a square matrix, as LAPACK's
    getrf: at step k the row of the first largest magnitude in column k (LAPACK's idamax)
    is swapped into row k; L's multipliers below the diagonal, U on and above it. Returns
    (lu, perm, sign, singular, finite): row i of lu is row perm[i] of the matrix (with its
    columns permuted where `singular`), sign is the permutations' sign (+1.0 or -1.0),
    singular whether a column below the diagonal was all zero (LAPACK's info > 0: a zero
    pivot), finite whether every element of `a` was. Where a column is all zero, the first
    later column with a nonzero element there is swapped into its place (and the zero
    column last), so that only the last pivot is zero unless the matrix has rank n - 2 or
    less: its determinant's derivative is then the product's (its other pivots are nonzero),
    or zero (two zero pivots), as the adjugate's."""
    n = a.shape[0]
    lu = np.empty((n, n), a.dtype)
    perm = np.empty(n, np.int64)
    finite = True
    for i in range(n):
        perm[i] = i
        for j in range(n):
            v = a[i, j]
            finite = finite and math.isfinite(v)
            lu[i, j] = v
    sign = 1.0
    singular = False
    for k in range(n):
        p, big = largest_below(lu, k, k)
        c = k
        if big == 0.0:
            singular = True
            c = next_nonzero_column(lu, k)
            p, big = largest_below(lu, k, c)
        if c != k:
            sign = -sign
        for i in range(n):   # c == k (no swap) unless the column was all zero
            t = lu[i, k]
            lu[i, k] = lu[i, c]
            lu[i, c] = t
        if p != k:
            sign = -sign
        q = perm[k]
        perm[k] = perm[p]
        perm[p] = q
        for j in range(n):   # p == k: no swap
            t = lu[k, j]
            lu[k, j] = lu[p, j]
            lu[p, j] = t
        pivot = lu[k, k]
        d = pivot if pivot != 0.0 else 1.0   # a zero pivot: the column below is zero too
        for i in range(k + 1, n):
            f = lu[i, k] / d
            lu[i, k] = f
            for j in range(k + 1, n):
                lu[i, j] -= f * lu[k, j]
    return lu, perm, sign, singular, finite


lu_factored = InlinedFunction(lu_factor)


def _largest_below(lu, k, c):
    """The first row i >= k of the largest |lu[i, c]| (LAPACK's idamax), and that
    magnitude."""
    p = k
    big = abs(lu[k, c])
    for i in range(k + 1, lu.shape[0]):
        m = abs(lu[i, c])
        if m > big:
            big = m
            p = i
    return p, big


def _next_nonzero_column(lu, k):
    """The first column after k with a nonzero element in row k or below; k if none."""
    n = lu.shape[0]
    c = k
    for j in range(k + 1, n):
        for i in range(k, n):
            if c == k and lu[i, j] != 0.0:
                c = j
    return c


largest_below = InlinedFunction(_largest_below)
next_nonzero_column = InlinedFunction(_next_nonzero_column)


def _lu_solve_columns(lu, perm, b, x):
    """x = A^-1 b for the columns of a matrix b, from A's factors (lu_factor): forward
    substitution with L (unit diagonal) of the permuted rows, back substitution with U."""
    n = lu.shape[0]
    m = b.shape[1]
    for i in range(n):
        src = perm[i]
        for c in range(m):
            x[i, c] = b[src, c]
        for j in range(i):
            f = lu[i, j]
            for c in range(m):
                x[i, c] -= f * x[j, c]
    for s in range(n):
        r = n - 1 - s
        for j in range(r + 1, n):
            f = lu[r, j]
            for c in range(m):
                x[r, c] -= f * x[j, c]
        u = lu[r, r]
        d = u if u != 0.0 else 1.0   # singular: the caller stops the kernel
        for c in range(m):
            x[r, c] = x[r, c] / d


lu_solve_columns = InlinedFunction(_lu_solve_columns)


def solve_vector(a, b):
    """np.linalg.solve(a, b) of a vector b: x with a @ x == b; whether `a` was nonsingular
    and whether a and b were finite."""
    n = a.shape[0]
    lu, perm, _, singular, finite = lu_factored(a)
    x = np.empty(n, a.dtype)
    for i in range(n):
        s = b[perm[i]]
        finite = finite and math.isfinite(b[i])
        for j in range(i):
            s -= lu[i, j] * x[j]
        x[i] = s
    for t in range(n):
        r = n - 1 - t
        s = x[r]
        for j in range(r + 1, n):
            s -= lu[r, j] * x[j]
        u = lu[r, r]
        x[r] = s / (u if u != 0.0 else 1.0)   # singular: the caller stops the kernel
    return x, not singular, finite


def solve_matrix(a, b):
    """np.linalg.solve(a, b) of a matrix b (one system per column), as solve_vector."""
    lu, perm, _, singular, finite = lu_factored(a)
    for i in range(b.shape[0]):
        for c in range(b.shape[1]):
            finite = finite and math.isfinite(b[i, c])
    x = np.empty((a.shape[0], b.shape[1]), a.dtype)
    lu_solve_columns(lu, perm, b, x)
    return x, not singular, finite


def inverse(a):
    """np.linalg.inv(a): the solve of a with the identity's columns; whether `a` was
    nonsingular and finite."""
    n = a.shape[0]
    lu, perm, _, singular, finite = lu_factored(a)
    eye = np.zeros((n, n), a.dtype)
    for i in range(n):
        eye[i, i] = 1.0
    x = np.empty((n, n), a.dtype)
    lu_solve_columns(lu, perm, eye, x)
    return x, not singular, finite


def determinant(a):
    """np.linalg.det(a), float64 as numba's: the product of U's diagonal times the
    permutations' sign (0 where a pivot is zero, with no error, as LAPACK's); whether `a`
    was finite."""
    lu, _, sign, singular, finite = lu_factored(a)
    det = sign
    for k in range(a.shape[0]):
        det = det * lu[k, k]
    if singular:
        det = det + 0.0   # +0.0 as numba's (a zero pivot returns 0), not -0.0 from the sign
    return det, finite


def sign_log_determinant(a):
    """np.linalg.slogdet(a) as numba's: (sign, log of |det|) in float64, (0.0, -inf) where
    a pivot is zero; whether `a` was finite."""
    lu, _, sign, singular, finite = lu_factored(a)
    total = 0.0
    for k in range(a.shape[0]):
        u = lu[k, k]
        if u < 0.0:
            sign = -sign
        total += math.log(abs(u) if u != 0.0 else 1.0)
    if singular:
        sign = 0.0
        total = -math.inf
    return sign, total, finite


def matrix_norm_sums(a, by_rows, largest):
    """numba's np.linalg.norm(a, ord) of a matrix for ord=1 (the largest sum of |a| over a
    column), -1 (the smallest), np.inf (the largest over a row) and -np.inf (the smallest),
    in float64: 0.0 for an empty matrix (where NumPy may raise), a NaN sum passed over as
    numba's comparisons pass it (the largest float64 where every sum is NaN and the
    smallest is asked for); the derivative goes to the first extreme sum's elements."""
    m = a.shape[0]
    n = a.shape[1]
    outer = m if by_rows else n
    inner = n if by_rows else m
    best = 0.0 if largest else 1.7976931348623157e308
    if m == 0 or n == 0:
        return 0.0
    for i in range(outer):
        total = 0.0
        for j in range(inner):
            r = i if by_rows else j
            c = j if by_rows else i
            total += abs(a[r, c])
        if (total > best) if largest else (total < best):
            best = total
    return best


def _interp_point(x, xp, fp):
    """NumPy's (and numba's) np.interp at one point: fp[0] left of xp[0], fp[-1] right of
    xp[-1], fp[j] at a sample point, else the line through the bracketing samples (j the
    last sample at or left of x), from the right sample where that from the left is NaN."""
    n = xp.shape[0]
    if n == 1:
        return fp[0]
    if x > xp[n - 1]:
        return fp[n - 1]
    if x < xp[0]:
        return fp[0]
    lo = 0
    hi = n - 1
    for _ in range(int(math.log2(n)) + 2):   # bisection, bounded: no tape of a while loop
        if hi - lo > 1:
            mid = (lo + hi) // 2
            if xp[mid] <= x:
                lo = mid
            else:
                hi = mid
    if x == xp[n - 1]:
        return fp[n - 1]
    if xp[lo] == x:
        return fp[lo]
    slope = (fp[lo + 1] - fp[lo]) / (xp[lo + 1] - xp[lo])
    r = slope * (x - xp[lo]) + fp[lo]
    if math.isnan(r):
        r = slope * (x - xp[lo + 1]) + fp[lo + 1]
        if math.isnan(r) and fp[lo] == fp[lo + 1]:
            r = fp[lo]
    return r


interp_point = InlinedFunction(_interp_point)


def interp_scalar(x, xp, fp):
    """np.interp of one point, and whether the samples were valid."""
    ok = xp.shape[0] > 0 and xp.shape[0] == fp.shape[0]
    return (interp_point(x, xp, fp) if ok else 0.0), ok


def interp_array(x, xp, fp):
    """np.interp of a vector of points, and whether the samples were valid."""
    out = np.empty(x.shape[0])
    ok = xp.shape[0] > 0 and xp.shape[0] == fp.shape[0]
    if ok:
        for i in range(x.shape[0]):
            out[i] = interp_point(x[i], xp, fp)
    return out, ok


def call_interp(ctx: LoweringContext, obj, node):
    """np.interp(x, xp, fp) of a number or a vector x, with vectors xp (increasing, as NumPy
    assumes and does not check) and fp of the same length: float64 values."""
    if len(node.args) != 3 or node.keywords:
        ctx.unsupported(node, "np.interp with left=, right=, period= or other than three "
                              "arguments", "write np.interp(x, xp, fp) and clip the ends "
                                           "with np.where if needed")
    x = ctx.expr(node.args[0])
    samples = []
    for n in node.args[1:]:
        v = arrays.as_array_value(ctx, ctx.expr(n), n)
        if v.type.ndim != 1:
            ctx.unsupported(n, f"np.interp with a {v.type.ndim}-D array of samples",
                            "pass vectors xp and fp")
        samples.append(v)
    if arrays.is_array(x):
        xs = arrays.as_array_value(ctx, x, node)
        if xs.type.ndim != 1:
            ctx.unsupported(node, f"np.interp at a {xs.type.ndim}-D array of points",
                            "interpolate its flattened copy (x.ravel()) and reshape")
        args, fn = [xs, *samples], interp_array
    else:
        args, fn = [ctx.scalar(x, node), *samples], interp_scalar
    args = [_as_f64(ctx, a, node) for a in args]
    value, ok = inline(ctx, fn, args, node)
    ctx.runtime_check(ok, "np.interp: the sample points are empty, or xp and fp differ in "
                          "length", node)
    return value


def sole_array(ctx: LoweringContext, node, what: str, ndim: int, alone: str,
               other_ndim: str) -> Value:
    """The one array argument of a library call `what(a)`, of `ndim` dimensions: other
    arguments are refused saying `alone`, an array of another rank saying `other_ndim`."""
    if len(node.args) != 1 or node.keywords:
        ctx.unsupported(node, f"{what} with these arguments", alone)
    arr = arrays.as_array_value(ctx, ctx.expr(node.args[0]), node)
    if arr.type.ndim != ndim:
        ctx.unsupported(node, f"{what} of a {arr.type.ndim}-D array", other_ndim)
    return arr


def _as_f64(ctx: LoweringContext, v: Value, node) -> Value:
    """v as float64 (NumPy interpolates in float64): a number converted, an array copied."""
    if isinstance(v.type, ScalarType):
        return ctx.coerce(v, f64)
    return arrays.converted(ctx, v, f64, node)


def _search_left(a, v):
    """NumPy's (and numba's) np.searchsorted(a, v, side='left') of a sorted vector: the
    first index whose element is not below v, NaN sorting after every number (a bisection
    bounded by the length: no while loop for a derivative to tape)."""
    lo = 0
    hi = a.shape[0]
    for _ in range(int(math.log2(hi + 1)) + 2):
        if lo < hi:
            mid = lo + ((hi - lo) >> 1)
            m = a[mid]
            if m < v or (v != v and m == m):
                lo = mid + 1
            else:
                hi = mid
    return lo


def _search_right(a, v):
    """np.searchsorted(a, v, side='right'): the first index whose element is above v."""
    lo = 0
    hi = a.shape[0]
    for _ in range(int(math.log2(hi + 1)) + 2):
        if lo < hi:
            mid = lo + ((hi - lo) >> 1)
            if v != v or a[mid] <= v:
                lo = mid + 1
            else:
                hi = mid
    return lo


search_left, search_right = InlinedFunction(_search_left), InlinedFunction(_search_right)


def searchsorted_left(a, v):
    return search_left(a, v)


def searchsorted_right(a, v):
    return search_right(a, v)


def searchsorted_left_array(a, v):
    out = np.empty(v.shape[0], np.int64)
    for i in range(v.shape[0]):
        out[i] = search_left(a, v[i])
    return out


def searchsorted_right_array(a, v):
    out = np.empty(v.shape[0], np.int64)
    for i in range(v.shape[0]):
        out[i] = search_right(a, v[i])
    return out


def call_searchsorted(ctx: LoweringContext, obj, node) -> Value:
    """np.searchsorted(a, v, side='left') of a sorted vector `a` (sorted as NumPy assumes and
    does not check) and a number or a vector `v`: an int64 index or vector of them."""
    side = "left"
    args = list(node.args)
    if len(args) == 3:
        side_node = args.pop()
    else:
        side_node = None
    for k in node.keywords:
        if k.arg == "side" and side_node is None:
            side_node = k.value
        else:
            ctx.unsupported(node, f"np.searchsorted with {k.arg}=",
                            "sort the array before the call and search it without sorter=")
    if len(args) != 2:
        ctx.unsupported(node, "np.searchsorted with other than two arrays or numbers",
                        "write np.searchsorted(a, v) or np.searchsorted(a, v, side='right')")
    if side_node is not None:
        if not (isinstance(side_node, ast.Constant) and side_node.value in ("left", "right")):
            ctx.unsupported(node, "np.searchsorted with a side that is not 'left' or 'right' "
                                  "written out", "write side='left' or side='right'")
        side = side_node.value
    a = arrays.as_array_value(ctx, ctx.expr(args[0]), args[0])
    if a.type.ndim != 1:
        ctx.unsupported(args[0], f"np.searchsorted of a {a.type.ndim}-D array",
                        "search a vector (a row a[i] of a matrix, say)")
    v = ctx.expr(args[1])
    if arrays.is_array(v):
        vs = arrays.as_array_value(ctx, v, args[1])
        if vs.type.ndim != 1:
            ctx.unsupported(args[1], f"np.searchsorted of a {vs.type.ndim}-D array of values",
                            "search the values of its flattened copy (v.ravel()) and reshape")
        fn = searchsorted_left_array if side == "left" else searchsorted_right_array
        return inline(ctx, fn, [a, vs], node)[0]
    fn = searchsorted_left if side == "left" else searchsorted_right
    return inline(ctx, fn, [a, ctx.scalar(v, args[1])], node)[0]


def bincount_weighted(x, w, minlength):
    """np.bincount(x, w, minlength): w[i] added into bin x[i], bins 0 to the larger of
    max(x) and minlength - 1; and whether x has no negative value, w x's length and
    minlength is not negative (NumPy's ValueErrors)."""
    n = minlength
    ok = minlength >= 0 and x.shape[0] == w.shape[0]
    for i in range(x.shape[0]):
        if x[i] < 0:
            ok = False
        elif x[i] >= n:
            n = x[i] + 1
    out = np.zeros(max(n, 0))
    for i in range(min(x.shape[0], w.shape[0])):   # no loop in a branch: a prange body's
        if x[i] >= 0:                              # tape is sized by this range
            out[x[i]] += w[i]
    return out, ok


def bincount_counts(x, minlength):
    """np.bincount(x, minlength=minlength): how many times each of 0 to the larger of max(x)
    and minlength - 1 occurs in x; and whether x has no negative value and minlength is not
    negative."""
    n = minlength
    ok = minlength >= 0
    for i in range(x.shape[0]):
        if x[i] < 0:
            ok = False
        elif x[i] >= n:
            n = x[i] + 1
    out = np.zeros(max(n, 0), np.int64)
    for i in range(x.shape[0]):
        if x[i] >= 0:
            out[x[i]] += 1
    return out, ok


def call_bincount(ctx: LoweringContext, obj, node) -> Value:
    """np.bincount(x, weights=None, minlength=0) of a vector of integers, as numba takes it:
    int64 counts, or float64 sums of the weights (a vector of x's length), through
    `bincount_counts` and `bincount_weighted`; the derivative of the sums gathers the bins'
    cotangents into the weights."""
    names = ("x", "weights", "minlength")
    if len(node.args) > 3:
        ctx.unsupported(node, "np.bincount with more than three arguments",
                        "write np.bincount(x, weights=None, minlength=0)")
    given = dict(zip(names, node.args))
    for kw in node.keywords:
        if kw.arg not in names or kw.arg in given:
            ctx.unsupported(kw.value, f"the keyword `{kw.arg}=` of np.bincount",
                            "write np.bincount(x, weights=None, minlength=0)")
        given[kw.arg] = kw.value
    if "x" not in given:
        ctx.unsupported(node, "np.bincount without the values to count",
                        "write np.bincount(x)")
    x = arrays.as_array_value(ctx, ctx.expr(given["x"]), given["x"])
    if x.type.ndim != 1 or not x.type.dtype.is_int:
        ctx.unsupported(given["x"], "np.bincount of other than a vector of integers",
                        "count a 1-D integer array (x.ravel().astype(np.int64))")
    x = arrays.converted(ctx, x, i64, node)
    weights = given.get("weights")
    if isinstance(weights, ast.Constant) and weights.value is None:
        weights = None
    minlength = ctx.coerce(ctx.scalar(ctx.expr(given["minlength"]), given["minlength"]), i64) \
        if "minlength" in given else ctx.const(0, i64)
    if weights is None:
        out, ok = inline(ctx, bincount_counts, [x, minlength], node)
        what = "np.bincount: a negative value to count, or a negative minlength"
    else:
        w = arrays.as_array_value(ctx, ctx.expr(weights), weights)
        if w.type.ndim != 1:
            ctx.unsupported(weights, "np.bincount with weights that are not a vector",
                            "pass one weight per value, a vector of x's length")
        out, ok = inline(ctx, bincount_weighted, [x, _as_f64(ctx, w, node), minlength], node)
        what = ("np.bincount: a negative value to count, weights of another length than "
                "the values, or a negative minlength")
    ctx.runtime_check(ok, what, node)
    return out


def trace(a, k):
    """numba's np.trace(a, offset=k): the sum of a's k-th diagonal, started from the
    integer 0 as numba's is (so a float32 matrix sums in float64)."""
    rows = a.shape[0]
    cols = a.shape[1]
    if k < 0:
        rows = rows + k
    if k > 0:
        cols = cols - k
    n = max(min(rows, cols), 0)
    ret = 0
    if k >= 0:
        for i in range(n):
            ret += a[i, k + i]
    else:
        for i in range(n):
            ret += a[i - k, i]
    return ret


def call_trace(ctx: LoweringContext, obj, node) -> Value:
    """np.trace(a) or np.trace(a, offset) of a matrix, as numba computes it."""
    args = list(node.args)
    for kw in node.keywords:
        if kw.arg == "offset" and len(args) == 1:
            args.append(kw.value)
        else:
            ctx.unsupported(node, f"np.trace with {kw.arg}=", "write np.trace(a) or "
                                                              "np.trace(a, offset)")
    if len(args) not in (1, 2):
        ctx.unsupported(node, "np.trace with axis1, axis2, dtype or out",
                        "write np.trace(a) or np.trace(a, offset) of a matrix")
    a = arrays.as_array_value(ctx, ctx.expr(args[0]), args[0])
    if a.type.ndim != 2:
        ctx.unsupported(args[0], f"np.trace of a {a.type.ndim}-D array",
                        "pass a matrix (sum the diagonal of each slice in a loop)")
    k = ctx.scalar(ctx.expr(args[1]), args[1]) if len(args) == 2 else ctx.const(0, i64)
    if k.type != i64:
        if not k.type.is_int:
            ctx.unsupported(args[1], "np.trace with an offset that is not an integer",
                            "pass an integer offset")
        k = ctx.coerce(k, i64)
    return inline(ctx, trace, [a, k], node)[0]


def cov_rows(m):
    """np.cov(m) of a matrix whose rows are the variables: the centred rows' products over
    n - 1 observations, as numba's (the reciprocal multiplied)."""
    rows = m.shape[0]
    n = m.shape[1]
    centred = np.empty((rows, n))
    for i in range(rows):
        s = 0.0
        for j in range(n):
            s += m[i, j]
        mean = s / n
        for j in range(n):
            centred[i, j] = m[i, j] - mean
    product = centred @ centred.T
    return product * (1.0 / (n - 1))


def call_cov(ctx: LoweringContext, obj, node) -> Value:
    """np.cov(m) of a matrix (each row a variable, each column an observation)."""
    m = sole_array(ctx, node, "np.cov", 2, "pass the matrix alone, its rows the variables "
                   "(np.cov(a.T) for columns); no y, rowvar=, bias= or ddof=",
                   "pass a matrix whose rows are the variables")
    return inline(ctx, cov_rows, [_as_f64(ctx, m, node)], node)[0]


# -- sorting -----------------------------------------------------------------------------------
def stable_order(a):
    """The order of a vector's elements NumPy's stable sort gives (`np.argsort(a,
    kind="stable")`, NaN last), by a bottom-up merge sort of indices; and whether two
    elements compare equal (two NaN too), where an unstable sort may order them otherwise.
    Only integers move and only comparisons read `a`: a derivative flows through the
    gather `a[order[k]]` of the caller, none through this function."""
    n = a.shape[0]
    order = np.empty(n, np.int64)
    merged = np.empty(n, np.int64)
    for k in range(n):
        order[k] = k
    for p in range(63):
        width = 1 << p
        if width >= n:
            break
        for lo in range(0, n, 2 * width):
            mid = min(lo + width, n)
            hi = min(lo + 2 * width, n)
            i = lo
            j = mid
            for k in range(lo, hi):
                left = True
                if i >= mid:
                    left = False
                elif j < hi:
                    x = a[order[i]]
                    y = a[order[j]]
                    # the right one goes first only if it sorts strictly before (stable)
                    left = not (y < x or (x != x and y == y))
                if left:
                    merged[k] = order[i]
                    i += 1
                else:
                    merged[k] = order[j]
                    j += 1
        for k in range(n):
            order[k] = merged[k]
    tied = False
    for k in range(1, n):
        x = a[order[k - 1]]
        y = a[order[k]]
        if x == y or (x != x and y != y):
            tied = True
    return order, tied


sorted_order = InlinedFunction(stable_order)


def sort_vector(a):
    """np.sort of a vector: its elements gathered in sorted order."""
    n = a.shape[0]
    order, _ = sorted_order(a)
    out = np.empty(n, a.dtype)
    for k in range(n):
        out[k] = a[order[k]]
    return out


sort_values = InlinedFunction(sort_vector)


def median_vector(a):
    """np.median of a vector's elements: the middle one of the sorted elements, or the
    mean of the middle two; NaN if there is none (as numba's; NumPy's with a warning) or
    an element is NaN (sorted last; as NumPy's, where numba's skips it)."""
    n = a.shape[0]
    if n == 0:
        return math.nan
    order, _ = sorted_order(a)
    last = a[order[n - 1]]
    if last != last:
        return last
    h = n // 2
    if n % 2 == 1:
        return a[order[h]]
    return (a[order[h - 1]] + a[order[h]]) * 0.5


_SORT_KINDS = ("quicksort", "mergesort", "heapsort", "stable")


def _sort_arguments(ctx: LoweringContext, node, what: str, method_of=None):
    """The vector a sort call sorts (`np.sort(a)`, `a.sort()`) and its `kind=` (a string
    written in the call), refusing other arguments in the user's words."""
    allowed = {"kind"} if method_of is not None else {"kind", "axis"}
    for k in node.keywords:
        if k.arg not in allowed:
            ctx.unsupported(node, f"{what} with {k.arg}=")
    args = list(node.args)
    if method_of is None:
        if len(args) != 1:
            ctx.unsupported(node, f"{what} with {len(args)} positional arguments",
                            f"write {what}(a) of a vector")
        v = arrays.as_array_value(ctx, ctx.expr(args[0]), node)
    else:
        if args:
            ctx.unsupported(node, f"{what} with positional arguments", "name kind=")
        v = arrays.as_array_value(ctx, method_of, node)
    kw = {k.arg: k.value for k in node.keywords}
    if "axis" in kw and not (isinstance(kw["axis"], ast.Constant)
                             and kw["axis"].value in (-1, 0)):
        ctx.unsupported(node, f"{what} with axis={ast.unparse(kw['axis'])}",
                        "sort a vector (axis=-1 or 0)")
    kind = "quicksort"
    if "kind" in kw:
        if not (isinstance(kw["kind"], ast.Constant) and kw["kind"].value in _SORT_KINDS):
            ctx.unsupported(node, f"{what} with kind={ast.unparse(kw['kind'])}",
                            "write kind=\"mergesort\" or \"stable\" (or leave it out)")
        kind = kw["kind"].value
    if v.type.ndim != 1:
        ctx.unsupported(node, f"{what} of a {v.type.ndim}-D array",
                        "sort each row as a vector: `for i in range(m): out[i] = "
                        "np.sort(a[i])`")
    return v, kind


def call_sort(ctx: LoweringContext, obj, node) -> Value:
    """np.sort(a) of a vector: a new sorted vector (NaN last); its derivative reaches each
    element's place (at equal elements, the stable order's)."""
    v, _ = _sort_arguments(ctx, node, "np.sort")
    return inline(ctx, sort_vector, [v], node)[0]


def call_argsort(ctx: LoweringContext, obj, node) -> Value:
    """np.argsort(a) of a vector: the stable order (NaN last). NumPy's and numba's default
    quicksort may order equal elements otherwise, so without kind="mergesort"/"stable" two
    equal elements stop the kernel at the call's line rather than give an order that
    differs from numba's."""
    v, kind = _sort_arguments(ctx, node, "np.argsort")
    return _argsort(ctx, v, kind, node)


def _argsort(ctx: LoweringContext, v: Value, kind: str, node) -> Value:
    order, tied = inline(ctx, stable_order, [v], node)
    if kind not in ("mergesort", "stable"):
        ok = ctx.builder.op1("arith.not", [tied], tied.type)
        ctx.runtime_check(ok, "np.argsort: two elements are equal, and NumPy's default "
                              "sort (quicksort) may order equal elements either way; pass "
                              "kind=\"mergesort\" (stable: equal elements keep their order)",
                          node)
    return order


def sort_in_place(a):
    """a.sort() of a vector: the sorted copy stored back."""
    done = sort_values(a)
    for k in range(a.shape[0]):
        a[k] = done[k]


def method_sort(ctx: LoweringContext, arr, node) -> None:
    """a.sort() of a vector, in place."""
    v, _ = _sort_arguments(ctx, node, "a.sort", method_of=arr)
    inline(ctx, sort_in_place, [v], node)


def method_argsort(ctx: LoweringContext, arr, node) -> Value:
    v, kind = _sort_arguments(ctx, node, "a.argsort", method_of=arr)
    return _argsort(ctx, v, kind, node)


def call_median(ctx: LoweringContext, obj, node) -> Value:
    """np.median(a) of all of an array's elements (NumPy's axis=None), float64."""
    v = sole_array(ctx, node, "np.median", 1, "take the median of a vector alone, no axis=",
                   "take the median of a vector (a row: np.median(a[i]))")
    return inline(ctx, median_vector, [_as_f64(ctx, v, node)], node)[0]


METHODS = {"sort": method_sort, "argsort": method_argsort}
