"""Custom derivative rules in AD (the kernels and the rules' calling convention are in
hpcad/custom.py). A call to a kernel with rules survives inlining in the IR that AD reads
(`func.call {custom}`): forward mode calls its jvp rule instead, reverse mode its fwd rule in
the augmented forward sweep (the residuals become primal values, which the planner saves on
the tape or recomputes by calling fwd again) and its bwd rule in the reverse sweep.
Afterwards the rule kernels are inlined like any call, so they run inside parallel loops and
with MPI like any code. Rules are written for one direction: at width W > 1 a rule is called
once per direction (a loop over the lanes, `call_per_lane`), each call given lane w of the
vector tangents or cotangents (`vec.extract`, `vec.lane`) and its derivative results
gathered into vectors (`vec.insert`)."""
from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from ..checkpoint.cost import block_flops
from ..errors import DifferentiationError, where
from ..frontend.lower import ProgramLowering
from ..ir.clone import clone_function
from ..ir.core import Block, Builder, Function, Module, Op, Value, walk
from ..ir.effects import writes
from ..ir.types import ArrayType, ScalarType, Type, element, i64, is_float, spoken, with_width
from ..passes.aliases import variable_classes
from ..passes.inline import inline_calls
from ..passes.pipeline import optimize
from .common import array_type

if TYPE_CHECKING:
    from ..custom import CustomKernel
    from ..kernel import Kernel

CONVENTION = {
    "jvp": "the kernel's {n} arguments, then one tangent per float argument",
    "fwd": "the kernel's {n} arguments",
    "bwd": "the kernel's {n} arguments, the residuals fwd returns, one cotangent per float "
           "result, one cotangent array per float array argument",
}


def source_line(py_func: Callable[..., Any]) -> str:
    """file:line of a Python function's definition, for messages."""
    file = inspect.getsourcefile(py_func) or "<unknown>"
    return f"{file}:{py_func.__code__.co_firstlineno}"


def rule_error(kernel: CustomKernel, rule: Kernel, role: str, msg: str,
               cls: type[Exception] = DifferentiationError) -> Exception:
    """The error for a rule that does not fit the convention, naming the rule."""
    return cls(f"{source_line(rule.py_func)}: {role} rule '{rule.__name__}' of {kernel.kind} "
               f"kernel '{kernel.__name__}' ({kernel.where}) {msg}")


def is_rule_call(op: Op) -> bool:
    return op.name == "func.call" and "custom" in op.attrs


def _float_array(t: Type) -> bool:
    return isinstance(t, ArrayType) and t.dtype.is_float


def _types(types: Iterable[Type | str]) -> str:
    """Types in a user's words ("a float64, a 1-D float64 array")."""
    return ", ".join(t if isinstance(t, str) else spoken(t) for t in types)


def written_arguments(fn: Function) -> list[int]:
    """Positions of the array arguments fn may write."""
    key: Callable[[Value], object] = variable_classes(fn).find
    written = {key(a) for o in walk(fn.body) for a in writes(o)}
    return [k for k, a in enumerate(fn.args)
            if isinstance(a.type, ArrayType) and key(a) in written]


def read_arguments(fn: Function) -> list[int]:
    """Positions of the array arguments fn reads (uses for more than their shape)."""
    used = {v for o in walk(fn.body) if o.name != "mem.shape" for v in o.operands}
    return [k for k, a in enumerate(fn.args) if isinstance(a.type, ArrayType) and a in used]


def array_like(b: Builder, arr: Value, width: int = 1, fill: str = "zeros") -> Value:
    """A new array of arr's shape (of vectors at `width` > 1), zero unless `fill` is "empty":
    the tangent or cotangent of an argument that has none, or a copy of arr."""
    at = array_type(arr)
    dims = [b.op1("mem.shape", [arr], i64, {"axis": k}) for k in range(at.ndim)]
    t = with_width(ArrayType(at.dtype, at.ndim, "C"), width)
    new: Value = b.op1("mem.alloc", dims, t, {"fill": fill})
    return new


def zero_of(b: Builder, t: Type) -> Value:
    """The zero of a scalar type (a vector's zero has every lane zero)."""
    if not isinstance(t, ScalarType):
        raise TypeError(f"internal: no zero of type {t}")
    value = 0.0 if t.is_float else False if t.is_bool else 0
    z: Value = b.op1("arith.const", [], t, {"value": value})
    return z


def lane_type(t: Type) -> Type:
    """The type of one lane of a value of type t: a vector's element, an array of vectors'
    strided view of one lane; anything else is its own lane."""
    if isinstance(t, ArrayType) and t.dtype.width > 1:
        return ArrayType(element(t.dtype), t.ndim, "A")
    if isinstance(t, ScalarType) and t.width > 1:
        return element(t)
    return t


def lane_loop(b: Builder, width: int, inits: list[Value],
              body: Callable[[Builder, Value, list[Value]], list[Value]]) -> list[Value]:
    """`for lane in range(width)` carrying `inits`; `body(builder, lane, carried)` writes one
    lane's work and returns the values carried to the next; the loop's results."""
    bounds = [b.op1("arith.const", [], i64, {"value": v}) for v in (0, width, 1)]
    block = Block([Value(i64, "lane")] + [Value(v.type, v.name) for v in inits])
    inner = Builder(block, b.loc)
    inner.op("scf.yield", body(inner, block.args[0], block.args[1:]))
    loop: Op = b.op("scf.for", bounds + inits, [v.type for v in inits], regions=[block])
    return loop.results


def call_per_lane(b: Builder, width: int, rule: Function, fixed: list[Value],
                  batched: list[Value], keep: int, gathered: list[Type],
                  restore: Sequence[tuple[Value, Value]] = ()) -> list[Value]:
    """Call `rule` once per direction w < width with the `fixed` operands as they are and
    lane w of each `batched` one (a vector's lane, an array of vectors' lane view). Its
    first `keep` results are the same in every call and taken from the last; the others are
    gathered lane by lane into vectors of the `gathered` types. `restore`: (snapshot, array)
    pairs copied back before each call, so that every call sees the arrays the kernel
    updates in place as they were before the first."""
    inits = [zero_of(b, t) for t in rule.result_types[:keep]] + [zero_of(b, t) for t in gathered]

    def one_lane(lb: Builder, lane: Value, carried: list[Value]) -> list[Value]:
        for snapshot, arr in restore:
            lb.op("mem.copy", [snapshot, arr])
        lanes = [lb.op1("vec.lane" if isinstance(v.type, ArrayType) else "vec.extract",
                        [v, lane], lane_type(v.type), name_hint=v.name) for v in batched]
        call = lb.op("func.call", fixed + lanes, list(rule.result_types), {"callee": rule.name})
        outs = list(call.results[:keep])
        for acc, x in zip(carried[keep:], call.results[keep:], strict=False):
            lane_t = lane_type(acc.type)
            if x.type != lane_t:
                x = lb.op1("arith.cast", [x], lane_t)
            outs.append(lb.op1("vec.insert", [acc, x, lane], acc.type))
        return outs
    return lane_loop(b, width, inits, one_lane)


class RuleCalls:
    """One specialization's calls to kernels with rules: the IR that AD reads (those calls
    kept, every other call inlined) and the rule kernels, lowered for the types they are
    called with."""

    def __init__(self, module: Module) -> None:
        self.rules = dict(module.rules)        # callee name -> CustomKernel
        functions = dict(module.functions)     # (inlining the module drops them)
        entry = clone_function(module.main)
        fn = inline_calls(Module({**functions, entry.name: entry}, entry.name), keep_custom=True)
        for op in walk(fn.body):
            if is_rule_call(op):
                writes = written_arguments(functions[op.attrs["custom"]])
                op.attrs["writes"] = ",".join(map(str, writes))
        self.primal = optimize(fn)
        self.program = ProgramLowering()
        self.program.module.functions.update(functions)

    def kernel_of(self, op: Op) -> CustomKernel:
        kernel: CustomKernel = self.rules[op.attrs["custom"]]
        return kernel

    def for_mode(self, mode: str) -> Function:
        """A copy of the IR AD reads, with every rule that `mode` needs present; in reverse
        mode each call becomes a call of the fwd rule, which also returns the residuals."""
        fn = clone_function(self.primal)
        for op in walk(fn.body):
            if not is_rule_call(op):
                continue
            kernel = self.kernel_of(op)
            if any(isinstance(r.type, ArrayType) for r in op.results):
                raise DifferentiationError(
                    f"{where(op.loc)}: kernel '{kernel.__name__}' ({kernel.where}) has custom "
                    f"derivative rules and returns an array, which the rules' conventions do "
                    f"not cover; write the result into an output array argument instead (its "
                    f"cotangent array then carries the result's derivative)")
            if (kernel.jvp if mode == "forward" else kernel.fwd) is None:
                fix = "defjvp(jvp)" if mode == "forward" else "defvjp(fwd, bwd)"
                raise DifferentiationError(
                    f"{where(op.loc)}: kernel '{kernel.__name__}' ({kernel.where}) is a "
                    f"{kernel.kind} kernel without a {mode}-mode rule; give it one with "
                    f"{kernel.__name__}.{fix} (hpcad never differentiates the body of a "
                    f"kernel with custom rules)")
            if mode == "reverse":
                self.call_fwd(op, kernel)
        return fn

    def call_fwd(self, op: Op, kernel: CustomKernel) -> None:
        outs = [r.type for r in op.results]
        fwd = self.lower(op, "fwd", [v.type for v in op.operands])
        got = list(fwd.result_types)
        if got[:len(outs)] != outs:
            assert kernel.fwd is not None   # (for_mode checked)
            raise rule_error(kernel, kernel.fwd, "fwd",
                             f"returns ({_types(got)}); it must return the kernel's results "
                             f"({_types(outs)}) followed by the residuals bwd takes")
        inlined = self.inline(clone_function(fwd))
        # calling fwd again in the reverse sweep recomputes its results (the residuals among
        # them) when it writes no argument and sends no message; the planner weighs its flops
        repeatable = not written_arguments(inlined) and not op.attrs["writes"] and \
            not any(o.dialect == "mpi" for o in walk(inlined.body))
        op.attrs.update(callee=fwd.name, outs=len(outs), flops=block_flops(inlined.body),
                        repeatable=repeatable)
        op.results += [Value(t, "res", op) for t in got[len(outs):]]

    def lower(self, op: Op, role: str, types: list[Type]) -> Function:
        """The rule `role` of the kernel op calls, lowered for argument `types`."""
        kernel = self.kernel_of(op)
        rule = getattr(kernel, role)
        if len(rule.arg_names) != len(types):
            raise rule_error(kernel, rule, role,
                             f"takes {len(rule.arg_names)} parameters, but the call at "
                             f"{where(op.loc)} gives it {len(types)}: "
                             f"{CONVENTION[role].format(n=len(op.operands))}")
        fn: Function = self.program.function_for(rule.py_func, types, op.loc)
        return fn

    def check_results(self, op: Op, role: str, fn: Function, want: list[Type | None],
                      what: str) -> None:
        """fn (a lowered rule) must return `want`: exact types, or any float for None."""
        got = list(fn.result_types)
        if len(got) != len(want) or any(w != g if w is not None else not is_float(g)
                                        for w, g in zip(want, got, strict=True)):
            shown = _types("float" if w is None else w for w in want)
            raise rule_error(self.kernel_of(op), getattr(self.kernel_of(op), role), role,
                             f"returns ({_types(got)}); it must return {what} ({shown})")

    def inline(self, fn: Function) -> Function:
        """fn with every call (rules, and what they call) inlined."""
        return inline_calls(Module({**self.program.module.functions, fn.name: fn}, fn.name))
