"""Forward mode: a function computing the primal and, alongside, the tangent of every active
value. Loops and branches carry tangents (scalars) and shadows (arrays) next to the primal
values; each op's tangent is its forward rule's (ad/rules/, looked up by op name).
With width W every tangent and shadow carries W directions (its type `with_width(t, W)`):
the code is the same, the derivative values are vectors."""
from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from ..errors import DifferentiationError
from ..ir.clone import clone_op
from ..ir.core import Block, Builder, Function, Op, Value
from ..ir.types import ArrayType, Type, i64, with_width
from ..passes.activity import Activity
from .common import derivative_name, differentiable_result, has_tangent, zero
from .custom import RuleCalls
from .rules import jvp_rule

T = TypeVar("T")


class ForwardEngine:
    """The walk of forward mode and what its rules (ad/rules/, typed by
    rules/context.ForwardContext) see: the primal map, tangents, shadows, the builder."""

    def __init__(self, act: Activity, rules: RuleCalls | None = None, width: int = 1,
                 tape_offset: int = 0) -> None:
        self.act = act
        self.rules = rules   # calls to kernels with custom rules (ad/custom.py)
        self.width = width
        self.tape_offset = tape_offset   # differentiating a derivative: see ad/hvp.py
        self.taped: set[int] = set()     # slots whose values have tangents on the tape
        self.vmap: dict[Value, Value] = {}
        self.tan: dict[Value, Value] = {}     # active scalar -> its tangent
        self.shadow: dict[Value, Value] = {}  # shadowed array -> its shadow
        self.requests: dict[Value, Value] = {}  # MPI request -> the tangent's request
        self.b = Builder()

    # -- carried values (loops, branches) -----------------------------------------------------
    def slots(self, values: list[Value]) -> tuple[list[int], list[int]]:
        """Which carried values get a tangent slot and which a shadow slot."""
        tans = [k for k, v in enumerate(values) if self.act.active(v)]
        shadows = [k for k, v in enumerate(values)
                   if isinstance(v.type, ArrayType) and self.act.shadowed(v)]
        return tans, shadows

    def extended(self, values: list[Value], tans: list[int],
                 shadows: list[int]) -> list[Value]:
        """The mapped primal values followed by their tangents and shadows."""
        out = [self.vmap.get(v, v) for v in values]
        out += [self.tangent_or_zero(values[k]) for k in tans]
        out += [self.shadow_of(values[k]) for k in shadows]
        return out

    def bind(self, olds: list[Value], news: list[Value], tans: list[int],
             shadows: list[int]) -> None:
        n = len(olds)
        for o, v in zip(olds, news[:n], strict=True):
            self.vmap[o] = v
        for j, k in enumerate(tans):
            self.tan[olds[k]] = news[n + j]
        for j, k in enumerate(shadows):
            self.shadow[olds[k]] = news[n + len(tans) + j]

    def new_args(self, olds: list[Value], tans: list[int], shadows: list[int]) -> list[Value]:
        args = [Value(o.type, o.name) for o in olds]
        args += [Value(self.dtype(olds[k]), derivative_name(olds[k], "d_")) for k in tans]
        args += [Value(self.dtype(olds[k]), derivative_name(olds[k], "d_")) for k in shadows]
        return args

    def dtype(self, v: Value) -> Type:
        """The type of v's tangent or shadow."""
        t: Type = with_width(v.type, self.width)
        return t

    def tangent_or_zero(self, v: Value) -> Value:
        t = self.tan.get(v)
        return t if t is not None else zero(self.b, self.dtype(v))

    def result_tangent(self, v: Value) -> Value:
        """The tangent of a float result: a scalar's, or a returned array's shadow (a new
        zero array of its shape where nothing active flows into it)."""
        if not isinstance(v.type, ArrayType):
            return self.tangent_or_zero(v)
        if self.act.shadowed(v):
            return self.shadow_of(v)
        primal = self.vmap.get(v, v)
        dims = [self.b.op1("mem.shape", [primal], i64, {"axis": k}) for k in range(v.type.ndim)]
        t = with_width(ArrayType(v.type.dtype, v.type.ndim, "C"), self.width)
        zeros: Value = self.b.op1("mem.alloc", dims, t, {"fill": "zeros"},
                                  name_hint=derivative_name(v, "d_"))
        return zeros

    def shadow_of(self, arr: Value) -> Value:
        s = self.shadow.get(arr)
        if s is None:
            raise DifferentiationError(f"internal: array %{arr.name} has no shadow")
        return s

    # -- blocks -------------------------------------------------------------------------------
    def region(self, old: Block, new: Block) -> Op:
        """Transform all ops but the terminator into `new`; returns the old terminator."""
        saved = self.b.block
        self.b.block = new
        for op in old.ops[:-1]:
            self.op(op)
        self.b.block = saved
        term: Op = old.ops[-1]
        return term

    def finish(self, new: Block, name: str, operands: list[Value]) -> None:
        saved = self.b.block
        self.b.block = new
        self.b.op(name, operands)
        self.b.block = saved

    def op(self, op: Op) -> None:
        """Transform one op with its rule (ad/rules/)."""
        self.b.loc = op.loc
        jvp_rule(op)(self, op)

    def clone(self, op: Op) -> Op:
        """The primal op, its operands mapped, appended where the builder is."""
        new: Op = self.b.insert(clone_op(op, self.vmap))
        return new

    def in_block(self, block: Block, fn: Callable[[], T]) -> T:
        saved = self.b.block
        self.b.block = block
        try:
            return fn()
        finally:
            self.b.block = saved

    def extended_in(self, block: Block, values: list[Value], tans: list[int],
                    shadows: list[int]) -> list[Value]:
        saved = self.b.block
        self.b.block = block
        out = self.extended(values, tans, shadows)
        self.b.block = saved
        return out

    def name_results(self, new: Op, op: Op, tans: list[int], shadows: list[int]) -> None:
        for r, o in zip(new.results, op.results, strict=False):
            r.name = o.name
        self.bind(op.results, new.results, tans, shadows)
        for r, k in zip(new.results[len(op.results):], tans + shadows, strict=True):
            r.name = derivative_name(op.results[k], "d_")


def forward(fn: Function, arg_activity: list[str], act: Activity, rules: RuleCalls | None = None,
            width: int = 1, tape_offset: int = 0) -> Function:
    """The tangent function: args are each primal arg followed by its tangent (active
    scalars) or shadow (shadowed arrays), each of `width` directions; returns the primal
    results, then one tangent per float result (an array for a float array result)."""
    fw = ForwardEngine(act, rules, width, tape_offset)
    args = []
    # a shadow has its primal's shape, and so has its tangent (forward over reverse)
    alike: dict[Value, Value] = {}
    for a, kind in zip(fn.args, arg_activity, strict=False):
        na = Value(a.type, a.name)
        fw.vmap[a] = na
        args.append(na)
        if has_tangent(a, kind):
            d = Value(fw.dtype(a), derivative_name(a, "d_"))
            (fw.shadow if isinstance(a.type, ArrayType) else fw.tan)[a] = d
            args.append(d)
            if isinstance(a.type, ArrayType):
                alike[d] = na
    body = Block(args)
    ret = fw.region(fn.body, body)
    fw.b.block = body
    outs = [fw.vmap.get(v, v) for v in ret.operands]
    dots = [fw.result_tangent(v) for v in ret.operands if differentiable_result(v)]
    fw.b.op("func.return", outs + dots)
    out = Function(fn.name + ".fwd", body, [v.type for v in outs + dots], loc=fn.loc)
    out.alike = {fw.vmap[s]: fw.vmap[p] for s, p in fn.alike.items()} | alike
    return out
