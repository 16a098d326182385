"""Forward mode: a function computing the primal and, alongside, the tangent of every active
value. Loops and branches carry tangents (scalars) and shadows (arrays) next to the primal
values; elementwise ops contract the rule table's partials with their operands' tangents.
With width W every tangent and shadow carries W directions (its type `with_width(t, W)`):
the code is the same, the derivative values are vectors."""
from __future__ import annotations

from ..errors import DifferentiationError, where
from ..ir.clone import clone_op
from ..ir.core import Block, Builder, Function, Op, Value
from ..ir.dialects import join_arities, reduction_kinds
from ..ir.types import ArrayType, with_width
from ..passes.activity import Activity
from .common import derivative_name, has_tangent, zero
from .custom import CustomForward
from .hvp import TapeForward
from .mpi import MpiForward
from .rules import NON_DIFFERENTIABLE, PARTIALS, RuleBuilder


class _Forward(MpiForward, CustomForward, TapeForward):
    def __init__(self, act: Activity, rules=None, width: int = 1, tape_offset: int = 0):
        self.act = act
        self.rules = rules   # calls to kernels with custom rules (ad/custom.py)
        self.width = width
        self.tape_offset = tape_offset   # differentiating a derivative: see ad/hvp.py
        self.taped: set[int] = set()
        self.vmap: dict[Value, Value] = {}
        self.tan: dict[Value, Value] = {}     # active scalar -> its tangent
        self.shadow: dict[Value, Value] = {}  # shadowed array -> its shadow
        self.requests: dict[Value, Value] = {}  # MPI request -> the tangent's request
        self.b = Builder()

    # -- carried values (loops, branches) -----------------------------------------------------
    def slots(self, values: list[Value]):
        """Which carried values get a tangent slot and which a shadow slot."""
        tans = [k for k, v in enumerate(values) if self.act.active(v)]
        shadows = [k for k, v in enumerate(values)
                   if isinstance(v.type, ArrayType) and self.act.shadowed(v)]
        return tans, shadows

    def extended(self, values: list[Value], tans, shadows) -> list[Value]:
        """The mapped primal values followed by their tangents and shadows."""
        out = [self.vmap.get(v, v) for v in values]
        out += [self.tangent_or_zero(values[k]) for k in tans]
        out += [self.shadow_of(values[k]) for k in shadows]
        return out

    def bind(self, olds: list[Value], news: list[Value], tans, shadows) -> None:
        n = len(olds)
        for o, v in zip(olds, news[:n]):
            self.vmap[o] = v
        for j, k in enumerate(tans):
            self.tan[olds[k]] = news[n + j]
        for j, k in enumerate(shadows):
            self.shadow[olds[k]] = news[n + len(tans) + j]

    def new_args(self, olds: list[Value], tans, shadows) -> list[Value]:
        args = [Value(o.type, o.name) for o in olds]
        args += [Value(self.dtype(olds[k]), derivative_name(olds[k], "d_")) for k in tans]
        args += [Value(self.dtype(olds[k]), derivative_name(olds[k], "d_")) for k in shadows]
        return args

    def dtype(self, v: Value):
        """The type of v's tangent or shadow."""
        return with_width(v.type, self.width)

    def tangent_or_zero(self, v: Value) -> Value:
        t = self.tan.get(v)
        return t if t is not None else zero(self.b, self.dtype(v))

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
        return old.ops[-1]

    def finish(self, new: Block, name: str, operands: list[Value]) -> None:
        saved = self.b.block
        self.b.block = new
        self.b.op(name, operands)
        self.b.block = saved

    def op(self, op: Op) -> None:
        self.b.loc = op.loc
        handler = getattr(self, "op_" + op.name.replace(".", "_"), None)
        if handler is not None:
            handler(op)
            return
        if op.dialect == "mpi" and op.name not in NON_DIFFERENTIABLE:
            raise DifferentiationError(f"{where(op.loc)}: the MPI call '{op.name[4:]}' has no "
                                       f"forward-mode rule in hpcad; move it into a kernel "
                                       f"with an ad.custom_jvp rule")
        new = self.b.insert(clone_op(op, self.vmap))
        if op.name in NON_DIFFERENTIABLE or not op.results or not self.act.active(op.results[0]):
            return
        if op.name not in PARTIALS:
            raise DifferentiationError(f"{where(op.loc)}: no derivative rule for '{op.name}'")
        rb = RuleBuilder(self.b)
        operands = new.operands
        total = None
        for k, v in enumerate(op.operands):
            t = self.tan.get(v)
            if t is None:
                continue
            p = PARTIALS[op.name][k](rb, *operands, new.results[0])
            if p is None:
                continue
            term = _scale(rb, t, p, self.dtype(new.results[0]))
            total = term if total is None else rb.add(total, term)
        if total is not None:
            total.name = derivative_name(new.results[0], "d_")
            self.tan[op.results[0]] = total

    # -- memory -------------------------------------------------------------------------------
    def op_mem_alloc(self, op):
        new = self.b.insert(clone_op(op, self.vmap))
        if self.act.shadowed(op.results[0]):
            self.shadow[op.results[0]] = self.b.op1("mem.alloc", new.operands,
                                                    self.dtype(op.results[0]),
                                                    {"fill": "zeros"},
                                                    name_hint=derivative_name(new.result, "d_"))

    def op_mem_view(self, op):
        """The tangent of a view is the same view of the base's tangent."""
        new = self.b.insert(clone_op(op, self.vmap))
        if self.act.shadowed(op.results[0]):
            self.shadow[op.results[0]] = self.b.op1(
                "mem.view", [self.shadow_of(op.operands[0])] + new.operands[1:],
                self.dtype(op.results[0]), op.attrs, name_hint=derivative_name(new.result, "d_"))

    def op_mem_load(self, op):
        new = self.b.insert(clone_op(op, self.vmap))
        arr = op.operands[0]
        if self.act.active(op.results[0]) and self.act.shadowed(arr):
            self.tan[op.results[0]] = self.b.op1(
                "mem.load", [self.shadow_of(arr)] + new.operands[1:], self.dtype(new.result),
                name_hint=derivative_name(new.result, "d_"))

    def op_mem_store(self, op):
        new = self.b.insert(clone_op(op, self.vmap))
        arr = op.operands[1]
        if self.act.shadowed(arr):
            t = self.tangent_or_zero(op.operands[0])
            self.b.op("mem.store", [t, self.shadow_of(arr)] + new.operands[2:])

    def op_mem_accumulate(self, op):
        new = self.b.insert(clone_op(op, self.vmap))
        arr = op.operands[1]
        t = self.tan.get(op.operands[0])
        if self.act.shadowed(arr) and t is not None:
            self.b.op("mem.accumulate", [t, self.shadow_of(arr)] + new.operands[2:])

    # -- control flow -------------------------------------------------------------------------
    def op_par_parallel_for(self, op):
        """A parallel loop's tangents are carried like a for loop's; a sum reduction's
        tangent is again a sum reduction. (max/min reductions were made differentiable
        before AD; a product reduction has no parallel tangent form here.)"""
        kinds = reduction_kinds(op)
        tans, _ = self.slots(list(op.results))
        for k in tans:
            if kinds[k] != "add":
                raise DifferentiationError(
                    f"{where(op.loc)}: cannot differentiate a '{kinds[k]}' reduction of a "
                    f"parallel loop; accumulate a sum (e.g. of logarithms) instead")
        new = self.op_scf_for(op, name="par.parallel_for")
        new.attrs["reductions"] = ",".join(kinds + ["add"] * len(tans))

    def op_par_join(self, op):
        """Each task computes its results' tangents too."""
        tans, _ = self.slots(list(op.results))
        blocks, arity, types, start = [], [], [], 0
        for region, n in zip(op.regions, join_arities(op)):
            mine = [k for k in tans if start <= k < start + n]
            nb = Block()
            term = self.region(region, nb)
            outs = [self.vmap.get(v, v) for v in term.operands]
            outs += self.in_block(nb, lambda: [self.tangent_or_zero(term.operands[k - start])
                                               for k in mine])
            self.finish(nb, "scf.yield", outs)
            blocks.append(nb)
            arity.append(n + len(mine))
            types += [r.type for r in op.results[start:start + n]] + \
                [self.dtype(op.results[k]) for k in mine]
            start += n
        new = self.b.op("par.join", [], types, {"arity": ",".join(map(str, arity))},
                        regions=blocks)
        it = iter(new.results)
        start = 0
        for n in join_arities(op):
            for k in range(start, start + n):
                self.vmap[op.results[k]] = next(it)
            for k in [k for k in tans if start <= k < start + n]:
                self.tan[op.results[k]] = next(it)
            start += n

    def in_block(self, block: Block, fn):
        saved = self.b.block
        self.b.block = block
        try:
            return fn()
        finally:
            self.b.block = saved

    def op_scf_for(self, op, name: str = "scf.for"):
        body = op.regions[0]
        carried = list(op.results)
        tans, shadows = self.slots(carried)
        inits = self.extended(op.operands[3:], tans, shadows)
        new_body = Block([Value(body.args[0].type, body.args[0].name)]
                         + self.new_args(body.args[1:], tans, shadows))
        self.vmap[body.args[0]] = new_body.args[0]
        self.bind(body.args[1:], new_body.args[1:], tans, shadows)
        term = self.region(body, new_body)
        self.finish(new_body, "scf.yield", self.extended_in(new_body, term.operands, tans, shadows))
        new = self.b.op(name, [self.vmap.get(v, v) for v in op.operands[:3]] + inits,
                        [v.type for v in inits], dict(op.attrs), regions=[new_body])
        self.name_results(new, op, tans, shadows)
        return new

    def extended_in(self, block: Block, values, tans, shadows):
        saved = self.b.block
        self.b.block = block
        out = self.extended(values, tans, shadows)
        self.b.block = saved
        return out

    def name_results(self, new: Op, op: Op, tans, shadows):
        for r, o in zip(new.results, op.results):
            r.name = o.name
        self.bind(op.results, new.results, tans, shadows)
        for r, k in zip(new.results[len(op.results):], tans + shadows):
            r.name = derivative_name(op.results[k], "d_")

    def op_scf_while(self, op):
        before, after = op.regions
        tans, shadows = self.slots(list(op.results))
        inits = self.extended(op.operands, tans, shadows)
        new_before = Block(self.new_args(before.args, tans, shadows))
        self.bind(before.args, new_before.args, tans, shadows)
        cond = self.region(before, new_before)
        self.finish(new_before, "scf.condition", [self.vmap.get(cond.operands[0])]
                    + self.extended_in(new_before, cond.operands[1:], tans, shadows))
        new_after = Block(self.new_args(after.args, tans, shadows))
        self.bind(after.args, new_after.args, tans, shadows)
        term = self.region(after, new_after)
        self.finish(new_after, "scf.yield", self.extended_in(new_after, term.operands, tans, shadows))
        new = self.b.op("scf.while", inits, [v.type for v in inits], regions=[new_before, new_after])
        self.name_results(new, op, tans, shadows)

    def op_scf_if(self, op):
        tans, shadows = self.slots(list(op.results))
        blocks = []
        for region in op.regions:
            nb = Block()
            term = self.region(region, nb)
            self.finish(nb, "scf.yield", self.extended_in(nb, term.operands, tans, shadows))
            blocks.append(nb)
        types = [r.type for r in op.results] + [self.dtype(op.results[k]) for k in tans] \
            + [self.dtype(op.results[k]) for k in shadows]
        new = self.b.op("scf.if", [self.vmap.get(op.operands[0], op.operands[0])], types,
                        regions=blocks)
        self.name_results(new, op, tans, shadows)


def _scale(rb: RuleBuilder, t: Value, p, result_type) -> Value:
    if t.type != result_type:
        t = rb.b.op1("arith.cast", [t], result_type)
    if p == 1.0 and not isinstance(p, Value):
        return t
    if p == -1.0 and not isinstance(p, Value):
        return rb.neg(t)
    return rb.mul(t, p)


def forward(fn: Function, arg_activity: list[str], act: Activity, rules=None,
            width: int = 1, tape_offset: int = 0) -> Function:
    """The tangent function: args are each primal arg followed by its tangent (active
    scalars) or shadow (shadowed arrays), each of `width` directions; returns the primal
    results, then one tangent per float result."""
    fw = _Forward(act, rules, width, tape_offset)
    args = []
    for a, kind in zip(fn.args, arg_activity):
        na = Value(a.type, a.name)
        fw.vmap[a] = na
        args.append(na)
        if has_tangent(a, kind):
            d = Value(fw.dtype(a), derivative_name(a, "d_"))
            (fw.shadow if isinstance(a.type, ArrayType) else fw.tan)[a] = d
            args.append(d)
    body = Block(args)
    ret = fw.region(fn.body, body)
    fw.b.block = body
    outs = [fw.vmap.get(v, v) for v in ret.operands]
    dots = [fw.tangent_or_zero(v) for v in ret.operands if v.type.is_float]
    fw.b.op("func.return", outs + dots)
    return Function(fn.name + ".fwd", body, [v.type for v in outs + dots],
                    loc=fn.loc)
