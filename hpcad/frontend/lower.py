"""Python kernel source -> IR, specialized on argument types.

Variables become SSA values; loops and branches become `scf` ops whose iter_args/results
carry the variables they reassign; `break`/`continue` become flags that guard the rest of the
body; tail `return`s become the function's results. Calls to other kernels become
`func.call` ops on callee functions lowered for the actual argument types (inlined later)."""
from __future__ import annotations

import ast
import inspect
import textwrap
from contextlib import contextmanager

from ..errors import KernelTypeError, UnsupportedConstruct
from ..ir.core import Block, Builder, Function, Module, Op, Value
from ..ir.types import ArrayType, ScalarType, i1, i64, promote
from . import syntax
from .expressions import ExpressionLowering
from .mpi import MpiLowering
from .parallel import ParallelLowering


class _LoopContext:
    def __init__(self, depth: int, has_break: bool, has_continue: bool):
        self.brk = f".brk{depth}" if has_break else None
        self.cont = f".cont{depth}" if has_continue else None


class KernelSource:
    """A kernel's parsed source with the offsets that map AST lines back to the file."""

    def __init__(self, py_func):
        self.py_func = py_func
        try:
            lines, start = inspect.getsourcelines(py_func)
        except (OSError, TypeError) as e:
            raise UnsupportedConstruct(f"cannot read the source of kernel "
                                       f"'{py_func.__name__}': {e}") from None
        tree = ast.parse(textwrap.dedent("".join(lines)))
        self.fdef = tree.body[0]
        if not isinstance(self.fdef, ast.FunctionDef):
            raise UnsupportedConstruct(f"kernel '{py_func.__name__}' must be a plain `def`")
        self.file = inspect.getsourcefile(py_func) or "<unknown>"
        self.line_offset = start - 1
        self.fdef.decorator_list = []
        self.globals = dict(py_func.__globals__)
        closure = inspect.getclosurevars(py_func)
        self.globals.update(closure.nonlocals)
        self.arg_names = [a.arg for a in self.fdef.args.args]


class FunctionLowering(ParallelLowering, MpiLowering, ExpressionLowering):
    """Lowers one kernel body for one argument signature into a `Function` of `module`."""

    def __init__(self, source: KernelSource, arg_types, module: Module, name: str, lowering):
        self.src = source
        self.module = module
        self.program = lowering
        self.builder = Builder()
        self.env: dict[str, Value | tuple] = {}
        self.loops: list[_LoopContext] = []
        self.ret_arity: int | None = None
        self.pending_tasks: list = []
        body = Block([Value(t, n) for t, n in zip(arg_types, source.arg_names)])
        self.fn = Function(name, body, [], list(source.arg_names), self.loc_of(source.fdef))
        for n, v in zip(source.arg_names, body.args):
            self.env[n] = v

    # -- locations and errors ----------------------------------------------------------------
    def loc_of(self, node):
        return (self.src.file, getattr(node, "lineno", 0) + self.src.line_offset)

    def unsupported(self, node, what: str, hint: str = ""):
        file, line = self.loc_of(node)
        raise UnsupportedConstruct(f"{file}:{line}: {what} is not supported in hpcad kernels"
                                   + (f"; {hint}" if hint else ""))

    def type_error(self, node, msg: str):
        file, line = self.loc_of(node)
        raise KernelTypeError(f"{file}:{line}: {msg}")

    @contextmanager
    def at(self, block: Block):
        saved = self.builder.block
        self.builder.block = block
        try:
            yield
        finally:
            self.builder.block = saved

    # -- function ----------------------------------------------------------------------------
    def lower(self) -> Function:
        fdef = self.src.fdef
        a = fdef.args
        if a.vararg or a.kwarg or a.kwonlyargs or a.posonlyargs:
            self.unsupported(fdef, "*args, **kwargs and keyword-only parameters",
                             "use plain positional parameters")
        bad = syntax.misplaced_return(fdef.body)
        if bad is not None:
            self.unsupported(bad, "a `return` before the end of the kernel",
                             "assign the result to a variable and return it at the end")
        self.builder.block = self.fn.body
        self.stmts(fdef.body)
        rets = []
        if self.ret_arity is not None:
            for k in range(self.ret_arity):
                v = self.env.get(f".ret{k}")
                if v is None:
                    self.unsupported(fdef, "a kernel where some paths return a value and some "
                                     "do not", "return a value on every path")
                rets.append(v)
        self.builder.loc = self.loc_of(fdef)
        self.builder.op("func.return", rets)
        self.fn.result_types = [v.type for v in rets]
        return self.fn

    # -- statements --------------------------------------------------------------------------
    def stmts(self, stmts) -> None:
        for k, s in enumerate(stmts):
            if self.is_spawn(s):
                self.builder.loc = self.loc_of(s)
                self.stmt_spawn(s)
                continue
            self.flush_tasks()
            self.stmt(s)
            rest = stmts[k + 1:]
            if rest and self.loops and syntax.may_exit(s):
                self.if_stmts(self.not_exited(s), rest, [], s)
                return
        self.flush_tasks()

    def not_exited(self, node) -> Value:
        ctx = self.loops[-1]
        flags = [self.env[f] for f in (ctx.brk, ctx.cont) if f and f in self.env]
        left = flags[0]
        for f in flags[1:]:
            left = self.builder.op1("arith.or", [left, f], i1)
        return self.builder.op1("arith.not", [left], i1)

    def stmt(self, s) -> None:
        self.builder.loc = self.loc_of(s)
        method = getattr(self, "stmt_" + type(s).__name__, None)
        if method is None:
            self.unsupported(s, f"the statement `{type(s).__name__}`")
        method(s)

    def stmt_Pass(self, s):
        pass

    def stmt_Expr(self, s):
        if isinstance(s.value, ast.Constant) and isinstance(s.value.value, str):
            return  # docstring
        if not isinstance(s.value, ast.Call):
            self.unsupported(s, "an expression statement without effect")
        self.expr(s.value, allow_none=True)

    def stmt_Return(self, s):
        if s.value is None:
            vals = ()
        else:
            v = self.expr(s.value)
            vals = v if isinstance(v, tuple) else (v,)
        for v in vals:
            if not isinstance(v, Value) or isinstance(v.type, ArrayType):
                self.unsupported(s, "returning arrays or non-scalar values",
                                 "write results into an output array argument")
        if self.ret_arity is not None and self.ret_arity != len(vals):
            self.unsupported(s, "returning different numbers of values on different paths")
        self.ret_arity = len(vals)
        for k, v in enumerate(vals):
            self.env[f".ret{k}"] = v

    def stmt_Assign(self, s):
        value = self.expr(s.value)
        for target in s.targets:
            self.assign(target, value)

    def stmt_AnnAssign(self, s):
        if s.value is None:
            return
        self.assign(s.target, self.expr(s.value))

    def stmt_AugAssign(self, s):
        if isinstance(s.target, ast.Name):
            cur = self.lookup(s.target)
            self.assign(s.target, self.binop(s.op, cur, self.expr(s.value), s))
        elif isinstance(s.target, ast.Subscript):
            arr, idx = self.subscript_parts(s.target)
            cur = self.builder.op1("mem.load", [arr] + idx, arr.type.dtype, name_hint=None)
            new = self.binop(s.op, cur, self.expr(s.value), s)
            self.store(arr, idx, new, s)
        else:
            self.unsupported(s, "this augmented-assignment target")

    def assign(self, target, value) -> None:
        if isinstance(target, ast.Name):
            if isinstance(value, Value) and value.name is None and isinstance(value.owner, Op):
                value.name = target.id
            if not isinstance(value, (Value, tuple)):
                self.unsupported(target, f"assigning {type(value).__name__} to a variable")
            self.env[target.id] = value
        elif isinstance(target, ast.Tuple):
            if not isinstance(value, tuple) or len(value) != len(target.elts):
                self.unsupported(target, "unpacking a value that is not a tuple of the same "
                                 "length")
            for t, v in zip(target.elts, value):
                self.assign(t, v)
        elif isinstance(target, ast.Subscript):
            arr, idx = self.subscript_parts(target)
            self.store(arr, idx, value, target)
        else:
            self.unsupported(target, f"assignment to `{type(target).__name__}`")

    def store(self, arr, idx, value, node):
        if not isinstance(value, Value) or not isinstance(value.type, ScalarType):
            self.unsupported(node, "storing a non-scalar into an array element")
        self.builder.op("mem.store", [self.coerce(value, arr.type.dtype)] + [arr] + idx)

    def stmt_If(self, s):
        self.if_stmts(self.condition(s.test), s.body, s.orelse, s)

    def if_stmts(self, cond: Value, then_stmts, else_stmts, node) -> None:
        before = dict(self.env)
        branches = []
        for stmts in (then_stmts, else_stmts):
            block = Block()
            self.env = dict(before)
            with self.at(block):
                self.stmts(stmts)
            branches.append((block, self.env))
        self.env = before
        merged = self.merge_names(before, [e for _, e in branches])
        types = [self.unify([e[n] for _, e in branches], n, node) for n in merged]
        for block, env in branches:
            with self.at(block):
                self.builder.op("scf.yield", [self.coerce(env[n], t) for n, t in zip(merged, types)])
        op = self.builder.op("scf.if", [cond], types, regions=[b for b, _ in branches])
        self.env = dict(before)
        for n, r in zip(merged, op.results):
            r.name = _hint(n)
            self.env[n] = r
        for n in list(self.env):
            if n not in merged and any(n not in e for _, e in branches):
                del self.env[n]

    @staticmethod
    def merge_names(before, envs) -> list[str]:
        """Names that differ between a branch and the state before, defined on every branch."""
        names = []
        for e in envs:
            for n, v in e.items():
                if n not in names and (before.get(n) is not v) and all(n in x for x in envs):
                    names.append(n)
        return [n for n in names if isinstance(envs[0][n], Value)]

    def unify(self, values, name, node):
        types = {v.type for v in values if isinstance(v, Value)}
        if len(types) == 1:
            return types.pop()
        if all(isinstance(t, ScalarType) for t in types):
            out = types.pop()
            for t in types:
                out = promote(out, t) if out != t else out
            return out
        self.type_error(node, f"variable '{_hint(name)}' holds values of incompatible types "
                              f"{', '.join(sorted(str(t) for t in types))} on different paths")

    # -- loops -------------------------------------------------------------------------------
    def stmt_For(self, s):
        if s.orelse:
            self.unsupported(s, "`for ... else`")
        it = s.iter
        marker = self.marker_call(it)
        if marker is not None and marker.construct == "parallel_for":
            self.parallel_for(s, marker)
            return
        if not (isinstance(it, ast.Call) and self.static_value(it.func) is range):
            self.unsupported(s, "a `for` loop over anything but range()",
                             "loop over indices: for i in range(len(a))")
        if not isinstance(s.target, ast.Name):
            self.unsupported(s, "a loop target that is not a plain name")
        if it.keywords or not 1 <= len(it.args) <= 3:
            self.unsupported(s, "range() with keywords or more than 3 arguments")
        bounds = self.range_bounds(it)
        has_break = syntax.exits_loop(s.body, ast.Break)
        ctx = _LoopContext(len(self.loops), has_break,
                           syntax.exits_loop(s.body, ast.Continue))
        if has_break:
            self.for_with_break(s, bounds, ctx)
            return
        names = self.carried(s.body, exclude=s.target.id)

        def body(block_args):
            self.env[s.target.id] = block_args[0]
            self.loop_body(s.body, ctx)

        self.structured_loop(s, names, lambda types: [Value(i64, s.target.id)],
                             body, lambda inits, blocks: self.builder.op(
                                 "scf.for", bounds + inits, [v.type for v in inits],
                                 regions=blocks))
        self.env.pop(s.target.id, None)

    def range_bounds(self, call) -> list[Value]:
        """lb, ub, step of range(...)-style arguments, as i64."""
        bounds = [self.coerce_index(self.expr(a), a) for a in call.args]
        if len(bounds) == 1:
            bounds = [self.const(0, i64)] + bounds
        if len(bounds) == 2:
            bounds.append(self.const(1, i64))
        return bounds

    def carried(self, body, exclude=None, extra=()) -> list[str]:
        names = [n for n in _ordered_assigned(body) if n in self.env and n != exclude
                 and isinstance(self.env[n], Value)]
        return list(extra) + names

    def loop_body(self, stmts, ctx: _LoopContext):
        self.loops.append(ctx)
        if ctx.cont:
            self.env[ctx.cont] = self.const(False, i1)
        try:
            self.stmts(stmts)
        finally:
            self.loops.pop()

    def structured_loop(self, node, names, leading_args, body_fn, make_op, before_fn=None):
        """Lower a loop whose body reassigns `names`: block args carry them, the body yields
        them. If the body changes a variable's type (int -> float), redo with the promoted
        type so that iter_args keep one type."""
        outer = dict(self.env)
        types = [outer[n].type for n in names]
        for _ in range(4):
            blocks, yields = [], None
            lead = leading_args(types)
            if before_fn is not None:
                before = Block([Value(t, _hint(n)) for n, t in zip(names, types)])
                self.env = dict(outer)
                self.env.update(zip(names, before.args))
                with self.at(before):
                    before_fn(before.args)
                blocks.append(before)
            block = Block(lead + [Value(t, _hint(n)) for n, t in zip(names, types)])
            self.env = dict(outer)
            self.env.update(zip(names, block.args[len(lead):]))
            with self.at(block):
                body_fn(block.args)
            yields = [self.env.get(n) for n in names]
            for n, y in zip(names, yields):
                if not isinstance(y, Value):
                    self.unsupported(node, f"variable '{_hint(n)}' becoming undefined in a loop")
            new_types = [self.unify([y, Value(t)], n, node) for n, y, t in zip(names, yields, types)]
            if new_types == types:
                break
            types = new_types
        with self.at(block):
            self.builder.op("scf.yield", [self.coerce(y, t) for y, t in zip(yields, types)])
        blocks.append(block)
        self.env = outer
        inits = [self.coerce(outer[n], t) for n, t in zip(names, types)]
        self.builder.loc = self.loc_of(node)   # the loop's own line, not its last statement's
        op = make_op(inits, blocks)
        for n, r in zip(names, op.results):
            r.name = _hint(n)
            self.env[n] = r
        return op

    def stmt_While(self, s):
        if s.orelse:
            self.unsupported(s, "`while ... else`")
        ctx = _LoopContext(len(self.loops), syntax.exits_loop(s.body, ast.Break),
                           syntax.exits_loop(s.body, ast.Continue))
        extra = []
        if ctx.brk:
            self.env[ctx.brk] = self.const(False, i1)
            extra = [ctx.brk]
        names = self.carried(s.body, extra=extra)
        self.while_loop(s, names, lambda: self.condition(s.test), ctx, s.body)
        if ctx.brk:
            self.env.pop(ctx.brk, None)

    def while_loop(self, node, names, test_fn, ctx, body_stmts, prologue=None, epilogue=None):
        def before(args):
            cond = self.guarded_test(test_fn, ctx)
            self.builder.op("scf.condition", [cond] + list(args))

        def body(args):
            if prologue:
                prologue()
            self.loop_body(body_stmts, ctx)
            if epilogue:
                epilogue()

        self.structured_loop(node, names, lambda types: [], body,
                             lambda inits, blocks: self.builder.op(
                                 "scf.while", inits, [v.type for v in inits], regions=blocks),
                             before_fn=before)

    def guarded_test(self, test_fn, ctx) -> Value:
        """The loop test, evaluated only while the loop has not executed `break`."""
        if not ctx.brk:
            return test_fn()
        not_broken = self.builder.op1("arith.not", [self.env[ctx.brk]], i1)
        return self.short_circuit(not_broken, test_fn, is_and=True)

    def for_with_break(self, s, bounds, ctx):
        """`for` with `break`: a while loop over an explicit induction variable."""
        lb, ub, step = bounds
        iv_name = f".iv{len(self.loops)}"
        self.env[iv_name] = lb
        self.env[ctx.brk] = self.const(False, i1)
        names = self.carried(s.body, exclude=s.target.id, extra=[iv_name, ctx.brk])

        def in_range():
            iv = self.env[iv_name]
            up = self.builder.op1("arith.cmp", [iv, ub], i1, {"pred": "lt"})
            down = self.builder.op1("arith.cmp", [iv, ub], i1, {"pred": "gt"})
            zero = self.const(0, i64)
            positive = self.builder.op1("arith.cmp", [step, zero], i1, {"pred": "gt"})
            return self.builder.op1("arith.select", [positive, up, down], i1)

        def bind_target():
            self.env[s.target.id] = self.env[iv_name]

        def advance():
            self.env[iv_name] = self.builder.op1("arith.add", [self.env[iv_name], step], i64)

        self.while_loop(s, names, in_range, ctx, s.body, bind_target, advance)
        for n in (iv_name, ctx.brk, s.target.id):
            self.env.pop(n, None)

    def stmt_Break(self, s):
        ctx = self.loops[-1] if self.loops else None
        if ctx is None or ctx.brk is None:
            self.unsupported(s, "`break` outside a loop")
        self.env[ctx.brk] = self.const(True, i1)

    def stmt_Continue(self, s):
        ctx = self.loops[-1] if self.loops else None
        if ctx is None or ctx.cont is None:
            self.unsupported(s, "`continue` outside a loop")
        self.env[ctx.cont] = self.const(True, i1)


def _hint(name: str) -> str:
    return name.lstrip(".")


def _ordered_assigned(stmts) -> list[str]:
    seen = []
    for node in syntax._walk_stmts(stmts):
        n = None
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            n = node.id
        if n and n not in seen:
            seen.append(n)
    return seen


class ProgramLowering:
    """Lowers an entry kernel and, on demand, every kernel it calls, into one module."""

    def __init__(self):
        self.module = Module()
        self.done: dict[tuple, str] = {}
        self.active: list[object] = []

    @staticmethod
    def def_loc(py_func) -> tuple[str, int]:
        """Where kernel `py_func` is defined: its file and the line of its `def`."""
        code = py_func.__code__
        return code.co_filename, code.co_firstlineno

    def function_for(self, py_func, arg_types, node_loc=None) -> Function:
        key = (py_func, tuple(arg_types))
        name = self.done.get(key)
        if name is not None:
            return self.module.functions[name]
        if py_func in self.active:
            raise UnsupportedConstruct(f"{node_loc[0]}:{node_loc[1]}: recursive kernel call to "
                                       f"'{py_func.__name__}' is not supported in hpcad kernels")
        base = py_func.__name__
        name, k = base, 0
        while name in self.module.functions:
            k += 1
            name = f"{base}.{k}"
        self.active.append(py_func)
        try:
            src = KernelSource(py_func)
            if len(src.arg_names) != len(arg_types):
                raise UnsupportedConstruct(f"{node_loc[0]}:{node_loc[1]}: '{base}' takes "
                                           f"{len(src.arg_names)} arguments, "
                                           f"{len(arg_types)} given")
            fn = FunctionLowering(src, arg_types, self.module, name, self).lower()
        finally:
            self.active.pop()
        self.module.add(fn)
        self.done[key] = name
        return fn


def lower_kernel(py_func, arg_types) -> Module:
    """The module of `py_func` specialized on `arg_types`; its entry is the kernel itself."""
    prog = ProgramLowering()
    entry = prog.function_for(py_func, arg_types, ("<call>", 0))
    prog.module.entry = entry.name
    return prog.module
