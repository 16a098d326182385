"""Rules of a call to a kernel with custom derivative rules (`func.call {custom}`; the
kernels, the rules' calling convention and their lowering are in ad/custom.py): forward mode
calls its jvp rule, reverse mode finds the call's fwd rule already in the augmented forward
sweep (RuleCalls.for_mode) and calls its bwd rule in the reverse sweep. At width W > 1 a
rule is called once per direction (ad/custom.py's `call_per_lane`)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from ...errors import DifferentiationError, where
from ...ir.clone import clone_function
from ...ir.core import Function, Op, Value, walk
from ...ir.effects import writes
from ...ir.types import ArrayType, is_float
from ..custom import (
    RuleCalls,
    array_like,
    call_per_lane,
    is_rule_call,
    lane_type,
    read_arguments,
    rule_error,
    written_arguments,
)
from .registry import defrule

if TYPE_CHECKING:
    from ...custom import CustomKernel
    from ...kernel import Kernel
    from ..regions import Region
    from .context import ForwardContext, ReverseContext


def _float_array(t: object) -> bool:
    return isinstance(t, ArrayType) and t.dtype.is_float


def _calls(ctx: ForwardContext | ReverseContext) -> RuleCalls:
    """The specialization's calls to kernels with rules (there is one: AD met a call)."""
    if ctx.rules is None:
        raise DifferentiationError("internal: a call to a kernel with rules, but no rules")
    return ctx.rules


def _bwd(kernel: CustomKernel) -> Kernel:
    assert kernel.bwd is not None   # (RuleCalls.for_mode checked)
    return kernel.bwd


def jvp_rule_call(ctx: ForwardContext, op: Op) -> None:
    if not is_rule_call(op):
        raise DifferentiationError(f"{where(op.loc)}: internal: call not inlined")
    floats = [v for v in op.operands if is_float(v.type) or _float_array(v.type)]
    if not any(v in ctx.tan or (_float_array(v.type) and ctx.act.shadowed(v))
               for v in floats):
        ctx.clone(op)   # nothing varies: the kernel itself
        return
    args = [ctx.vmap.get(v, v) for v in op.operands]
    tangents = [(ctx.shadow_of(v) if ctx.act.shadowed(v)
                 else array_like(ctx.b, a, ctx.width))
                if isinstance(v.type, ArrayType) else ctx.tangent_or_zero(v)
                for v, a in zip(op.operands, args, strict=True) if v in floats]
    jvp = _calls(ctx).lower(op, "jvp", [v.type for v in args]
                           + [lane_type(t.type) for t in tangents])
    outs = [r.type for r in op.results]
    _calls(ctx).check_results(op, "jvp", jvp, outs + [None for t in outs if is_float(t)],
                             "the kernel's results, then one tangent per float result")
    if ctx.width == 1:
        results = ctx.b.op("func.call", args + tangents, list(jvp.result_types),
                            {"callee": jvp.name}).results
    else:
        results = call_per_lane(ctx.b, ctx.width, jvp, args, tangents, len(outs),
                                [ctx.dtype(r) for r in op.results if is_float(r.type)],
                                _snapshots(ctx, op, args))
    dots = iter(results[len(outs):])
    for old, new in zip(op.results, results, strict=False):
        new.name = old.name
        ctx.vmap[old] = new
        if is_float(old.type):
            dot = next(dots)
            if ctx.act.active(old):
                ctx.tan[old] = dot


def _snapshots(ctx: ForwardContext, op: Op, args: list[Value]) -> list[tuple[Value, Value]]:
    """(copy, array) for each array the kernel op calls writes: the calls of its jvp rule
    for each direction must each start from the arrays' values before the first."""
    pairs = []
    for k in (int(k) for k in op.attrs.get("writes", "").split(",") if k):
        arr = args[k]
        copy = array_like(ctx.b, arr, fill="empty")
        ctx.b.op("mem.copy", [arr, copy])
        pairs.append((copy, arr))
    return pairs


def vjp_rule_call(ctx: ReverseContext, op: Op, region: Region) -> None:
    if not is_rule_call(op):
        raise DifferentiationError(f"{where(op.loc)}: internal: call not inlined")
    m = op.attrs["outs"]
    outs = [r for r in op.results[:m] if is_float(r.type)]
    arrays = [v for v in op.operands if _float_array(v.type)]
    if all(ctx.adj.get(r) is None for r in outs) and \
            not any(ctx.act.shadowed(a) for a in arrays):
        return
    gs = [ctx.current(r) for r in outs]
    for r in outs:
        ctx.adj.pop(r, None)
    args = [_primal_array(ctx, v, region) if isinstance(v.type, ArrayType)
            else ctx.primal(v, region) for v in op.operands]
    saved = [ctx.primal(r, region) for r in op.results[m:]]
    cotangents = [ctx.shadow(a, region) if ctx.act.shadowed(a) else
                  array_like(ctx.b, args[op.operands.index(a)], ctx.width) for a in arrays]
    bwd = _calls(ctx).lower(op, "bwd", [v.type for v in args + saved]
                           + [lane_type(v.type) for v in gs + cotangents])
    scalars = [v for v in op.operands if is_float(v.type)]
    _calls(ctx).check_results(op, "bwd", bwd, [None] * len(scalars),
                             "one cotangent per float scalar argument")
    for k in read_arguments(bwd):
        if k < len(op.operands):
            _check_unchanged(ctx, op, op.operands[k], bwd)
    if ctx.width == 1:
        results = ctx.b.op("func.call", args + saved + gs + cotangents,
                            list(bwd.result_types), {"callee": bwd.name}).results
    else:
        _check_writes_no_primal(ctx, op, bwd)
        results = call_per_lane(ctx.b, ctx.width, bwd, args + saved, gs + cotangents, 0,
                                [ctx.dtype(v) for v in scalars])
    for v, g in zip(scalars, results, strict=False):
        ctx.add_adjoint(v, g)


def _check_writes_no_primal(ctx: ReverseContext, op: Op, bwd: Function) -> None:
    """bwd, called once per direction, may write only its cotangent arrays."""
    for k in written_arguments(_calls(ctx).inline(clone_function(bwd))):
        if k < len(op.operands):
            kernel = _calls(ctx).kernel_of(op)
            raise rule_error(kernel, _bwd(kernel), "bwd",
                             f"writes its argument '{bwd.arg_names[k]}', an array of the "
                             f"kernel; at width {ctx.width} hpcad calls bwd once per "
                             f"direction (the call at {where(op.loc)}), so it may write "
                             f"only its cotangent arrays: leave the kernel's arrays as "
                             f"they are")


def _primal_array(ctx: ReverseContext, arr: Value, region: Region) -> Value:
    """A primal array as the reverse of region sees it (a view made inside a loop is made
    again from its base)."""
    if ctx.region_of(arr, region).top:
        return ctx.vmap[arr]
    owner = arr.owner
    if isinstance(owner, Op) and owner.name in ("mem.view", "mem.reshape", "mem.bitcast"):
        base = _primal_array(ctx, owner.operands[0], region)
        return ctx.b.op1(owner.name, [base] + [ctx.primal(v, region) for v in owner.operands[1:]],
                          arr.type, owner.attrs)
    raise DifferentiationError(
        f"{where(getattr(owner, 'loc', None))}: a custom rule's bwd needs array '{arr.name}', "
        f"which is created inside a loop; create it before the loop")


def _check_unchanged(ctx: ReverseContext, op: Op, arr: Value, bwd: Function) -> None:
    """bwd reads arr: nothing may write it between the call and the reverse sweep."""
    body, key = ctx.fn.body, ctx.act.key
    top = ctx.position(op, body)
    for t in body.ops[top:]:
        for o in [t, *(x for r in t.regions for x in walk(r))]:
            if o is op and op.parent is body:
                continue   # the call's own writes are done when bwd runs
            if any(key(w) == key(arr) for w in writes(o)):
                kernel = _calls(ctx).kernel_of(op)
                raise rule_error(kernel, _bwd(kernel), "bwd",
                                 f"reads array '{arr.name}', but {where(o.loc)} writes it "
                                 f"after the call at {where(op.loc)}, so the reverse sweep "
                                 f"cannot give bwd the values it had; return what bwd needs "
                                 f"as residuals from fwd, or pass bwd a copy")


defrule("func.call", jvp=jvp_rule_call, vjp=vjp_rule_call)
