"""Rules of the `linalg` dialect: matrix products are bilinear, so their derivatives are
matrix products too (never element-wise tapes). For C = op(A) @ op(B): forward mode
dC = op(dA) @ op(B) + op(A) @ op(dB); reverse mode adds C̄ @ op(B)ᵀ into Ā and op(A)ᵀ @ C̄
into B̄ (an outer product where an operand is a vector) and zeroes C̄, which the product
overwrote. The reverse sweep reads A and B as the product read them: the arrays as they
are when nothing writes them afterwards, else a copy taken in the forward sweep beside a
top-level product; a product inside a loop whose operands change later is refused."""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ...errors import DifferentiationError, where
from ...ir.core import Builder, Op, Value, walk
from ...ir.dialects import in_parallel
from ...ir.effects import writes
from ...ir.types import element
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
        part = array_like(ctx.b, target, fill="empty")
        product(ctx.b, name, first, second, part, *_flags(attrs))
        parts.append((part, target))
    ctx.b.op("mem.fill", [zero(ctx.b, element(array_type(g).dtype)), g])
    for part, target in parts:
        ctx.b.op("mem.add_into", [part, target])


def _read_again(ctx: ReverseContext, op: Op, arr: Value, region: Region) -> Value:
    """arr as op read it, for the reverse sweep: arr itself when nothing writes it after op,
    else (op at top level) a copy made just before op in the forward sweep."""
    visible = _visible(ctx, arr, region)
    later = _later_write(ctx, op, arr)
    if later is None:
        return visible
    if op.parent is not ctx.fn.body:
        raise DifferentiationError(
            f"{where(op.loc)}: the reverse sweep of this matrix product needs the values "
            f"'{arr.name or 'its operand'}' had here, but {where(later.loc)} overwrites it "
            f"later in the same loop; compute the product into a new array, or write the "
            f"changed values to another array")
    return _snapshot(ctx, op, arr, region)


def _later_write(ctx: ReverseContext, op: Op, arr: Value) -> Op | None:
    """An op that writes arr (its alias class) from op's top-level op on, but op itself."""
    body, key = ctx.fn.body, ctx.act.key
    for top in body.ops[ctx.position(op, body):]:
        for o in [top, *(x for r in top.regions for x in walk(r))]:
            if o is not op and any(key(w) == key(arr) for w in writes(o)):
                return o
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


def _snapshot(ctx: ReverseContext, op: Op, arr: Value, region: Region) -> Value:
    """A copy of arr taken in the forward sweep just before op's copy there (op is a
    top-level op, so the copy is visible to the whole reverse sweep)."""
    fwd = region.fwd
    mapped = [ctx.vmap[v] for v in op.operands]
    at = next(k for k, c in enumerate(fwd.ops) if c.name == op.name and c.operands == mapped)
    b = Builder(fwd, op.loc)
    b.index = at
    copy = array_like(b, ctx.vmap[arr], fill="empty")
    b.op("mem.copy", [ctx.vmap[arr], copy])
    return copy


defrule("linalg.matmul", "linalg.outer", jvp=jvp_bilinear, vjp=vjp_bilinear)
