"""`hpcad.custom_vjp` / `hpcad.custom_jvp`: a kernel whose derivative is given by other kernels
(its rules) instead of being derived from its body, which AD then never reads. This module
is the user-facing kernel and the rules' calling convention; ad/custom.py applies the rules.

Convention (kernels take scalars and arrays, return scalars, write arrays in place), for a
kernel `k(*args) -> outs`:
  jvp(*args, *tangents) -> (*outs, *tangent_outs)
      tangents: one per float argument, in order (a float for a float scalar; for a float
      array, an array of its shape: read it for an input, write it for an array k writes);
      tangent_outs: one per float result of k.
  fwd(*args) -> (*outs, *res)
      does what k does (results and array writes) and returns scalar residuals for bwd,
      which the reverse sweep's tape keeps (declared by their number and types).
  bwd(*args, *res, *gs, *cotangent_arrays) -> one cotangent per float scalar argument
      args as they are after the call (hpcad checks that the arrays bwd reads still hold
      those values when the reverse sweep runs); gs: one cotangent per float result of k;
      cotangent_arrays: one per float array argument, holding the cotangent of the array's
      value after the call; bwd leaves there the cotangent of its value before the call
      (add to it for an input, read and zero it for an output)."""
from __future__ import annotations

from .ad.custom import CONVENTION, rule_error, source_line
from .errors import ArgumentError
from .frontend.lower import ProgramLowering
from .ir.core import Block, Builder, Function, Module, Value
from .kernel import Kernel, as_kernel


class CustomKernel(Kernel):
    """A kernel with custom derivative rules (see the module docstring for their signatures).
    It runs as its body; `grad`, `jvp`, ..., and kernels calling it use the rules."""
    is_custom = True

    def __init__(self, f, kind: str):
        k = as_kernel(f)
        super().__init__(k.py_func, k.backend)
        self.kind = kind                 # "custom_vjp" or "custom_jvp", for messages
        self.where = source_line(k.py_func)
        self.jvp: Kernel | None = None
        self.fwd: Kernel | None = None
        self.bwd: Kernel | None = None

    def defjvp(self, jvp) -> CustomKernel:
        """Forward mode: `jvp(*args, *tangents) -> (*outs, *tangent_outs)`."""
        self.jvp = self._rule(jvp, "jvp", minimum=len(self.arg_names) + 1)
        return self

    def defvjp(self, fwd, bwd) -> CustomKernel:
        """Reverse mode: `fwd(*args) -> (*outs, *res)`, `bwd(*args, *res, *gs,
        *cotangent_arrays) -> one cotangent per float scalar argument`."""
        self.fwd = self._rule(fwd, "fwd", exactly=len(self.arg_names))
        self.bwd = self._rule(bwd, "bwd", minimum=len(self.arg_names))
        return self

    def _rule(self, f, role: str, exactly: int | None = None, minimum: int = 0) -> Kernel:
        if not (isinstance(f, Kernel) or callable(f) and hasattr(f, "__code__")):
            raise ArgumentError(f"{self.kind} '{self.__name__}': the {role} rule must be a kernel "
                                f"(a function decorated with @hpcad.kernel), got "
                                f"{type(f).__name__}")
        rule = as_kernel(f)
        n = len(rule.arg_names)
        if (exactly is not None and n != exactly) or n < minimum:
            want = exactly if exactly is not None else f"at least {minimum}"
            raise rule_error(self, rule, role, f"takes {n} parameters, expected {want}: "
                             f"{CONVENTION[role].format(n=len(self.arg_names))}", ArgumentError)
        self.forget()   # derivatives built with the old rules are stale
        return rule

    def lower(self, types) -> Module:
        """A module whose entry only calls this kernel, so that differentiating the kernel
        itself goes through its rules."""
        prog = ProgramLowering()
        callee = prog.function_for(self.py_func, list(types), ("<call>", 0))
        prog.module.rules[callee.name] = self
        body = Block([Value(t, n) for t, n in zip(types, self.arg_names)])
        b = Builder(body, callee.loc)
        call = b.op("func.call", list(body.args), list(callee.result_types),
                    {"callee": callee.name, "custom": callee.name})
        b.op("func.return", list(call.results))
        entry = Function(f"{callee.name}.entry", body, list(callee.result_types),
                         list(self.arg_names), callee.loc)
        prog.module.add(entry)
        prog.module.entry = entry.name
        return prog.module


def custom_vjp(f) -> CustomKernel:
    """`f = hpcad.custom_vjp(k)` (or `@hpcad.custom_vjp` on a kernel), then
    `f.defvjp(fwd, bwd)`: reverse mode uses the rules, never k's body."""
    return CustomKernel(f, "custom_vjp")


def custom_jvp(f) -> CustomKernel:
    """`f = hpcad.custom_jvp(k)`, then `f.defjvp(jvp)`: forward mode uses the rule, never k's
    body. (Both rules may be given to one kernel: `defjvp` and `defvjp`.)"""
    return CustomKernel(f, "custom_jvp")
