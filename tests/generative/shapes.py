"""Blocks of the grammar (grammar.py) in the shapes numba codes have besides index loops:
NumPy array syntax (whole-array expressions, slice arithmetic, in-place updates of slices and
of named views, named slices with a step (views: negative steps, bounds past either end,
empty ones, views of views, 2-D), reductions, np.where, helper kernels returning arrays), a
2-D argument `A`
of shape (n, m) (row and column loops in both orders, `A[i, :]` slices, `A @ x`, `np.dot`,
transposes), integer index arrays (`idx`: gathers, serial scatter-adds, and the scatter in a
prange that hpcad must refuse as a race; `edges`: an unstructured mesh's edge loop),
non-smooth math (abs, min/max, clip), the integer argument nt as a trip count and a slice
bound, 3-D local arrays (axis reductions, 3-D slices, flat views written through, 2-D views
passed to kernels), NumPy's construction functions (cumsum, concatenate, outer, copy, full,
linspace, arange, broadcasting) and indices the kernel computes (%, //, negative, an int
array from argmax). Each block is valid by construction: indices in bounds, math finite,
and the points where a non-smooth function has a kink are odd constants (0.0617, 0.1234,
...) that the random inputs and the grammar's numbers (c, 0.5, exact zeros of u) never
reach exactly, so finite differences are meaningful (checks.smooth_fd skips a kink crossed
within its step).

A block is `block(ctx) -> lines of main`; ctx is grammar.Ctx (its `expr`, `bounded`, the
local arrays of length n in `ctx.locals`, the extra arguments it needs in `ctx.extras`)."""
from __future__ import annotations

from hypothesis import strategies as st


def indent(lines: list[str], by: int = 1) -> list[str]:
    return ["    " * by + line for line in lines]


# --- whole-array expressions ---------------------------------------------------------------

SMOOTH = ["np.sin({a})", "np.tanh({a})", "np.exp(0.3 * np.tanh({a}))", "np.sqrt(1.0 + {a} * {a})",
          "{a} / (1.0 + {a} * {a})", "np.cos({a})", "{a} ** 2", "np.square({a})",
          "np.log(1.0 + {a} * {a})"]
# under "math_funcs" (grammar.MATH_SCALAR holds the scalar ones)
MATH_ARRAY = ["np.log1p({a} * {a})", "np.expm1(0.5 * {a})", "np.arctan2({a}, 1.5)",
              "np.hypot({a}, 0.7)", "np.tanh({a}) ** 3", "np.power(1.0 + {a} * {a}, 0.75)"]
KINKED = ["np.abs({a} - 0.0617)", "np.maximum({a}, 0.1234)", "np.minimum({a}, -0.2345)",
          "np.clip({a}, -0.4321, 0.3123)", "np.where({a} > 0.3123, {a}, 0.5 * {a})"]


def aexpr(ctx, leaves: list[str], depth: int = 2, top: bool = True) -> str:
    """A finite array expression of `leaves` (arrays of one shape) and scalars; at the top
    an array, never a bare scalar."""
    kind = ctx.pick(["leaf", "unary", "binary"] if depth > 0 else ["leaf"])
    if kind == "leaf":
        return ctx.pick(leaves if top else leaves * 3 + ["c", "0.5"])
    if kind == "unary":
        forms = SMOOTH + (KINKED if ctx.on("nonsmooth") else []) + \
            (MATH_ARRAY if ctx.on("math_funcs") else [])
        form = ctx.pick(forms)
        if form in KINKED:
            ctx.use("nonsmooth")
        if form in MATH_ARRAY:
            ctx.use("math_funcs")
        return form.format(a=aexpr(ctx, leaves, depth - 1, top))
    op = ctx.pick(["+", "-", "*"])
    return f"({aexpr(ctx, leaves, depth - 1, top)} {op} {aexpr(ctx, leaves, depth - 1, False)})"


def vectors(ctx) -> list[str]:
    """The arrays of length n: u, w and the local ones."""
    return ["u", "w"] + ctx.locals


def block_array_expr(ctx) -> list[str]:
    """A new array from a whole-array expression, a store into all of an array, an in-place
    update, np.where of two expressions, or an array rebound from its old value in a time
    loop (and normalized by its norm)."""
    ctx.use("array_expr")
    leaves = vectors(ctx)
    kind = ctx.pick(["new", "store", "inplace", "where", "rebind"])
    if kind == "rebind":
        x = ctx.fresh("x")
        copy = ctx.pick([".copy()", " * 1.0"])
        lines = [f"{x} = {ctx.pick(leaves)}{copy}", "for t in range(nt):",
                 f"    {x} = {x} + c * np.tanh({aexpr(ctx, leaves + [x])})"]
        if ctx.coin():
            lines.append(f"    {x} = {x} / np.sqrt(1.0 + np.sum({x} * {x}))")
        ctx.locals.append(x)
        return lines
    if kind == "store":
        return [f"{ctx.pick(leaves)}[:] = {aexpr(ctx, leaves)}"]
    if kind == "inplace":
        target, op = ctx.pick(leaves), ctx.pick(["+=", "-=", "*="])
        if op == "*=":
            return [f"{target} *= 1.0 + c * np.tanh({aexpr(ctx, leaves)})"]
        return [f"{target} {op} c * np.tanh({aexpr(ctx, leaves)})"]
    name = ctx.fresh("v")
    if kind == "where":
        cond = ctx.pick(leaves)
        value = f"np.where({cond} > 0.3123, {aexpr(ctx, leaves)}, {aexpr(ctx, leaves, 1)})"
    else:
        value = aexpr(ctx, leaves)
    ctx.locals.append(name)
    return [f"{name} = {value}"]


def block_slices(ctx) -> list[str]:
    """Slice arithmetic: differences, a Laplacian update in place (of the array it reads
    too, at times), a shift of an array into itself, strided and reversed slices, and a
    named view updated in place."""
    ctx.use("slices")
    a, b = ctx.pick(vectors(ctx)), ctx.pick(vectors(ctx))
    kinds = ["diff", "laplacian", "shift", "strided", "reversed"]
    kind = ctx.pick(kinds + (["view"] if ctx.on("named_views") else []))
    if kind == "diff":
        d = ctx.fresh("d")
        return [f"{d} = {a}[1:] - {a}[:-1]", f"s += np.sum({d} * {d}) + np.dot({d}, {b}[:-1])"]
    if kind == "laplacian":
        return [f"{a}[1:-1] += c * ({b}[2:] - 2 * {b}[1:-1] + {b}[:-2])"]
    if kind == "shift":
        return [f"{a}[1:] = 0.5 * {a}[:-1] + c * np.tanh({b}[1:])"]
    if kind == "strided":
        return [f"{a}[0:n - 1:2] += c * np.sin({b}[1::2])"]
    if kind == "reversed":
        return [f"{a}[:] = 0.5 * ({a} + {b}[::-1])"]
    ctx.use("named_views")
    view = ctx.fresh("view")
    lines = [f"{view} = {a}[1:-1]"]
    lines.append(ctx.pick([f"{view} *= 1.0 + c * np.tanh({b}[2:])",
                           f"{view} += c * np.sin({b}[:-2])",
                           f"{view}[:] = {view} + c * np.tanh({view} * {b}[1:-1])"]))
    if ctx.coin():   # the base written after the view was named: the view sees it
        lines.append(f"{a}[:] = {aexpr(ctx, [a, b])}")
    return lines + [f"s += np.sum({view} * {view})"]


def block_reduce(ctx) -> list[str]:
    """np.sum/np.dot/np.mean/np.max/np.min/argmax of arrays, expressions and slices. The
    operand of a max, min or argmax adds 0.7 * w (no exact zeros in w), so that no two of its
    elements tie at the exact zeros of u."""
    ctx.use("reductions")
    leaves = vectors(ctx)
    a, b = ctx.pick(leaves), ctx.pick(leaves)
    kind = ctx.pick(["sum", "dot", "mean", "method", "extreme", "argmax", "norm"])
    if kind == "sum":
        return [f"s += np.sum({aexpr(ctx, leaves)})"]
    if kind == "dot":
        return [ctx.pick([f"s += np.dot({a}, {b})", f"s += np.dot({a}[1:], {b}[:-1])",
                          f"s += {a} @ {aexpr(ctx, leaves, 1)}"])]
    if kind == "mean":
        return [f"s += np.mean({ctx.pick([a, f'{a}[1:]', f'{a}[::2]'])} * {b}[0])"]
    if kind == "method":
        return [f"s += ({aexpr(ctx, leaves)}).sum()"]
    if kind == "norm":
        return [f"s += 0.5 * np.linalg.norm({a} + 0.7 * w)"]
    ctx.use("nonsmooth")
    operand = f"{aexpr(ctx, leaves, 1)} + 0.7 * w"
    if kind == "extreme":
        return [f"s += {ctx.pick(['np.max', 'np.min'])}({operand})"]
    k = ctx.fresh("k")
    return [f"{k} = np.{ctx.pick(['argmax', 'argmin'])}({operand})",
            f"s += c * {a}[{k}] * {b}[{k}]"]


def block_array_call(ctx) -> list[str]:
    """A helper kernel that returns an array (an expression, a filled np.empty_like, or an
    array and its sum), called on a whole array or a slice."""
    ctx.use("array_calls")
    name = ctx.fresh("make")
    kind = ctx.pick(["expression", "filled", "tuple"])
    if kind == "expression":
        body = [f"return c * np.tanh({aexpr(ctx, ['a', 'b'])})"]
    elif kind == "filled":
        body = ["out = np.empty_like(a)", "for i in range(a.shape[0]):",
                f"    out[i] = {ctx.expr(['a[i]', 'b[i]'])}", "return out"]
    else:
        body = [f"r = {aexpr(ctx, ['a', 'b'])}", "return r, np.sum(r)"]
    ctx.helpers.append("\n".join(["@kernel", f"def {name}(a, b, c):"] + indent(body)))
    a, b = ctx.pick(vectors(ctx)), ctx.pick(vectors(ctx))
    v = ctx.fresh("v")
    sliced = ctx.coin()
    call = f"{name}({a}[1:-1], {b}[:-2], c)" if sliced else f"{name}({a}, {b}, c)"
    lines = [f"{v}, {ctx.fresh('total')} = {call}" if kind == "tuple" else f"{v} = {call}"]
    if sliced:
        return lines + [f"s += np.sum({v} * {v})"]
    ctx.locals.append(v)
    return lines


# --- a matrix argument A (n, m) ------------------------------------------------------------

def block_matrix(ctx) -> list[str]:
    """Loops over A's rows then columns and columns then rows (reading, writing in place),
    row and column slices, A @ x, np.dot(A, x), A.T, axis sums and an outer-product update."""
    ctx.use("matrix")
    ctx.extras.add("A")
    a = ctx.pick(vectors(ctx))
    kind = ctx.pick(["rows", "columns", "matvec", "row_slices", "column_slices", "transpose",
                     "axis_sum", "outer", "gram", "stencil", "row_recurrence", "alias"])
    if kind == "alias":   # A written through other names of its memory: a view, its rows
        v = ctx.fresh("V")
        return [f"{v} = A[1:, :]", f"{v}[0, :] += c * np.tanh({v}[1, :])",
                "for row in A:", f"    row[0] = row[0] + c * np.sin(row[1] * {a}[0])"]
    if kind == "stencil":
        return ["for t in range(nt):",
                "    A[1:-1, 1:-1] += c * (A[2:, 1:-1] + A[:-2, 1:-1] + A[1:-1, 2:] "
                "+ A[1:-1, :-2] - 4 * A[1:-1, 1:-1])"]
    if kind == "row_recurrence":
        return ["for i in range(1, n):",
                f"    A[i, :] = 0.5 * A[i - 1, :] + c * np.tanh(A[i, :]) * {a}[i]"]
    if kind == "rows":
        return ["for i in range(n):", "    for j in range(A.shape[1]):",
                f"        s += A[i, j] * {ctx.expr([f'{a}[i]', 'A[i, j]', 'A[i, 0]'])}"]
    if kind == "columns":
        return ["for j in range(A.shape[1]):", "    for i in range(n):",
                f"        A[i, j] = A[i, j] + {ctx.bounded([f'{a}[i]', 'A[i, j]', 'A[0, j]'])}"]
    x, y = ctx.fresh("x"), ctx.fresh("y")
    if kind == "matvec":
        ctx.locals.append(y)
        return [f"{x} = A.T @ {a}",
                ctx.pick([f"{y} = A @ np.tanh({x})", f"{y} = np.dot(A, {x}) * c",
                          f"{y} = A.dot(np.sin({x}))"])]
    if kind == "row_slices":
        return [f"{x} = np.tanh(A[0, :])", "for i in range(n):",
                ctx.pick([f"    s += np.dot(A[i, :], {x}) * {a}[i]",
                          f"    A[i, :] += c * {a}[i] * np.tanh(A[i, :] + {x})"])]
    if kind == "column_slices":
        return ["for j in range(A.shape[1]):",
                ctx.pick([f"    s += np.sum(A[:, j] * {a})",
                          f"    A[:, j] = A[:, j] + c * np.sin({a} * A[:, j])"])]
    if kind == "transpose":   # a named transpose is a copy in hpcad: named only as one
        return [f"{x} = A.T.copy()", f"for j in range({x}.shape[0]):",
                f"    for i in range({x}.shape[1]):",
                f"        s += {x}[j, i] * {ctx.expr([f'{a}[i]', f'{x}[j, i]'], 1)}",
                f"s += np.dot(A.T @ {a}, np.tanh(A.T @ np.sin({a})))"]
    if kind == "axis_sum":
        ctx.locals.append(y)
        return [f"{y} = np.tanh(np.sum(A * A, axis=1)) + {a}",
                "s += np.sum(np.sum(A, axis=0) * A[1, :])"]
    if kind == "outer":
        return [f"{x} = np.tanh(A[n - 1, :])", f"A += c * np.outer({a}, {x})"]
    return [f"{x} = A.T @ A", f"s += 0.1 * np.sum({x} * {x})"]


# --- index arrays ----------------------------------------------------------------------------

def block_gather(ctx) -> list[str]:
    """Reads through idx (u[idx[i]], twice indirect), serial scatter-adds into a local array
    and into an argument, a gather in a prange; and a scatter-add in a prange, a race that
    hpcad must refuse (the kernel is then checked for that refusal only)."""
    ctx.use("gather")
    ctx.extras.add("idx")
    a, b = ctx.pick(vectors(ctx)), ctx.pick(vectors(ctx))
    kinds = ["gather", "gather_write", "scatter", "scatter_arg", "prange_gather"]
    kind = ctx.pick(kinds + (["prange_scatter"] if ctx.on("prange_scatter") else []))
    reads = [f"{a}[idx[i]]", f"{b}[i]", f"{a}[idx[idx[i]]]"]
    if kind == "gather":
        return ["for i in range(n):", f"    s += {ctx.expr(reads)}"]
    if kind == "gather_write":
        return ["for i in range(n):", f"    {b}[i] = {b}[i] + {ctx.bounded(reads)}"]
    if kind == "scatter_arg":
        return ["for i in range(n):", f"    {a}[idx[i]] += {ctx.bounded([f'{b}[i]'])}"]
    v = ctx.fresh("acc")
    lines = [f"{v} = np.zeros(n)"]
    ctx.locals.append(v)
    if kind == "scatter":
        return lines + ["for i in range(n):", f"    {v}[idx[i]] += {ctx.expr([f'{b}[i]'])}"]
    ctx.prange = True
    ctx.use("prange")
    if kind == "prange_gather":
        return lines + ["for i in ad.prange(n):", f"    {v}[i] = {ctx.expr(reads)}"]
    ctx.use("prange_scatter")
    ctx.refused = "race"
    return lines + ["for i in ad.prange(n):", f"    {v}[idx[i]] += {ctx.expr([f'{b}[i]'])}"]


def block_edges(ctx) -> list[str]:
    """An unstructured mesh's residual: per edge (p, q) a flux of the two nodes' values added
    at p and subtracted at q, then (at times) an explicit update of u from it."""
    ctx.use("edges")
    ctx.extras.add("edges")
    r, e = ctx.fresh("res"), ctx.fresh("e")
    p, q, flux = ctx.fresh("p"), ctx.fresh("q"), ctx.fresh("flux")
    a = ctx.pick(["u", "w"])
    weight = ctx.expr([f"{a}[{p}]", f"{a}[{q}]", f"w[{q}]"], 1)
    body = [f"{p} = edges[{e}, 0]", f"{q} = edges[{e}, 1]",
            f"{flux} = ({a}[{p}] - {a}[{q}]) * {weight}",
            f"{r}[{p}] += {flux}", f"{r}[{q}] -= {flux}"]
    loop = [f"for {e} in range(edges.shape[0]):"] + indent(body)
    ctx.locals.append(r)
    if ctx.coin():
        return [f"{r} = np.zeros(n)"] + loop
    return [f"{r} = np.zeros(n)", "for t in range(nt):", f"    {r}[:] = 0.0"] + indent(loop) + [
        f"    {a}[:] = {a} + c * np.tanh({r})"]


# --- the integer argument as a trip count ------------------------------------------------------

def block_int_trips(ctx) -> list[str]:
    """nt (1-3, below n) as a loop bound, a slice bound and a local array's length."""
    ctx.use("int_trips")
    a, b = ctx.pick(vectors(ctx)), ctx.pick(vectors(ctx))
    kind = ctx.pick(["head", "tail", "slices", "length"])
    if kind == "head":
        return ["for i in range(min(nt, n)):",
                f"    s += {ctx.expr([f'{a}[i]', f'{b}[n - 1 - i]'])}"]
    if kind == "tail":
        return ["for i in range(nt, n):",
                f"    {a}[i] = {a}[i] + {ctx.bounded([f'{a}[i - nt]'])}"]
    if kind == "slices":
        return [f"s += np.sum({a}[:nt] * {b}[n - nt:])"]
    h = ctx.fresh("hist")
    return [f"{h} = np.zeros(nt + 1)", "for j in range(nt + 1):",
            f"    {h}[j] = {ctx.expr([f'{a}[j]', f'{b}[j + 1]'])}", f"s += np.sum({h} * {h})"]


def block_masks(ctx) -> list[str]:
    """Bool arrays from comparisons at odd constants, combined as NumPy combines them (`+` is
    or, `*` and, `^` xor, `~` not), then counted, weighed, used in np.where or as a mask."""
    ctx.use("bool_masks")
    a, b = ctx.pick(vectors(ctx)), ctx.pick(vectors(ctx))
    m = ctx.fresh("m")
    first = ctx.pick([f"({a} > 0.1234)", f"~({a} > 0.1234)"])
    lines = [f"{m} = {first} {ctx.pick(['+', '*', '^', '|', '&'])} ({b} < -0.0617)"]
    use = ctx.pick(["count", "where", "mask"])
    if use == "count":
        return lines + [f"s += c * np.sum({m}) + np.sum({m} * {a})"]
    if use == "where":
        return lines + [f"s += np.sum(np.where({m}, {a}, 0.5 * {b}))"]
    return lines + [f"{a}[{m}] += c"]


# 1-D stepped views of an array of length n: negative steps, starts and stops past either
# end (clipped as NumPy clips them), empty ones, views of views
STEPPED = ["{a}[::-1]", "{a}[1::2]", "{a}[::-2]", "{a}[n - 2::-3]", "{a}[n + 3:-n - 5:-2]",
           "{a}[-100:100:3]", "{a}[::-1][1:]", "{a}[::2][::-1]", "{a}[1::3][::-1]",
           "{a}[2:1:-1]", "{a}[1:n - 1][::-2]"]



def block_stepped(ctx) -> list[str]:
    """A named slice with a step (a view, as in NumPy) written through in a loop that reads
    it, its base and another array, or by whole-view statements; or a 2-D local array
    filled from u and w and written through g[::2, ::-1] (or g[::2][:, ::-1]). The sum of
    the base's squares then sees what the view wrote."""
    ctx.use("stepped_views")
    a = ctx.pick(vectors(ctx))
    b = ctx.pick([x for x in vectors(ctx) if x != a])
    r = ctx.fresh("r")
    if ctx.coin():
        g = ctx.fresh("g")
        form = ctx.pick(["{g}[::2, ::-1]", "{g}[::2][:, ::-1]", "{g}[::-1, 1:]",
                         "{g}[n - 1::-2, ::2]"]).format(g=g)
        read = ctx.expr([f"{a}[i]", f"{b}[(i + j) % n]", f"{r}[i, j]"], 1)
        return [f"{g} = np.zeros((n, 3))", "for i in range(n):", "    for j in range(3):",
                f"        {g}[i, j] = {ctx.expr([f'{a}[i]', f'{b}[(i + j) % n]'], 1)}",
                f"{r} = {form}", f"for i in range({r}.shape[0]):",
                f"    for j in range({r}.shape[1]):",
                f"        {r}[i, j] = {r}[i, j] + c * np.tanh({read})",
                f"s += np.sum({g} * {g}) + 0.5 * np.sum({r})"]
    loop = ctx.coin()
    # (whole-view statements are parallel loops under parallel=True: the race check proves
    # each iteration's stores its own, `a[2:1:-1]` too, whose length is a min/max of n)
    lines = [f"{r} = {ctx.pick(STEPPED).format(a=a)}"]
    if loop:
        reads = [f"{r}[i]", f"{a}[i]", f"{b}[i]", f"{r}[i - 1]"]
        lines += [f"for i in range(1, {r}.shape[0]):",
                  f"    {r}[i] = {r}[i] + c * np.tanh({ctx.expr(reads, 1)})"]
    else:
        lines.append(ctx.pick([f"{r} *= 1.0 + c * np.tanh({b}[:{r}.shape[0]])",
                               f"{r} += c * np.sin({r} * {b}[n - {r}.shape[0]:])",
                               f"{r}[:] = {r} + c * np.tanh({r} * {r})"]))
    return lines + [f"s += np.sum({a} * {a}) + np.sum({r} * {r}) + 0.1 * {r}.shape[0]"]


# --- 3-D arrays, NumPy's construction functions, indices computed in the kernel -------------

def block_cube(ctx) -> list[str]:
    """A 3-D local array t (n, 3, 2) filled by a triple loop, then one of: axis reductions
    (np.sum/.max/.min with axis=), an in-place update of 3-D slices, a flat view of a block
    of whole rows written through (t[1:].ravel(), t[k].ravel(), a unit-step slice reshaped),
    or a helper kernel called on a 2-D view (t[k], or the strided t[:, j, :]) that writes
    it. The sum of t's squares then sees every write."""
    ctx.use("cube")
    a = ctx.pick(vectors(ctx))
    b = ctx.pick(vectors(ctx))
    t = ctx.fresh("t")
    fill = ctx.expr([f"{a}[i]", f"{b}[(i + j + k) % n]", "(j - k) * 0.5"], 2)
    lines = [f"{t} = np.zeros((n, 3, 2))", "for i in range(n):", "    for j in range(3):",
             "        for k in range(2):", f"            {t}[i, j, k] = {fill}"]
    kind = ctx.pick(["axis", "slices", "flat", "call"])
    if kind == "axis":
        low = ctx.fresh("low")
        lines += [f"s += np.sum(np.tanh(np.sum({t}, axis=1)) * {t}[:, 0, :])",
                  f"{low} = {t}.min(axis=0)",
                  ctx.pick([f"s += np.sum({t}.max(axis=2) * {low}[1, 0])",
                            f"s += np.sum(np.mean({t}, axis=0) ** 2) + np.sum({t}.sum(axis=2))"])]
    elif kind == "slices":
        lines.append(ctx.pick([f"{t}[1:, 1, :] += c * np.tanh({t}[:-1, 2, :])",
                               f"{t}[:, :, 1] = {t}[:, :, 0] * c + np.sin({t}[:, :, 1])"]))
    elif kind == "flat":
        r, q = ctx.fresh("r"), ctx.fresh("q")
        view = ctx.pick([f"{t}[1:].ravel()", f"{t}[n - 1].ravel()", f"{t}[2:, :, :].ravel()",
                         f"{t}.reshape(n * 3, 2)[3:].ravel()"])
        lines += [f"{r} = {view}", f"for i in range(1, {r}.shape[0]):",
                  f"    {r}[i] = {r}[i] + c * np.tanh({r}[i - 1])",
                  f"{q} = {a}[1:5].reshape(2, 2)", f"{q}[1, 0] = {q}[1, 0] * c + {q}[0, 1]"]
    else:
        name = ctx.fresh("smooth")
        ctx.helpers.append("\n".join(["@kernel", f"def {name}(M, c):"] + indent(
            ["for i in range(1, M.shape[0]):", "    for j in range(M.shape[1]):",
             "        M[i, j] = M[i, j] + c * np.tanh(M[i - 1, j])"])))
        lines.append(f"{name}({ctx.pick([f'{t}[1]', f'{t}[:, 2, :]', f'{t}[:, :, 1]'])}, c)")
    return lines + [f"s += np.sum({t} * {t})"]


def block_construct(ctx) -> list[str]:
    """NumPy's construction functions in expressions: np.cumsum, np.concatenate, np.outer
    (and np.cumsum of it along an axis), np.copy written, np.full, np.linspace and np.arange
    as weights, broadcasting of an (n, 1) with a (1, k) array, np.clip."""
    ctx.use("construct")
    a = ctx.pick(vectors(ctx))
    b = ctx.pick(vectors(ctx))
    x = ctx.fresh("x")
    kind = ctx.pick(["cumsum", "concatenate", "outer", "copy", "weights", "broadcast"])
    if kind == "cumsum":
        return [f"{x} = np.cumsum({a} * c) - np.cumsum({b})[n - 1]",
                f"s += np.sum(np.tanh({x}) * {b})"]
    if kind == "concatenate":
        return [f"{x} = np.concatenate(({a}, {b}[1:] * c, {a}[:2]))",
                f"s += np.sum(np.sin({x}) * {x}) + {x}[n + 1]"]
    if kind == "outer":
        return [f"{x} = np.outer({a}, np.tanh({b}[:3]))",
                ctx.pick([f"s += np.sum(np.cumsum({x}, axis=0) * {x})",
                          f"s += np.sum(np.cumsum({x}, axis=1)[:, 2] * {a})"])]
    if kind == "copy":
        ctx.locals.append(x)
        return [f"{x} = np.copy({a})", f"{x}[0] = {x}[1] * c + np.full(n, c)[2] * {b}[0]",
                f"{x}[1:] += np.full(n - 1, 0.5) * {b}[:-1]"]
    if kind == "weights":
        return [f"s += np.sum({a} * np.linspace(0.0, 1.0, n)) + c * np.sum(np.arange(n) * {b})",
                f"s += np.sum(np.clip({a} * np.arange(1.0, n + 1.0), -0.4321, 0.3123) * {b})"]
    return [f"{x} = {a}.reshape(n, 1) * {b}[:4].reshape(1, 4) + "
            f"{a}[:, np.newaxis] - c * {b}[np.newaxis, 1:5]",
            f"s += np.sum(np.tanh({x}))"]


def block_int_index(ctx) -> list[str]:
    """Indices the kernel computes: (3 * i + 1) % n, i // 2, negative indices (a[-1],
    a[i - n]), an int array of (5 * i + k) % n with k an argmax, a scatter-add through it."""
    ctx.use("int_indices")
    a = ctx.pick(vectors(ctx))
    b = ctx.pick(vectors(ctx))
    p, v = ctx.fresh("p"), ctx.fresh("v")
    read = ctx.expr([f"{a}[(3 * i + 1) % n]", f"{b}[i // 2]", f"{a}[-1]", f"{b}[i - n]",
                     f"{a}[-(i % 3) - 1]"], 2)
    lines = ["for i in range(n):", f"    s += {read}"]
    if ctx.coin():
        ctx.locals.append(v)
        lines += [f"{p} = np.zeros(n, dtype=np.int64)", f"{p}[0] = np.argmax({a})",
                  "for i in range(1, n):", f"    {p}[i] = (5 * i + {p}[0]) % n",
                  f"{v} = np.zeros(n)", "for i in range(n):",
                  f"    {v}[{p}[i]] += {ctx.expr([f'{a}[i]', f'{b}[{p}[i]]'], 1)}",
                  f"    {v}[i // 2 - n] += c * {b}[{p}[-1 - i]]"]
    return lines


BLOCKS = {"array_expr": block_array_expr, "slices": block_slices, "reductions": block_reduce,
          "array_calls": block_array_call, "matrix": block_matrix, "gather": block_gather,
          "edges": block_edges, "int_trips": block_int_trips, "stepped_views": block_stepped,
          "bool_masks": block_masks, "cube": block_cube, "construct": block_construct,
          "int_indices": block_int_index}

# scalar forms added to grammar.unary under "nonsmooth": kinks at odd constants
KINKED_SCALAR = ["abs({a} - 0.0617)", "max({a}, 0.1234)", "min({a}, -0.2345)",
                 "math.sqrt(abs({a} - 0.0617) + 0.3)", "math.log(1.0 + {a} * {a})", "{a} ** 4",
                 "(1.0 + {a} * {a}) ** -2", "max({a}, 0.5 * {a} + 0.0371)"]


def draw_m(draw) -> int:
    return draw(st.sampled_from((3, 4, 6, 7)))
