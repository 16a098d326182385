"""Lowering of the parallel markers (markers/*.toml): `prange` loops become
`par.parallel_for` with their scalar reductions (and array reductions as accumulations:
array_reductions); `join`, and groups of consecutive `spawn`s,
become `par.join` (one region per task; `sync` reads a task's results); `par_map` and
`par_sum` become parallel loops calling a kernel."""
from __future__ import annotations

import ast
from typing import TYPE_CHECKING

from ..ir.core import Block, Value
from ..ir.types import ArrayType, f64, i64
from . import arrays, syntax
from . import intrinsics as intr
from .markers import marker_of

if TYPE_CHECKING:
    from .context import LoweringContext


class _Handle:
    """What `spawn` returns inside a kernel: a task of the pending group, then its results."""

    def __init__(self, node):
        self.node = node
        self.results = None


def marker_call(ctx: LoweringContext, node):
    if not isinstance(node, ast.Call):
        return None
    obj = ctx.static_value(node.func)
    return None if obj is None else marker_of(obj)


def parallel_for(ctx: LoweringContext, s, marker):
    """A prange loop. A scalar carried across iterations is a reduction (numba's
    semantics): each iteration starts it from the operator's identity, and the loop
    combines the iterations' values with the initial one."""
    call = s.iter
    if not isinstance(s.target, ast.Name):
        ctx.unsupported(s, "a parallel loop target that is not a plain name")
    allow_races = False
    for kw in call.keywords:
        if kw.arg not in marker.options:
            ctx.unsupported(s, f"the keyword `{kw.arg}=` of {marker.call}")
        if not (isinstance(kw.value, ast.Constant) and isinstance(kw.value.value, bool)):
            ctx.unsupported(s, f"a non-constant `{kw.arg}=`")
        allow_races = kw.value.value
    if not 1 <= len(call.args) <= 3:
        ctx.unsupported(s, f"{marker.call} with {len(call.args)} arguments")
    if s.orelse or syntax.exits_loop(s.body, ast.Break):
        ctx.unsupported(s, "`break` or `else` in a parallel loop",
                        "iterations of a prange loop cannot stop the others")
    if syntax.returns_in(s.body):
        ctx.unsupported(s, "a `return` inside a parallel loop",
                        "iterations of a prange loop cannot stop the others: find the "
                        "answer with a serial loop, or record per iteration what it finds "
                        "and return after the loop")
    ctx.array_reductions |= array_reductions(ctx, s.body)
    bounds = ctx.range_bounds(call)
    names = ctx.carried(s.body, exclude=s.target.id, parallel=True)
    kinds = []
    for n in names:
        if not isinstance(ctx.env[n], Value):
            ctx.unsupported(s, f"rebinding '{n}', a tuple or an ad.vjp's vjp_fn, inside a "
                               f"parallel loop, where the loop reads it",
                            "give each iteration its own, assigned before it is read")
        if isinstance(ctx.env[n].type, ArrayType):
            ctx.unsupported(s, f"rebinding array '{n}' inside a parallel loop",
                            f"write into it in place ({n}[...] = e), or use a name of its own "
                            f"in each iteration")
        kinds.append(reduction_kind(ctx, s.body, n, s))
    loop = ctx.loop_context(False, syntax.exits_loop(s.body, ast.Continue))

    def body(block_args):
        ctx.env[s.target.id] = block_args[0]
        partials = block_args[1:]
        for n, kind, acc in zip(names, kinds, partials, strict=True):
            ctx.env[n] = ctx.const(arrays.identity(kind, acc.type), acc.type)
        ctx.loop_body(s.body, loop)
        for n, kind, acc in zip(names, kinds, partials, strict=True):
            # at the wider type of the two, as a serial loop's variable (`c = 0` then
            # `c += x[i]` is a float): structured_loop then lowers the loop again with it
            t = ctx.unify([ctx.env[n], acc], n, s)
            local, total = ctx.coerce(ctx.env[n], t), ctx.coerce(acc, t)
            ctx.env[n] = ctx.builder.op1(arrays.COMBINE[kind], [total, local], t)

    op = ctx.structured_loop(s, names, lambda types: [Value(i64, s.target.id)], body,
                             lambda inits, blocks: ctx.builder.op(
                                 "par.parallel_for", bounds + inits,
                                 [v.type for v in inits], regions=blocks))
    op.attrs["reductions"] = ",".join(kinds)
    if allow_races:
        op.attrs["allow_races"] = True
    ctx.end_targets(s, [s.target.id])


def array_reductions(ctx: LoweringContext, stmts) -> set[int]:
    """The ids of the statements `acc += e` and `acc -= e` of a parallel loop's body, acc an
    array from before the loop: numba's array reduction, which the loop adds into acc
    element by element (mem.accumulate: arrays.fill), so that the iterations' additions
    commute and passes/race.py gives them per-thread copies added up after the loop. Other
    in-place operators on such an array (`acc *= e`: the iterations' order would decide
    the result) are refused here; so is `acc += e` where e's type is wider than acc's
    (NumPy computes acc + e in the wider type before rounding, an accumulation would round
    e first)."""
    found = set()
    for n in ast.walk(ast.Module(stmts, [])):
        if not (isinstance(n, ast.AugAssign) and isinstance(n.target, ast.Name)):
            continue
        name = n.target.id
        v = ctx.env.get(name)
        if isinstance(v, Value) and isinstance(v.type, ArrayType) and \
                not syntax.rebound_before_use(stmts, name):
            if not isinstance(n.op, (ast.Add, ast.Sub)):
                ctx.unsupported(n, f"the array reduction `{ast.unparse(n)}` "
                                   f"across the iterations of a parallel loop",
                                f"only += and -= of arrays are reductions; give each element "
                                f"its own iteration (for j in prange(m): for i in range(n): "
                                f"{name}[j] *= a[i, j])")
            found.add(id(n))
    return found


def reduction_kind(ctx: LoweringContext, stmts, name: str, node) -> str:
    """How the loop body updates `name`: only s += e / s -= e / s = s + e / s = e + s /
    s = s - e (add), s *= e / s = s * e / s = e * s (mul), s = max(s, e), s = min(s, e) are
    reductions, with `e` not reading `s`, and nothing else in the body may read `s`: each
    iteration starts it from the operator's identity, so such a read would see a partial
    value (numba's threads see one of their own), not the value of the serial loop."""
    kinds = set()
    accumulators = set()   # the loads of `name` that are the updates' own operand
    for n in ast.walk(ast.Module(stmts, [])):
        if isinstance(n, ast.AugAssign) and isinstance(n.target, ast.Name) \
                and n.target.id == name:
            kind = {ast.Add: "add", ast.Sub: "add", ast.Mult: "mul"}.get(type(n.op))
            kinds.add(kind)
        elif isinstance(n, (ast.Assign, ast.AnnAssign)):
            targets = n.targets if isinstance(n, ast.Assign) else [n.target]
            if any(isinstance(t, ast.Name) and t.id == name for t in targets):
                kind, acc = update_kind(ctx, n.value, name)
                kinds.add(kind)
                accumulators.add(id(acc))
    if len(kinds) != 1 or None in kinds:
        ctx.unsupported(node, f"variable '{name}' carried across iterations of a parallel "
                              f"loop that is not a reduction",
                        "update it only as s += e, s -= e, s *= e, s = max(s, e) or "
                        "s = min(s, e), or make it local to the iteration")
    for n in ast.walk(ast.Module(stmts, [])):
        if isinstance(n, ast.Name) and n.id == name and isinstance(n.ctx, ast.Load) \
                and id(n) not in accumulators:
            ctx.unsupported(n, f"reading the reduction variable '{name}' inside its parallel "
                               f"loop (line {ctx.loc_of(node)[1]}) other than in its update",
                            f"each iteration sees a partial value of '{name}' there, not "
                            f"the serial loop's; read it after the loop, or make the loop a "
                            f"range")
    return kinds.pop()


_BINARY_UPDATES = {ast.Add: "add", ast.Sub: "add", ast.Mult: "mul"}


def update_kind(ctx: LoweringContext, value, name: str):
    """(kind, the accumulator's Name node) of `name = value` as a reduction update, kind
    None where it is none: s = s + e, s = e + s, s = s - e, s = s * e, s = e * s,
    s = max(s, e) or min (either order)."""
    def is_acc(v):
        return isinstance(v, ast.Name) and v.id == name
    if isinstance(value, ast.BinOp) and type(value.op) in _BINARY_UPDATES:
        if is_acc(value.left):
            return _BINARY_UPDATES[type(value.op)], value.left
        if is_acc(value.right) and not isinstance(value.op, ast.Sub):
            return _BINARY_UPDATES[type(value.op)], value.right
        return None, None
    accs = [a for a in getattr(value, "args", ()) if is_acc(a)]
    kind = minmax_update(ctx, value, name)
    return (kind, accs[0]) if kind is not None else (None, None)


def minmax_update(ctx: LoweringContext, value, name: str):
    if isinstance(value, ast.Call) and len(value.args) == 2 and \
            any(isinstance(a, ast.Name) and a.id == name for a in value.args):
        fn = ctx.static_value(value.func)
        try:
            if fn in intr.MAX:
                return "max"
            if fn in intr.MIN:
                return "min"
        except TypeError:
            return None
    return None


def call_marker(ctx: LoweringContext, marker, node):
    construct = marker.construct
    if construct == "join":
        return lower_join(ctx, node)
    if construct == "spawn":
        ctx.unsupported(node, "spawn() outside an assignment `h = spawn(f, ...)`")
    if construct == "sync":
        return lower_sync(ctx, node)
    if construct == "par_sum":
        return lower_par_sum(ctx, node)
    if construct == "par_map":
        return lower_par_map(ctx, node)
    ctx.unsupported(node, f"{marker.call} here")


def task_call(ctx: LoweringContext, fn_node, arg_nodes, node):
    """(kernel, argument values) of one task."""
    fn = ctx.static_value(fn_node)
    if not getattr(fn, "__hpcad_kernel__", False):
        ctx.unsupported(node, "a task that is not an @hpcad.kernel function")
    args = [ctx.expr(a) for a in arg_nodes]
    if any(not isinstance(a, Value) for a in args):
        ctx.unsupported(node, "passing a tuple or a Python object to a task")
    return fn, args


def emit_join(ctx: LoweringContext, tasks, node) -> list[tuple]:
    """A par.join op with one region per (kernel, args) task; each task's results."""
    blocks, arity, types = [], [], []
    for fn, args in tasks:
        block = Block()
        with ctx.at(block):
            callee = ctx.program.function_for(fn.py_func, [a.type for a in args],
                                              ctx.loc_of(node))
            call = ctx.builder.op("func.call", args, list(callee.result_types),
                                  {"callee": callee.name})
            ctx.builder.op("scf.yield", list(call.results))
        blocks.append(block)
        arity.append(len(callee.result_types))
        types += list(callee.result_types)
    op = ctx.builder.op("par.join", [], types, {"arity": ",".join(map(str, arity))},
                        regions=blocks)
    out, start = [], 0
    for n in arity:
        out.append(tuple(op.results[start:start + n]))
        start += n
    return out


def _task_value(results: tuple):
    if not results:
        return None
    return results[0] if len(results) == 1 else results


def lower_join(ctx: LoweringContext, node):
    if len(node.args) != 4 or node.keywords:
        ctx.unsupported(node, "join() other than join(f, args_f, g, args_g)")
    tasks = []
    for fn_node, args_node in ((node.args[0], node.args[1]), (node.args[2], node.args[3])):
        if not isinstance(args_node, ast.Tuple):
            ctx.unsupported(node, "join() task arguments that are not a literal tuple")
        tasks.append(task_call(ctx, fn_node, args_node.elts, node))
    return tuple(_task_value(r) for r in emit_join(ctx, tasks, node))


def is_spawn(ctx: LoweringContext, s) -> bool:
    if not (isinstance(s, ast.Assign) and len(s.targets) == 1
            and isinstance(s.targets[0], ast.Name)):
        return False
    m = marker_call(ctx, s.value)
    return m is not None and m.construct == "spawn"


def stmt_spawn(ctx: LoweringContext, s):
    call = s.value
    if not call.args or call.keywords:
        ctx.unsupported(s, "spawn() other than spawn(f, *args)")
    handle = _Handle(s)
    ctx.pending_tasks.append((handle, task_call(ctx, call.args[0], call.args[1:], s)))
    ctx.env[s.targets[0].id] = handle


def flush_tasks(ctx: LoweringContext) -> None:
    """Run the pending group of spawned tasks: they may run in parallel with each other
    and all finish before the next statement (as they do when run as plain Python)."""
    if not ctx.pending_tasks:
        return
    group, ctx.pending_tasks = ctx.pending_tasks, []
    results = emit_join(ctx, [t for _, t in group], group[0][0].node)
    for (handle, _), r in zip(group, results, strict=True):
        handle.results = r


def lower_sync(ctx: LoweringContext, node):
    if len(node.args) != 1 or not isinstance(node.args[0], ast.Name):
        ctx.unsupported(node, "sync() of anything but a task handle variable")
    handle = ctx.env.get(node.args[0].id)
    if not isinstance(handle, _Handle) or handle.results is None:
        ctx.unsupported(node, f"sync() of '{node.args[0].id}', which is not a spawned task")
    return _task_value(handle.results)


def iterator_loop(ctx: LoweringContext, node, n_node, body_fn, reduction=None):
    n = ctx.coerce_index(ctx.expr(n_node), n_node)
    zero, one = ctx.const(0, i64), ctx.const(1, i64)
    inits = [] if reduction is None else [reduction]
    block = Block([Value(i64, "i")] + [Value(v.type, "acc") for v in inits])
    with ctx.at(block):
        yields = body_fn(block.args[0], block.args[1:])
        ctx.builder.op("scf.yield", yields)
    op = ctx.builder.op("par.parallel_for", [zero, n, one] + inits,
                        [v.type for v in inits], regions=[block])
    op.attrs["reductions"] = "add" if inits else ""
    return op


def lower_par_sum(ctx: LoweringContext, node):
    if len(node.args) < 2 or node.keywords:
        ctx.unsupported(node, "par_sum() other than par_sum(f, n, *args)")
    fn_node, n_node, extra = node.args[0], node.args[1], node.args[2:]
    zero = ctx.const(0.0, f64)

    def body(i, accs):
        (value,) = kernel_results(ctx, fn_node, i, extra, node, 1)
        total = ctx.builder.op1("arith.add", [accs[0], ctx.coerce(value, accs[0].type)],
                                accs[0].type)
        return [total]

    return iterator_loop(ctx, node, n_node, body, zero).results[0]


def lower_par_map(ctx: LoweringContext, node):
    if len(node.args) < 3 or node.keywords:
        ctx.unsupported(node, "par_map() other than par_map(f, n, out, *args)")
    fn_node, n_node, out_node, extra = node.args[0], node.args[1], node.args[2], node.args[3:]
    out = ctx.expr(out_node)
    if not isinstance(out, Value) or not isinstance(out.type, ArrayType) \
            or out.type.ndim != 1:
        ctx.unsupported(node, "par_map() into something that is not a 1-D array")

    def body(i, accs):
        (value,) = kernel_results(ctx, fn_node, i, extra, node, 1)
        ctx.builder.op("mem.store", [ctx.coerce(value, out.type.dtype), out, i])
        return []

    iterator_loop(ctx, node, n_node, body)
    return None


def kernel_results(ctx: LoweringContext, fn_node, i: Value, extra, node, count: int):
    fn, args = task_call(ctx, fn_node, extra, node)
    args = [i] + args
    callee = ctx.program.function_for(fn.py_func, [a.type for a in args], ctx.loc_of(node))
    if len(callee.result_types) != count:
        ctx.unsupported(node, f"a parallel iterator over '{fn.__name__}', which returns "
                              f"{len(callee.result_types)} values (expects {count})")
    return ctx.builder.op("func.call", args, list(callee.result_types),
                          {"callee": callee.name}).results
