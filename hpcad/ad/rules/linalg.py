"""Rules of the `linalg` dialect: matrix products are bilinear, so their derivatives are
matrix products too (never element-wise tapes). For C = op(A) @ op(B): forward mode
dC = op(dA) @ op(B) + op(A) @ op(dB); reverse mode adds C̄ @ op(B)ᵀ into Ā and op(A)ᵀ @ C̄
into B̄ (an outer product where an operand is a vector) and zeroes C̄, which the product
overwrote. The reverse sweep reads A and B as the product read them: the arrays as they
are when nothing writes them afterwards; else a copy taken in the forward sweep beside a
top-level product, or, in the body of a top-level for loop, a history with one copy per
iteration (as the tape keeps one value per iteration of a load) of the operand or of the
array it is a view of; in a nest of for loops of any depth whose bounds are known before
it, a history with one copy per iteration of the nest of an array from before the nest or
of a view of one. Anything else whose operands change later (while loops, triangular
nests, checkpointed time loops) is refused."""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ...checkpoint.tape import trip_count
from ...errors import DifferentiationError, where
from ...ir.core import Block, Builder, Op, Value, walk
from ...ir.dialects import in_parallel
from ...ir.effects import writes
from ...ir.types import ArrayType, ScalarType, element, i1, i64, lanes
from ..common import array_type, zero
from ..custom import array_like
from .registry import defrule

if TYPE_CHECKING:
    from ..regions import Region
    from .context import ForwardContext, ReverseContext

# (A, B, C̄, op's attributes) -> (op name, first, second, attributes) of an adjoint product
Adjoint = Callable[[Value, Value, Value, dict[str, bool]], tuple[str, Value, Value,
                                                                dict[str, bool]]]


def product(b: Builder, name: str, x: Value, y: Value, out: Value,
            ta: bool = False, tb: bool = False) -> None:
    """out = op(x) @ op(y) (or the outer product of x and y); only true flags are written."""
    attrs = {k: True for k, flag in (("transpose_a", ta), ("transpose_b", tb)) if flag}
    b.op(name, [x, y, out], [], attrs)


def _flags(attrs: dict[str, bool]) -> tuple[bool, bool]:
    return bool(attrs.get("transpose_a")), bool(attrs.get("transpose_b"))


def _matmul_adjoint_a(a: Value, b: Value, g: Value, attrs: dict[str, bool]) -> tuple[
        str, Value, Value, dict[str, bool]]:
    """Ā of op(A) @ op(B): C̄ op(B)ᵀ, transposed when A is; an outer product for a 1-D B."""
    ta, tb = _flags(attrs)
    if array_type(b).ndim == 1:   # y = op(A) x: Ā' = ȳ xᵀ
        return ("linalg.outer", b, g, {}) if ta else ("linalg.outer", g, b, {})
    if array_type(a).ndim == 1:   # y = x op(B): x̄ = op(B) ȳ
        return "linalg.matmul", b, g, {"transpose_a": tb}
    if ta:
        return "linalg.matmul", b, g, {"transpose_a": tb, "transpose_b": True}
    return "linalg.matmul", g, b, {"transpose_b": not tb}


def _matmul_adjoint_b(a: Value, b: Value, g: Value, attrs: dict[str, bool]) -> tuple[
        str, Value, Value, dict[str, bool]]:
    """B̄ of op(A) @ op(B): op(A)ᵀ C̄, transposed when B is; an outer product for a 1-D A."""
    ta, tb = _flags(attrs)
    if array_type(a).ndim == 1:   # y = x op(B): B̄' = x ȳᵀ
        return ("linalg.outer", g, a, {}) if tb else ("linalg.outer", a, g, {})
    if array_type(b).ndim == 1:   # y = op(A) x: x̄ = op(A)ᵀ ȳ
        return "linalg.matmul", a, g, {"transpose_a": not ta}
    if tb:
        return "linalg.matmul", g, a, {"transpose_a": True, "transpose_b": ta}
    return "linalg.matmul", a, g, {"transpose_a": not ta}


def _outer_adjoint_x(x: Value, y: Value, g: Value, attrs: dict[str, bool]) -> tuple[
        str, Value, Value, dict[str, bool]]:
    return "linalg.matmul", g, y, {}            # x̄ = Ō y


def _outer_adjoint_y(x: Value, y: Value, g: Value, attrs: dict[str, bool]) -> tuple[
        str, Value, Value, dict[str, bool]]:
    return "linalg.matmul", g, x, {"transpose_a": True}   # ȳ = Ōᵀ x


# op -> the adjoint products of its first and second operands
ADJOINTS: dict[str, tuple[Adjoint, Adjoint]] = {
    "linalg.matmul": (_matmul_adjoint_a, _matmul_adjoint_b),
    "linalg.outer": (_outer_adjoint_x, _outer_adjoint_y),
}


def jvp_bilinear(ctx: ForwardContext, op: Op) -> None:
    """d(x ∘ y) = dx ∘ y + x ∘ dy, each term the op itself on a tangent."""
    new = ctx.clone(op)
    x, y, out = op.operands
    if not ctx.act.shadowed(out):
        return
    nx, ny, _ = new.operands
    d_out = ctx.shadow_of(out)
    ta, tb = _flags(op.attrs)
    terms = [(ctx.shadow_of(x), ny)] if ctx.act.shadowed(x) else []
    terms += [(nx, ctx.shadow_of(y))] if ctx.act.shadowed(y) else []
    if not terms:
        ctx.b.op("mem.fill", [zero(ctx.b, element(array_type(d_out).dtype)), d_out])
        return
    product(ctx.b, op.name, *terms[0], d_out, ta, tb)
    for first, second in terms[1:]:
        part = array_like(ctx.b, d_out, fill="empty")
        product(ctx.b, op.name, first, second, part, ta, tb)
        ctx.b.op("mem.add_into", [part, d_out])


def vjp_bilinear(ctx: ReverseContext, op: Op, region: Region) -> None:
    """Each shadowed operand gets its adjoint product of C̄ (computed before C̄ is zeroed)."""
    x, y, out = op.operands
    targets = [k for k, v in enumerate((x, y)) if ctx.act.shadowed(v)]
    if not ctx.act.shadowed(out) or not targets:
        return
    if in_parallel(op):
        raise DifferentiationError(
            f"{where(op.loc)}: a matrix product inside a parallel loop (prange) has no "
            f"reverse-mode rule yet (its adjoints would race); move the product out of the "
            f"parallel loop")
    g = ctx.shadow(out, region)
    first_operand, second_operand = (_read_again(ctx, op, v, region) if 1 - k in targets
                                     else v for k, v in enumerate((x, y)))
    parts = []
    for k in targets:
        name, first, second, attrs = ADJOINTS[op.name][k](first_operand, second_operand, g,
                                                             op.attrs)
        target = ctx.shadow((x, y)[k], region)
        if name == "linalg.outer" and target is not g and \
                all(lanes(v.type) == 1 for v in (first, second, target)):
            _accumulate_outer(ctx.b, first, second, target)   # a rank-1 update in place
            continue
        part = array_like(ctx.b, target, fill="empty")
        product(ctx.b, name, first, second, part, *_flags(attrs))
        parts.append((part, target))
    ctx.b.op("mem.fill", [zero(ctx.b, element(array_type(g).dtype)), g])
    for part, target in parts:
        ctx.b.op("mem.add_into", [part, target])


def _accumulate_outer(b: Builder, x: Value, y: Value, target: Value) -> None:
    """target[i, j] += x[i] * y[j]: a loop nest, with no temporary and no second pass (the
    adjoint of a matrix-vector product; it reads x and y, which it does not write)."""
    zero_i = b.op1("arith.const", [], i64, {"value": 0})
    one = b.op1("arith.const", [], i64, {"value": 1})
    t = array_type(target).dtype
    rows = Block([Value(i64, "i")])
    b.op("scf.for", [zero_i, b.op1("mem.shape", [x], i64, {"axis": 0}), one], [],
         regions=[rows])
    rb = Builder(rows, b.loc)
    cols = Block([Value(i64, "j")])
    rb.op("scf.for", [zero_i, rb.op1("mem.shape", [y], i64, {"axis": 0}), one], [],
          regions=[cols])
    cb = Builder(cols, b.loc)
    xi = cb.op1("mem.load", [x, rows.args[0]], t)
    yj = cb.op1("mem.load", [y, cols.args[0]], t)
    cb.op("mem.accumulate", [cb.op1("arith.mul", [xi, yj], t), target, rows.args[0],
                             cols.args[0]])
    cb.op("scf.yield")
    rb.op("scf.yield")


def _read_again(ctx: ReverseContext, op: Op, arr: Value, region: Region) -> Value:
    """arr as op read it, for the reverse sweep: arr itself when nothing writes it after op
    and op's loop body did not make it, else (op at top level) a copy made just before op in
    the forward sweep, or (op in a top-level loop) a history."""
    later = _later_write(ctx, op, arr)
    if later is None and _allocated_beside(op, arr) is None:
        return _visible(ctx, arr, region)
    if op.parent is ctx.fn.body:
        return _snapshot(ctx, op, arr, region)
    kept = _snapshot_in_branch(ctx, op, arr, region)
    if kept is not None:
        return kept
    history = _history(ctx, op, arr, region)
    if history is not None:
        return history
    seen = _view_of_history(ctx, op, arr, region)
    if seen is not None:
        return seen
    nested = _nest_history(ctx, op, arr, region)
    if nested is not None:
        return nested
    if later is None:
        return _visible(ctx, arr, region)     # (refuses an array made in the loop)
    raise DifferentiationError(
        f"{where(op.loc)}: the reverse sweep of this matrix product needs the values "
        f"'{arr.name or 'its operand'}' had here, but {where(later.loc)} overwrites it "
        f"later in the same loop; {_history_hint(ctx, op)}")


def _history_hint(ctx: ReverseContext, op: Op) -> str:
    """What to do where no history of a product's operand can be kept: the loops that keep
    none say why (no count known before them, or nested), others ask for a new array."""
    loops = []
    at: Op | None = op
    while at is not None and at.parent is not None and isinstance(at.parent.parent, Op):
        at = at.parent.parent
        loops.append(at)
    written = ("write the product as loops over its elements (`for i ...: for j ...: "
               "s += A[i, j] * v[j]`), whose reads the reverse sweep keeps")
    if any(loop.name == "scf.while" for loop in loops):
        return (f"a `while` loop, or a `for` loop with `break` or `return`, has no trip "
                f"count before it runs, so hpcad keeps no copy per iteration of a product's "
                f"operands there: {written}")
    if len(loops) > 1:
        return (f"hpcad keeps a copy per iteration of a product's operands in a nest of for "
                f"loops whose bounds are all known before the nest (not a triangular one, "
                f"nor one with an `if` around the product), of an array from before the "
                f"nest or a view of one: {written}")
    return ("compute the product into a new array, or write the changed values to another "
            "array")


def _view_of_history(ctx: ReverseContext, op: Op, arr: Value, region: Region) -> Value | None:
    """arr a view (`P[0, :]`) of an array that _history keeps: the same view of the
    iteration's copy, else None."""
    owner = arr.owner
    if not (isinstance(owner, Op) and owner.name in ("mem.view", "mem.bitcast")):
        return None
    base = owner.operands[0]
    kept = _history(ctx, op, base, region)
    if kept is None:
        kept = _view_of_history(ctx, op, base, region)
    if kept is None:
        return None
    return ctx.b.op1(owner.name, [kept] + [ctx.primal(v, region) for v in owner.operands[1:]],
                     arr.type, owner.attrs)


def _later_write(ctx: ReverseContext, op: Op, arr: Value) -> Op | None:
    """An op that may write arr (its alias class) after op runs, but op itself: those after
    op in its block and in each enclosing block, the whole body of an enclosing loop (its
    next iteration) or of any other op with regions but an `if` (whose other branch does not
    run after this one)."""
    key = ctx.act.key
    at = op
    while at.parent is not None:
        block = at.parent
        owner = block.parent if block is not ctx.fn.body else None
        repeats = owner is not None and owner.name != "scf.if"
        for top in block.ops if repeats else block.ops[block.ops.index(at) + 1:]:
            for o in [top, *(x for r in top.regions for x in walk(r))]:
                if o is not op and any(key(w) == key(arr) for w in writes(o)):
                    return o
        if owner is None:
            return None
        at = owner
    return None


def _visible(ctx: ReverseContext, arr: Value, region: Region) -> Value:
    """A primal array as the reverse of region sees it (a view made inside a loop is made
    again from its base)."""
    if ctx.region_of(arr, region).top:
        return ctx.vmap[arr]
    owner = arr.owner
    if isinstance(owner, Op) and owner.name in ("mem.view", "mem.bitcast"):
        base = _visible(ctx, owner.operands[0], region)
        return ctx.b.op1(owner.name, [base] + [ctx.primal(v, region)
                                               for v in owner.operands[1:]],
                         arr.type, owner.attrs)
    raise DifferentiationError(
        f"{where(getattr(owner, 'loc', None))}: the reverse sweep of a matrix product needs "
        f"array '{arr.name or 'operand'}', which is created inside a loop; create it before "
        f"the loop and fill it in the loop")


def _forward_copy(ctx: ReverseContext, op: Op, region: Region) -> Builder:
    """A builder inserting just before op's copy in region's forward sweep."""
    mapped = [ctx.vmap.get(v, v) for v in op.operands]
    b = Builder(region.fwd, op.loc)
    b.index = next(k for k, c in enumerate(region.fwd.ops)
                   if c.name == op.name and c.operands == mapped)
    return b


def _snapshot(ctx: ReverseContext, op: Op, arr: Value, region: Region) -> Value:
    """A copy of arr taken in the forward sweep just before op's copy there (op is a
    top-level op, so the copy is visible to the whole reverse sweep)."""
    b = _forward_copy(ctx, op, region)
    copy = array_like(b, ctx.vmap[arr], fill="empty")
    b.op("mem.copy", [ctx.vmap[arr], copy])
    return copy


def _snapshot_in_branch(ctx: ReverseContext, op: Op, arr: Value,
                        region: Region) -> Value | None:
    """For op inside `if`s only (no loop around it) and arr an array the whole reverse
    sweep sees: a copy of arr allocated before the outermost `if` in the forward sweep and
    filled just before op's copy there, else None."""
    r = region
    while r.parent is not None:
        owner = r.old.parent if r.old is not None else None
        if owner is None or owner.name != "scf.if":
            return None
        if r.parent.top:
            break
        r = r.parent
    if r.parent is None or not ctx.region_of(arr, region).top:
        return None
    top = r.parent
    outer = next(c for c in top.fwd.ops if any(b is r.fwd for b in c.regions))
    b = Builder(top.fwd, op.loc)
    b.index = top.fwd.ops.index(outer)
    copy = array_like(b, ctx.vmap[arr], fill="empty")
    _forward_copy(ctx, op, region).op("mem.copy", [ctx.vmap[arr], copy])
    return copy


def _allocated_beside(op: Op, arr: Value) -> Op | None:
    """The allocation of arr where it is made in the loop body op is in (a new array each
    iteration), else None."""
    owner = arr.owner
    if isinstance(owner, Op) and owner.name == "mem.alloc" and owner.parent is op.parent \
            and op.parent is not None and isinstance(op.parent.parent, Op):
        return owner
    return None


def _history(ctx: ReverseContext, op: Op, arr: Value, region: Region) -> Value | None:
    """For op in the body of a top-level for loop (not a checkpointed time loop) and arr an
    array from outside the loop, one the loop carries (swapped buffers, of the shape of the
    one it starts from: checked), or one the body allocates with a shape known before the
    loop: a history of arr, one copy per iteration (allocated before the loop, each filled
    just before op's copy in the forward sweep); the reverse of an iteration reads its own.
    None where that does not apply."""
    loop = op.parent.parent if op.parent is not None else None
    strategy = getattr(ctx, "strategy", None)
    top = region.parent
    if loop is None or loop.name != "scf.for" or loop.parent is not ctx.fn.body \
            or getattr(strategy, "loop", None) is loop or top is None or not top.top:
        return None
    carried = arr.owner is loop.regions[0]
    alloc = _allocated_beside(op, arr)
    if alloc is not None and not all(_extent_before(ctx, loop, d, region, None) for d in
                                     alloc.operands):
        return None
    if not (carried or alloc is not None or ctx.region_of(arr, region).top):
        return None
    fwd_loop = next(c for c in top.fwd.ops if c.regions and c.regions[0] is region.fwd)
    lb, ub, step = fwd_loop.operands[:3]
    b = Builder(top.fwd, loop.loc)
    b.index = top.fwd.ops.index(fwd_loop)
    t = array_type(arr)
    first = loop.operands[2 + loop.regions[0].args.index(arr)] if carried else arr
    dims = [_extent_before(ctx, loop, d, region, b) or d for d in alloc.operands] \
        if alloc is not None else \
        [b.op1("mem.shape", [ctx.vmap[first]], i64, {"axis": k}) for k in range(t.ndim)]
    history = b.op1("mem.alloc", [trip_count(b, lb, ub, step), *dims],
                    ArrayType(t.dtype, t.ndim + 1, "C"), {"fill": "empty"})
    fb = _forward_copy(ctx, op, region)
    source = ctx.vmap[arr]
    if carried or alloc is not None and not all(ctx.region_of(d, region).top
                                                for d in alloc.operands):
        for k, d in enumerate(dims):
            same = fb.op1("arith.cmp", [fb.op1("mem.shape", [source], i64, {"axis": k}), d],
                          i1, {"pred": "eq"})
            fb.op("rt.assert", [same], [], {
                "what": f"the loop changes the shape of array '{arr.name or 'operand'}', "
                        f"whose values the reverse sweep of a matrix product keeps"})
    fb.op("mem.copy", [source, _entry(fb, history, region.fwd.args[0], lb, step, dims)])
    iv, lb, step = (ctx.primal(v, region) for v in (loop.regions[0].args[0], loop.operands[0],
                                                    loop.operands[2]))
    return _entry(ctx.b, history, iv, lb, step, dims)


def _nest_history(ctx: ReverseContext, op: Op, arr: Value, region: Region) -> Value | None:
    """For op in a nest of for loops (any depth; the outermost at top level, not a
    checkpointed time loop) whose bounds are the same in every iteration, and arr an array
    from before the nest, a view of one, or an array the nest allocates, with lengths the
    same in every iteration: a history of arr with one copy per iteration of the whole nest
    (allocated before the nest, each filled just before op's copy in the forward sweep); the
    reverse of an iteration reads its own. None where that does not apply."""
    loops: list[Op] = []
    regions: list[Region] = []
    at, r = op, region   # type: Op, Region | None
    while at.parent is not None and isinstance(at.parent.parent, Op):
        at = at.parent.parent
        if at.name != "scf.for" or r is None or r.old is not at.regions[0]:
            return None
        loops.append(at)
        regions.append(r)
        r = r.parent
    outer = loops[-1] if loops else None
    if outer is None or outer.parent is not ctx.fn.body or r is None or not r.top or \
            getattr(getattr(ctx, "strategy", None), "loop", None) is outer:
        return None
    owner = arr.owner if isinstance(arr.owner, Op) else None
    lengths: list[Value] | None = None
    if ctx.region_of(arr, region).top:
        pass
    elif owner is not None and owner.name == "mem.view" and \
            ctx.region_of(owner.operands[0], region).top:
        lengths = _view_lengths(owner)
        if lengths is None:
            return None
    elif owner is not None and owner.name == "mem.alloc" and _inside(owner, outer):
        lengths = list(owner.operands)
    else:
        return None
    fixed = [v for loop in loops for v in loop.operands[:3]] + (lengths or [])
    if not all(_invariant(ctx, v, region, None) is not None for v in fixed):
        return None
    top = r
    fwd_outer = next(c for c in top.fwd.ops if c.regions and c.regions[0] is regions[-1].fwd)
    b = Builder(top.fwd, outer.loc)
    b.index = top.fwd.ops.index(fwd_outer)
    bounds = [[_invariant(ctx, v, region, b) for v in loop.operands[:3]] for loop in loops]
    trips = [trip_count(b, lb, ub, step) for lb, ub, step in bounds]
    t = array_type(arr)
    dims = [b.op1("mem.shape", [ctx.vmap[arr]], i64, {"axis": k}) for k in range(t.ndim)] \
        if lengths is None else [_invariant(ctx, d, region, b) for d in lengths]
    history = b.op1("mem.alloc", [*trips[::-1], *dims],
                    ArrayType(t.dtype, len(trips) + t.ndim, "C"), {"fill": "empty"})
    fb = _forward_copy(ctx, op, region)
    fb.op("mem.copy", [ctx.vmap[arr], _slot(fb, history, [rg.fwd.args[0] for rg in regions],
                                            bounds, dims)])
    return _slot(ctx.b, history, [ctx.primal(loop.regions[0].args[0], region)
                                  for loop in loops], bounds, dims)


def _inside(op: Op, loop: Op) -> bool:
    """Whether op is in loop's body (at any depth)."""
    at: Op | None = op
    while at is not None and at.parent is not None and isinstance(at.parent.parent, Op):
        at = at.parent.parent
        if at is loop:
            return True
    return False


# integer ops computed again before a nest from operands made before it (none can fail)
_INVARIANT_OPS = ("arith.add", "arith.sub", "arith.mul", "arith.max", "arith.min",
                  "arith.cmp", "arith.select", "arith.cast", "arith.neg")


def _invariant(ctx: ReverseContext, v: Value, region: Region, b: Builder | None) -> Any:
    """v as a value made before the top-level loop around region (with b, in the forward
    sweep; b None: only whether it can be, v or None): v itself where it is made at top
    level, a constant, or integer arithmetic of such values (floordiv and mod by a nonzero
    constant too), made again with b."""
    if ctx.region_of(v, region).top:
        return ctx.vmap[v] if b is not None else v
    owner = v.owner
    if not isinstance(owner, Op) or owner.regions or not isinstance(v.type, ScalarType) or \
            (not v.type.is_int and owner.name != "arith.cmp"):
        return None
    if owner.name == "arith.const":
        return b.op1("arith.const", [], v.type, dict(owner.attrs)) if b is not None else v
    divisor = owner.operands[1].owner if owner.name in ("arith.floordiv", "arith.mod") \
        else None
    if owner.name not in _INVARIANT_OPS and not (
            isinstance(divisor, Op) and divisor.name == "arith.const" and
            divisor.attrs.get("value")):
        return None
    operands = [_invariant(ctx, x, region, b) for x in owner.operands]
    if any(x is None for x in operands):
        return None
    return b.op1(owner.name, operands, v.type, dict(owner.attrs)) if b is not None else v


def _view_lengths(view: Op) -> list[Value] | None:
    """The lengths of a mem.view's axes, from its operands, or None."""
    it = iter(view.operands[1:])
    out = []
    for d in view.attrs["dims"]:
        if d == "i":
            next(it)
        elif d == "s":
            next(it)
            out.append(next(it))
        elif d == "t":
            next(it)
            next(it)
            out.append(next(it))
        else:
            return None
    return out


def _slot(b: Builder, history: Value, ivs: list[Value], bounds: list[list[Value]],
          dims: list[Value]) -> Value:
    """history[k_outer, ..., k_inner] (k = (iv - lb) // step of each loop, ivs innermost
    first), a view of one iteration's copy."""
    index = [b.op1("arith.floordiv", [b.op1("arith.sub", [iv, lb], i64), step], i64)
             for iv, (lb, _, step) in zip(ivs, bounds, strict=True)][::-1]
    zero_i = b.op1("arith.const", [], i64, {"value": 0})
    t = array_type(history)
    entry: Value = b.op1("mem.view", [history, *index, *[x for d in dims for x in (zero_i, d)]],
                         ArrayType(t.dtype, len(dims), "C"),
                         {"dims": "i" * len(index) + "s" * len(dims)})
    return entry


def _extent_before(ctx: ReverseContext, loop: Op, d: Value, region: Region,
                   b: Builder | None) -> Value | None:
    """An extent d of loop's body as a value made before the loop (with b, in the forward
    sweep; b None: only whether it can be, answered by d or None), else None: d itself where
    it is made before the loop, a constant, the extent of an array the loop carries (that of
    the array it starts from: the caller checks that they agree in every iteration) or of
    one its body allocates (that allocation's extent, told again the same way)."""
    if ctx.region_of(d, region).top:
        return ctx.vmap[d] if b is not None else d
    owner = d.owner
    if not isinstance(owner, Op):
        return None
    if owner.name == "arith.const":
        return b.op1("arith.const", [], d.type, dict(owner.attrs)) if b is not None else d
    if owner.name != "mem.shape":
        return None
    arr, axis = owner.operands[0], owner.attrs["axis"]
    body = loop.regions[0]
    if arr.owner is body:
        first = loop.operands[2 + body.args.index(arr)]
        return b.op1("mem.shape", [ctx.vmap[first]], i64, {"axis": axis}) if b is not None \
            else d
    made = arr.owner
    if isinstance(made, Op) and made.name == "mem.alloc" and made.parent is body:
        return _extent_before(ctx, loop, made.operands[axis], region, b)
    return None


def _entry(b: Builder, history: Value, iv: Value, lb: Value, step: Value,
           dims: list[Value]) -> Value:
    """history[(iv - lb) // step], a view."""
    k = b.op1("arith.floordiv", [b.op1("arith.sub", [iv, lb], i64), step], i64)
    zero_i = b.op1("arith.const", [], i64, {"value": 0})
    bounds = [x for d in dims for x in (zero_i, d)]
    t = array_type(history)
    entry: Value = b.op1("mem.view", [history, k, *bounds],
                         ArrayType(t.dtype, t.ndim - 1, "C"), {"dims": "i" + "s" * len(dims)})
    return entry


defrule("linalg.matmul", "linalg.outer", jvp=jvp_bilinear, vjp=vjp_bilinear)
