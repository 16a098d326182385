"""The state of one kernel body being lowered, and the walk over its statements: a
LoweringContext holds the builder, the environment (variable -> SSA value), the enclosing
loops' exit flags and the pending spawned tasks; it lowers each statement through its rule
in STATEMENTS (statements.py) and each expression through its rule in EXPRESSIONS
(expressions.py), and gives the rules the services they share (constants, conversions,
name lookup, branches and loops that carry variables)."""
from __future__ import annotations

import ast
import builtins
from contextlib import contextmanager
from typing import TYPE_CHECKING

import numpy as np

from ..errors import KernelTypeError, UnsupportedConstruct
from ..ir.core import Block, Builder, Function, Module, Op, Value
from ..ir.types import ArrayType, OpaqueType, ScalarType, f32, f64, i1, i64, promote, spoken
from . import arrays, intrinsics, mpi, parallel, syntax, words
from .arrays import ArrayExpr
from .expressions import EXPRESSIONS, Static
from .markers import numba_python_function
from .mpi_arguments import is_world
from .statements import RETURNED, STATEMENTS

if TYPE_CHECKING:
    from .lower import KernelSource


class IterationLocal:
    """What a name holds after a loop that rebinds it to a new array (or tuple holding arrays,
    or, in a parallel loop, anything) in every iteration before reading it
    (LoweringContext.carried): nothing usable."""

    def __init__(self, name: str, loc, array: bool = True):
        self.name, self.loc, self.array = name, loc, array


class BranchConflict:
    """What a name holds after an if whose branches bound it to things that cannot be merged
    into one (two kernels' pullbacks, a pullback and a number): nothing usable."""

    def __init__(self, name: str, loc):
        self.name, self.loc = name, loc


class LoopContext:
    """The names of a loop's `break` and `continue` flags and of the kernel's returned flag
    where its body may return (None: the body has none)."""

    def __init__(self, depth: int, has_break: bool, has_continue: bool, returns: bool = False):
        self.brk = f".brk{depth}" if has_break else None
        self.cont = f".cont{depth}" if has_continue else None
        self.ret = RETURNED if returns else None


class LoweringContext:
    """The state of one kernel body being lowered for one argument signature into a
    `Function` of `module`: the builder and its insertion block, the environment (variable
    -> SSA value), the enclosing loops' exit flags, the pending spawned tasks. Statement and
    expression rules (STATEMENTS here, EXPRESSIONS in expressions.py) take it as `ctx`."""

    def __init__(self, source: KernelSource, arg_types, module: Module, name: str, lowering):
        self.src = source
        self.module = module
        self.program = lowering
        self.builder = Builder()
        self.env: dict[str, Value | tuple] = {}
        self.loops: list[LoopContext] = []
        self.ret_arity: int | None = None
        self.early = False                  # the kernel may return early (start_early_returns)
        self.returned_types: list[set] = []   # per returned value, the types its returns gave
        self.retyped: list | None = None    # lower() again with these placeholder types
        self.pending_tasks: list = []
        self.array_views: dict = {}   # a slice's view -> how it indexes its base (arrays.py)
        # arrays bound to a name from a transpose of two or more axes (NumPy binds a view in
        # Fortran order, hpcad a copy in C order: MPI would send them differently)
        self.transposed_copies: set = set()
        # `acc += e` statements of parallel loops that add into acc (parallel.array_reductions)
        self.array_reductions: set[int] = set()
        self.iteration_arrays: list[list[str]] = []   # carried() -> structured_loop()
        self.buffers: dict[str, str] = {}   # array name -> its spare (double_buffer)
        self.new_buffers: list[list[str]] = []   # carried() -> structured_loop()
        self.ended_targets: dict[str, int] = {}   # a for loop's variable -> the loop's line
        body = Block([Value(t, n) for t, n in zip(arg_types, source.arg_names, strict=True)])
        self.fn = Function(name, body, [], list(source.arg_names), self.loc_of(source.fdef))
        for n, v in zip(source.arg_names, body.args, strict=True):
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

    # -- the function and its statements (STATEMENTS) ----------------------------------------
    def lower(self, ret_types=None) -> Function:
        """The kernel's function. ret_types: the types of the placeholders of an early
        return's values (start_early_returns), where a first lowering found them."""
        fdef = self.src.fdef
        a = fdef.args
        if a.vararg or a.kwarg:
            self.unsupported(fdef, "a kernel with *args or **kwargs parameters",
                             "name each parameter (defaults and keyword-only parameters "
                             "are fine)")
        self.builder.block = self.fn.body
        if syntax.misplaced_return(fdef.body) is not None:
            self.start_early_returns(fdef, ret_types)
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
        if self.early and ret_types is None:
            wanted = [self.unify([Value(t) for t in ts], f"ret{k}", fdef)
                      for k, ts in enumerate(self.returned_types)]
            if wanted != self.fn.result_types:
                self.retyped = wanted
        return self.fn

    def start_early_returns(self, fdef, ret_types) -> None:
        """A kernel with a `return` before its end (in a loop, or in an `if` with statements
        after it). Every `return` sets the flag RETURNED and the returned values, held in
        `.ret0`, `.ret1`, ... from the start: a loop whose body may return stops when the
        flag is set (a while loop, as with `break`, statements.stmt_for) and the statements
        after one that may return run only where it is not (stmts). The values start as
        placeholders that no path returns: every path ends at a `return` (or none returns a
        value). Their type is the returned values' (ret_types), else bool, which merging
        promotes to that type except for integers narrower than 64 bits: then lower() sets
        `retyped` and function_for lowers the kernel again with ret_types."""
        returns = [n for n in syntax.walk_stmts(fdef.body) if isinstance(n, ast.Return)]
        arity = syntax.return_arity(returns[0])
        for r in returns:
            if syntax.return_arity(r) != arity:
                self.unsupported(r, "returning different numbers of values on different paths")
        if arity and not syntax.always_returns(fdef.body):
            self.unsupported(fdef, "a kernel where some paths return a value and some do not",
                             "return a value on every path, also after the loops that "
                             "return early")
        self.early, self.ret_arity = True, arity
        self.returned_types = [set() for _ in range(arity)]
        self.env[RETURNED] = self.const(False, i1)
        for k in range(arity):
            t = ret_types[k] if ret_types is not None else i1
            self.env[f".ret{k}"] = self.const(0, t)

    def return_slots(self) -> list[str]:
        """What a loop whose body may return carries besides its own variables."""
        return [RETURNED] + [f".ret{k}" for k in range(self.ret_arity or 0)]

    def stmts(self, stmts) -> None:
        for k, s in enumerate(stmts):
            if parallel.is_spawn(self, s):
                self.builder.loc = self.loc_of(s)
                parallel.stmt_spawn(self, s)
                continue
            parallel.flush_tasks(self)
            self.stmt(s)
            rest = stmts[k + 1:]
            if rest and (self.loops and syntax.may_exit(s) or syntax.returns_in([s])):
                self.if_stmts(self.not_exited(s), rest, [], s)
                return
        parallel.flush_tasks(self)

    def stmt(self, s) -> None:
        self.builder.loc = self.loc_of(s)
        lower = STATEMENTS.get(type(s))
        if lower is None:
            self.unsupported(s, *words.describe(s, words.STATEMENTS))
        lower(self, s)

    # -- values: constants, conversions, names (expressions.py: EXPRESSIONS) -----------------
    def expr(self, node, allow_none: bool = False):
        lower = EXPRESSIONS.get(type(node))
        if lower is None:
            self.unsupported(node, *words.describe(node, words.EXPRESSIONS))
        v = lower(self, node)
        if v is None and not allow_none:
            self.unsupported(node, "using the result of a call that returns nothing")
        return v

    def const(self, value, t: ScalarType) -> Value:
        if t.is_float:
            value = float(value)
        elif t.is_bool:
            value = bool(value)
        else:
            value = int(value)
        return self.builder.op1("arith.const", [], t, {"value": value})

    def coerce(self, v: Value, t) -> Value:
        if v.type == t:
            return v
        if isinstance(v.type, ScalarType) and isinstance(t, ScalarType):
            if t.is_bool:
                zero = self.const(0, v.type)
                return self.builder.op1("arith.cmp", [v, zero], i1, {"pred": "ne"})
            return self.builder.op1("arith.cast", [v], t)
        raise AssertionError(f"cannot coerce {v.type} to {t}")

    def coerce_index(self, v, node) -> Value:
        if not isinstance(v, Value) or not isinstance(v.type, ScalarType) or v.type.is_float:
            got = v.type if isinstance(v, Value) else "an array" if isinstance(v, ArrayExpr) \
                else words.value(getattr(v, "obj", v))
            self.type_error(node, f"indices and range() bounds must be integers, got {got}")
        return self.coerce(v, i64)

    def scalar(self, v, node) -> Value:
        if isinstance(v, Static) and isinstance(v.obj, (int, float, bool)):
            v = self.python_const(v.obj)
        if isinstance(v, ArrayExpr):
            self.unsupported(node, "using an array expression where a scalar is expected",
                             "index it to get one element, or reduce it, e.g. np.sum(...)")
        if isinstance(getattr(v, "obj", None), np.ndarray):
            self.unsupported(node, "using a global NumPy array in a kernel",
                             "pass it to the kernel as an array argument (numba would freeze "
                             "its values at compile time; hpcad kernels take arrays as "
                             "arguments)")
        if isinstance(v, Value) and isinstance(v.type, OpaqueType):
            self.unsupported(node, f"using {spoken(v.type)} where a number is expected",
                             words.REQUESTS if v.type.name == "request" else "")
        if not isinstance(v, Value) or not isinstance(v.type, ScalarType):
            what = "an array" if isinstance(getattr(v, "type", None), ArrayType) else \
                words.value(getattr(v, "obj", v))
            self.unsupported(node, f"using {what} where a scalar is expected",
                             "index it to get one element, e.g. a[i], or reduce it, "
                             "e.g. np.sum(a)")
        return v

    def runtime_check(self, cond: Value, message: str, node) -> None:
        """Stop the kernel with a KernelAssertionError saying `message` at node's file:line
        unless cond holds when it runs (an `rt.assert`; derivatives check it in their primal
        part)."""
        saved = self.builder.loc
        self.builder.loc = self.loc_of(node)
        self.builder.op("rt.assert", [self.truth(cond, node)], [], {"what": message})
        self.builder.loc = saved

    def python_const(self, obj) -> Value:
        if isinstance(obj, (bool, np.bool_)):
            return self.const(bool(obj), i1)
        if isinstance(obj, (int, np.integer)):
            return self.const(int(obj), i64)
        if isinstance(obj, np.float32):
            return self.const(float(obj), f32)
        return self.const(float(obj), f64)

    def condition(self, node) -> Value:
        return self.truth(self.expr(node), node)

    def truth(self, v, node) -> Value:
        v = self.scalar(v, node)
        return v if v.type == i1 else self.coerce(v, i1)

    def static_value(self, node):
        if isinstance(node, ast.Name) and node.id not in self.env:
            return self.global_object(node)
        if isinstance(node, ast.Attribute):
            base = self.static_value(node.value)
            if base is not None and not isinstance(base, Value):
                return getattr(base, node.attr, None)
        return None

    def global_object(self, node):
        name = node.id
        if name in self.src.globals:
            return self.src.globals[name]
        if hasattr(builtins, name):
            return getattr(builtins, name)
        return None

    def lookup(self, node: ast.Name):
        v = self.env.get(node.id)
        if isinstance(v, IterationLocal):
            self.unsupported(node, f"using '{node.id}' after the loop at line "
                                   f"{v.loc[1]} that gives it a new value in every iteration",
                             f"make '{node.id}' before the loop and write into it, "
                             f"e.g. {node.id}[:] = ..." if v.array else
                             "use it inside the loop, or keep the value you need in an array")
        if isinstance(v, BranchConflict):
            self.unsupported(node, f"using '{node.id}' after the if at line {v.loc[1]} whose "
                                   f"branches give it different kinds of values",
                             f"give '{node.id}' the same kind of value on every branch (the "
                             f"same kernel's ad.vjp, numbers, arrays of one type), or use it "
                             f"inside each branch")
        if v is None:
            obj = self.global_object(node)
            if obj is None and node.id in self.ended_targets:
                self.unsupported(node, f"using the loop variable '{node.id}' after its for "
                                       f"loop at line {self.ended_targets[node.id]}",
                                 f"hpcad ends a loop variable with its loop; keep the value "
                                 f"you need in another variable (`last = {node.id}` inside "
                                 f"the loop, `last` assigned before it too)")
            if obj is None:
                self.unsupported(node, f"using '{node.id}' where it may be undefined",
                                 "assign it before the loop or branch that sets it")
            return self.wrap_static(obj, node)
        return v

    def wrap_static(self, obj, node):
        if isinstance(obj, (bool, int, float, np.number, np.bool_)):
            return self.python_const(obj)
        if is_world(obj):   # MPI.COMM_WORLD named in the body: the communicator numba-mpi uses
            return mpi.world(self)
        return Static(obj)

    # -- loops (also parallel.py's) ----------------------------------------------------------
    def end_targets(self, node, names) -> None:
        """A for loop at `node` is over: its variables `names` are gone (lookup says so)."""
        for n in names:
            self.env.pop(n, None)
            self.ended_targets[n] = self.loc_of(node)[1]

    def loop_context(self, has_break: bool, has_continue: bool,
                     returns: bool = False) -> LoopContext:
        """The flags of a new innermost loop (see LoopContext)."""
        return LoopContext(len(self.loops), has_break, has_continue, returns)

    def range_bounds(self, call) -> list[Value]:
        """lb, ub, step of range(...)-style arguments, as i64."""
        bounds = [self.coerce_index(self.expr(a), a) for a in call.args]
        if len(bounds) == 1:
            bounds = [self.const(0, i64)] + bounds
        if len(bounds) == 2:
            bounds.append(self.const(1, i64))
        return bounds

    def carried(self, body, exclude=None, extra=(), parallel=False) -> list[str]:
        """The variables a loop over `body` carries from one iteration to the next. An
        array the body rebinds before reading it (`un = u.copy()` each iteration) is not
        carried: its value stays inside its iteration, and after the loop the name is
        unusable (the loop that follows, structured_loop, takes these from the stack). An
        array the body only updates in place (`a += b`) is not carried either. A tuple or a
        vjp_fn is carried item by item (structured_loop), except where the body rebinds it
        before reading it and it holds arrays, or the loop is parallel: then, as such an
        array, it stays inside its iteration. So does a number a parallel loop's body
        rebinds before reading it (private to each iteration, as in numba)."""
        rebound = syntax.rebound_names(body)
        names, local = [], []
        for n in ordered_assigned(body):
            v = self.env.get(n)
            if v is None or n == exclude:
                continue
            if isinstance(v, Value):
                if not isinstance(v.type, ArrayType):
                    (local if parallel and syntax.rebound_before_use(body, n)
                     else names).append(n)
                elif n in rebound:
                    (local if syntax.rebound_before_use(body, n) else names).append(n)
            elif (parallel or holds_arrays(v)) and \
                    syntax.rebound_before_use(body, n, unpacking=True):
                local.append(n)
            else:
                names.append(n)
        self.iteration_arrays.append(local)
        fresh = [n for n in names if isinstance(self.env[n], Value)
                 and isinstance(self.env[n].type, ArrayType) and n not in self.buffers
                 and syntax.rebound_afresh(body, n, self.pure_call, self.kernel_call)]
        for n in fresh:
            self.double_buffer(n)
        self.new_buffers.append(fresh)
        return list(extra) + [m for n in names for m in ([n, self.buffers[n]]
                                                         if n in self.buffers else [n])]

    def double_buffer(self, name: str) -> None:
        """A loop rebinds array `name` to a new array each iteration (`p = r + beta * p`)
        and nothing else refers to its arrays: the loop writes each new value into a spare
        array instead and swaps the two (what the reverse sweep can follow), both made
        before the loop, the first a copy of the value before it (never written)."""
        cur = self.env[name]
        first = arrays.materialize(self, cur, None)
        spare = self.builder.op1("mem.alloc", [self.builder.op1(
            "mem.shape", [first], i64, {"axis": k}) for k in range(first.type.ndim)],
            first.type, {"fill": "empty"})
        self.env[name], self.env[f".spare.{name}"] = first, spare
        self.buffers[name] = f".spare.{name}"

    def rebind_buffered(self, name: str, value, node) -> None:
        """`name = value` in a loop that double-buffers `name`: value's elements go into
        the spare array, which becomes `name`."""
        if isinstance(value, arrays.Sliced) or not isinstance(value, ArrayExpr) and not (
                isinstance(value, Value) and isinstance(value.owner, Op)
                and value.owner.name == "mem.alloc"):
            self.unsupported(node, f"rebinding array '{name}' in a loop to an array that "
                                   f"already exists (or a view of one)",
                             f"copy it: {name} = other.copy(), or write into '{name}': "
                             f"{name}[:] = other")
        spare = self.buffers[name]
        cur, new = self.env[name], self.env[spare]
        arrays.fill(self, arrays.whole(self, new), value, node)
        self.env[name], self.env[spare] = new, cur

    def kernel_call(self, func) -> bool:
        """Whether func (a syntax node) is another kernel (or a numba.njit function), which
        the call inlines."""
        obj = self.static_value(func)
        return bool(getattr(obj, "__hpcad_kernel__", False)) or \
            numba_python_function(obj) is not None

    def pure_call(self, func) -> bool:
        """Whether a call of func (a syntax node) cannot keep or return its array
        arguments' memory: NumPy and math functions, builtins, array methods."""
        if isinstance(func, ast.Attribute) and not (isinstance(func.value, ast.Name)
                                                    and func.value.id not in self.env):
            return True      # a method of a local value (views are syntax.rebound_afresh's)
        obj = self.static_value(func)
        module = (getattr(obj, "__module__", None) or "").split(".")[0]
        return module in ("numpy", "math", "builtins") or obj in (len, range, abs, min, max)

    def loop_body(self, stmts, loop: LoopContext):
        self.loops.append(loop)
        if loop.cont:
            self.env[loop.cont] = self.const(False, i1)
        try:
            self.stmts(stmts)
        finally:
            self.loops.pop()

    def structured_loop(self, node, names, leading_args, body_fn, make_op, before_fn=None):
        """Lower a loop whose body reassigns `names`: block args carry them (a tuple or a
        vjp_fn, item by item: branch_parts), the body yields them. If the body changes a
        variable's type (int -> float), redo with the promoted type so that iter_args keep
        one type."""
        local = self.iteration_arrays.pop() if self.iteration_arrays else []
        buffered = self.new_buffers.pop() if self.new_buffers else []
        outer = dict(self.env)
        shapes = [self.carried_parts(node, n, outer[n]) for n in names]
        labels = [display_name(n) for n, (_, leaves, _) in zip(names, shapes, strict=True)
                  for _ in leaves]
        firsts = [v for _, leaves, _ in shapes for v in leaves]
        types = [v.type for v in firsts]

        def bind(values) -> None:
            k = 0
            for n, (_, leaves, rebuild) in zip(names, shapes, strict=True):
                self.env[n] = rebuild(list(values[k:k + len(leaves)]))
                k += len(leaves)

        for _ in range(4):
            blocks, yields = [], []
            lead = leading_args(types)
            carried = list(zip(labels, types, strict=True))
            if before_fn is not None:
                before = Block([Value(t, n) for n, t in carried])
                self.env = dict(outer)
                bind(before.args)
                with self.at(before):
                    before_fn(before.args)
                blocks.append(before)
            block = Block(lead + [Value(t, n) for n, t in carried])
            self.env = dict(outer)
            bind(block.args[len(lead):])
            with self.at(block):
                body_fn(block.args)
            for n, (kind, _, _) in zip(names, shapes, strict=True):
                parts = branch_parts(self.env[n]) if n in self.env else None
                if parts is None or parts[0] != kind:
                    self.unsupported(node, f"variable '{display_name(n)}' becoming undefined "
                                           f"in a loop" if n not in self.env else
                                     f"variable '{display_name(n)}' holding a different kind "
                                     f"of value after an iteration of the loop",
                                     "give it the same kind of value (a number, an array of "
                                     "one type, a tuple of those) in every iteration")
                yields.extend(parts[1])
            new_types = [self.unify([y, Value(t)], n, node)
                         for n, y, t in zip(labels, yields, types, strict=True)]
            if new_types == types:
                break
            types = new_types
        with self.at(block):
            self.builder.op("scf.yield", [self.coerce(y, t)
                                          for y, t in zip(yields, types, strict=True)])
        blocks.append(block)
        self.env = outer
        inits = [self.coerce(v, t) for v, t in zip(firsts, types, strict=True)]
        self.builder.loc = self.loc_of(node)   # the loop's own line, not its last statement's
        op = make_op(inits, blocks)
        for n, r in zip(labels, op.results, strict=True):
            r.name = n
        bind(op.results)
        for n in local:
            self.env[n] = IterationLocal(n, self.loc_of(node), array=isinstance(
                outer[n], Value) and isinstance(outer[n].type, ArrayType))
        for n in buffered:
            self.env.pop(self.buffers.pop(n), None)
        return op

    def carried_parts(self, node, name: str, entry):
        """branch_parts of what a loop carries in `name`; a tuple or vjp_fn holding arrays,
        which would be carried from one iteration to the next, is refused."""
        parts = branch_parts(entry)
        if parts is None or not isinstance(entry, Value) and any(
                isinstance(v.type, ArrayType) for v in parts[1]):
            self.unsupported(node, f"a loop that carries '{display_name(name)}' (a tuple "
                                   f"holding arrays, an ad.vjp's vjp_fn or an MPI request) "
                                   f"from one iteration to the next",
                             f"rebind '{display_name(name)}' at the top of each iteration, "
                             f"before reading it, or keep its arrays in names of their own")
        return parts

    # -- branches: environments merged after an if (also a loop's early exit) -------------
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
        envs = [e for _, e in branches]
        names = merge_names(before, envs)
        merged, conflicts = [], []
        leaves: list[list[Value]] = [[] for _ in envs]
        for n in names:
            parts = [branch_parts(e[n]) for e in envs]
            if any(p is None for p in parts) or len({p[0] for p in parts}) != 1:
                conflicts.append(n)
                continue
            merged.append((n, parts[0][2], len(parts[0][1])))
            for acc, p in zip(leaves, parts, strict=True):
                acc.extend(p[1])
        labels = [n for n, _, count in merged for _ in range(count)]
        types = [self.unify([lv[i] for lv in leaves], n, node) for i, n in enumerate(labels)]
        for (block, _), values in zip(branches, leaves, strict=True):
            with self.at(block):
                self.builder.op("scf.yield", [self.coerce(v, t)
                                             for v, t in zip(values, types, strict=True)])
        op = self.builder.op("scf.if", [cond], types, regions=[b for b, _ in branches])
        self.env = dict(before)
        results = iter(op.results)
        for n, rebuild, count in merged:
            values = [next(results) for _ in range(count)]
            for r in values:
                r.name = display_name(n)
            self.env[n] = rebuild(values)
        for n in conflicts:
            self.env[n] = BranchConflict(n, self.loc_of(node))
        for n in list(self.env):
            if n not in names and any(n not in e for e in envs):
                del self.env[n]

    def unify(self, values, name, node):
        types = {v.type for v in values if isinstance(v, Value)}
        if len(types) == 1:
            return types.pop()
        if all(isinstance(t, ScalarType) for t in types):
            out = types.pop()
            for t in types:
                out = promote(out, t) if out != t else out
            return out
        self.type_error(node, f"variable '{display_name(name)}' holds values of incompatible "
                             f"types on different paths: "
                             f"{' and '.join(sorted(spoken(t) for t in types))}")

    def not_exited(self, node) -> Value:
        """Whether the statements after `node` run: the innermost loop has not left its
        iteration (break, continue) and the kernel has not returned."""
        names = [self.loops[-1].brk, self.loops[-1].cont] if self.loops else []
        if syntax.returns_in([node]):
            names.append(RETURNED)
        flags = [self.env[f] for f in names if f and f in self.env]
        left = flags[0]
        for f in flags[1:]:
            left = self.builder.op1("arith.or", [left, f], i1)
        return self.builder.op1("arith.not", [left], i1)


def merge_names(before, envs) -> list[str]:
    """Names that differ between a branch and the state before, defined on every branch."""
    names = []
    for e in envs:
        for n, v in e.items():
            if n not in names and (before.get(n) is not v) and all(n in x for x in envs):
                names.append(n)
    return names


def branch_parts(entry):
    """What a variable holds at the end of a branch, for merging after the if: (its kind, the
    SSA values it is made of, a function that makes it again from the merged values), or None
    where it cannot be merged. A number or array is one value; a tuple, its items'; a pullback
    (`ad.vjp`'s vjp_fn, Static), the kernel and types its kind, its primals its values. Two
    branches merge where their kinds are equal."""
    if isinstance(entry, Value):
        return ("value",), [entry], lambda vs: vs[0]
    if entry is None:
        return ("none",), [], lambda vs: None
    if isinstance(entry, tuple):
        parts = [branch_parts(e) for e in entry]
        if any(p is None for p in parts):
            return None
        counts = [len(p[1]) for p in parts]

        def rebuild(vs):
            out, k = [], 0
            for p, c in zip(parts, counts, strict=True):
                out.append(p[2](vs[k:k + c]))
                k += c
            return tuple(out)
        return (("tuple",) + tuple(p[0] for p in parts), [v for p in parts for v in p[1]],
                rebuild)
    obj = getattr(entry, "obj", None)
    if isinstance(entry, Static) and intrinsics.is_scalar_type(obj):   # ftype = a.dtype.type
        return ("scalar type", obj), [], lambda vs: entry
    if isinstance(entry, Static) and hasattr(obj, "branch_values"):
        return (("static", obj.branch_key()), list(obj.branch_values()),
                lambda vs: Static(obj.with_branch_values(tuple(vs))))
    return None


def holds_arrays(entry) -> bool:
    """Whether a tuple or vjp_fn holds arrays (or is not made of numbers and arrays)."""
    parts = branch_parts(entry)
    return parts is None or any(isinstance(v.type, ArrayType) for v in parts[1])


def display_name(name: str) -> str:
    """A variable's name as the user wrote it (internal flags start with '.')."""
    return name.lstrip(".")


def ordered_assigned(stmts) -> list[str]:
    """The names the statements assign, in order of their first assignment."""
    seen = []
    for node in syntax.walk_stmts(stmts):
        n = None
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            n = node.id
        if n and n not in seen:
            seen.append(n)
    return seen
