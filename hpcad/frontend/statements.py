"""Statement rules: one function per kind of Python statement a kernel may contain, each
called as rule(ctx, statement) with the LoweringContext (context.py) and collected in
STATEMENTS. Assignments bind names or store into arrays; `if` merges the branches'
variables; `for`/`while` become `scf` loops carrying the variables they reassign, `break`
and `continue` flags guarding the rest of the body; a `prange` loop is parallel.py's."""
from __future__ import annotations

import ast
import types
from typing import TYPE_CHECKING

from ..errors import RAISED
from ..ir.core import Op, Value
from ..ir.types import ArrayType, i1, i64
from . import arrays, closures, expressions, iteration, linalg, nested, parallel, syntax, words
from .intrinsics import is_scalar_type
from .mpi_persistent import Persistent

if TYPE_CHECKING:
    from .context import LoweringContext

RETURNED = ".returned"   # set by a `return` in a kernel that may return early


def stmt_pass(ctx: LoweringContext, s):
    pass


def stmt_expr(ctx: LoweringContext, s):
    if isinstance(s.value, ast.Constant) and isinstance(s.value.value, str):
        return  # docstring
    if not isinstance(s.value, ast.Call) and type(s.value) in expressions.EXPRESSIONS:
        ctx.unsupported(s, "an expression statement without effect",
                        "assign its value or drop it")
    ctx.expr(s.value, allow_none=True)


def stmt_return(ctx: LoweringContext, s):
    """`return` of scalars and arrays (a tuple of them), as numba returns them: an array
    (an argument, a local one, a view of either) itself, with its memory; an array
    expression in a new array, as NumPy computes it."""
    if s.value is None:
        vals = ()
    else:
        v = ctx.expr(s.value)
        vals = tuple(returned(ctx, x, s) for x in (v if isinstance(v, tuple) else (v,)))
    if ctx.ret_arity is not None and ctx.ret_arity != len(vals):
        ctx.unsupported(s, "returning different numbers of values on different paths")
    ctx.ret_arity = len(vals)
    if ctx.early:
        for v in vals:
            if isinstance(v.type, ArrayType):
                ctx.unsupported(s, "returning an array from a kernel that may return before "
                                   "its end", "return numbers there, or assign the array to "
                                   "a variable and return it at the end")
        for k, v in enumerate(vals):
            ctx.returned_types[k].add(v.type)
        ctx.env[RETURNED] = ctx.const(True, i1)
    for k, v in enumerate(vals):
        ctx.env[f".ret{k}"] = v


def returned(ctx: LoweringContext, v, s) -> Value:
    """One returned value: a scalar or an array value as is, a slice as a view of its base
    (with a step too, as numba returns it), any other array expression materialized."""
    if isinstance(v, arrays.Sliced) and not v.viewable:
        ctx.unsupported(s, "returning a slice with np.newaxis (numba returns a view of the "
                        "array)", "copy it into a new array and return that: "
                        "out = np.empty((m, 1)); out[:] = u[:, np.newaxis]")
    if arrays.is_array(v):
        return arrays.bind(ctx, v, s)
    if not isinstance(v, Value):
        what = getattr(v, "obj", v)
        ctx.unsupported(s, f"returning {words.value(what)} from `{ast.unparse(s.value)}`",
                        "return numbers, arrays or a tuple of them")
    return v


def stmt_assign(ctx: LoweringContext, s):
    value = ctx.expr(s.value)
    # a name bound to a transpose or flip holds a copy; a store into a subscript
    # (`B[:, :] = B.T`) reads all of it first where it overlaps the target (arrays.fill)
    if getattr(value, "view_like", False) and any(isinstance(t, ast.Name) for t in s.targets):
        copied_view_is_safe(ctx, s)
    for target in s.targets:
        assign(ctx, target, value)


# array methods that only read the array they are called on
_READING_METHODS = {"sum", "prod", "max", "min", "mean", "argmin", "argmax", "copy", "dot",
                    "reshape", "ravel", "flatten", "astype", "transpose", "cumsum", "any",
                    "all", "view"}


def copied_view_is_safe(ctx: LoweringContext, s) -> None:
    """`At = A.T` binds a copy (NumPy binds a view): refuse unless nothing in the kernel
    writes into the new name, into any array the right side names, or into another name of
    their memory (`V = A`, `V = A[1:, :]`, `for row in A`), so the copy cannot be told from
    a view."""
    names = aliases(ctx, {t.id for t in s.targets if isinstance(t, ast.Name)} | {
        n.id for n in ast.walk(s.value) if isinstance(n, ast.Name) and not global_code(ctx, n)})
    for node in ast.walk(ctx.src.fdef):
        if writes_into(ctx, node, names):
            ctx.unsupported(s, "giving a name to a transposed array that the kernel also "
                               f"writes into (line {ctx.loc_of(node)[1]})",
                            "use the transpose directly in expressions (A.T @ x), or make a "
                            "separate array: At = A.T.copy()")


def global_code(ctx: LoweringContext, name: ast.Name) -> bool:
    """A name of a module or function of the kernel's globals (`np` in `np.flip(u)`): no
    array, so `np.sin(...)` elsewhere writes into nothing of it."""
    if name.id in ctx.env:
        return False
    obj = ctx.global_object(name)
    return isinstance(obj, types.ModuleType) or callable(obj)


# what a name bound to `f(A)` may share A's memory through: views and reshapes
_VIEW_METHODS = {"reshape", "ravel", "view", "transpose", "swapaxes", "squeeze"}
_VIEW_ATTRIBUTES = {"T", "real", "imag", "flat"}
# NumPy functions whose result may be (a view of) their argument's memory
_VIEW_FUNCTIONS = {"asarray", "flip", "fliplr", "flipud", "ascontiguousarray", "asfortranarray",
                   "atleast_1d", "atleast_2d", "atleast_3d", "moveaxis", "expand_dims",
                   "rot90", "diagonal"}


def aliases(ctx: LoweringContext, names: set[str]) -> set[str]:
    """`names` and every name of the kernel that may hold the same memory as one of them:
    bound to one (`V = A`, in a tuple too), to a view of one (a subscript, `.T`, a reshape),
    to a kernel call's result taking one (it may return its argument), or a loop's target
    over one (`for row in A`); to a fixpoint."""
    found = set(names)
    while True:
        more = {t for target, value in _bindings(ctx.src.fdef) if _shares(ctx, value, found)
                for t in _target_names(target)} - found
        if not more:
            return found
        found |= more


def _bindings(fdef):
    """(target, value) syntax pairs of the kernel's assignments (tuples element by element)
    and for loops (target, iterable)."""
    for node in ast.walk(fdef):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                yield from _paired(target, node.value)
        elif isinstance(node, (ast.AnnAssign, ast.NamedExpr)) and node.value is not None:
            yield node.target, node.value
        elif isinstance(node, ast.For):
            yield node.target, node.iter


def _paired(target, value):
    if isinstance(target, ast.Tuple) and isinstance(value, ast.Tuple) and \
            len(target.elts) == len(value.elts):
        for t, v in zip(target.elts, value.elts):
            yield from _paired(t, v)
    else:
        yield target, value


def _target_names(target) -> set[str]:
    return {n.id for n in ast.walk(target) if isinstance(n, ast.Name)}


def _shares(ctx: LoweringContext, value, names: set[str]) -> bool:
    """Whether the value expression may be (a view of) an array named in `names`."""
    while True:
        if isinstance(value, ast.Name):
            return value.id in names
        if isinstance(value, ast.Subscript) or isinstance(value, ast.Attribute) and \
                value.attr in _VIEW_ATTRIBUTES:
            value = value.value
        elif isinstance(value, ast.Tuple):   # a tuple holding the array
            return any(_shares(ctx, e, names) for e in value.elts)
        elif isinstance(value, ast.IfExp):
            return _shares(ctx, value.body, names) or _shares(ctx, value.orelse, names)
        elif isinstance(value, ast.Call):
            return _call_shares(ctx, value, names)
        else:
            return False


def _call_shares(ctx: LoweringContext, call, names: set[str]) -> bool:
    """A view method or NumPy view function of an array in `names`, or any call that is not
    NumPy or math (a kernel may return its argument) taking one."""
    func = call.func
    if isinstance(func, ast.Attribute) and func.attr in _VIEW_METHODS and \
            _shares(ctx, func.value, names):
        return True
    fn = ctx.static_value(func)
    module = getattr(fn, "__module__", None) or ""
    numpy = module.split(".")[0] in ("numpy", "math", "builtins") or fn in (len, range)
    args = call.args + [k.value for k in call.keywords]
    if numpy and getattr(fn, "__name__", "") not in _VIEW_METHODS | _VIEW_FUNCTIONS:
        return False
    return any(_shares(ctx, a, names) for a in args)


def writes_into(ctx: LoweringContext, node, names: set[str]) -> bool:
    """Whether the syntax node may write into an array named in `names`: a store through
    a subscript, an augmented assignment, a call that is not NumPy/math (a kernel, MPI) or
    a method that is not a read-only one, taking the array."""
    def named(e) -> bool:
        while isinstance(e, ast.Subscript):
            e = e.value
        return isinstance(e, ast.Name) and e.id in names
    if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        return any(isinstance(t, ast.Subscript) and named(t) or
                   isinstance(node, ast.AugAssign) and named(t) for t in targets)
    if not isinstance(node, ast.Call):
        return False
    if isinstance(node.func, ast.Attribute) and named(node.func.value) and \
            node.func.attr not in _READING_METHODS:
        return True
    fn = ctx.static_value(node.func)
    module = getattr(fn, "__module__", None) or ""
    if module.split(".")[0] in ("numpy", "math", "builtins") or fn in (len, range):
        return False
    return any(named(a) for a in node.args + [k.value for k in node.keywords])


def stmt_annassign(ctx: LoweringContext, s):
    if s.value is None:
        return
    assign(ctx, s.target, ctx.expr(s.value))


def stmt_augassign(ctx: LoweringContext, s):
    with arrays.evaluated_once(ctx, s.target) as once:
        if once is not s.target:
            stmt_augassign(ctx, ast.copy_location(
                ast.AugAssign(target=once, op=s.op, value=s.value), s))
            return
    spread = arrays.spread_tuple_index(ctx, s.target)    # a[idx] += v, idx a tuple
    if spread is not s.target:
        s = ast.copy_location(ast.AugAssign(target=spread, op=s.op, value=s.value), s)
    if isinstance(s.target, ast.Name):
        cur = ctx.lookup(s.target)
        if arrays.is_array(cur):     # in place, as NumPy's a += b
            target = arrays.as_expr(ctx, cur, s)
            if not isinstance(target, arrays.Sliced):
                target = arrays.whole(ctx, cur)
            if id(s) in ctx.array_reductions:   # a parallel loop's array reduction
                arrays.accumulate(ctx, target, ctx.expr(s.value), s,
                                  subtract=isinstance(s.op, ast.Sub))
                return
            arrays.fill(ctx, target, expressions.binop(ctx, s.op, cur, ctx.expr(s.value), s),
                        s)
            return
        assign(ctx, s.target, expressions.binop(ctx, s.op, cur, ctx.expr(s.value), s))
    elif isinstance(s.target, ast.Subscript) and mask_of(ctx, s.target) is not None:
        arrays.store_masked(ctx, array_of(ctx, s.target), mask_of(ctx, s.target),
                            ctx.expr(s.value), s,
                            lambda c, cur, v: expressions.binop(c, s.op, cur, v, s))
    elif isinstance(s.target, ast.Subscript) and is_slicing(ctx, s.target):
        arr = array_of(ctx, s.target)
        target = arrays.subscript(ctx, arr, s.target, allow_newaxis=False)
        arrays.fill(ctx, target, expressions.binop(ctx, s.op, target, ctx.expr(s.value), s), s)
    elif isinstance(s.target, ast.Subscript):
        arr, idx = expressions.subscript_parts(ctx, s.target)
        cur = ctx.builder.op1("mem.load", [arr] + idx, arr.type.dtype, name_hint=None)
        new = expressions.binop(ctx, s.op, cur, ctx.expr(s.value), s)
        store(ctx, arr, idx, new, s)
    else:
        ctx.unsupported(s, "this augmented-assignment target")


def is_slicing(ctx: LoweringContext, node) -> bool:
    """Whether a subscript target selects more than one element."""
    base = ctx.expr(node.value)
    return expressions.is_view(ctx, node, base)


def mask_of(ctx: LoweringContext, node):
    """The boolean array of a[mask] (NumPy boolean indexing), else None."""
    if isinstance(node.slice, (ast.Tuple, ast.Slice)):
        return None
    mask = ctx.expr(node.slice)
    if arrays.is_array(mask) and arrays.as_expr(ctx, mask, node).dtype.is_bool:
        return mask
    return None


def array_of(ctx: LoweringContext, node) -> Value:
    arr = ctx.expr(node.value)
    if not isinstance(arr, Value) or not isinstance(arr.type, ArrayType):
        ctx.unsupported(node, "assigning into something that is not an array")
    return arr


def vector_items(ctx: LoweringContext, value, count: int, node) -> tuple:
    """The elements of a 1-D array (expression) unpacked into `count` names, its length
    checked when the kernel runs (NumPy raises ValueError for another)."""
    e = arrays.as_expr(ctx, value, node)
    if e.ndim != 1:
        ctx.unsupported(node, f"unpacking a {e.ndim}-D array into names",
                        "unpack a vector (a row a[i]), or index the array")
    length = e.extents(ctx)[0]
    same = ctx.builder.op1("arith.cmp", [length, ctx.const(count, i64)], i1, {"pred": "eq"})
    ctx.runtime_check(same, f"unpacking a vector into {count} names: its length is not "
                            f"{count}", node)
    return tuple(e.element(ctx, [ctx.const(k, i64)]) for k in range(count))


def assign(ctx: LoweringContext, target, value) -> None:
    with arrays.evaluated_once(ctx, target) as once:
        bind_target(ctx, once, value)


def bind_target(ctx: LoweringContext, target, value) -> None:
    target = arrays.spread_tuple_index(ctx, target)     # a[idx] = v, idx a tuple
    if isinstance(target, ast.Name) and target.id in ctx.buffers:
        ctx.rebind_buffered(target.id, value, target)
    elif isinstance(target, ast.Name):
        transposed = linalg.memory_transposed(value)
        value = arrays.bind(ctx, value, target)
        if transposed:
            ctx.transposed_copies.add(value)
        if isinstance(value, Value) and value.name is None and isinstance(value.owner, Op):
            value.name = target.id
        if isinstance(getattr(value, "obj", None), closures.LocalFunction):
            closures.check_binding(ctx, target.id, target)
        pullback = isinstance(getattr(value, "obj", None),   # ad.vjp's, a local function
                              (nested.Pullback, closures.LocalFunction))
        scalar_type = is_scalar_type(getattr(value, "obj", None))
        if not isinstance(value, (Value, tuple, Persistent)) and not (pullback or scalar_type):
            ctx.unsupported(target, f"assigning {words.value(getattr(value, 'obj', value))} to a "
                                    f"variable", "use the value directly where it is needed")
        ctx.env[target.id] = value
    elif isinstance(target, ast.Tuple):
        for starred in (t for t in target.elts if isinstance(t, ast.Starred)):
            ctx.unsupported(starred, *words.target(starred))
        if arrays.is_array(value):       # dx, dy = p[i] - p[i - 1]: a vector's elements
            value = vector_items(ctx, value, len(target.elts), target)
        if not isinstance(value, tuple) or len(value) != len(target.elts):
            ctx.unsupported(target, "unpacking a value that is not a tuple of the same "
                            "length")
        for t, v in zip(target.elts, value, strict=True):
            assign(ctx, t, v)
    elif isinstance(target, ast.Subscript) and mask_of(ctx, target) is not None:
        # (before slicing: a mask of a 2-D array is one index of fewer than its axes)
        arrays.store_masked(ctx, array_of(ctx, target), mask_of(ctx, target), value, target)
    elif isinstance(target, ast.Subscript) and is_slicing(ctx, target):
        arrays.store_into(ctx, array_of(ctx, target), target, value, target)
    elif isinstance(target, ast.Subscript):
        arr, idx = expressions.subscript_parts(ctx, target)
        store(ctx, arr, idx, value, target)
    else:
        ctx.unsupported(target, *words.target(target))


def store(ctx: LoweringContext, arr, idx, value, node):
    if isinstance(value, arrays.ArrayExpr) or isinstance(getattr(value, "type", None), ArrayType):
        ctx.unsupported(node, "storing an array into one array element",
                        "select several elements with a slice, e.g. a[i, :] = row")
    value = ctx.scalar(value, node)   # (what else it is, in words)
    ctx.builder.op("mem.store", [ctx.coerce(value, arr.type.dtype)] + [arr] + idx)


def stmt_assert(ctx: LoweringContext, s):
    """`assert cond[, "message"]`: checked when the kernel runs (also in the primal part of
    its derivatives), a KernelAssertionError at the statement's file:line if it fails."""
    what = f"`assert {ast.unparse(s.test)}` failed"
    if s.msg is not None:
        if not (isinstance(s.msg, ast.Constant) and isinstance(s.msg.value, str)):
            ctx.unsupported(s, "an assert message that is not a string literal",
                            'write the message as a constant string: assert x > 0, "x > 0"')
        what += f": {s.msg.value}"
    ctx.runtime_check(ctx.condition(s.test), what, s)


def stmt_raise(ctx: LoweringContext, s):
    """`raise ValueError("message")` (a built-in exception class of errors.RAISED, called
    with a string literal or nothing, or named alone): stops the kernel when it runs (also in
    its derivatives) with hpcad's subclass of that class (KernelValueError), naming the
    statement's file:line, as numba raises the class."""
    exc = s.exc
    call = exc if isinstance(exc, ast.Call) else None
    cls_node = call.func if call is not None else exc
    cls = ctx.global_object(cls_node) if isinstance(cls_node, ast.Name) \
        and cls_node.id not in ctx.env else None
    message = None
    if call is not None and not call.keywords and len(call.args) == 1 \
            and isinstance(call.args[0], ast.Constant) and isinstance(call.args[0].value, str):
        message = call.args[0].value
    plain = call is None or (not call.args and not call.keywords) or message is not None
    if s.cause is not None or not isinstance(cls, type) or cls not in RAISED or not plain:
        ctx.unsupported(s, words.RAISE[0], words.RAISE[1])
    saved = ctx.builder.loc
    ctx.builder.loc = ctx.loc_of(s)
    ctx.builder.op("rt.assert", [ctx.const(False, i1)], [], {
        "what": message if message is not None else f"raise {cls.__name__}",
        "raises": cls.__name__})
    ctx.builder.loc = saved


def stmt_if(ctx: LoweringContext, s):
    ctx.if_stmts(ctx.condition(s.test), s.body, s.orelse, s)


def stmt_for(ctx: LoweringContext, s):
    """`for` over range(), an array, enumerate() or zip(): an `scf.for` over indices, the
    target bound at the top of the body (iteration.py); with `break` or `return`, a while
    loop."""
    if s.orelse:
        ctx.unsupported(s, "`for ... else`", "set a flag before the loop, change it where "
                                              "the loop breaks, and test it after the loop")
    marker = parallel.marker_call(ctx, s.iter)
    if marker is not None and marker.construct == "parallel_for":
        parallel.parallel_for(ctx, s, marker)
        return
    bounds, bind = loop_space(ctx, s)
    has_break = syntax.exits_loop(s.body, ast.Break)
    returns = syntax.returns_in(s.body)
    loop = ctx.loop_context(has_break, syntax.exits_loop(s.body, ast.Continue), returns)
    if has_break or returns:
        for_with_break(ctx, s, bounds, loop, bind)
        return
    targets = target_names(s.target)
    kept, fresh = kept_target(ctx, s, bounds)
    names = [n for n in ctx.carried(s.body) if n not in targets] + kept

    def body(block_args):
        bind(block_args[0])
        ctx.loop_body(s.body, loop)

    ctx.structured_loop(s, names, lambda types: [Value(i64, index_name(s.target))],
                        body, lambda inits, blocks: ctx.builder.op(
                            "scf.for", bounds + inits, [v.type for v in inits],
                            regions=blocks))
    end_loop(ctx, s, targets, kept, fresh, bounds)


def kept_target(ctx: LoweringContext, s, bounds) -> tuple[list[str], bool]:
    """([i], fresh) for `for i in range(...)` whose variable the kernel reads after the loop
    (a read later in the source): i is then carried by the loop, bound at the top of each
    iteration, so after it i holds the value it had at the end of the last iteration (or at
    its `break`), as in Python; fresh where i had no value before the loop (then bound to
    the loop's start, and a loop that runs no iteration stops the kernel: Python raises
    UnboundLocalError there, numba reads 0). Else ([], False)."""
    if not (isinstance(s.target, ast.Name) and isinstance(s.iter, ast.Call)
            and ctx.static_value(s.iter.func) is range):
        return [], False
    name = s.target.id
    if not read_after(ctx.src.fdef, s, name):
        return [], False
    before = ctx.env.get(name)
    if before is None:
        ctx.env[name] = bounds[0]
        return [name], True
    if isinstance(before, Value) and before.type == i64:
        return [name], False
    return [], False


def read_after(fdef, loop, name: str) -> bool:
    """Whether code after `loop` may read the value `name` has when the loop ends: the first
    use of `name` after it (the rest of the loop's block, then of each block around it) is
    a read, not an assignment made on every path (`i = n - 1 - s` in a later loop's body
    reads no earlier `i`); a later `for` loop whose target binds `name` reads it in its
    body only from its own binding."""
    for rest in _blocks_after(fdef.body, loop) or []:
        use = _first_use(rest, name)
        if use is not None:
            return use == "read"
    return False


def _blocks_after(stmts: list, target) -> list[list] | None:
    """The statements after `target` in its block, then after the statement holding that
    block in its own, and so on out to the function's body; None if target is not here."""
    for k, st in enumerate(stmts):
        if st is target:
            return [stmts[k + 1:]]
        blocks = [getattr(st, f) for f in ("body", "orelse", "finalbody")
                  if isinstance(getattr(st, f, None), list)]
        blocks += [h.body for h in getattr(st, "handlers", [])]
        for block in blocks:
            found = _blocks_after(block, target)
            if found is not None:
                return found + [stmts[k + 1:]]
    return None


def _reads(node, name: str) -> bool:
    return node is not None and any(isinstance(n, ast.Name) and n.id == name
                                    and isinstance(n.ctx, ast.Load) for n in ast.walk(node))


def _binds(node, name: str) -> bool:
    return any(isinstance(n, ast.Name) and n.id == name and isinstance(n.ctx, ast.Store)
               for n in ast.walk(node))


def _first_use(stmts: list, name: str) -> str | None:
    """"read" where the statements may read `name` before assigning it, "write" where they
    assign it on every path first, else None (they do neither, or assign it on some paths
    only)."""
    for st in stmts:
        use = _use_in(st, name)
        if use is not None:
            return use
    return None


def _use_in(st, name: str) -> str | None:
    if isinstance(st, (ast.Assign, ast.AnnAssign)):
        targets = st.targets if isinstance(st, ast.Assign) else [st.target]
        if _reads(st.value, name) or any(_reads(t, name) for t in targets):
            return "read"
        return "write" if any(_binds(t, name) for t in targets) else None
    if isinstance(st, ast.AugAssign):
        return "read" if _reads(st.value, name) or _binds(st.target, name) \
            or _reads(st.target, name) else None
    if isinstance(st, ast.For):
        if _reads(st.iter, name):
            return "read"
        if _binds(st.target, name):   # the body reads the loop's own binding
            return "read" if _first_use(st.orelse, name) == "read" else None
        return "read" if "read" in (_first_use(st.body, name), _first_use(st.orelse, name)) \
            else None
    if isinstance(st, ast.While):
        return "read" if _reads(st.test, name) or "read" in (
            _first_use(st.body, name), _first_use(st.orelse, name)) else None
    if isinstance(st, ast.If):
        if _reads(st.test, name):
            return "read"
        uses = (_first_use(st.body, name), _first_use(st.orelse, name))
        if "read" in uses:
            return "read"
        return "write" if uses == ("write", "write") else None
    return "read" if _reads(st, name) else None


def runs(ctx: LoweringContext, bounds) -> Value:
    """Whether a loop over range(lb, ub, step) runs at least once (its current lb)."""
    lb, ub, step = bounds
    up = ctx.builder.op1("arith.cmp", [lb, ub], i1, {"pred": "lt"})
    down = ctx.builder.op1("arith.cmp", [lb, ub], i1, {"pred": "gt"})
    positive = ctx.builder.op1("arith.cmp", [step, ctx.const(0, i64)], i1, {"pred": "gt"})
    return ctx.builder.op1("arith.select", [positive, up, down], i1)


def end_loop(ctx: LoweringContext, s, targets, kept, fresh, bounds) -> None:
    """After a for loop: its variables end, but the one kept_target keeps; a fresh one is
    checked to have been given a value (the loop ran)."""
    if fresh:
        ctx.runtime_check(runs(ctx, bounds),
                          f"the loop variable '{kept[0]}' is read after its for loop, which "
                          f"ran no iteration, and had no value before it (Python raises "
                          f"UnboundLocalError); give it a value before the loop", s)
    ctx.end_targets(s, [t for t in targets if t not in kept])


def loop_space(ctx: LoweringContext, s):
    """The loop's (lb, ub, step) and the function binding its target from the induction
    variable: range() directly, any other iterable by position k in [0, its length)."""
    it = s.iter
    if isinstance(it, ast.Call) and ctx.static_value(it.func) is range \
            and isinstance(s.target, ast.Name):
        src = iteration.source(ctx, it)
        return [src.lb, src.ub, src.step], lambda iv: assign(ctx, s.target, iv)
    src = iteration.source(ctx, it)
    bounds = [ctx.const(0, i64), src.length(ctx), ctx.const(1, i64)]
    return bounds, lambda k: bind_item(ctx, s.target, src.item(ctx, k))


def bind_item(ctx: LoweringContext, target, item) -> None:
    """`target = item` for a loop's item, the shapes of tuple targets checked first."""
    check_unpacking(ctx, target, item)
    assign(ctx, target, item)


def check_unpacking(ctx: LoweringContext, target, item) -> None:
    if not isinstance(target, ast.Tuple):
        return
    if not (isinstance(item, tuple) and len(item) == len(target.elts)):
        what = f"a tuple of {len(item)} values" if isinstance(item, tuple) else "one value"
        ctx.unsupported(target, f"unpacking {what} into {len(target.elts)} loop variables",
                        "an item of enumerate() is (index, item), of zip(a, b) (item of a, "
                        "item of b); an element or a row is one value")
    for t, v in zip(target.elts, item, strict=True):
        check_unpacking(ctx, t, v)


def target_names(target) -> list[str]:
    """The names a loop target binds (`i`, `i, (x, y)`)."""
    return [n.id for n in ast.walk(target) if isinstance(n, ast.Name)]


def index_name(target) -> str:
    """The induction variable's name: the target's for range(), else one naming it."""
    if isinstance(target, ast.Name):
        return target.id
    return "k"


def stmt_while(ctx: LoweringContext, s):
    if s.orelse:
        ctx.unsupported(s, "`while ... else`")
    loop = ctx.loop_context(syntax.exits_loop(s.body, ast.Break),
                            syntax.exits_loop(s.body, ast.Continue), syntax.returns_in(s.body))
    extra = ctx.return_slots() if loop.ret else []
    if loop.brk:
        ctx.env[loop.brk] = ctx.const(False, i1)
        extra = [loop.brk] + extra
    names = ctx.carried(s.body, extra=extra)
    while_loop(ctx, s, names, lambda: ctx.condition(s.test), loop, s.body)
    if loop.brk:
        ctx.env.pop(loop.brk, None)


def while_loop(ctx: LoweringContext, node, names, test_fn, loop, body_stmts, prologue=None,
               epilogue=None):
    def before(args):
        cond = guarded_test(ctx, test_fn, loop)
        ctx.builder.op("scf.condition", [cond] + list(args))

    def body(args):
        if prologue:
            prologue()
        ctx.loop_body(body_stmts, loop)
        if epilogue:
            epilogue()

    ctx.structured_loop(node, names, lambda types: [], body,
                        lambda inits, blocks: ctx.builder.op(
                            "scf.while", inits, [v.type for v in inits], regions=blocks),
                        before_fn=before)


def guarded_test(ctx: LoweringContext, test_fn, loop) -> Value:
    """The loop test, evaluated only while the loop has not executed `break` (or
    `return`)."""
    flags = [ctx.env[f] for f in (loop.brk, loop.ret) if f]
    if not flags:
        return test_fn()
    left = flags[0] if len(flags) == 1 else ctx.builder.op1("arith.or", flags, i1)
    not_broken = ctx.builder.op1("arith.not", [left], i1)
    return expressions.short_circuit(ctx, not_broken, test_fn, is_and=True)


def for_with_break(ctx: LoweringContext, s, bounds, loop, bind):
    """`for` with `break` or `return`: a while loop over an explicit induction variable."""
    lb, ub, step = bounds
    iv_name = f".iv{len(ctx.loops)}"
    ctx.env[iv_name] = lb
    extra = [iv_name]
    if loop.brk:
        ctx.env[loop.brk] = ctx.const(False, i1)
        extra.append(loop.brk)
    if loop.ret:
        extra.extend(ctx.return_slots())
    targets = target_names(s.target)
    kept, fresh = kept_target(ctx, s, bounds)
    names = [n for n in ctx.carried(s.body, extra=extra) if n not in targets] + kept

    def in_range():
        iv = ctx.env[iv_name]
        up = ctx.builder.op1("arith.cmp", [iv, ub], i1, {"pred": "lt"})
        down = ctx.builder.op1("arith.cmp", [iv, ub], i1, {"pred": "gt"})
        zero = ctx.const(0, i64)
        positive = ctx.builder.op1("arith.cmp", [step, zero], i1, {"pred": "gt"})
        return ctx.builder.op1("arith.select", [positive, up, down], i1)

    def advance():
        ctx.env[iv_name] = ctx.builder.op1("arith.add", [ctx.env[iv_name], step], i64)

    while_loop(ctx, s, names, in_range, loop, s.body, lambda: bind(ctx.env[iv_name]), advance)
    for n in (iv_name, loop.brk):
        if n:
            ctx.env.pop(n, None)
    end_loop(ctx, s, targets, kept, fresh, bounds)


def stmt_break(ctx: LoweringContext, s):
    loop = ctx.loops[-1] if ctx.loops else None
    if loop is None or loop.brk is None:
        ctx.unsupported(s, "`break` outside a loop")
    ctx.env[loop.brk] = ctx.const(True, i1)


def stmt_continue(ctx: LoweringContext, s):
    loop = ctx.loops[-1] if ctx.loops else None
    if loop is None or loop.cont is None:
        ctx.unsupported(s, "`continue` outside a loop")
    ctx.env[loop.cont] = ctx.const(True, i1)


# statement kind -> its rule (LoweringContext.stmt)
STATEMENTS = {
    ast.Pass: stmt_pass,
    ast.Expr: stmt_expr,
    ast.Return: stmt_return,
    ast.Assign: stmt_assign,
    ast.AnnAssign: stmt_annassign,
    ast.AugAssign: stmt_augassign,
    ast.Assert: stmt_assert,
    ast.Raise: stmt_raise,
    ast.If: stmt_if,
    ast.For: stmt_for,
    ast.While: stmt_while,
    ast.Break: stmt_break,
    ast.Continue: stmt_continue,
    ast.FunctionDef: closures.stmt_def,
}
