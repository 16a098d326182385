"""Lowering of the parallel markers (markers/*.toml): `prange` loops become
`par.parallel_for` with their scalar reductions; `join`, and groups of consecutive `spawn`s,
become `par.join` (one region per task; `sync` reads a task's results); `par_map` and
`par_sum` become parallel loops calling a kernel. Mixed into `FunctionLowering`."""
from __future__ import annotations

import ast

from ..ir.core import Block, Value
from ..ir.types import ArrayType, f64, i64
from .markers import marker_of

_COMBINE = {"add": "arith.add", "mul": "arith.mul", "max": "arith.max", "min": "arith.min"}


def _identity(kind: str, t):
    """The value an iteration's partial reduction starts from."""
    if kind == "add":
        return 0
    if kind == "mul":
        return 1
    if t.is_float:
        return float("-inf") if kind == "max" else float("inf")
    return -2 ** 63 if kind == "max" else 2 ** 63 - 1


class _Handle:
    """What `spawn` returns inside a kernel: a task of the pending group, then its results."""

    def __init__(self, node):
        self.node = node
        self.results = None


class ParallelLowering:
    pending_tasks: list

    def marker_call(self, node):
        if not isinstance(node, ast.Call):
            return None
        obj = self.static_value(node.func)
        return None if obj is None else marker_of(obj)

    # -- parallel loops ----------------------------------------------------------------------
    def parallel_for(self, s, marker):
        """A prange loop. A scalar carried across iterations is a reduction (numba's
        semantics): each iteration starts it from the operator's identity, and the loop
        combines the iterations' values with the initial one."""
        call = s.iter
        if not isinstance(s.target, ast.Name):
            self.unsupported(s, "a parallel loop target that is not a plain name")
        allow_races = False
        for kw in call.keywords:
            if kw.arg not in marker.options:
                self.unsupported(s, f"the keyword `{kw.arg}=` of {marker.call}")
            if not (isinstance(kw.value, ast.Constant) and isinstance(kw.value.value, bool)):
                self.unsupported(s, f"a non-constant `{kw.arg}=`")
            allow_races = kw.value.value
        if not 1 <= len(call.args) <= 3:
            self.unsupported(s, f"{marker.call} with {len(call.args)} arguments")
        if s.orelse or any(isinstance(n, ast.Break) for n in ast.walk(ast.Module(s.body, []))):
            self.unsupported(s, "`break` or `else` in a parallel loop",
                             "iterations of a prange loop cannot stop the others")
        bounds = self.range_bounds(call)
        names = self.carried(s.body, exclude=s.target.id)
        kinds = []
        for n in names:
            if isinstance(self.env[n].type, ArrayType):
                self.unsupported(s, f"rebinding array '{n}' inside a parallel loop")
            kinds.append(self.reduction_kind(s.body, n, s))
        from .lower import _LoopContext
        ctx = _LoopContext(len(self.loops), False, self.has_continue(s.body))

        def body(block_args):
            self.env[s.target.id] = block_args[0]
            partials = block_args[1:]
            for n, kind, acc in zip(names, kinds, partials):
                self.env[n] = self.const(_identity(kind, acc.type), acc.type)
            self.loop_body(s.body, ctx)
            for n, kind, acc in zip(names, kinds, partials):
                local = self.coerce(self.env[n], acc.type)
                self.env[n] = self.builder.op1(_COMBINE[kind], [acc, local], acc.type)

        op = self.structured_loop(s, names, lambda types: [Value(i64, s.target.id)], body,
                                  lambda inits, blocks: self.builder.op(
                                      "par.parallel_for", bounds + inits,
                                      [v.type for v in inits], regions=blocks))
        op.attrs["reductions"] = ",".join(kinds)
        if allow_races:
            op.attrs["allow_races"] = True
        self.env.pop(s.target.id, None)

    @staticmethod
    def has_continue(stmts) -> bool:
        from . import syntax
        return syntax.exits_loop(stmts, ast.Continue)

    def reduction_kind(self, stmts, name: str, node) -> str:
        """How the loop body updates `name`: only s += e / s -= e (add), s *= e (mul),
        s = max(s, e), s = min(s, e) are reductions."""
        kinds = set()
        for n in ast.walk(ast.Module(stmts, [])):
            if isinstance(n, ast.AugAssign) and isinstance(n.target, ast.Name) \
                    and n.target.id == name:
                kind = {ast.Add: "add", ast.Sub: "add", ast.Mult: "mul"}.get(type(n.op))
                kinds.add(kind)
            elif isinstance(n, (ast.Assign, ast.AnnAssign)):
                targets = n.targets if isinstance(n, ast.Assign) else [n.target]
                if any(isinstance(t, ast.Name) and t.id == name for t in targets):
                    kinds.add(self.minmax_update(n.value, name))
        if len(kinds) != 1 or None in kinds:
            self.unsupported(node, f"variable '{name}' carried across iterations of a parallel "
                                   f"loop that is not a reduction",
                             "update it only as s += e, s -= e, s *= e, s = max(s, e) or "
                             "s = min(s, e), or make it local to the iteration")
        return kinds.pop()

    def minmax_update(self, value, name: str):
        if isinstance(value, ast.Call) and len(value.args) == 2 and \
                any(isinstance(a, ast.Name) and a.id == name for a in value.args):
            fn = self.static_value(value.func)
            from . import intrinsics as intr
            try:
                if fn in intr.MAX:
                    return "max"
                if fn in intr.MIN:
                    return "min"
            except TypeError:
                return None
        return None

    # -- fork-join ---------------------------------------------------------------------------
    def call_marker(self, marker, node):
        construct = marker.construct
        if construct == "join":
            return self.lower_join(node)
        if construct == "spawn":
            self.unsupported(node, "spawn() outside an assignment `h = spawn(f, ...)`")
        if construct == "sync":
            return self.lower_sync(node)
        if construct == "par_sum":
            return self.lower_par_sum(node)
        if construct == "par_map":
            return self.lower_par_map(node)
        self.unsupported(node, f"{marker.call} here")

    def task_call(self, fn_node, arg_nodes, node):
        """(kernel, argument values) of one task."""
        fn = self.static_value(fn_node)
        if not getattr(fn, "__hpcad_kernel__", False):
            self.unsupported(node, "a task that is not an @hpcad.kernel function")
        args = [self.expr(a) for a in arg_nodes]
        if any(not isinstance(a, Value) for a in args):
            self.unsupported(node, "passing a tuple or a Python object to a task")
        return fn, args

    def emit_join(self, tasks, node) -> list[tuple]:
        """A par.join op with one region per (kernel, args) task; each task's results."""
        blocks, arity, types = [], [], []
        for fn, args in tasks:
            block = Block()
            with self.at(block):
                callee = self.program.function_for(fn.py_func, [a.type for a in args],
                                                   self.loc_of(node))
                call = self.builder.op("func.call", args, list(callee.result_types),
                                       {"callee": callee.name})
                self.builder.op("scf.yield", list(call.results))
            blocks.append(block)
            arity.append(len(callee.result_types))
            types += list(callee.result_types)
        op = self.builder.op("par.join", [], types, {"arity": ",".join(map(str, arity))},
                             regions=blocks)
        out, start = [], 0
        for n in arity:
            out.append(tuple(op.results[start:start + n]))
            start += n
        return out

    @staticmethod
    def _task_value(results: tuple):
        if not results:
            return None
        return results[0] if len(results) == 1 else results

    def lower_join(self, node):
        if len(node.args) != 4 or node.keywords:
            self.unsupported(node, "join() other than join(f, args_f, g, args_g)")
        tasks = []
        for fn_node, args_node in ((node.args[0], node.args[1]), (node.args[2], node.args[3])):
            if not isinstance(args_node, ast.Tuple):
                self.unsupported(node, "join() task arguments that are not a literal tuple")
            tasks.append(self.task_call(fn_node, args_node.elts, node))
        return tuple(self._task_value(r) for r in self.emit_join(tasks, node))

    def is_spawn(self, s) -> bool:
        if not (isinstance(s, ast.Assign) and len(s.targets) == 1
                and isinstance(s.targets[0], ast.Name)):
            return False
        m = self.marker_call(s.value)
        return m is not None and m.construct == "spawn"

    def stmt_spawn(self, s):
        call = s.value
        if not call.args or call.keywords:
            self.unsupported(s, "spawn() other than spawn(f, *args)")
        handle = _Handle(s)
        self.pending_tasks.append((handle, self.task_call(call.args[0], call.args[1:], s)))
        self.env[s.targets[0].id] = handle

    def flush_tasks(self) -> None:
        """Run the pending group of spawned tasks: they may run in parallel with each other
        and all finish before the next statement (as they do when run as plain Python)."""
        if not self.pending_tasks:
            return
        group, self.pending_tasks = self.pending_tasks, []
        results = self.emit_join([t for _, t in group], group[0][0].node)
        for (handle, _), r in zip(group, results):
            handle.results = r

    def lower_sync(self, node):
        if len(node.args) != 1 or not isinstance(node.args[0], ast.Name):
            self.unsupported(node, "sync() of anything but a task handle variable")
        handle = self.env.get(node.args[0].id)
        if not isinstance(handle, _Handle) or handle.results is None:
            self.unsupported(node, f"sync() of '{node.args[0].id}', which is not a spawned task")
        return self._task_value(handle.results)

    # -- parallel iterators ------------------------------------------------------------------
    def iterator_loop(self, node, n_node, body_fn, reduction=None):
        n = self.coerce_index(self.expr(n_node), n_node)
        zero, one = self.const(0, i64), self.const(1, i64)
        inits = [] if reduction is None else [reduction]
        block = Block([Value(i64, "i")] + [Value(v.type, "acc") for v in inits])
        with self.at(block):
            yields = body_fn(block.args[0], block.args[1:])
            self.builder.op("scf.yield", yields)
        op = self.builder.op("par.parallel_for", [zero, n, one] + inits,
                             [v.type for v in inits], regions=[block])
        op.attrs["reductions"] = "add" if inits else ""
        return op

    def lower_par_sum(self, node):
        if len(node.args) < 2 or node.keywords:
            self.unsupported(node, "par_sum() other than par_sum(f, n, *args)")
        fn_node, n_node, extra = node.args[0], node.args[1], node.args[2:]
        zero = self.const(0.0, f64)

        def body(i, accs):
            (value,) = self.kernel_results(fn_node, i, extra, node, 1)
            total = self.builder.op1("arith.add", [accs[0], self.coerce(value, accs[0].type)],
                                     accs[0].type)
            return [total]

        return self.iterator_loop(node, n_node, body, zero).results[0]

    def lower_par_map(self, node):
        if len(node.args) < 3 or node.keywords:
            self.unsupported(node, "par_map() other than par_map(f, n, out, *args)")
        fn_node, n_node, out_node, extra = node.args[0], node.args[1], node.args[2], node.args[3:]
        out = self.expr(out_node)
        if not isinstance(out, Value) or not isinstance(out.type, ArrayType) \
                or out.type.ndim != 1:
            self.unsupported(node, "par_map() into something that is not a 1-D array")

        def body(i, accs):
            (value,) = self.kernel_results(fn_node, i, extra, node, 1)
            self.builder.op("mem.store", [self.coerce(value, out.type.dtype), out, i])
            return []

        self.iterator_loop(node, n_node, body)
        return None

    def kernel_results(self, fn_node, i: Value, extra, node, count: int):
        fn, args = self.task_call(fn_node, extra, node)
        args = [i] + args
        callee = self.program.function_for(fn.py_func, [a.type for a in args], self.loc_of(node))
        if len(callee.result_types) != count:
            self.unsupported(node, f"a parallel iterator over '{fn.__name__}', which returns "
                                   f"{len(callee.result_types)} values (expects {count})")
        return self.builder.op("func.call", args, list(callee.result_types),
                               {"callee": callee.name}).results
