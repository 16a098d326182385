"""Derivatives of kernels taken inside a kernel (nested AD): `ad.grad(f, argnums)(...)`,
`ad.value_and_grad(f, argnums)(...)`, `ad.jvp(f, primals, tangents)` and
`out, vjp_fn = ad.vjp(f, *primals)` then `vjp_fn(cotangent)` in kernel code.
hpcad differentiates the callee's IR with its own engines (reverse for grad, forward for
jvp), adds the derivative function to the caller's module and calls it; inlining then
puts it in the caller like any kernel call, so the caller compiles and differentiates
again (grad of grad). Inputs are never modified, as in the Python API."""
from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..ir.activity import ACTIVE, CONST, DUP, SHADOW
from ..ir.clone import clone_function
from ..ir.core import Function, Value, walk
from ..ir.types import ArrayType, ScalarType, i1, i64, spoken
from . import arrays, construct, expressions

if TYPE_CHECKING:
    from .context import LoweringContext


@dataclass(frozen=True)
class NestedDerivative:
    """What `ad.grad(f, argnums)` (or value_and_grad) returns carries, so that a kernel
    calling it knows the kernel, the transform and the arguments differentiated."""
    kernel: Any
    transform: str          # "grad" or "value_and_grad"
    argnums: int | tuple[int, ...]


def call_rule(obj):
    """The rule lowering a call of obj in kernel code if obj is one of hpcad's transforms,
    a derivative one made or a vjp_fn, else None."""
    from .. import api
    if getattr(obj, "__hpcad_derivative__", None) is not None:
        return call_derivative
    if isinstance(obj, Pullback):
        return call_pullback
    rules = {api.grad: make_transform, api.value_and_grad: make_transform, api.jvp: call_jvp,
             api.vjp: call_vjp}
    try:
        return rules.get(obj)
    except TypeError:   # unhashable object
        return None


# -- ad.grad(f, argnums) in kernel code: evaluated while lowering ---------------------------
def make_transform(ctx: LoweringContext, obj, node):
    """`ad.grad(f, argnums=...)`: f a kernel, argnums a literal; the Python object it
    makes, to be called (call_derivative)."""
    allowed = ("argnums",)
    if len(node.args) not in (1, 2) or any(k.arg not in allowed for k in node.keywords):
        ctx.unsupported(node, f"this call of `ad.{obj.__name__}` in a kernel",
                        f"write ad.{obj.__name__}(f, argnums=...) with f a kernel and "
                        f"argnums an int or a tuple of ints")
    target = ctx.expr(node.args[0])
    kernel = getattr(target, "obj", None)
    _check_kernel(ctx, node, obj.__name__, kernel)
    argnums = node.args[1] if len(node.args) == 2 else \
        next((k.value for k in node.keywords), None)
    return expressions.Static(obj(kernel, argnums=_literal(ctx, argnums)))


def _check_kernel(ctx: LoweringContext, node, transform: str, target) -> None:
    """The function a transform in kernel code differentiates must be a kernel; a
    derivative made by ad.grad/ad.value_and_grad is one only inside a kernel of its own."""
    if getattr(target, "__hpcad_kernel__", False):
        return
    made = getattr(target, "__hpcad_derivative__", None)
    if made is not None:
        name = made.kernel.__name__
        ctx.unsupported(node, f"`ad.{transform}` of a derivative function (ad.{made.transform} "
                              f"of '{name}')",
                        f"call it in a kernel (@hpcad.kernel def d_{name}(...): return "
                        f"ad.{made.transform}({name}, argnums=...)(...)) and take "
                        f"ad.{transform} of that kernel")
    ctx.unsupported(node, f"`ad.{transform}` of something that is not a kernel",
                    "decorate the function with @hpcad.kernel")


def _literal(ctx: LoweringContext, node):
    if node is None:
        return 0
    try:
        value = ast.literal_eval(node)
    except ValueError:
        value = None
    ok = isinstance(value, int) or isinstance(value, tuple) and value and \
        all(isinstance(n, int) for n in value)
    if not ok or isinstance(value, bool):
        ctx.unsupported(node, "argnums that is not a literal int or tuple of ints",
                        "write argnums=1 or argnums=(0, 1)")
    return value


# -- calling the derivative ------------------------------------------------------------------
def call_derivative(ctx: LoweringContext, df, node):
    """`df(*args)` for df = ad.grad(f, argnums) or ad.value_and_grad(f, argnums): the
    reverse derivative of f, seeded with 1.0, its float arrays' shadows zeros."""
    d: NestedDerivative = df.__hpcad_derivative__
    k = d.kernel
    args = expressions.kernel_arguments(ctx, k.py_func, node)
    spec = _specialization(ctx, k, args, node)
    nums = _argnums(ctx, k, d.argnums, args, node)
    written = spec.written(spec.primal)
    _refuse_written_overlap(ctx, k, args, written, node)
    kinds = []
    for i, a in enumerate(args):
        if i in nums:
            kinds.append(DUP if isinstance(a.type, ArrayType) else ACTIVE)
        else:
            kinds.append(SHADOW if i in written and _float_array(a) else CONST)
    types = spec.primal.result_types
    if len(types) != 1 or not (isinstance(types[0], ScalarType) and types[0].is_float):
        ctx.unsupported(node, f"ad.{d.transform} of kernel '{k.__name__}', which does not "
                              f"return one float,",
                        "return one float from it, or use ad.vjp of it for an array result")
    fn = spec.derivative("reverse", tuple(kinds), True)
    if fn.run_args is not None:
        ctx.unsupported(node, f"ad.{d.transform} of kernel '{k.__name__}' in a kernel: its "
                              f"reverse sweep is checkpointed",
                        "call ad.grad of it from Python, or shorten its time loop")
    operands, shadows = [], {}
    for i, (a, kind) in enumerate(zip(args, kinds)):
        operands.append(_copy(ctx, a, node) if i in written else a)
        if kind in (DUP, SHADOW):
            shadows[i] = _zeros_like(ctx, a)
            operands.append(shadows[i])
    operands.append(ctx.const(1.0, types[0]))
    results = _call(ctx, fn, operands, node)
    adjoints = iter(results[1:])
    grads = {i: shadows[i] if kinds[i] == DUP else next(adjoints)
             for i in range(len(args)) if kinds[i] in (DUP, ACTIVE)}
    g = tuple(grads[n] for n in nums)
    g_out = g if isinstance(d.argnums, tuple) else g[0]
    return (results[0], g_out) if d.transform == "value_and_grad" else g_out


def call_jvp(ctx: LoweringContext, obj, node):
    """`ad.jvp(f, (x, y), (dx, None))`: the forward derivative of f, a tangent per float
    argument (None: a constant); -> (f's result, its tangent)."""
    if len(node.args) != 3 or node.keywords or \
            not all(isinstance(a, ast.Tuple) for a in node.args[1:]):
        ctx.unsupported(node, "this call of `ad.jvp` in a kernel",
                        "write ad.jvp(f, (x, y), (dx, None)) with tuples written out")
    k = getattr(ctx.expr(node.args[0]), "obj", None)
    _check_kernel(ctx, node, "jvp", k)
    primals, tangents = node.args[1].elts, node.args[2].elts
    if len(primals) != len(tangents):
        ctx.unsupported(node, f"ad.jvp with {len(primals)} primals and {len(tangents)} "
                              f"tangents", "give one tangent per primal (None for constants)")
    call = ast.Call(func=node.args[0], args=primals, keywords=[])
    ast.copy_location(call, node)
    args = expressions.kernel_arguments(ctx, k.py_func, call)
    spec = _specialization(ctx, k, args, node)
    written = spec.written(spec.primal)
    _refuse_written_overlap(ctx, k, args, written, node)
    kinds, operands = [], []
    for i, a in enumerate(args):
        t = tangents[i] if i < len(tangents) else None
        none = t is None or isinstance(t, ast.Constant) and t.value is None
        if not none and not _float(a):
            ctx.unsupported(t, f"a tangent of argument '{k.arg_names[i]}' of kernel "
                               f"'{k.__name__}', which is {spoken(a.type)}", "pass None for it")
        kinds.append(CONST if none and not (i in written and _float_array(a)) else
                     SHADOW if none else DUP if isinstance(a.type, ArrayType) else ACTIVE)
        operands.append(_copy(ctx, a, node) if i in written else a)
        if kinds[-1] == SHADOW:
            operands.append(_zeros_like(ctx, a))
        elif kinds[-1] in (DUP, ACTIVE):
            operands.append(_tangent(ctx, a, t, i in written, k.arg_names[i]))
    fn = spec.derivative("forward", tuple(kinds), True)
    results = _call(ctx, fn, operands, node)
    n = len(spec.primal.result_types)
    out, dots = results[:n], iter(results[n:])
    dot = tuple(next(dots) if _float(v) else None for v in out)
    return (out[0], dot[0]) if n == 1 else (tuple(out), dot)


@dataclass(frozen=True)
class Pullback:
    """The `vjp_fn` of `out, vjp_fn = ad.vjp(f, x, y)` in kernel code: f and the primals
    (arrays copied when ad.vjp ran, so later writes do not change them)."""
    kernel: Any
    args: tuple[Value, ...]

    # merged after an if whose branches both made a pullback of the same kernel and types
    # (context.branch_parts)
    def branch_key(self) -> tuple:
        return (id(self.kernel),) + tuple(str(a.type) for a in self.args)

    def branch_values(self) -> tuple[Value, ...]:
        return self.args

    def with_branch_values(self, values: tuple[Value, ...]) -> Pullback:
        return Pullback(self.kernel, values)


def call_vjp(ctx: LoweringContext, obj, node):
    """`ad.vjp(f, x, y)`: (f(x, y), its pullback); f returns one float or float array."""
    if not node.args or node.keywords:
        ctx.unsupported(node, "this call of `ad.vjp` in a kernel",
                        "write out, vjp_fn = ad.vjp(f, x, y) with f a kernel")
    k = getattr(ctx.expr(node.args[0]), "obj", None)
    _check_kernel(ctx, node, "vjp", k)
    call = ast.copy_location(ast.Call(func=node.args[0], args=node.args[1:], keywords=[]),
                             node)
    args = expressions.kernel_arguments(ctx, k.py_func, call)
    spec = _specialization(ctx, k, args, node)
    types = spec.primal.result_types
    if len(types) != 1 or not ((types[0].dtype if isinstance(types[0], ArrayType)
                                else types[0]).is_float):
        ctx.unsupported(node, f"ad.vjp of kernel '{k.__name__}', which does not return one "
                              f"float or one float array,",
                        "return one result from each kernel (a kernel per result of a tuple), "
                        "or call ad.vjp of it from Python")
    _refuse_written_overlap(ctx, k, args, spec.written(spec.primal), node)
    frozen = tuple(_copy(ctx, a, node) for a in args)
    callee = ctx.program.function_for(k.py_func, [a.type for a in args], ctx.loc_of(node))
    written = spec.written(spec.primal)
    operands = [_copy(ctx, a, node) if i in written else a for i, a in enumerate(frozen)]
    out = ctx.builder.op("func.call", operands, list(callee.result_types),
                         {"callee": callee.name}).results[0]
    return out, expressions.Static(Pullback(k, frozen))


def call_pullback(ctx: LoweringContext, p: Pullback, node):
    """`vjp_fn(cotangent)`: one entry per argument of f (None for those without a
    derivative), by f's reverse derivative seeded with the cotangent."""
    if len(node.args) != 1 or node.keywords:
        ctx.unsupported(node, "calling a vjp_fn with other than one cotangent")
    spec = p.kernel.for_types(tuple(a.type for a in p.args), current=True)
    result = spec.primal.result_types[0]
    seed = ctx.expr(node.args[0])
    if isinstance(result, ArrayType):
        if not isinstance(seed, Value) or not isinstance(seed.type, ArrayType) or \
                seed.type.ndim != result.ndim:
            ctx.unsupported(node, f"a cotangent that is not an array of {result.ndim} "
                                  f"dimensions, the shape of the result of "
                                  f"'{p.kernel.__name__}'")
        seed = _copy(ctx, seed, node)
    else:
        if not isinstance(seed, Value) or not isinstance(seed.type, ScalarType):
            ctx.unsupported(node, f"a cotangent that is not one number for the float result "
                                  f"of '{p.kernel.__name__}'", "pass a float")
        seed = ctx.coerce(seed, result)
    kinds = tuple(DUP if _float_array(a) else ACTIVE if _float(a) else CONST for a in p.args)
    fn = spec.derivative("reverse", kinds, True)
    written = spec.written(spec.primal)
    operands, shadows = [], {}
    for i, (a, kind) in enumerate(zip(p.args, kinds)):
        operands.append(_copy(ctx, a, node) if i in written else a)
        if kind == DUP:
            shadows[i] = _zeros_like(ctx, a)
            operands.append(shadows[i])
    results = iter(_call(ctx, fn, operands + [seed], node)[1:])
    return tuple(shadows[i] if kind == DUP else next(results) if kind == ACTIVE else None
                 for i, kind in enumerate(kinds))


def _tangent(ctx: LoweringContext, a: Value, node, written: bool, name: str) -> Value:
    """The tangent `node` of argument a (named `name`): an array of a's dtype and rank, and,
    checked when it runs, of its shape (the derivative reads it at a's indices)."""
    t = ctx.expr(node)
    if isinstance(a.type, ArrayType):
        if not isinstance(t, Value) or t.type != a.type and not (
                isinstance(t.type, ArrayType) and t.type.dtype == a.type.dtype
                and t.type.ndim == a.type.ndim):
            ctx.unsupported(node, f"a tangent that is not a {a.type.dtype.np_dtype} array of "
                                  f"{a.type.ndim} dimensions like its primal")
        for axis in range(a.type.ndim):
            dims = [ctx.builder.op1("mem.shape", [x], i64, {"axis": axis}) for x in (t, a)]
            ctx.runtime_check(ctx.builder.op1("arith.cmp", dims, i1, {"pred": "eq"}),
                              f"the tangent of argument '{name}' must have that argument's "
                              f"shape", node)
        return _copy(ctx, t, node) if written else t
    return ctx.coerce(t, a.type)


# -- pieces ----------------------------------------------------------------------------------
def _specialization(ctx: LoweringContext, k, args: list[Value], node):
    if any(not isinstance(a.type, (ArrayType, ScalarType)) for a in args):
        ctx.unsupported(node, f"a derivative of kernel '{k.__name__}' taking a communicator "
                              f"in a kernel", "take the derivative from Python")
    spec = k.for_types(tuple(a.type for a in args), current=True)
    ctx.program.module.derived.append(k)
    for op in walk(spec.primal.body):
        if op.dialect == "mpi" or op.name == "par.parallel_for":
            what = "calls MPI" if op.dialect == "mpi" else "has a parallel loop (prange)"
            ctx.unsupported(node, f"a derivative of kernel '{k.__name__}' in a kernel: it "
                                  f"{what}", "take that derivative from Python, or write "
                                             "the inner kernel with serial loops")
    return spec


def _argnums(ctx: LoweringContext, k, argnums, args: list[Value], node) -> tuple[int, ...]:
    """argnums as positions among k's parameters. A negative one counts from the last
    parameter, as in the Python API (api.check_negative_argnums): where the call passes
    some by keyword or default, JAX's count from the last positional argument differs, so
    it is refused."""
    nums = argnums if isinstance(argnums, tuple) else (argnums,)
    if any(n < 0 for n in nums) and (len(node.args) != len(args) or node.keywords):
        ctx.unsupported(node, f"argnums {argnums!r} (counting from the end) for kernel "
                              f"'{k.__name__}' called with {len(node.args)} of its "
                              f"{len(args)} parameters positionally",
                        "it could mean the last parameter or the last argument passed: "
                        "give argnums as positions from the start")
    out = []
    for n in nums:
        if not -len(args) <= n < len(args):
            ctx.unsupported(node, f"argnums {argnums!r} for kernel '{k.__name__}' with "
                                  f"{len(args)} arguments")
        if not _float(args[n % len(args)]):
            ctx.unsupported(node, f"a derivative with respect to '{k.arg_names[n]}' of "
                                  f"kernel '{k.__name__}': it is {spoken(args[n].type)}, not a "
                                  f"float scalar or float array")
        out.append(n % len(args))
    return tuple(out)


def _refuse_written_overlap(ctx: LoweringContext, k, args: list[Value], written, node):
    """An array the inner kernel writes passed again as another argument (or a view of the
    same array): its call updates in place, while its derivative takes the arguments as
    distinct copies and would differentiate another function (as the Python API refuses)."""
    for i in written:
        for j, b in enumerate(args):
            if j != i and isinstance(b.type, ArrayType) and arrays.root(b) is arrays.root(args[i]):
                ctx.unsupported(node, f"a derivative of kernel '{k.__name__}' whose argument "
                                      f"'{k.arg_names[i]}', which it writes, is the same array "
                                      f"as (or a view of the array of) '{k.arg_names[j]}'",
                                f"pass a copy for one of them (e.g. "
                                f"{k.arg_names[j]}.copy())")


def _float(v: Value) -> bool:
    t = v.type
    return (t.dtype if isinstance(t, ArrayType) else t).is_float


def _float_array(v: Value) -> bool:
    return isinstance(v.type, ArrayType) and v.type.dtype.is_float


def _zeros_like(ctx: LoweringContext, a: Value) -> Value:
    t = a.type
    dims = [ctx.builder.op1("mem.shape", [a], i64, {"axis": k}) for k in range(t.ndim)]
    return ctx.builder.op1("mem.alloc", dims, ArrayType(t.dtype, t.ndim, "C"), {"fill": "zeros"})


def _copy(ctx: LoweringContext, a: Value, node) -> Value:
    """A new array holding a's values, as `a.copy()` (a loop derivatives flow through); a
    scalar is passed as it is."""
    if not isinstance(a.type, ArrayType):
        return a
    call = ast.copy_location(ast.Call(func=node, args=[], keywords=[]), node)
    return construct.method_copy(ctx, a, call)


def _call(ctx: LoweringContext, fn: Function, operands: list[Value], node) -> list[Value]:
    """Call derivative fn (a copy in the caller's module; inlining gives each place it
    lands tape slots of its own: passes/inline.py); its results."""
    module = ctx.program.module
    callee = clone_function(fn)
    base, n = callee.name, 0
    while callee.name in module.functions:
        n += 1
        callee.name = f"{base}.{n}"
    module.functions[callee.name] = callee
    op = ctx.builder.op("func.call", operands, list(callee.result_types),
                        {"callee": callee.name})
    return list(op.results)

