"""NumPy array syntax in kernels, lowered to IR loop nests (never to calls into NumPy).

An array-valued expression is an `ArrayExpr`: a lazy description of its elements, nothing
computed until it is stored. Storing one (a slice assignment, a new name, a reduction)
emits one loop nest computing each element where it is needed, so a statement fuses into
one nest with no temporaries, and everything hpcad does to loops (activity, the planner,
parallel loops, width W, custom rules) applies unchanged.

- A slice read inside an expression is index arithmetic on its base array (`u[1:-1]` at i
  loads `u[i + 1]`), so the loop passes see a stencil, not a copy. Bound to a name, a
  unit-step slice is a view (`mem.view`), as in NumPy.
- Broadcasting follows NumPy: axes align on the right, an axis of static length 1
  (`np.newaxis`) repeats; any other two lengths must be equal, which is checked at run
  time unless they are known to be (the same array's axis with the same offset).
- `t = expr` allocates a new array (NumPy semantics); `a[...] = expr` and `a += expr` write
  in place, through a temporary only when the right side reads the target's memory at
  other positions (`a[1:] = a[:-1]`).
- In a kernel declared `@hpcad.kernel(parallel=True)` the outermost loop of each nest is a
  parallel loop, as numba's parfors make it."""
from __future__ import annotations

import ast
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

from ..ir.core import Block, Op, Value
from ..ir.types import ArrayType, ScalarType, f32, f64, i1, i32, i64

if TYPE_CHECKING:
    from .context import LoweringContext

# ops making an array from its extents: the operand position of the first extent
EXTENT_OPERANDS = {"mem.alloc": 0, "mem.reshape": 1}
# a reduction kind -> the op combining two partial results
COMBINE = {"add": "arith.add", "mul": "arith.mul", "max": "arith.max", "min": "arith.min"}


class Dim:
    """One axis's length: its i64 value and a key equal for lengths known to be equal
    (None: known to equal nothing else); `one` for a static length-1 (broadcast) axis, or
    (`exact` False) one of at most one element, a slice `a[:, 0:1]`, `a[i:i + 1]`, which
    broadcasts once a run-time check has found its element there."""
    __slots__ = ("value", "key", "one", "exact")

    def __init__(self, value: Value, key=None, one: bool = False, exact: bool = True):
        self.value, self.key, self.one, self.exact = value, key, one, exact

    def same(self, other: Dim) -> bool:
        return self is other or (self.key is not None and self.key == other.key)


class ArrayExpr:
    """A lazy array value: its element type, its rank, its axes' lengths (emitted once, at
    the statement, before any nest) and each element (emitted inside the nest)."""
    dtype: ScalarType
    ndim: int

    def dims(self, ctx: LoweringContext) -> list[Dim]:
        raise NotImplementedError

    def extents(self, ctx: LoweringContext) -> list[Value]:
        return [d.value for d in self.dims(ctx)]

    def one(self, axis: int) -> bool:
        """Whether the axis has static length 1 (it broadcasts)."""
        return False

    def element(self, ctx: LoweringContext, idx: Sequence[Value]) -> Value:
        raise NotImplementedError

    def reads(self) -> list[tuple[Value, object]]:
        """(root array, how it is indexed) for every array the elements read."""
        raise NotImplementedError


class Ref(ArrayExpr):
    """A whole array value (an argument, an allocation, a view bound to a name)."""

    def __init__(self, arr: Value):
        self.arr = arr
        self.dtype, self.ndim = arr.type.dtype, arr.type.ndim
        self._dims: list[Dim] | None = None

    def dims(self, ctx):
        if self._dims is None:
            self._dims = [Dim(ctx.const(1, i64), ("const", 1), one=True) if self.one(k) else
                          Dim(ctx.builder.op1("mem.shape", [self.arr], i64, {"axis": k}),
                              ("len", self.arr, k, 0)) for k in range(self.ndim)]
        return self._dims

    def one(self, axis):
        """An axis made with the constant length 1 (np.empty((n, 1)), a.reshape((n, 1)))
        broadcasts, as in NumPy."""
        owner = self.arr.owner
        if isinstance(owner, Op) and owner.name in EXTENT_OPERANDS:
            extents = owner.operands[EXTENT_OPERANDS[owner.name]:]
            return axis < len(extents) and const_of(extents[axis]) == 1
        return False

    def element(self, ctx, idx):
        return ctx.builder.op1("mem.load", [self.arr, *idx], self.dtype)

    def reads(self):
        return [(root(self.arr), whole_key(self.arr))]


class Sliced(ArrayExpr):
    """base[...] with slices, integer indices and np.newaxis: per base axis, a fixed index
    ("i", value) or a range ("s", first, step, Dim); plus ("n",) for each new axis."""

    def __init__(self, base: Value, axes: list[tuple], key: tuple):
        self.base, self.axes, self.key = base, axes, key
        self.dtype = base.type.dtype
        self.ndim = sum(a[0] != "i" for a in axes)

    def _out_axes(self):
        return [a for a in self.axes if a[0] != "i"]

    def dims(self, ctx):
        return [a[3] if a[0] == "s" else Dim(ctx.const(1, i64), ("const", 1), one=True)
                for a in self._out_axes()]

    def one(self, axis):
        a = self._out_axes()[axis]
        return a[0] == "n" or (a[0] == "s" and a[3].one)

    def index(self, ctx, idx) -> list[Value]:
        """The base array's index of the element at idx."""
        out, it = [], iter(idx)
        for a in self.axes:
            if a[0] == "i":
                out.append(a[1])
            elif a[0] == "n":
                next(it)
            else:
                out.append(affine(ctx, a[1], a[2], next(it)))
        return out

    def element(self, ctx, idx):
        return ctx.builder.op1("mem.load", [self.base, *self.index(ctx, idx)], self.dtype)

    def reads(self):
        return [(root(self.base), self.key)]

    def starts(self) -> list[int]:
        """Per output axis, the base index of its first element when that is a constant
        and the step 1 (else 0): a nest storing into it loops over the base's indices, the
        form of a hand-written loop (`for i in range(1, n - 1): v[i] = ...`)."""
        return [(const_of(a[1]) or 0) if a[0] == "s" and a[2] == 1 else 0
                for a in self._out_axes()]

    @property
    def plain_view(self) -> bool:
        """Whether it is a unit-step view (unit steps, no new axes)."""
        return all(a[0] == "i" or (a[0] == "s" and a[2] == 1) for a in self.axes)

    @property
    def viewable(self) -> bool:
        """Whether mem.view can express it (no new axes; steps are fine)."""
        return all(a[0] != "n" for a in self.axes)


class Map(ArrayExpr):
    """fn applied element by element to operands (scalars or arrays), broadcast."""

    def __init__(self, fn: Callable, operands: list, dtype: ScalarType, node):
        self.fn, self.operands, self.dtype, self.node = fn, operands, dtype, node
        self.ndim = max(o.ndim for o in operands if isinstance(o, ArrayExpr))
        self._dims: list[Dim] | None = None

    def _aligned(self, o: ArrayExpr) -> int:
        return self.ndim - o.ndim

    def dims(self, ctx):
        if self._dims is None:
            arrays = [o for o in self.operands if isinstance(o, ArrayExpr)]
            self._dims = broadcast_dims(ctx, [(o, o.dims(ctx)) for o in arrays], self.ndim,
                                        self.node)
        return self._dims

    def one(self, axis):
        return all(o.one(axis - self._aligned(o)) for o in self.operands
                   if isinstance(o, ArrayExpr) and axis >= self._aligned(o))

    def element(self, ctx, idx):
        vals = [o.element(ctx, operand_index(ctx, o, idx)) if isinstance(o, ArrayExpr) else o
                for o in self.operands]
        return self.fn(ctx, vals)

    def reads(self):
        return [r for o in self.operands if isinstance(o, ArrayExpr) for r in o.reads()]


class SameShape(ArrayExpr):
    """An array expression of another's shape and type whose elements it computes from
    that one's (np.flip, np.triu/np.tril, np.roll): `element` says how."""

    def __init__(self, inner: ArrayExpr):
        self.inner, self.dtype, self.ndim = inner, inner.dtype, inner.ndim

    def dims(self, ctx):
        return self.inner.dims(ctx)

    def one(self, axis):
        return self.inner.one(axis)


class Flipped(SameShape):
    """An array expression with every axis reversed (np.flip)."""
    view_like = True   # NumPy binds a view; a name bound to one holds a copy (statements.py)

    def element(self, ctx, idx):
        b, last = ctx.builder, []
        for d, i in zip(self.inner.dims(ctx), idx, strict=True):
            top = b.op1("arith.sub", [d.value, ctx.const(1, i64)], i64)
            last.append(b.op1("arith.sub", [top, i], i64))
        return self.inner.element(ctx, last)

    def reads(self):   # never the positions a store into the inner array writes
        return [(arr, ("flipped", key)) for arr, key in self.inner.reads()]


def reversed_slice(ctx: LoweringContext, e: ArrayExpr) -> Sliced | None:
    """e with every axis reversed, as a slice of its base: np.flip of an array or of a
    slice without new axes is a[::-1, ::-1, ...] of its memory (a view, as in NumPy); None
    for another expression (Flipped reads it reversed)."""
    if isinstance(e, Ref):
        base, axes = e.arr, [("s", ctx.const(0, i64), 1, d, True) for d in e.dims(ctx)]
    elif isinstance(e, Sliced) and e.viewable:
        base, axes = e.base, e.axes
    else:
        return None
    out, key = [], []
    for a in axes:
        if a[0] == "i":
            out.append(a)
            key.append(("i", const_or_value(a[1])))
            continue
        _, first, step, dim, _ = a
        span = ctx.builder.op1("arith.sub", [dim.value, ctx.const(1, i64)], i64)
        last = affine(ctx, first, step, span)   # the axis's last element comes first
        out.append(("s", last, -step, dim, False))
        key.append(("s", const_or_value(last), -step, dim.key if dim.key is not None else dim))
    return Sliced(base, out, (base, tuple(key)))


# -- building blocks ------------------------------------------------------------------------
def root(arr: Value) -> Value:
    """The array whose memory arr is (a view's or bitcast's base, followed to the end)."""
    while isinstance(arr.owner, Op) and arr.owner.name in ("mem.view", "mem.bitcast",
                                                             "mem.reshape"):
        arr = arr.owner.operands[0]
    return arr


def affine(ctx: LoweringContext, first: Value, step: int, iv: Value) -> Value:
    """first + step * iv, in the form the loop passes read (iv + c for a constant first;
    an iv that is itself x + k or x - k for a constant k folds into x + c')."""
    b = ctx.builder
    c = const_of(first)
    base, k = offset_of(iv)
    if step == 1 and c is not None and k is not None:
        return base if c + k == 0 else b.op1("arith.add", [base, ctx.const(c + k, i64)], i64)
    scaled = iv if step == 1 else b.op1("arith.mul", [iv, ctx.const(step, i64)], i64)
    if c == 0:
        return scaled
    if c is not None:
        return b.op1("arith.add", [scaled, ctx.const(c, i64)], i64)
    return b.op1("arith.add", [scaled, first], i64)


def offset_of(v: Value) -> tuple[Value, int | None]:
    """(x, k) when v is x + k or x - k for a constant k, else (v, None)."""
    owner = v.owner
    if isinstance(owner, Op) and owner.name in ("arith.add", "arith.sub"):
        k = const_of(owner.operands[1])
        if k is not None:
            return owner.operands[0], k if owner.name == "arith.add" else -k
    return v, None


def const_or_value(v: Value):
    """A constant's value, else v itself (how index keys compare)."""
    c = const_of(v)
    return v if c is None else c


def whole_key(arr: Value) -> tuple:
    """The key of arr[:, ..., :] (how whole-array reads compare with slices of arr)."""
    return (arr, tuple(("s", 0, 1, ("len", arr, k, 0)) for k in range(arr.type.ndim)))


def const_of(v: Value) -> int | None:
    owner = v.owner
    if isinstance(owner, Op) and owner.name == "arith.const":
        return owner.attrs["value"]
    return None


def operand_index(ctx: LoweringContext, o: ArrayExpr, idx: Sequence[Value]) -> list[Value]:
    """An operand's index within a broadcast result's index idx (right-aligned axes; a
    length-1 axis reads its only element)."""
    tail = list(idx[len(idx) - o.ndim:])
    return [ctx.const(0, i64) if o.one(k) else v for k, v in enumerate(tail)]


def broadcast_dims(ctx: LoweringContext, operands, ndim: int, node) -> list[Dim]:
    """The broadcast result's axes from the operands' (ArrayExpr, dims); lengths not known
    to agree are checked at run time."""
    out = []
    for axis in range(ndim):
        dims = [d[axis - (ndim - len(d))] for _, d in operands if axis >= ndim - len(d)]
        real = [d for d in dims if not d.one]
        if not real:
            out.append(dims[0])
            continue
        for d in real[1:]:
            check_same_length(ctx, real[0], d, node, f"axis {axis}")
        for d in dims:
            check_one(ctx, d, real[0], node)
        out.append(real[0])
    return out


def check_one(ctx: LoweringContext, d: Dim, other: Dim, node) -> None:
    """A slice of at most one element (Dim.exact False) next to an axis of length `other`:
    a run-time check that NumPy broadcasts it, its length 1 or other's."""
    if d.one and not d.exact:
        b = ctx.builder
        ok = b.op1("arith.or", [
            b.op1("arith.cmp", [d.value, ctx.const(1, i64)], i1, {"pred": "eq"}),
            b.op1("arith.cmp", [d.value, other.value], i1, {"pred": "eq"})], i1)
        ctx.runtime_check(ok, "a slice of one element (like a[:, 0:1] or a[i:i + 1]) is empty "
                              "here, so it cannot broadcast against the other operand", node)


def check_same_length(ctx: LoweringContext, a: Dim, b: Dim, node, where: str) -> None:
    if a.same(b):
        return
    same = ctx.builder.op1("arith.cmp", [a.value, b.value], i1, {"pred": "eq"})
    ctx.runtime_check(same, f"array operands have different lengths along {where} "
                            f"(NumPy would broadcast a length-1 axis; hpcad broadcasts those "
                            f"it knows have one element: np.newaxis, a constant length 1, a "
                            f"slice like a[:, 0:1])", node)


def is_array(v) -> bool:
    """Whether v is array-valued: an array Value or an ArrayExpr."""
    return isinstance(v, ArrayExpr) or (isinstance(v, Value) and isinstance(v.type, ArrayType))


def as_expr(ctx: LoweringContext, v, node) -> ArrayExpr | None:
    """v as an ArrayExpr (a view made by slicing reads its base), None for a scalar."""
    if isinstance(v, ArrayExpr):
        return v
    if isinstance(v, Value) and isinstance(v.type, ArrayType):
        return ctx.array_views.get(v) or Ref(v)
    return None


def elementwise(ctx: LoweringContext, fn: Callable, args: list, node):
    """fn(ctx, scalars) applied to args element by element (NumPy broadcasting), lazily;
    just fn(ctx, args) when no argument is an array."""
    exprs = [as_expr(ctx, a, node) for a in args]
    if all(e is None for e in exprs):
        return fn(ctx, [ctx.scalar(a, node) for a in args])
    operands = [e if e is not None else ctx.scalar(a, node) for e, a in zip(exprs, args,
                                                                          strict=True)]
    operands = weak_literals(ctx, operands)
    probe = Block()
    with ctx.at(probe):     # the element type: fn built once on stand-ins, then dropped
        stand_ins = [Value(o.dtype) if isinstance(o, ArrayExpr) else o for o in operands]
        dtype = fn(ctx, stand_ins).type
    if not isinstance(dtype, ScalarType):
        ctx.unsupported(node, "this operation on arrays")
    return Map(fn, operands, dtype, node)


def weak_literals(ctx: LoweringContext, operands: list) -> list:
    """A scalar next to arrays takes their type where it is of a lower kind, as in numba
    and NumPy: an integer or bool scalar next to float32 arrays is float32 (`x32 * n`
    stays float32), a bool scalar next to int32 arrays int32. A number written in the
    source next to float32 arrays is float32 too (`x32 * 0.5`), as in NumPy 2 (numba
    computes that one in float64)."""
    dtypes = {o.dtype for o in operands if isinstance(o, ArrayExpr)}
    if {t for t in dtypes if t.is_float} == {f32}:
        return [ctx.const(const_of(o), f32) if isinstance(o, Value) and
                const_of(o) is not None and not o.type.is_bool else
                ctx.coerce(o, f32) if isinstance(o, Value) and not o.type.is_float else o
                for o in operands]
    if dtypes == {i32}:
        return [ctx.coerce(o, i32) if isinstance(o, Value) and o.type.is_bool else o
                for o in operands]
    return operands


def inside_parallel(ctx: LoweringContext) -> bool:
    block = ctx.builder.block
    while block is not None and block.parent is not None:
        if block.parent.name.startswith("par."):
            return True
        block = block.parent.parent
    return False


def loop_nest(ctx: LoweringContext, extents: Sequence[Value], body: Callable, node,
              carried: Sequence[Value] = (), kinds: Sequence[str] | None = None,
              starts: Sequence[int] | None = None, serial: bool = False) -> list[Value]:
    """Nested loops over extents (row-major); body(ivs, accs) -> new accs runs innermost.
    Returns the carried values after the nest. In a parallel=True kernel the outermost loop
    is parallel when its carried values are reductions of the given kinds, unless `serial`
    (a body whose iterations write the same elements). starts: a constant first index per
    loop (the loop runs over [start, start + extent)); the body still gets 0-based
    positions (iv - start, which index arithmetic folds away)."""
    starts = list(starts or [0] * len(extents))
    parallel = bool(ctx.program.parallel and not inside_parallel(ctx) and extents and
                    not serial and (not carried or kinds is not None))
    kinds = list(kinds or ())
    zero, one = ctx.const(0, i64), ctx.const(1, i64)
    ivs: list[Value] = []

    def level(k: int, accs: list[Value]) -> list[Value]:
        if k == len(extents):
            rel = [iv if c == 0 else ctx.builder.op1("arith.sub", [iv, ctx.const(c, i64)], i64)
                   for iv, c in zip(ivs, starts, strict=True)]
            return list(body(rel, accs))
        block = Block([Value(i64, f"i{len(ivs)}")] + [Value(a.type) for a in accs])
        ivs.append(block.args[0])
        with ctx.at(block):
            if parallel and k == 0:
                partial = [ctx.const(identity(kind, a.type), a.type)
                           for kind, a in zip(kinds, accs, strict=True)]
                local = level(k + 1, partial)
                new = [ctx.builder.op1(COMBINE[kind], [a, v], a.type)
                       for kind, a, v in zip(kinds, block.args[1:], local, strict=True)]
            else:
                new = level(k + 1, list(block.args[1:]))
            ctx.builder.op("scf.yield", [ctx.coerce(v, a.type) for v, a in
                                         zip(new, accs, strict=True)])
        ivs.pop()
        name = "par.parallel_for" if parallel and k == 0 else "scf.for"
        lb, ub = zero, extents[k]
        if starts[k]:
            lb = ctx.const(starts[k], i64)
            ub = ctx.builder.op1("arith.add", [extents[k], lb], i64)
        op = ctx.builder.op(name, [lb, ub, one, *accs], [a.type for a in accs],
                            regions=[block])
        if name == "par.parallel_for":
            op.attrs["reductions"] = ",".join(kinds)
        return op.results

    return level(0, list(carried))


def identity(kind: str, t: ScalarType):
    """The value a partial reduction of this kind starts from."""
    if kind == "add":
        return 0
    if kind == "mul":
        return 1
    if t.is_float:
        return float("-inf") if kind == "max" else float("inf")
    return -2 ** 63 if kind == "max" else 2 ** 63 - 1


def materialize(ctx: LoweringContext, v, node) -> Value:
    """A fresh C-contiguous array holding v's elements."""
    e = as_expr(ctx, v, node)
    dims = e.dims(ctx)
    arr = ctx.builder.op1("mem.alloc", [d.value for d in dims], ArrayType(e.dtype, e.ndim, "C"),
                          {"fill": "empty"})

    def body(ivs, accs):
        ctx.builder.op("mem.store", [e.element(ctx, ivs), arr, *ivs])
        return []
    loop_nest(ctx, [d.value for d in dims], body, node)
    return arr


def when(ctx: LoweringContext, cond: Value, then: Callable[[], object],
         other: Callable[[], object] | None = None) -> None:
    """An `if` with no results: then() emits its statements, other() (if any) the else's."""
    blocks = []
    for fill in (then, other):
        block = Block()
        with ctx.at(block):
            if fill is not None:
                fill()
            ctx.builder.op("scf.yield", [])
        blocks.append(block)
    ctx.builder.op("scf.if", [cond], [], regions=blocks)


def converted(ctx: LoweringContext, arr: Value, t: ScalarType, node) -> Value:
    """arr, or a new array of its elements converted to the type t."""
    if arr.type.dtype == t:
        return arr
    return materialize(ctx, elementwise(ctx, lambda c, vs: c.coerce(vs[0], t), [arr], node),
                       node)


def as_array_value(ctx: LoweringContext, v, node) -> Value:
    """An array Value as is, an ArrayExpr materialized."""
    if isinstance(v, Value) and isinstance(v.type, ArrayType):
        return v
    return materialize(ctx, v, node)


def bind(ctx: LoweringContext, v, node):
    """What a name holds after `name = v`: a view for a slice (with steps too: `r =
    u[::-1]` is u's memory, writes through r reach u), a new array for any other array
    expression (NumPy semantics), v itself otherwise."""
    if not isinstance(v, ArrayExpr):
        return v
    if isinstance(v, Sliced):
        if not v.viewable:
            ctx.unsupported(node, "giving a name to a slice with np.newaxis",
                            "use it directly in an expression, or copy it: "
                            "v = u[:, np.newaxis].copy()")
        return view_of(ctx, v)
    return materialize(ctx, v, node)


def view_of(ctx: LoweringContext, s: Sliced) -> Value:
    """The view a slice names; expressions reading it read its base directly."""
    view = plain_view(ctx, s)
    ctx.array_views[view] = s
    return view


def plain_view(ctx: LoweringContext, s: Sliced) -> Value:
    """The mem.view of a slice without new axes: dims 'i' for an index, 's' for a unit
    step (bounds [first, first + length)), 't' for another step (first, step, length)."""
    operands, dims = [s.base], ""
    for a in s.axes:
        if a[0] == "i":
            operands.append(a[1])
            dims += "i"
        elif a[2] != 1:
            operands += [a[1], ctx.const(a[2], i64), a[3].value]
            dims += "t"
        else:
            operands += [a[1], ctx.builder.op1("arith.add", [a[1], a[3].value], i64)]
            dims += "s"
    layout = "C" if s.base.type.layout == "C" and contiguous_axes(s) else "A"
    return ctx.builder.op1("mem.view", operands, ArrayType(s.dtype, s.ndim, layout),
                           {"dims": dims})


def contiguous_axes(s: Sliced) -> bool:
    """Whether a slice of a C array is C-contiguous: fixed indices then unit-step slices,
    every slice after the first taking its whole axis."""
    kinds = [a[0] for a in s.axes]
    if "s" not in kinds or not s.plain_view:
        return False
    first = kinds.index("s")
    return all(k == "s" for k in kinds[first:]) and all(
        a[4] for a in s.axes[first + 1:])


# -- subscripts -----------------------------------------------------------------------------
def spread_tuple_index(ctx: LoweringContext, node, base=None):
    """a[t] for a name t bound to a tuple of indices (an np.ndindex loop's) as a[t[0], t[1],
    ...], and `...` in an index as the whole slices it stands for (`u[..., k]` of a 3-D u is
    u[:, :, k], `a[...]` is a[:]), as NumPy and numba read them; any other subscript as it
    is. base: the subscripted value where the caller has evaluated it (a kernel call's result
    must not be computed twice), else it is evaluated here for `...`."""
    if isinstance(node, ast.Subscript) and any(
            isinstance(n, ast.Constant) and n.value is Ellipsis for n in index_nodes(node)):
        return _spread_ellipsis(ctx, node, ctx.expr(node.value) if base is None else base)
    if not (isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Name)):
        return node
    t = ctx.expr(node.slice)
    if not isinstance(t, tuple):
        return node
    items = [ast.copy_location(ast.Subscript(value=node.slice, slice=ast.Constant(k),
                                             ctx=ast.Load()), node.slice)
             for k in range(len(t))]
    spread = ast.Subscript(value=node.value, slice=ast.copy_location(
        ast.Tuple(elts=items, ctx=ast.Load()), node.slice), ctx=node.ctx)
    return ast.copy_location(spread, node)


@contextmanager
def evaluated_once(ctx: LoweringContext, target, base: bool = True) -> Iterator:
    """`with evaluated_once(ctx, target) as once:` a subscript `f(u)[g(i)]` whose
    subscripted value (where base) or indices call something, with those computed here,
    once, in Python's order (the value, then each index), each named by its own text for
    the body of the `with` (target itself where nothing calls). A store's paths read the
    subscripted value and its indices more than once, and a read its index: a kernel call
    there would run again each time."""
    names: list[str] = []

    def once(node):
        if isinstance(node, ast.Slice) or not any(isinstance(n, ast.Call)
                                                  for n in ast.walk(node)):
            return node
        text = ast.unparse(node)
        ctx.env[text] = ctx.expr(node)
        names.append(text)
        return ast.copy_location(ast.Name(id=text, ctx=ast.Load()), node)

    try:
        if isinstance(target, ast.Subscript):
            value = once(target.value) if base else target.value
            index = ast.copy_location(ast.Tuple(elts=[once(n) for n in target.slice.elts],
                                                ctx=ast.Load()), target.slice) \
                if isinstance(target.slice, ast.Tuple) else once(target.slice)
            if names:
                target = ast.copy_location(ast.Subscript(value=value, slice=index,
                                                         ctx=target.ctx), target)
        yield target
    finally:
        for n in names:
            ctx.env.pop(n, None)


def _spread_ellipsis(ctx: LoweringContext, node: ast.Subscript, base) -> ast.Subscript:
    nodes = index_nodes(node)
    dots = [n for n in nodes if isinstance(n, ast.Constant) and n.value is Ellipsis]
    if len(dots) > 1:
        ctx.unsupported(node, "an index with more than one `...`",
                        "write one `...` (NumPy allows one), or write the slices out")
    if isinstance(base, Value) and isinstance(base.type, ArrayType):
        ndim = base.type.ndim
    elif isinstance(base, ArrayExpr):
        ndim = base.ndim
    else:
        ctx.unsupported(node, "`...` in an index of something that is not an array")
    real = sum(1 for n in nodes if n is not dots[0] and not is_newaxis(ctx, n))
    if real > ndim:
        ctx.unsupported(node, f"indexing a {ndim}-D array with {real} indices")
    whole = [ast.copy_location(ast.Slice(None, None, None), dots[0])
             for _ in range(ndim - real)]
    k = nodes.index(dots[0])
    items = nodes[:k] + whole + nodes[k + 1:]
    index = items[0] if len(items) == 1 else ast.copy_location(
        ast.Tuple(elts=items, ctx=ast.Load()), node.slice)
    return ast.copy_location(ast.Subscript(value=node.value, slice=index, ctx=node.ctx), node)


def index_nodes(node) -> list:
    return list(node.slice.elts) if isinstance(node.slice, ast.Tuple) else [node.slice]


def element_indices(ctx: LoweringContext, e: ArrayExpr, node) -> list | None:
    """The values of the subscript node's indices where it has one per axis of e and none
    is a slice or np.newaxis (evaluated once, here), else None."""
    nodes = index_nodes(node)
    if len(nodes) != e.ndim or any(isinstance(n, ast.Slice) or is_newaxis(ctx, n)
                                   for n in nodes):
        return None
    return [ctx.expr(n) for n in nodes]


def element_of(ctx: LoweringContext, e: ArrayExpr, node, values: list) -> Value:
    """One element of an array expression, `(a * b)[i, j]`, `np.diff(u)[0]`: its value at
    the integer indices `values` (element_indices; a negative one counts from the end, as in
    NumPy), computed where it is read; nothing is allocated."""
    nodes = index_nodes(node)
    idx = [integer_index(ctx, n, node, lambda d=d: d.value, variable_from_end=True, value=v)
           for n, d, v in zip(nodes, e.dims(ctx), values, strict=True)]
    return e.element(ctx, idx)


def integer_index(ctx: LoweringContext, n, node, length: Callable[[], Value],
                  variable_from_end: bool = False, value=None) -> Value:
    """The integer index `n` (its value, where already evaluated) of an axis of length
    `length()` (asked only where needed): a negative constant counts from the end (a[-1]);
    with variable_from_end, a variable that is negative at run time too (where the consumer
    does not wrap it, as a load does)."""
    v = ctx.expr(n) if value is None else value
    if is_array(v):
        ctx.unsupported(node, "indexing with an array (fancy or boolean indexing) here",
                        "read x[idx] with one vector of integers idx for the first axis, "
                        "or a[mask] with a boolean mask of the array's shape; otherwise "
                        "loop over the indices (x[idx[k]] = v[k])")
    v = ctx.coerce_index(v, n)
    c = const_of(v)
    b = ctx.builder
    if c is not None and c < 0:
        return b.op1("arith.add", [length(), v], i64)
    if c is None and variable_from_end:
        negative = b.op1("arith.cmp", [v, ctx.const(0, i64)], i1, {"pred": "lt"})
        return b.op1("arith.select", [negative, b.op1("arith.add", [length(), v], i64), v],
                     i64)
    return v


def is_newaxis(ctx: LoweringContext, n) -> bool:
    return (isinstance(n, ast.Constant) and n.value is None) or (
        isinstance(n, ast.Attribute) and n.attr == "newaxis" and ctx.static_value(n) is None)


def subscript(ctx: LoweringContext, arr: Value, node, allow_newaxis: bool = True) -> Sliced:
    """base[...] with at least one slice or new axis, or fewer indices than axes."""
    nodes = index_nodes(node)
    real = [n for n in nodes if not is_newaxis(ctx, n)]
    if len(real) > arr.type.ndim:
        ctx.unsupported(node, f"indexing a {arr.type.ndim}-D array with {len(real)} indices")
    nodes += [ast.Slice(None, None, None)] * (arr.type.ndim - len(real))
    axes, key, axis = [], [], 0
    for n in nodes:
        if is_newaxis(ctx, n):
            if not allow_newaxis:
                ctx.unsupported(node, "np.newaxis in an assignment target")
            axes.append(("n",))
            key.append("n")
            continue
        if isinstance(n, ast.Slice):
            a = slice_axis(ctx, arr, axis, n, node)
            axes.append(a)
            key.append(("s", const_or_value(a[1]), a[2],
                        a[3].key if a[3].key is not None else a[3]))
        else:
            v = integer_index(ctx, n, node, lambda k=axis: ctx.builder.op1(
                "mem.shape", [arr], i64, {"axis": k}))
            axes.append(("i", v))
            key.append(("i", const_or_value(v)))
        axis += 1
    return Sliced(arr, axes, (arr, tuple(key)))


def slice_axis(ctx: LoweringContext, arr: Value, axis: int, n: ast.Slice, node) -> tuple:
    """("s", first index, step, Dim of the length, whether the whole axis) for a[lo:hi:step]
    along one axis, with Python's rules for omitted and negative bounds."""
    step = 1
    if n.step is not None:
        step = static_int(n.step)
        if step is None or step == 0:
            ctx.unsupported(node, "a slice whose step is not a nonzero integer constant",
                            "write the step as a literal, e.g. a[::2]")
    b = ctx.builder
    size = b.op1("mem.shape", [arr], i64, {"axis": axis})
    lo_c = None if n.lower is None else static_int(n.lower)
    hi_c = None if n.upper is None else static_int(n.upper)
    whole = n.lower is None and n.upper is None and step == 1
    if step == 1 and (n.lower is None or (lo_c is not None and lo_c >= 0)) and \
            (n.upper is None or (hi_c is not None and hi_c < 0)):
        lo = lo_c or 0              # length n - lo + hi: known equal to others like it
        off = (hi_c or 0) - lo
        length = size if off == 0 else b.op1("arith.max", [ctx.const(0, i64), b.op1(
            "arith.add", [size, ctx.const(off, i64)], i64)], i64)
        return ("s", ctx.const(lo, i64), 1, Dim(length, ("len", arr, axis, off)), whole)
    lo = bound(ctx, n.lower, size, step, is_lower=True)
    hi = bound(ctx, n.upper, size, step, is_lower=False)
    span = b.op1("arith.sub", [hi, lo] if step > 0 else [lo, hi], i64)
    k = abs(step)
    if k != 1:
        span = b.op1("arith.floordiv", [b.op1("arith.add", [span, ctx.const(k - 1, i64)], i64),
                                        ctx.const(k, i64)], i64)
    length = b.op1("arith.max", [ctx.const(0, i64), span], i64)
    return ("s", lo, step, Dim(length, one=step == 1 and at_most_one(n, lo_c, hi_c),
                               exact=False), whole)


def at_most_one(n: ast.Slice, lo: int | None, hi: int | None) -> bool:
    """Whether a unit-step slice holds at most one element whatever the axis's length:
    `k:k + 1` of constants of one sign, `-1:`, `:1`, or `e:e + 1` of the same expression."""
    if lo is not None and hi is not None:
        return hi - lo == 1 and (lo >= 0) == (hi > 0)
    if n.upper is None:
        return lo == -1
    if n.lower is None:
        return hi == 1
    up = n.upper
    return isinstance(up, ast.BinOp) and isinstance(up.op, ast.Add) and \
        static_int(up.right) == 1 and ast.dump(up.left) == ast.dump(n.lower)


def bound(ctx: LoweringContext, n, size: Value, step: int, is_lower: bool) -> Value:
    """A slice bound normalized as Python does: negative counts from the end, then clipped
    to [0, size] (step > 0) or [-1, size - 1] (step < 0); omitted: the start or end. A bound
    that may be None (`e or None`, `e if c else None`) evaluates what Python evaluates: `e`
    once, and a conditional's `e` only where it is chosen."""
    b = ctx.builder
    if n is None or isinstance(n, ast.Constant) and n.value is None:
        if is_lower:
            return ctx.const(0, i64) if step > 0 else b.op1(
                "arith.sub", [size, ctx.const(1, i64)], i64)
        return size if step > 0 else ctx.const(-1, i64)
    if isinstance(n, ast.BoolOp) and isinstance(n.op, ast.Or) and len(n.values) == 2 \
            and _is_none(n.values[1]) and not _is_none(n.values[0]):   # `-1 + k or None`
        v = _index_value(ctx, n.values[0])
        given = b.op1("arith.cmp", [v, ctx.const(0, i64)], i1, {"pred": "ne"})
        return b.op1("arith.select", [given, _normalized(ctx, v, size, step),
                                      bound(ctx, None, size, step, is_lower)], i64)
    if isinstance(n, ast.IfExp) and _is_none(n.orelse) != _is_none(n.body):
        cond = ctx.condition(n.test)   # `e if c else None`, `None if c else e`
        blocks = []
        for branch in (n.body, n.orelse):
            block = Block()
            with ctx.at(block):
                ctx.builder.op("scf.yield", [bound(ctx, branch, size, step, is_lower)])
            blocks.append(block)
        return b.op("scf.if", [cond], [i64], regions=blocks).result
    return _normalized(ctx, _index_value(ctx, n), size, step)


def _index_value(ctx: LoweringContext, n) -> Value:
    return ctx.coerce_index(ctx.scalar(ctx.expr(n), n), n)


def _normalized(ctx: LoweringContext, v: Value, size: Value, step: int) -> Value:
    """Bound v (an int64) counted from the end where negative, clipped as `bound` says."""
    b = ctx.builder
    low = ctx.const(0 if step > 0 else -1, i64)
    high = size if step > 0 else b.op1("arith.sub", [size, ctx.const(1, i64)], i64)
    wrapped = b.op1("arith.add", [v, size], i64)
    negative = b.op1("arith.cmp", [v, ctx.const(0, i64)], i1, {"pred": "lt"})
    v = b.op1("arith.select", [negative, wrapped, v], i64)
    return b.op1("arith.min", [b.op1("arith.max", [v, low], i64), high], i64)


def _is_none(n) -> bool:
    return isinstance(n, ast.Constant) and n.value is None


def static_int(node) -> int | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, int) and \
            not isinstance(node.value, bool):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        k = static_int(node.operand)
        return None if k is None else -k
    return None


# -- stores ---------------------------------------------------------------------------------
def store_into(ctx: LoweringContext, arr: Value, node, value, where) -> None:
    """arr[...] = value where the subscript node has slices (or fewer indices than axes):
    every selected element gets value, broadcast."""
    target = subscript(ctx, arr, node, allow_newaxis=False)
    fill(ctx, target, value, where)


def fill(ctx: LoweringContext, target: Sliced, value, node, add=None) -> None:
    """Store value (a scalar, an array expression or a tuple of numbers, as NumPy's array of
    them, broadcast) into target's elements: `force[0] = 0.0, 0.0`; or, given add(element)
    (accumulate), add what it makes of each element of value into target's element."""
    dims = target.dims(ctx)
    if isinstance(value, tuple) and value and not any(is_array(v) or isinstance(v, tuple)
                                                      for v in value):
        items = [ctx.scalar(v, node) for v in value]
        vector = ctx.builder.op1("mem.alloc", [ctx.const(len(items), i64)],
                                 ArrayType(target.dtype, 1, "C"), {"fill": "empty"})
        for k, v in enumerate(items):
            ctx.builder.op("mem.store", [ctx.coerce(v, target.dtype), vector,
                                         ctx.const(k, i64)])
        value = vector
    src = as_expr(ctx, value, node)
    if src is not None:
        if src.ndim > target.ndim:
            ctx.unsupported(node, f"assigning a {src.ndim}-D array to a {target.ndim}-D "
                                  f"selection")
        if any(r[0] is root(target.base) and r[1] != target.key for r in src.reads()):
            src = Ref(materialize(ctx, src, node))   # a[1:] = a[:-1]: read all, then write
        src_dims = src.dims(ctx)
        for k, d in enumerate(src_dims):
            if not d.one:
                check_same_length(ctx, dims[target.ndim - src.ndim + k], d, node,
                                  f"axis {target.ndim - src.ndim + k}")
            check_one(ctx, d, dims[target.ndim - src.ndim + k], node)
    else:
        value = ctx.scalar(value, node)
    dtype = target.dtype

    def body(ivs, accs):
        v = src.element(ctx, operand_index(ctx, src, ivs)) if src is not None else value
        store = "mem.store" if add is None else "mem.accumulate"
        v = ctx.coerce(v, dtype) if add is None else add(v)
        ctx.builder.op(store, [v, target.base, *target.index(ctx, ivs)])
        return []
    loop_nest(ctx, [d.value for d in dims], body, node, starts=target.starts())


def accumulate(ctx: LoweringContext, target: Sliced, value, node, subtract: bool) -> None:
    """target += value (target -= value) as additions into target's elements (mem.accumulate),
    which commute: a parallel loop's array reduction (parallel.array_reductions). NumPy adds
    in the wider of the two types and rounds the sum to target's: the same as adding value's
    element converted to target's type only where that conversion is exact for every value
    (the same type; into float64; int32 or bool into int64), so other types are refused.
    x - y is x + (-y) exactly, in floats and in wrapping integers."""
    dtype = target.dtype

    def add(v: Value) -> Value:
        t = v.type
        if not (t == dtype or dtype == f64 or (dtype.is_int and dtype.bits == 64
                                               and (t.is_int or t.is_bool))):
            ctx.unsupported(node, f"the array reduction `{ast.unparse(node)}` of "
                                  f"{t.np_dtype.name} values into a {dtype.np_dtype.name} "
                                  f"array across the iterations of a parallel loop",
                            f"convert the values to {dtype.np_dtype.name} first")
        v = ctx.coerce(v, dtype)
        return ctx.builder.op1("arith.neg", [v], dtype) if subtract else v
    fill(ctx, target, value, node, add)


def store_masked(ctx: LoweringContext, arr: Value, mask, value, node,
                 update: Callable | None = None) -> None:
    """arr[mask] = value (or arr[mask] op= value: update(ctx, element, value)) for a boolean
    array mask of arr's shape: where mask holds, the element changes. A scalar value goes
    to every selected element; a vector's elements (NumPy's pairing) to the selected ones
    in C order, by store_masked_vector."""
    m = as_expr(ctx, mask, node)
    if m is None or m.ndim != arr.type.ndim:
        ctx.unsupported(node, "a boolean mask of another rank than the array it indexes")
    target = as_expr(ctx, arr, node)
    if not isinstance(target, Sliced):
        target = whole(ctx, arr)
    if is_array(value):
        store_masked_vector(ctx, target, m, as_expr(ctx, value, node), node, update)
        return
    value = ctx.scalar(value, node)

    def select(c, vs):
        cond, cur = vs
        new = update(c, cur, value) if update is not None else value
        return c.builder.op1("arith.select", [c.truth(cond, node), c.coerce(new, cur.type),
                                              cur], cur.type)
    fill(ctx, target, elementwise(ctx, select, [m, target], node), node)


def store_masked_vector(ctx: LoweringContext, target: Sliced, m: ArrayExpr, v: ArrayExpr,
                        node, update: Callable | None) -> None:
    """target[m] = v (or op= v) for a vector v with one element per selected element, as
    NumPy pairs them: the k-th selected element (C order) gets v[k]. The mask and the
    values are read in full before any store (they may read the target), their lengths
    compared when the kernel runs; one serial loop carries the count of elements placed."""
    if v.ndim != 1:
        ctx.unsupported(node, f"assigning a {v.ndim}-D array through a boolean mask",
                        "assign a vector of the selected elements, a[mask] = b[mask], or "
                        "use np.where: a[:] = np.where(mask, b, a)")
    dims = target.dims(ctx)
    _check_mask_shape(ctx, dims, m, node)
    flags = Ref(materialize(ctx, m, node))
    values = Ref(materialize(ctx, v, node)) if v.reads() else v
    extents, hit, total = _selected(ctx, dims, flags, node)
    zero = ctx.const(0, i64)
    same = ctx.builder.op1("arith.cmp", [total, values.extents(ctx)[0]], i1, {"pred": "eq"})
    ctx.runtime_check(same, "assigning through a boolean mask: the array on the right has "
                            "not one element for each selected element", node)
    dtype = target.dtype

    def place(ivs, accs):
        cond, step = hit(ivs)

        def store():
            new = values.element(ctx, [accs[0]])
            if update is not None:
                new = update(ctx, target.element(ctx, ivs), new)
            ctx.builder.op("mem.store", [ctx.coerce(new, dtype), target.base,
                                         *target.index(ctx, ivs)])
        when(ctx, cond, store)
        return [ctx.builder.op1("arith.add", [accs[0], step], i64)]
    loop_nest(ctx, extents, place, node, [zero])


def _check_mask_shape(ctx: LoweringContext, dims: list[Dim], mask: ArrayExpr, node) -> None:
    for k, (a, b) in enumerate(zip(dims, mask.dims(ctx), strict=True)):
        check_same_length(ctx, a, b, node, f"axis {k} of the array and its mask")


def _selected(ctx: LoweringContext, dims: list[Dim], mask: ArrayExpr, node):
    """(the extents, hit(indices) -> (whether the mask holds there, 1 or 0 as an i64), how
    many elements the mask selects: one loop nest summing the hits)."""
    extents = [d.value for d in dims]
    zero, one = ctx.const(0, i64), ctx.const(1, i64)

    def hit(ivs) -> tuple[Value, Value]:
        cond = ctx.truth(mask.element(ctx, ivs), node)
        return cond, ctx.builder.op1("arith.select", [cond, one, zero], i64)

    def count(ivs, accs):
        return [ctx.builder.op1("arith.add", [accs[0], hit(ivs)[1]], i64)]
    total = loop_nest(ctx, extents, count, node, [zero], kinds=["add"])[0]
    return extents, hit, total


def masked_values(ctx: LoweringContext, arr: Value, mask, node) -> Value:
    """arr[mask] read, for a boolean array mask of arr's shape (NumPy boolean indexing;
    numba reads through 1-D masks only): a new vector of the elements where mask holds, in
    C order. One loop nest counts them (a sum), a serial one stores each selected element
    at the next position."""
    m = as_expr(ctx, mask, node)
    src = Ref(arr)
    if m is None or m.ndim != arr.type.ndim:
        ctx.unsupported(node, "a boolean mask of another rank than the array it indexes")
    dims = src.dims(ctx)
    _check_mask_shape(ctx, dims, m, node)
    extents, hit, total = _selected(ctx, dims, m, node)
    zero = ctx.const(0, i64)
    out = ctx.builder.op1("mem.alloc", [total], ArrayType(arr.type.dtype, 1, "C"),
                          {"fill": "empty"})

    def place(ivs, accs):
        cond, step = hit(ivs)
        when(ctx, cond, lambda: ctx.builder.op("mem.store", [src.element(ctx, ivs), out,
                                                            accs[0]]))
        return [ctx.builder.op1("arith.add", [accs[0], step], i64)]
    loop_nest(ctx, extents, place, node, [zero])
    return out


class Gathered(ArrayExpr):
    """a[idx] read lazily for a 1-D integer array idx (NumPy's integer-array indexing of the
    first axis; numba takes one such index): shape idx.shape + a.shape[1:], element
    (k, *rest) being a's at (idx[k], *rest), a negative idx[k] counting from the end. A name
    bound to it holds a copy (bind), as NumPy's result is one."""

    def __init__(self, inner: ArrayExpr, index: ArrayExpr):
        self.inner, self.index, self.dtype = inner, index, inner.dtype
        self.ndim = inner.ndim

    def dims(self, ctx):
        return [self.index.dims(ctx)[0], *self.inner.dims(ctx)[1:]]

    def element(self, ctx, idx):
        b = ctx.builder
        k = ctx.coerce(self.index.element(ctx, [idx[0]]), i64)
        negative = b.op1("arith.cmp", [k, ctx.const(0, i64)], i1, {"pred": "lt"})
        wrapped = b.op1("arith.add", [self.inner.dims(ctx)[0].value, k], i64)
        row = k if const_of(k) is not None and const_of(k) >= 0 else \
            b.op1("arith.select", [negative, wrapped, k], i64)
        return self.inner.element(ctx, [row, *idx[1:]])

    def reads(self):   # rows of the inner arrays other than a store at idx writes
        return [(arr, ("gathered", key)) for arr, key in self.inner.reads()] + \
            self.index.reads()


def gathered(ctx: LoweringContext, arr: Value, index, node) -> Gathered:
    """arr[index] for an integer array index (Gathered): one index of one axis only, a
    vector, as numba takes it."""
    e = as_expr(ctx, index, node)
    if e is None or not e.dtype.is_int or e.ndim != 1:
        ctx.unsupported(node, "indexing with an array other than a vector of integers or a "
                              "boolean mask of the array's shape",
                        "index with a 1-D integer array (x[cols]), or loop over the indices")
    return Gathered(as_expr(ctx, arr, node), e)


def whole(ctx: LoweringContext, arr: Value) -> Sliced:
    """arr[...] over every axis (the target of `a[:] = ...` and `a += ...`)."""
    axes = [("s", ctx.const(0, i64), 1, d, True) for d in Ref(arr).dims(ctx)]
    return Sliced(arr, axes, whole_key(arr))
