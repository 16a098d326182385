"""Syntactic facts about kernel source the lowering needs before it emits a region: which
names a statement list assigns, whether it breaks or continues the enclosing loop, and
whether every `return` sits in tail position (else the kernel may return early:
context.LoweringContext.start_early_returns)."""
from __future__ import annotations

import ast
from collections import deque


def assigned_names(stmts) -> set[str]:
    """Names bound anywhere in the statements (nested blocks included, nested defs excluded)."""
    names: set[str] = set()
    for node in walk_stmts(stmts):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, (ast.For,)) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return names


def rebound_names(stmts) -> set[str]:
    """Names the statements bind other than as the target of an augmented assignment (which
    updates an array in place, as NumPy's `a += b`, rather than binding a new value)."""
    in_place = {id(node.target) for node in walk_stmts(stmts) if isinstance(node, ast.AugAssign)}
    return {node.id for node in walk_stmts(stmts) if isinstance(node, ast.Name)
            and isinstance(node.ctx, ast.Store) and id(node) not in in_place}


# calls that return their array argument itself or a view of it
_VIEW_METHODS = {"reshape", "ravel", "view", "transpose", "T", "swapaxes", "squeeze"}


def rebound_afresh(stmts, name: str, pure_call, kernel_call=None) -> bool:
    """Whether a loop body over `stmts` binds array `name` only by plain `name = expr`
    statements at its top level and never lets another name, a loop target or a call other
    than pure_call(func node) refer to the array `name` holds (no `q = name`, `q = name[1:]`,
    `q = name.T`, `for row in name`, `q = f(name)` for a kernel f): so the value it had before
    a binding is never seen again once the binding is done, and its memory may be reused.
    A call of a kernel (kernel_call(func node)) whose result no name, loop or other call can
    keep (`matvec(A, name, out)`, `s = rs / dot(name, q)`) lets nothing refer to its
    arguments once it returns, so it may take `name`."""
    for s in stmts:
        binds = [n for n in ast.walk(s) if isinstance(n, ast.Name) and n.id == name
                 and isinstance(n.ctx, ast.Store)]
        if binds and not (isinstance(s, ast.Assign) and len(s.targets) == 1
                          and isinstance(s.targets[0], ast.Name)
                          and not _may_be_existing(s.value, pure_call)):
            return False
    for node in walk_stmts(stmts):
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None and \
                _refers_to(node.value, name):
            return False
    for node in ast.walk(ast.Module(list(stmts), [])):
        if isinstance(node, ast.FunctionDef) and any(
                isinstance(r, ast.Return) and _refers_to(r.value, name) for r in node.body):
            return False
        if isinstance(node, (ast.For, ast.comprehension)) and _refers_to(node.iter, name):
            return False
    kept = _kept_calls(stmts, pure_call)
    for node in walk_stmts(stmts):
        if isinstance(node, ast.Call) and not pure_call(node.func) and any(
                _refers_to(a, name) for a in node.args + [k.value for k in node.keywords]) \
                and (id(node) in kept or kernel_call is None or not kernel_call(node.func)):
            return False
    return True


def _kept_calls(stmts, pure_call) -> set[int]:
    """The ids of the calls in `stmts` whose result, or a view of it, may be bound to a name
    or a loop target, or passed to a call other than pure_call(func node): the positions
    _refers_to follows, under an assignment's value, a loop's iterable or such an argument."""
    kept: set[int] = set()

    def mark(expr) -> None:
        if isinstance(expr, ast.Call):
            kept.add(id(expr))
            if isinstance(expr.func, ast.Attribute):
                mark(expr.func.value)
            for a in expr.args + [k.value for k in expr.keywords]:
                mark(a)
        elif isinstance(expr, (ast.Subscript, ast.Attribute)):
            mark(expr.value)
        elif isinstance(expr, (ast.Tuple, ast.List)):
            for e in expr.elts:
                mark(e)
        elif isinstance(expr, ast.IfExp):
            mark(expr.body)
            mark(expr.orelse)
        elif isinstance(expr, ast.NamedExpr):
            mark(expr.value)

    for node in walk_stmts(stmts):
        if isinstance(node, (ast.Assign, ast.AnnAssign, ast.NamedExpr)) \
                and node.value is not None:
            mark(node.value)
        elif isinstance(node, (ast.For, ast.comprehension)):
            mark(node.iter)
        elif isinstance(node, ast.Call) and not pure_call(node.func):
            for a in node.args + [k.value for k in node.keywords]:
                mark(a)
    return kept


def _may_be_existing(expr, pure_call) -> bool:
    """Whether the expression may evaluate to an array that exists already (a name, a view,
    what a kernel call returns) rather than a new one."""
    if isinstance(expr, (ast.Name, ast.Subscript)):
        return True
    if isinstance(expr, ast.Attribute):
        return expr.attr in _VIEW_METHODS
    if isinstance(expr, ast.Call):
        if isinstance(expr.func, ast.Attribute) and expr.func.attr in _VIEW_METHODS:
            return True
        return not pure_call(expr.func)
    if isinstance(expr, ast.IfExp):
        return _may_be_existing(expr.body, pure_call) or \
            _may_be_existing(expr.orelse, pure_call)
    return False


def _refers_to(expr, name: str) -> bool:
    """Whether the expression's value may be the array `name` or a view of it."""
    if isinstance(expr, ast.Name):
        return expr.id == name
    if isinstance(expr, ast.Subscript):
        return _refers_to(expr.value, name)
    if isinstance(expr, ast.Attribute):
        return expr.attr in _VIEW_METHODS and _refers_to(expr.value, name)
    if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute):
        return expr.func.attr in _VIEW_METHODS and _refers_to(expr.func.value, name)
    if isinstance(expr, ast.Call):
        return any(_refers_to(a, name) for a in expr.args) and \
            getattr(expr.func, "attr", getattr(expr.func, "id", "")) in \
            _VIEW_METHODS | {"asarray", "ascontiguousarray", "atleast_1d", "atleast_2d"}
    if isinstance(expr, (ast.Tuple, ast.List)):
        return any(_refers_to(e, name) for e in expr.elts)
    if isinstance(expr, ast.IfExp):
        return _refers_to(expr.body, name) or _refers_to(expr.orelse, name)
    if isinstance(expr, ast.Lambda):   # a local function may return the array or a view
        return _refers_to(expr.body, name)
    return False


def rebound_before_use(stmts, name: str, unpacking: bool = False) -> bool:
    """Whether the first statement mentioning `name` is a plain `name = expr` at this level
    (with unpacking, also `a, name = expr`) whose expr does not read it: the value the name
    had before the statements is dead."""
    for s in stmts:
        mentions = [n for n in ast.walk(s) if isinstance(n, ast.Name) and n.id == name]
        if not mentions:
            continue
        if isinstance(s, ast.Assign) and len(s.targets) == 1 and (
                isinstance(s.targets[0], ast.Name) and s.targets[0].id == name
                or unpacking and isinstance(s.targets[0], ast.Tuple)):
            return not any(isinstance(n, ast.Name) and n.id == name for n in ast.walk(s.value))
        return False
    return False


def walk_stmts(stmts):
    """Every node of the statements, each statement's in ast.walk's order; a function
    defined in them (closures.py) gives its defaults and the expression it returns, not its
    `return`, which is the local function's, not the kernel's."""
    for s in stmts:
        todo = deque([s])
        while todo:
            node = todo.popleft()
            if isinstance(node, ast.FunctionDef):
                todo.extend(node.args.defaults)
                todo.extend(r.value for r in node.body if isinstance(r, ast.Return) and r.value)
                continue
            yield node
            todo.extend(ast.iter_child_nodes(node))


def exits_loop(stmts, kind) -> bool:
    """Whether the statements contain a `break` (kind=ast.Break) or `continue` (ast.Continue)
    that belongs to the enclosing loop (not to a loop nested inside them)."""
    for s in stmts:
        if isinstance(s, kind):
            return True
        if isinstance(s, ast.If) and (exits_loop(s.body, kind) or exits_loop(s.orelse, kind)):
            return True
    return False


def may_exit(stmt) -> bool:
    return exits_loop([stmt], ast.Break) or exits_loop([stmt], ast.Continue)


def returns_in(stmts) -> bool:
    """Whether a `return` sits anywhere in the statements (nested blocks and loops too)."""
    return any(isinstance(n, ast.Return) for n in walk_stmts(stmts))


def always_returns(stmts) -> bool:
    """Whether every path through the statements ends at a `return`: the last statement is
    one, an `if` both of whose branches always return, or a `while True` loop without
    `break` (it leaves only by a return)."""
    if not stmts:
        return False
    last = stmts[-1]
    if isinstance(last, ast.Return):
        return True
    if isinstance(last, ast.While) and isinstance(last.test, ast.Constant) and \
            last.test.value is True and not exits_loop(last.body, ast.Break):
        return True
    return isinstance(last, ast.If) and always_returns(last.body) and \
        always_returns(last.orelse)


def return_arity(node: ast.Return) -> int:
    """How many values a `return` gives, as written: none, a tuple's items, else one."""
    if node.value is None:
        return 0
    return len(node.value.elts) if isinstance(node.value, ast.Tuple) else 1


def misplaced_return(stmts, tail: bool = True):
    """The first `return` that is not in tail position, or None."""
    for k, s in enumerate(stmts):
        last = tail and k == len(stmts) - 1
        if isinstance(s, ast.Return) and not last:
            return s
        if isinstance(s, ast.If):
            bad = misplaced_return(s.body, last) or misplaced_return(s.orelse, last)
            if bad:
                return bad
        elif isinstance(s, (ast.For, ast.While)):
            for node in walk_stmts(s.body + s.orelse):
                if isinstance(node, ast.Return):
                    return node
    return None


def has_side_effect_free_shape(expr) -> bool:
    """True if evaluating the expression cannot fail or touch memory (no calls, no indexing),
    so `and`/`or` may evaluate both sides eagerly."""
    return not any(isinstance(n, (ast.Call, ast.Subscript)) for n in ast.walk(expr))
