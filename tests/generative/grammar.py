"""A hypothesis grammar of hpcad kernels as users write them: the Python source of a module
(a kernel `main` plus the kernels it calls) built from blocks of loops (nested, strided,
reversed, triangular and skewed, bounds read from an int array, in-place recurrences, while
with break/continue, a `return` from inside a loop nest), data branches,
in-place updates, buffer swaps, local
arrays, calls to other kernels, prange loops and fork-join tasks, and MPI halo exchanges,
collectives (sum, MAX/MIN/PROD, root Reduce + Bcast, gathers, scans) and losses;
shapes.py adds NumPy array syntax, a matrix argument A, index arrays (idx, edges), 3-D
local arrays and their flat views, NumPy's construction functions, indices the kernel
computes, non-smooth math, math functions (log1p, atan2, erf, pow, floor, ...), float32 and
parallel=True. Every kernel is valid by construction:
indices stay in bounds, math stays finite.

FEATURES switches each construct on or off; KNOWN_BUGS names the switches that are off
because the construct currently meets an hpcad bug (turn one on with its line below once the
fix is merged). Inputs: hypothesis `draw`; output: a `Generated` (source, sizes, features)."""
from __future__ import annotations

import os
from dataclasses import dataclass, field

from hypothesis import strategies as st

from tests.generative import shapes

# One line per construct; False: not generated. Those at False name their bug in KNOWN_BUGS.
FEATURES: dict[str, bool] = {
    "loop": True,              # range loops: plain, offset (i-1, i+1 reads), stride 2/3, reversed
    "nested": True,            # loop nests, triangular inner loops, 2-D local arrays
    "while": True,             # while loops with a counter, continue and break on data
    "branch": True,            # `if u[i] > 0.3:` / else inside loops
    "time_swap": True,         # time loop over two local buffers swapped by `a, b = b, a`
    "time_swap_args": True,    # the same, swapping the argument arrays themselves
    "time_inplace": True,      # time loop updating an argument array in place
    "local_arrays": True,      # np.zeros(n), np.empty_like(u) (filled before read), 2-D zeros
    "call": True,              # another kernel called with whole arrays and with slices
    "call_kwargs": True,       # the same with keyword arguments
    "call_plain": True,        # the same helper undecorated (a plain def, inlined as a kernel)
    "local_function": True,    # f = lambda v: ... / def f(v): return ... in main, reading c
                               # and the running sum s when called (late binding), in a loop
    "prange": True,            # prange loops: own-element writes, stencil reads, reductions
    "prange_inner": True,      # prange with nonlinear inner loops and private scratch arrays
    "forkjoin": True,          # ad.join, ad.spawn/ad.sync, ad.par_map, ad.par_sum
    "forkjoin_ranged_tape": True,   # a task's loop over range(lo, hi) that saves values
    "pow_at_zero": True,       # (x * x) ** (1.0 + c), a variable exponent (x == 0.0 too)
    "tuple_state": True,       # a tuple of numbers rebound by a loop (and by its branches)
    "offset_views": True,      # lo = a[:n - k], hi = a[k:] named, loops writing one, reading both
    "early_return": True,      # `return` from inside a loop nest after in-place updates
    "recurrence": True,        # a[i] from a[i - k] (k = 1-3) the loop wrote, steps 1-3, up and down
    "skewed_nests": True,      # inner loops range(i, n), range(n - 1, i, -1), ... writing a[j];
                               # bounds read from an int array, range(ptr[i], ptr[i + 1])
    "prange_reductions": True,  # several reductions in one prange: +=, -=, min, max
    "prange_carried": True,    # t = u[i]; for k in range(K): t = f(t) in a prange (saved values)
    "nested_prange": True,     # a prange over j inside a prange over i, writing grid[i, j]
    "prange_down": True,       # prange(n - 1, -1, -1) and prange(n - 2, 0, -1): negative steps
    "prange_call": True,       # a prange body calling a helper kernel (its own loop) per i
    "prange_slices": True,     # whole-array statements on a private array in a prange body:
                               # t[:] = e, t[1:] += c * t[:-1], np.sum(t * t)
    "prange_cond_write": True,  # `if u[i] > 0.3: out[i] = e` (no else: out keeps its value)
    # shapes.py: NumPy array syntax, a matrix argument, index arrays, non-smooth math
    "array_expr": True,        # v = u * c + np.sin(w), a[:] = ..., a += ..., np.where
    "slices": True,            # u[1:] - u[:-1], a[1:-1] += c * (b[2:] - 2 * b[1:-1] + b[:-2])
    "named_views": True,       # v = a[1:-1] then v *= ..., v += ..., v[:] = ...
    "stepped_views": True,     # r = a[::-1], a[1::3], a[n + 3:-n - 5:-2], a[::-1][1:], g[::2, ::-1]
    "reductions": True,        # np.sum/dot/mean/max/min/argmax/linalg.norm, .sum(), a @ b
    "array_calls": True,       # helper kernels returning arrays (and array, sum tuples)
    "matrix": True,            # A (n, m): row/column loops, A[i, :], A @ x, A.T, axis sums
    "gather": True,            # u[idx[i]], scatter-adds v[idx[i]] += ..., gathers in prange
    "prange_scatter": True,    # v[idx[i]] += ... in a prange: hpcad must refuse the race
    "edges": True,             # edge loops: r[p] += flux, r[q] -= flux (unstructured mesh)
    "nonsmooth": True,         # abs, min/max, clip, np.where on values, ** 4, ** -2, argmax
    "int_trips": True,         # nt as a trip count, slice bound and local array length
    "float32": True,           # u, w (and A) float32, compared within float32's rounding
    "parallel_arrays": True,   # @kernel(parallel=True) on main: array statements in parallel
    "bool_masks": True,        # m = (u > k) + (w < j) (or; * and, ^, ~), np.sum(m), a[m] += c
    "cube": True,              # a 3-D local t[i, j, k]: axis sums/max/min, 3-D slice updates,
                               # t[1:].ravel() / a[1:5].reshape(2, 2) written, t[k] to a kernel
    "construct": True,         # np.cumsum (axis=), np.concatenate, np.outer, np.copy, np.full,
                               # np.linspace/np.arange weights, (n, 1) * (1, k), np.clip
    "int_indices": True,       # a[(3 * i + 1) % n], a[i // 2], a[-1], a[i - n], an int array
                               # from argmax and %, a scatter-add through it
    "math_funcs": True,        # log1p, expm1, atan2, hypot, erf, pow (int/float exponents),
                               # floor/ceil inside expressions (math.* and np.*)
    # MPI (tests/mpi/test_generated_mpi.py)
    "mpi_halo": True,          # Sendrecv halo exchange (PROC_NULL ends) before a stencil
    "mpi_nonblocking": True,   # Isend/Irecv + Wait / Waitall halo exchange
    "mpi_collective_loop": True,    # scalar allreduce inside a time loop
    "mpi_recv_in_loop": True,       # Allreduce(loc, glob) / Sendrecv buffers read inside loops
    "mpi_array_loss": True,         # the loss is glob[0] of an array Allreduce
    "mpi_local_loss": True,         # per-rank loss (gradient of the sum over ranks)
    "mpi_uniform_loss": True,       # glob[0] carried through range(nt), or over n * size
    "mpi_wait_order": True,    # Isend/Irecv waited in another order than posted, Waitall(reqs)
    "mpi_world_body": True,    # MPI.COMM_WORLD named in the body (world = MPI.COMM_WORLD)
    "mpi_root_bcast": True,    # Reduce to root 0, a value computed on the root, Bcast, per step
    "mpi_minmax": True,        # Allreduce / allreduce with MPI.MAX, MIN, PROD
    "mpi_gather": True,        # Allgather of per-rank blocks, Gather + Scatter through root 0
    "mpi_scan": True,          # Scan / Exscan (rank 0's Exscan result set to 0) of a buffer
    "mpi_root_loss": True,     # the loss reduced to root 0 and returned there (0 elsewhere)
}

# HPCAD_GENERATIVE_FEATURES=call_kwargs,prange_inner (or "all") switches constructs on for a run.
_ASKED = os.environ.get("HPCAD_GENERATIVE_FEATURES", "")
FEATURES.update({name: True for name in FEATURES if _ASKED == "all" or name in _ASKED.split(",")})

# The hpcad bug each switched-off construct met when this grammar was written (the symptom;
# the minimal kernels are in found.py).
KNOWN_BUGS: dict[str, str] = {}

SIZES = (6, 7, 8, 9)
EXTRAS = ("A", "idx", "edges")   # the arguments after nt, in this order, where blocks use them
NEIGHBOURS = ["a[i]", "a[(i + 1) % a.shape[0]]"]   # what a task at i reads: its element, the next


@dataclass(frozen=True)
class Generated:
    """A generated module. `main(u, w, c, nt[, comm])` returns a float; u, w are float arrays
    of length n (each rank's part under MPI). zeros: some entries of u are exactly 0.0."""
    source: str
    n: int
    nt: int
    c: float
    seed: int
    zeros: bool
    features: frozenset = field(default_factory=frozenset)
    prange: bool = False
    replicated: bool = True     # MPI: the loss is the same on every rank
    extras: tuple = ()          # arguments after nt, by name: "A", "idx", "edges" (EXTRAS)
    m: int = 0                  # A's columns
    float32: bool = False       # u, w (and A) are float32
    refused: str = ""           # the kernel must be refused with an error saying this

    def __repr__(self) -> str:
        return (f"Generated(n={self.n}, nt={self.nt}, c={self.c}, seed={self.seed}, "
                f"zeros={self.zeros}, features={sorted(self.features)}, m={self.m}, "
                f"float32={self.float32}, extras={self.extras})\n{self.source}")


class Ctx:
    """What the blocks generated so far left behind: helper kernels, local arrays, features."""

    def __init__(self, draw):
        self.draw = draw
        self.helpers: list[str] = []
        self.locals: list[str] = []      # 1-D local float arrays of length n (all defined)
        self.features: set[str] = set()
        self.counter = 0
        self.prange = False
        self.extras: set[str] = set()    # arguments after nt the blocks read (shapes.py)
        self.refused = ""                # words of the error hpcad must refuse the kernel with

    def expr(self, leaves: list[str], depth: int = 2) -> str:
        return expr(self, leaves, depth)

    def bounded(self, leaves: list[str]) -> str:
        return bounded(self, leaves)

    def fresh(self, stem: str) -> str:
        self.counter += 1
        return f"{stem}{self.counter}"

    def on(self, name: str) -> bool:
        return FEATURES[name]

    def use(self, name: str) -> None:
        self.features.add(name)

    def pick(self, options):
        return self.draw(st.sampled_from(list(options)))

    def coin(self) -> bool:
        return self.draw(st.booleans())


def indent(lines: list[str], by: int = 1) -> list[str]:
    return ["    " * by + line for line in lines]


# --- expressions ------------------------------------------------------------------------------

# under "math_funcs": floor/ceil jump at odd points only (derivative 0 there, as README says)
MATH_SCALAR = ["math.log1p({a} * {a})", "math.expm1(0.5 * {a})", "math.atan2({a}, 1.5)",
               "math.hypot({a}, 0.7)", "math.erf({a})", "math.pow(1.0 + {a} * {a}, 0.75)",
               "(1.0 + {a} * {a}) ** -3", "{a} + 0.1 * math.floor(3.0 * {a} + 0.0617)",
               "{a} * math.ceil({a} - 0.1234)"]


# elementwise functions of a whole array (prange_slices)
ARRAY_UNARY = ["np.sin({a})", "np.tanh({a})", "{a} * {a}", "np.exp(-0.5 * {a} * {a})",
               "{a} / (1.0 + {a} * {a})"]


def unary(ctx: Ctx, a: str) -> str:
    forms = ["math.sin({a})", "math.tanh({a})", "math.exp(0.3 * math.tanh({a}))",
             "math.exp(-0.5 * {a} * {a})", "math.sqrt(1.0 + {a} * {a})", "{a} / (1.0 + {a} * {a})",
             "math.cos({a})", "{a} ** 2", "{a} ** 3", "({a} * {a}) ** 1.5"]
    if ctx.on("pow_at_zero"):
        forms.append("({a} * {a}) ** (1.0 + c)")
    if ctx.on("nonsmooth"):
        forms += shapes.KINKED_SCALAR
    if ctx.on("math_funcs"):
        forms += MATH_SCALAR
    form = ctx.pick(forms)
    if form in MATH_SCALAR:
        ctx.use("math_funcs")
    if "** (" in form:
        ctx.use("pow_at_zero")
    if form in shapes.KINKED_SCALAR:
        ctx.use("nonsmooth")
    return form.format(a=a)


def expr(ctx: Ctx, leaves: list[str], depth: int = 2) -> str:
    """A smooth, finite float expression of `leaves` (array reads, scalars)."""
    kind = ctx.pick(["leaf", "unary", "binary"] if depth > 0 else ["leaf"])
    if kind == "leaf":
        return ctx.pick(leaves * 3 + ["c", "0.5"])
    if kind == "unary":
        return unary(ctx, expr(ctx, leaves, depth - 1))
    op = ctx.pick(["+", "-", "*"])
    return f"({expr(ctx, leaves, depth - 1)} {op} {expr(ctx, leaves, depth - 1)})"


def bounded(ctx: Ctx, leaves: list[str]) -> str:
    """An expression whose size stays near its leaves' (for updates repeated in time loops)."""
    return f"c * math.tanh({expr(ctx, leaves)})"


def arrays(ctx: Ctx) -> list[str]:
    return ["u", "w"] + ctx.locals


def new_local(ctx: Ctx, like: str = "u") -> tuple[str, list[str]]:
    """A new local 1-D array of length n, every element defined."""
    name = ctx.fresh("tmp")
    if ctx.on("local_arrays") and ctx.coin():
        ctx.use("local_arrays")
        src = ctx.pick(["u", "w"])
        lines = [f"{name} = np.empty_like({like})", "for i in range(n):",
                 f"    {name}[i] = {expr(ctx, [f'{src}[i]'], 1)}"]
    else:
        lines = [f"{name} = np.zeros(n)"]
    ctx.locals.append(name)
    return name, lines


# --- statements -------------------------------------------------------------------------------

RANGES = {   # kind -> (header, neighbour reads allowed)
    "plain": ("range(n)", False),
    "offset": ("range(1, n - 1)", True),
    "stride2": ("range(1, n - 1, 2)", True),
    "stride3": ("range(0, n, 3)", False),
    "reversed": ("range(n - 1, -1, -1)", False),
    "reversed_offset": ("range(n - 2, 0, -1)", True),
}


def loop_body(ctx: Ctx, i: str, neighbours: bool) -> list[str]:
    """One or two statements of a loop over `i`: an element write, an accumulation, a branch."""
    targets = arrays(ctx)
    reads = [f"{a}[{i}]" for a in targets]
    if neighbours:
        reads += [f"{a}[{i} - 1]" for a in targets] + [f"{a}[{i} + 1]" for a in targets]
    lines: list[str] = []
    for _ in range(ctx.draw(st.integers(1, 2))):
        kind = ctx.pick(["write", "update", "sum"] + (["branch"] if ctx.on("branch") else []))
        if kind in ("write", "update"):
            op = "=" if kind == "write" else "+="
            lines.append(f"{ctx.pick(targets)}[{i}] {op} {expr(ctx, reads)}")
        elif kind == "branch":
            ctx.use("branch")
            cond = ctx.pick([r for r in reads if "-" not in r and "+" not in r])
            lines += [f"if {cond} > 0.3:", f"    s += {expr(ctx, reads)}",
                      "else:", f"    s -= {expr(ctx, reads, 1)}"]
        else:
            lines.append(f"s += {expr(ctx, reads)}")
    return lines


def block_loop(ctx: Ctx) -> list[str]:
    kind = ctx.pick(RANGES)
    header, neighbours = RANGES[kind]
    ctx.use("loop")
    return [f"for i in {header}:"] + indent(loop_body(ctx, "i", neighbours))


def block_nested(ctx: Ctx) -> list[str]:
    ctx.use("nested")
    acc = ctx.fresh("acc")
    inner = ctx.pick(["range(3)", "range(i)", "range(i, n, 2)", "range(n - 1, i, -1)"])
    target = ctx.pick(arrays(ctx))
    src = ctx.pick(["u", "w"])
    if ctx.coin() and ctx.on("local_arrays"):
        ctx.use("local_arrays")
        m = ctx.fresh("grid")
        return [f"{m} = np.zeros((n, 3))", "for i in range(n):", "    for j in range(3):",
                f"        {m}[i, j] = {expr(ctx, [f'{src}[i]', f'{src}[(i + j) % n]'])}",
                "for i in range(n):", "    for j in range(3):",
                f"        s += {m}[i, j] * {m}[i, j]"]
    reads = [f"{src}[j]", f"{src}[(i + j) % n]", f"{target}[i]"]
    return ["for i in range(n):", f"    {acc} = 0.0", f"    for j in {inner}:",
            f"        {acc} += {expr(ctx, reads)}",
            f"    {target}[i] = {target}[i] + c * math.tanh({acc})"]


def block_recurrence(ctx: Ctx) -> list[str]:
    """An in-place recurrence: each iteration reads the element k (1-3) behind it in the
    direction the loop runs, which the loop itself wrote k iterations earlier, with steps of
    1-3 (a[i] = 0.5 * a[i - k] + ..., or from a[i + k] running down); or reads the element k
    ahead, which it writes later (a[i] += ... a[i + k] ...)."""
    ctx.use("recurrence")
    a = ctx.pick(arrays(ctx))
    src = ctx.pick(["u", "w"])
    k = ctx.pick([1, 2, 3])
    step = ctx.pick([1, 2, 3])
    kind = ctx.pick(["behind_up", "behind_down", "ahead"])
    if kind == "behind_up":
        header, prev = f"range({k}, n, {step})", f"{a}[i - {k}]"
    elif kind == "behind_down":
        header, prev = f"range(n - 1 - {k}, -1, -{step})", f"{a}[i + {k}]"
    else:
        header, prev = f"range(0, n - {k}, {step})", f"{a}[i + {k}]"
    reads = [prev, f"{a}[i]", f"{src}[i]"]
    update = f"0.5 * {prev} + {bounded(ctx, reads)}" if kind != "ahead" else \
        f"{a}[i] + {bounded(ctx, reads)}"
    return [f"for i in {header}:", f"    {a}[i] = {update}", f"    s += {expr(ctx, reads, 1)}"]


def block_skewed(ctx: Ctx) -> list[str]:
    """Triangular and skewed nests whose inner loop updates a[j] in place from a[i] (which
    an earlier outer iteration's inner loop may have written), over range(i, n),
    range(n - 1, i, -1), range(i + 1), range(1, i, 2) or range(i % 3, n, 3); or bounds read
    from an int array (ptr[i]: a running sum of 0-2 per row, as in compressed sparse rows)."""
    ctx.use("skewed_nests")
    a = ctx.pick(arrays(ctx))
    src = ctx.pick(["u", "w"])
    if ctx.coin():
        ptr, acc = ctx.fresh("ptr"), ctx.fresh("acc")
        reads = [f"{src}[q % n]", f"{a}[i]", f"{a}[(q + i) % n]"]
        return [f"{ptr} = np.zeros(n + 1, dtype=np.int64)", "for i in range(n):",
                f"    {ptr}[i + 1] = {ptr}[i] + (i * {ctx.pick([1, 5, 7])} + 1) % 3",
                "for i in range(n):", f"    {acc} = 0.0",
                f"    for q in range({ptr}[i], {ptr}[i + 1]):",
                f"        {acc} += {expr(ctx, reads)}",
                f"    {a}[i] = {a}[i] + c * math.tanh({acc})"]
    inner = ctx.pick(["range(i, n)", "range(n - 1, i, -1)", "range(i + 1)", "range(1, i, 2)",
                      "range(i % 3, n, 3)"])
    reads = [f"{a}[i]", f"{a}[j]", f"{src}[j]", f"{src}[i]"]
    return ["for i in range(n):", f"    for j in {inner}:",
            f"        {a}[j] = {a}[j] + {bounded(ctx, reads)}",
            f"        s += {expr(ctx, reads, 1)}"]


def block_while(ctx: Ctx) -> list[str]:
    ctx.use("while")
    k = ctx.fresh("k")
    src = ctx.pick(["u", "w"])
    step = ctx.pick([1, 2])
    lines = [f"{k} = 0", f"while {k} + {step} <= n:", f"    {k} += {step}"]
    if ctx.coin():
        lines += [f"    if {src}[{k} - 1] > 0.6:", "        continue"]
    lines.append(f"    s += {expr(ctx, [f'{src}[{k} - 1]', f'w[{k} - 1]'])}")
    if ctx.coin():
        lines += ["    if s > 2.5:", "        break"]
    return lines


def block_time(ctx: Ctx) -> list[str]:
    kind = ctx.pick([k for k in ("time_swap", "time_swap_args", "time_inplace") if ctx.on(k)])
    ctx.use(kind)
    if kind == "time_inplace":
        a = ctx.pick(["u", "w"])
        return ["for t in range(nt):", "    for i in range(n):",
                f"        {a}[i] = {a}[i] + {bounded(ctx, [f'{a}[i]', 'u[i]', 'w[i]'])}"]
    if kind == "time_swap_args":
        a, b = "u", "w"
        lines = []
    else:
        a, b = ctx.fresh("cur"), ctx.fresh("nxt")
        lines = [f"{a} = np.zeros(n)", "for i in range(n):", f"    {a}[i] = u[i]",
                 f"{b} = np.zeros(n)"]
    reads = [f"{a}[i - 1]", f"{a}[i]", f"{a}[i + 1]"]
    lines += ["for t in range(nt):", "    for i in range(1, n - 1):",
              f"        {b}[i] = {a}[i] + {bounded(ctx, reads)}",
              f"    {b}[0] = {a}[0]", f"    {b}[n - 1] = {a}[n - 1]",
              f"    {a}, {b} = {b}, {a}"]
    if kind == "time_swap":
        lines += ["for i in range(n):", f"    s += {a}[i] * {a}[i]"]
    return lines


def block_call(ctx: Ctx) -> list[str]:
    ctx.use("call")
    name = ctx.fresh("inner")
    plain = ctx.on("call_plain") and ctx.coin()
    if plain:
        ctx.use("call_plain")
    ctx.helpers.append("\n".join([
        *([] if plain else ["@kernel"]), f"def {name}(a, b, c):", "    s = 0.0",
        "    for i in range(a.shape[0]):",
        f"        b[i] = {expr(ctx, ['a[i]', 'b[i]'])}",
        f"        s += {expr(ctx, ['a[i]', 'b[i]'], 1)}",
        "    return s"]))
    out, lines = new_local(ctx)
    how = ctx.pick(["whole", "slice", "loop"] + (["kwargs"] if ctx.on("call_kwargs") else []))
    src = ctx.pick(["u", "w"])
    if how == "whole":
        lines.append(f"s += {name}({src}, {out}, c)")
    elif how == "slice":
        lines.append(f"s += {name}({src}[1:n - 1], {out}[1:n - 1], 0.5 * c)")
    elif how == "loop":
        lines += ["for t in range(nt):", f"    s += {name}({src}, {out}, c)"]
    else:
        ctx.use("call_kwargs")
        lines.append(f"s += {name}({src}, b={out}, c=c)")
    return lines


def block_local_function(ctx: Ctx) -> list[str]:
    """A function defined in main, its free names read when it is called: c, and s, which
    the loop calling it updates."""
    ctx.use("local_function")
    name = ctx.fresh("f")
    body = f"{expr(ctx, ['v', 'x'], 1)} + 0.01 * s"
    if ctx.coin():
        lines = [f"{name} = lambda v, x: {body}"]
    else:
        lines = [f"def {name}(v, x):", f"    return {body}"]
    a = ctx.pick(arrays(ctx))
    src = ctx.pick(["u", "w"])
    return lines + ["for i in range(n):",
                    f"    s += c * math.tanh({name}({src}[i], {a}[i]))"]


def block_prange(ctx: Ctx) -> list[str]:
    ctx.use("prange")
    ctx.prange = True
    out, lines = new_local(ctx)
    marker = ctx.pick(["ad.prange", "numba.prange"])
    stencil = ctx.coin()
    header = f"{marker}(1, n - 1)" if stencil else f"{marker}(n)"
    if ctx.on("prange_down") and ctx.coin():     # the same iterations, counted down
        ctx.use("prange_down")
        header = f"{marker}(n - 2, 0, -1)" if stencil else f"{marker}(n - 1, -1, -1)"
    srcs = ["u", "w"] + [a for a in ctx.locals if a != out]
    reads = [f"{a}[i]" for a in srcs]
    if stencil:
        reads += [f"{a}[i - 1]" for a in srcs] + [f"{a}[i + 1]" for a in srcs]
    body = []
    forms = ["plain"] + [f for f in ("prange_inner", "prange_carried", "nested_prange",
                                     "prange_call", "prange_slices", "prange_cond_write")
                         if ctx.on(f)]
    form = ctx.pick(forms)
    if form == "prange_inner":
        ctx.use("prange_inner")
        scratch, acc = ctx.fresh("scratch"), ctx.fresh("acc")
        body += [f"{scratch} = np.zeros(3)", "for j in range(3):",
                 f"    {scratch}[j] = {expr(ctx, reads + ['0.5 * j'])}", f"{acc} = 0.0",
                 "for j in range(3):", f"    {acc} += {scratch}[j] * {expr(ctx, reads, 1)}",
                 f"{out}[i] = {acc}"]
    elif form == "prange_carried":     # a value carried through a nonlinear inner loop
        ctx.use("prange_carried")
        t = ctx.fresh("t")
        body += [f"{t} = {ctx.pick(reads)}",
                 f"for k in range({ctx.pick([2, 3])}):",
                 f"    {t} = 0.5 * {t} + {bounded(ctx, reads + [t])}", f"{out}[i] = {t}"]
    elif form == "nested_prange":      # row i of a grid, its columns in an inner prange
        ctx.use("nested_prange")
        grid = ctx.fresh("grid")
        lines.append(f"{grid} = np.zeros((n, 3))")
        body += [f"for j in {marker}(3):",
                 f"    {grid}[i, j] = {expr(ctx, reads + ['u[(i + j) % n]', '0.5 * j'])}",
                 f"{out}[i] = {grid}[i, 0] * {grid}[i, 1] + {grid}[i, 2]"]
    elif form == "prange_call":        # a helper kernel with a loop of its own, per i
        ctx.use("prange_call")
        cell = ctx.fresh("cell")
        ctx.helpers.append("\n".join([
            "@kernel", f"def {cell}(a, b, i, c):", "    t = a[i]", "    for k in range(3):",
            f"        t = 0.5 * t + c * math.tanh({expr(ctx, ['t', 'b[i]', '0.1 * k'])})",
            "    return t"]))
        body.append(f"{out}[i] = {cell}({ctx.pick(srcs)}, {ctx.pick(srcs)}, i, c)")
    elif form == "prange_slices":      # array syntax on an array private to the iteration
        ctx.use("prange_slices")
        t = ctx.fresh("row")
        body += [f"{t} = np.zeros(3)", f"{t}[:] = {expr(ctx, reads)}",
                 f"{t}[1:] += c * " + ctx.pick(ARRAY_UNARY).format(a=f"{t}[:-1]"),
                 f"{out}[i] = np.sum({t} * {t})"]
    elif form == "prange_cond_write":  # written where a condition holds, kept elsewhere
        ctx.use("prange_cond_write")
        cond = ctx.pick([r for r in reads if "-" not in r and "+" not in r])
        body += [f"if {cond} > 0.3:", f"    {out}[i] = {expr(ctx, reads)}"]
    else:
        body.append(f"{out}[i] = {expr(ctx, reads)}")
    after = []
    if ctx.on("prange_reductions") and ctx.coin():   # more reductions of values of i
        ctx.use("prange_reductions")
        lo, hi, d = ctx.fresh("lo"), ctx.fresh("hi"), ctx.fresh("d")
        lines += [f"{lo} = 1e30", f"{hi} = -1e30", f"{d} = 0.0"]
        body += [f"{lo} = min({lo}, {expr(ctx, reads)})", f"{hi} = max({hi}, {expr(ctx, reads)})",
                 f"{d} -= {expr(ctx, reads, 1)}"]
        after = [f"s += {lo} * {hi} + c * {d}"]
    if ctx.coin():
        cond = ctx.pick([r for r in reads if "-" not in r and "+" not in r])
        body += [f"if {cond} > 0.3:", f"    s += {expr(ctx, reads + [f'{out}[i]'])}"]
    else:
        body.append(f"s += {expr(ctx, reads + [f'{out}[i]'], 1)}")
    return lines + [f"for i in {header}:"] + indent(body) + after


def task_kernel(ctx: Ctx, params: str, body: list[str]) -> str:
    name = ctx.fresh("task")
    ctx.helpers.append("\n".join(["@kernel", f"def {name}({params}):"] + indent(body)))
    return name


def block_forkjoin(ctx: Ctx) -> list[str]:
    ctx.use("forkjoin")
    kind = ctx.pick(["join", "spawn", "par_map", "par_sum"])
    if kind == "par_map":
        f = task_kernel(ctx, "i, a, c", [f"return {expr(ctx, NEIGHBOURS)}"])
        out, lines = new_local(ctx)
        return lines + [f"ad.par_map({f}, n, {out}, {ctx.pick(['u', 'w'])}, c)"]
    if kind == "par_sum":
        f = task_kernel(ctx, "i, a, c", [f"return {expr(ctx, NEIGHBOURS)}"])
        return [f"s += ad.par_sum({f}, n, {ctx.pick(['u', 'w'])}, c)"]
    if ctx.on("forkjoin_ranged_tape"):
        ctx.use("forkjoin_ranged_tape")
        term = expr(ctx, ["a[i]", "a[i + 1]"])
    else:   # linear: the task's reverse saves nothing
        term = f"{ctx.pick(['0.5', '-1.5'])} * a[i] + a[i + 1]"
    chunk = task_kernel(ctx, "a, lo, hi, c", [
        "r = 0.0", "for i in range(lo, hi):", f"    r += {term}", "return r"])
    if kind == "spawn":
        h1, h2 = ctx.fresh("h"), ctx.fresh("h")
        return [f"{h1} = ad.spawn({chunk}, u, 0, n // 2, c)",
                f"{h2} = ad.spawn({chunk}, u, n // 2, n - 1, c)",
                f"s += ad.sync({h1}) * ad.sync({h2})"]
    out, lines = new_local(ctx)
    fill = task_kernel(ctx, "a, b, c", [
        "r = 0.0", "for i in range(a.shape[0]):", f"    b[i] = {expr(ctx, ['a[i]'])}",
        "    r += b[i]", "return r"])
    r1, r2 = ctx.fresh("r"), ctx.fresh("r")
    return lines + [f"{r1}, {r2} = ad.join({chunk}, (u, 0, n - 1, c), {fill}, (w, {out}, c))",
                    f"s += {r1} * {r2} + {r2}"]


def block_tuple(ctx: Ctx) -> list[str]:
    """A tuple of two numbers a loop rebinds from itself each iteration (in a branch too),
    read after the loop."""
    ctx.use("tuple_state")
    p, src = ctx.fresh("pair"), ctx.pick(["u", "w"])
    leaves = [f"{p}[0]", f"{p}[1]", f"{src}[i]"]
    lines = [f"{p} = (c, 0.5)", "for i in range(n):",
             f"    {p} = ({p}[1], {p}[0] + {bounded(ctx, leaves)})"]
    if ctx.coin():
        lines += [f"    if {src}[i] > 0.3:", f"        {p} = ({p}[0], 0.5 * {p}[1])"]
    first, second = ctx.fresh("first"), ctx.fresh("second")
    return lines + [f"{first}, {second} = {p}", f"s += {first} * {second}"]


def block_views(ctx: Ctx) -> list[str]:
    """Two named views of one array at other offsets (`lo = a[:n - k]`, `hi = a[k:]`: lo[i]
    and hi[i] are a[i] and a[i + k]), then loops over their length that write one and read
    both, one after the other (what the first loop writes at i + k the second reads at i)."""
    ctx.use("offset_views")
    a = ctx.pick(["u", "w"] + ctx.locals)
    k = ctx.pick([1, 2])
    lo, hi = ctx.fresh("lo"), ctx.fresh("hi")
    lines = [f"{lo} = {a}[:n - {k}]", f"{hi} = {a}[{k}:]"]
    reads = [f"{lo}[i]", f"{hi}[i]"]
    for _ in range(ctx.draw(st.integers(1, 2))):
        target = ctx.pick([lo, hi])
        lines += [f"for i in range(n - {k}):",
                  f"    {target}[i] = {target}[i] + {bounded(ctx, reads)}"]
    lines += [f"for i in range(n - {k}):", f"    s += {expr(ctx, reads, 1)}"]
    return lines


def block_early_return(ctx: Ctx) -> list[str]:
    """A loop (or a loop nest) that updates an array in place and returns from inside once
    the running sum passes a threshold, with a loss of the arrays as they are then; what
    follows the block runs only when no iteration returned."""
    ctx.use("early_return")
    a = ctx.pick(arrays(ctx))
    src = ctx.pick(["u", "w"])
    limit = ctx.pick(["0.8765", "1.7654", "3.1234"])
    terms = " + ".join(["np.sum(u * u)", "0.5 * np.sum(w)"] +
                       [f"0.25 * np.sum({x} * {x})" for x in ctx.locals])
    inner = ctx.pick(["range(3)", "range(i, n)", "range(n - 1, i - 1, -2)"])
    nest = ctx.coin()
    j = "j" if nest else "i"
    reads = [f"{src}[{j}]", f"{a}[i]", f"{src}[(i + {j}) % n]" if nest else f"{a}[i]"]
    body = [f"{a}[i] = {a}[i] + {bounded(ctx, reads)}", f"s += {expr(ctx, reads, 1)}",
            f"if s > {limit}:", f"    return {ctx.pick(['s', '0.5 * s', 's * s'])} + {terms}"]
    if nest:
        return ["for i in range(n):", f"    for j in {inner}:"] + indent(body, 2)
    return ["for i in range(n):"] + indent(body)


BLOCKS = {"loop": block_loop, "nested": block_nested, "while": block_while,
          "time": block_time, "call": block_call, "prange": block_prange,
          "forkjoin": block_forkjoin, "tuple": block_tuple, "views": block_views,
          "early_return": block_early_return, "recurrence": block_recurrence,
          "skewed_nests": block_skewed, "local_function": block_local_function,
          **shapes.BLOCKS}


NEEDS_EXTRAS = ("matrix", "gather", "edges")   # blocks that add arguments to main


def block_enabled(name: str) -> bool:
    if name == "tuple":
        return FEATURES["tuple_state"]
    if name == "views":
        return FEATURES["offset_views"]
    if name == "time":
        return any(FEATURES[k] for k in ("time_swap", "time_swap_args", "time_inplace"))
    return FEATURES[name]


def loss_lines(ctx: Ctx) -> list[str]:
    terms = " + ".join(["u[i] * u[i]", "0.5 * w[i]"] + [f"0.25 * {a}[i] * {a}[i]"
                                                         for a in ctx.locals])
    matrix = ["for i in range(n):", "    for j in range(A.shape[1]):",
              "        s += 0.1 * A[i, j] * A[i, j]"] if "A" in ctx.extras else []
    return matrix + ["for i in range(n):", f"    s += {terms}", "return s"]


def module_source(ctx: Ctx, params: str, body: list[str], parallel: bool = False) -> str:
    """Helpers, then main (`@kernel(parallel=True)`: array statements as parallel loops)."""
    decorator = "@kernel(parallel=True)" if parallel else "@kernel"
    main = "\n".join([decorator, f"def main({params}):"] + indent(body))
    return "\n\n\n".join(ctx.helpers + [main]) + "\n"


@st.composite
def serial_kernels(draw, parallel: bool = False, arrays: bool = False,
                   plain: bool = False) -> Generated:
    """A kernel of 1-4 blocks; `parallel`: at least one prange or fork-join block; `arrays`:
    at least one block of shapes.py (array syntax, matrix, index arrays); `plain`: main's
    arguments are float64 u, w, c, nt only, and hpcad must run it (no extra arguments, no
    float32, no refusal: for checks that call main(u, w, c, nt) themselves)."""
    ctx = Ctx(draw)
    names = [b for b in BLOCKS if block_enabled(b) and not (plain and b in NEEDS_EXTRAS)]
    body = ["n = u.shape[0]", "s = 0.0"]
    count = draw(st.integers(1, 4))
    chosen = draw(st.lists(st.sampled_from(names), min_size=count, max_size=count))
    if parallel:
        chosen.insert(draw(st.integers(0, len(chosen))),
                      draw(st.sampled_from([b for b in ("prange", "forkjoin") if FEATURES[b]])))
    if arrays:
        chosen.insert(draw(st.integers(0, len(chosen))), draw(st.sampled_from(
            [b for b in shapes.BLOCKS if FEATURES[b] and not (plain and b in NEEDS_EXTRAS)])))
    for name in chosen:
        body += BLOCKS[name](ctx)
    body += loss_lines(ctx)
    zeros = draw(st.booleans())
    float32 = FEATURES["float32"] and not plain and draw(st.integers(0, 3)) == 0
    if float32:
        ctx.use("float32")
    extras = tuple(name for name in EXTRAS if name in ctx.extras)
    params = ", ".join(("u", "w", "c", "nt") + extras)
    # not with swapped arguments: hpcad cannot tell u from w after `u, w = w, u` and refuses
    # `u[:] = 0.5 * (u + w[::-1])` in parallel as a race (a needless refusal, not a bug)
    syntax = ctx.features & {"array_expr", "slices", "reductions", "matrix"}
    threaded = FEATURES["parallel_arrays"] and bool(syntax) and \
        "time_swap_args" not in ctx.features and draw(st.booleans())
    if threaded:
        ctx.use("parallel_arrays")
        ctx.prange = True
    return Generated(module_source(ctx, params, body, threaded), n=draw(st.sampled_from(SIZES)),
                     nt=draw(st.integers(1, 3)), c=draw(st.sampled_from([0.2, 0.35, 0.5])),
                     seed=draw(st.integers(0, 2**16)), zeros=zeros,
                     features=frozenset(ctx.features), prange=ctx.prange, extras=extras,
                     m=shapes.draw_m(draw) if "A" in extras else 0, float32=float32,
                     refused=ctx.refused)


# --- MPI --------------------------------------------------------------------------------------

MPI_PROLOGUE = ["n = u.shape[0]", "s = 0.0", "rank = comm.Get_rank()", "size = comm.Get_size()",
                "left = rank - 1 if rank > 0 else MPI.PROC_NULL",
                "right = rank + 1 if rank < size - 1 else MPI.PROC_NULL"]


def halo_exchange(ctx: Ctx, a: str, tag: int) -> list[str]:
    """Fill a[0] from the left neighbour's a[n-2] and a[n-1] from the right's a[1]."""
    if ctx.on("mpi_nonblocking") and ctx.coin():
        ctx.use("mpi_nonblocking")
        r = [ctx.fresh("req") for _ in range(4)]
        lines = [f"{r[0]} = comm.Irecv({a}[0:1], left, {tag})",
                 f"{r[1]} = comm.Irecv({a}[n - 1:n], right, {tag + 1})",
                 f"{r[2]} = comm.Isend({a}[n - 2:n - 1], right, {tag})",
                 f"{r[3]} = comm.Isend({a}[1:2], left, {tag + 1})"]
        if ctx.on("mpi_wait_order") and ctx.coin():   # waited in another order than posted
            ctx.use("mpi_wait_order")
            order = ctx.draw(st.permutations(r))
            if ctx.coin():
                reqs = ctx.fresh("reqs")
                return lines + [f"{reqs} = [{', '.join(order)}]", f"MPI.Request.Waitall({reqs})"]
            return lines + [f"{q}.Wait()" for q in order]
        if ctx.coin():
            return lines + [f"MPI.Request.Waitall([{', '.join(r)}])"]
        return lines + [f"{q}.Wait()" for q in r]
    ctx.use("mpi_halo")
    return [f"comm.Sendrecv({a}[n - 2:n - 1], right, {tag}, {a}[0:1], left, {tag})",
            f"comm.Sendrecv({a}[1:2], left, {tag + 1}, {a}[n - 1:n], right, {tag + 1})"]


def mpi_block_stencil(ctx: Ctx) -> list[str]:
    """A time loop: halo exchange of u, then a stencil update into a swapped local buffer."""
    cur, nxt = ctx.fresh("cur"), ctx.fresh("nxt")
    lines = [f"{cur} = np.zeros(n)", "for i in range(n):", f"    {cur}[i] = u[i]",
             f"{nxt} = np.zeros(n)", "for t in range(nt):"]
    reads = [f"{cur}[i - 1]", f"{cur}[i]", f"{cur}[i + 1]", "w[i]"]
    lines += indent(halo_exchange(ctx, cur, 10 * ctx.counter))
    lines += ["    for i in range(1, n - 1):",
              f"        {nxt}[i] = {cur}[i] + {bounded(ctx, reads)}",
              f"    {nxt}[0] = {cur}[0]", f"    {nxt}[n - 1] = {cur}[n - 1]",
              f"    {cur}, {nxt} = {nxt}, {cur}",
              "for i in range(1, n - 1):", f"    s += {cur}[i] * {cur}[i]"]
    return lines


def communicator(ctx: Ctx) -> str:
    """The kernel's communicator argument, or COMM_WORLD named in the body (the tests pass
    COMM_WORLD), directly or through `world = MPI.COMM_WORLD` (MPI_PROLOGUE)."""
    if ctx.on("mpi_world_body") and ctx.coin():
        ctx.use("mpi_world_body")
        return ctx.pick(["MPI.COMM_WORLD", "world"])
    return "comm"


def mpi_block_collective(ctx: Ctx) -> list[str]:
    """A scalar allreduce inside a time loop, its value used in the next loop."""
    ctx.use("mpi_collective_loop")
    g = ctx.fresh("g")
    return ["for t in range(nt):", f"    {g} = 0.0", "    for i in range(n):",
            f"        {g} += {expr(ctx, ['u[i]', 'w[i]'], 1)}",
            f"    {g} = {communicator(ctx)}.allreduce({g}, op=MPI.SUM)", "    for i in range(n):",
            f"        w[i] = w[i] + c * math.tanh({g} * u[i])"]


def mpi_block_root_bcast(ctx: Ctx) -> list[str]:
    """Per step: a sum Reduce to rank 0, a value computed there from it, Bcast to all, read
    by the next loop."""
    ctx.use("mpi_root_bcast")
    loc, tot = ctx.fresh("loc"), ctx.fresh("tot")
    return [f"{loc} = np.zeros(2)", f"{tot} = np.zeros(2)", "for t in range(nt):",
            f"    {loc}[0] = 0.0", f"    {loc}[1] = 0.0", "    for i in range(n):",
            f"        {loc}[0] += {expr(ctx, ['u[i]', 'w[i]'], 1)}",
            f"        {loc}[1] += u[i] * w[i]",
            f"    {communicator(ctx)}.Reduce({loc}, {tot}, op=MPI.SUM, root=0)",
            "    if rank == 0:", f"        {tot}[0] = math.tanh({tot}[0]) + {tot}[1] * c",
            f"    {communicator(ctx)}.Bcast({tot}, root=0)", "    for i in range(n):",
            f"        u[i] = u[i] + c * math.sin({tot}[0] * w[i] + {tot}[1])"]


def mpi_block_minmax(ctx: Ctx) -> list[str]:
    """A MAX/MIN/PROD reduction of per-rank sums (distinct on every rank: no ties), as an
    array Allreduce or a scalar allreduce, read by the next loop."""
    ctx.use("mpi_minmax")
    op = ctx.pick(["MAX", "MIN", "PROD"])
    g = ctx.fresh("g")
    lines = [f"{g} = 0.0", "for i in range(n):", f"    {g} += {expr(ctx, ['u[i]', 'w[i]'], 1)}",
             f"{g} = 1.0 + 0.5 * math.tanh({g} + 0.1 * rank)"]
    if ctx.coin():
        lines += [f"{g} = {communicator(ctx)}.allreduce({g}, op=MPI.{op})"]
    else:
        loc, glob = ctx.fresh("loc"), ctx.fresh("glob")
        lines += [f"{loc} = np.zeros(1)", f"{loc}[0] = {g}", f"{glob} = np.zeros(1)",
                  f"{communicator(ctx)}.Allreduce({loc}, {glob}, op=MPI.{op})",
                  f"{g} = {glob}[0]"]
    return lines + ["for i in range(n):", f"    w[i] = w[i] + c * math.tanh({g} * u[i])"]


def mpi_block_gather(ctx: Ctx) -> list[str]:
    """Two values per rank gathered: Allgather into every rank's array of 2 * size, or
    Gather to rank 0, a map there, Scatter back; then read by a loop."""
    ctx.use("mpi_gather")
    mine, every, back = ctx.fresh("mine"), ctx.fresh("every"), ctx.fresh("back")
    lines = [f"{mine} = np.zeros(2)", "for i in range(n):",
             f"    {mine}[0] += {expr(ctx, ['u[i]', 'w[i]'], 1)}", f"    {mine}[1] += u[i] * w[i]",
             f"{every} = np.zeros(2 * size)"]
    if ctx.coin():
        lines += [f"{communicator(ctx)}.Allgather({mine}, {every})", "for i in range(n):",
                  "    for j in range(2 * size):",
                  f"        u[i] = u[i] + c * 0.1 * math.sin({every}[j] * w[i] + j)"]
        return lines
    return lines + [f"{communicator(ctx)}.Gather({mine}, {every}, root=0)", "if rank == 0:",
                    "    for j in range(2 * size):",
                    f"        {every}[j] = math.tanh({every}[j]) * (j + 1)",
                    f"{back} = np.zeros(2)",
                    f"{communicator(ctx)}.Scatter({every}, {back}, root=0)",
                    "for i in range(n):",
                    f"    w[i] = w[i] + c * math.sin({back}[0] * u[i] + {back}[1])"]


def mpi_block_scan(ctx: Ctx) -> list[str]:
    """A prefix sum over the ranks (Scan, or Exscan with rank 0's result set to 0, as MPI
    leaves it undefined), read by the next loop."""
    ctx.use("mpi_scan")
    loc, pre = ctx.fresh("loc"), ctx.fresh("pre")
    lines = [f"{loc} = np.zeros(1)", "for i in range(n):",
             f"    {loc}[0] += {expr(ctx, ['u[i]', 'w[i]'], 1)}", f"{pre} = np.zeros(1)"]
    if ctx.coin():
        lines += [f"{communicator(ctx)}.Scan({loc}, {pre}, op=MPI.SUM)"]
    else:
        lines += [f"{communicator(ctx)}.Exscan({loc}, {pre}, op=MPI.SUM)", "if rank == 0:",
                  f"    {pre}[0] = 0.0"]
    return lines + ["for i in range(n):", f"    u[i] = u[i] + c * math.tanh({pre}[0] * w[i])"]


def mpi_block_recv_loop(ctx: Ctx) -> list[str]:
    """Receive buffers read inside loops: an array Allreduce per step read by the next loop,
    one per element read right after it, or a ring Sendrecv per step."""
    ctx.use("mpi_recv_in_loop")
    loc, glob = ctx.fresh("loc"), ctx.fresh("glob")
    kind = ctx.pick(["per_step", "per_element", "ring"])
    if kind == "per_step":
        return [f"{loc} = np.zeros(1)", f"{glob} = np.zeros(1)", "for t in range(nt):",
                f"    {loc}[0] = 0.0", "    for i in range(n):",
                f"        {loc}[0] += {expr(ctx, ['u[i]', 'w[i]'], 1)}",
                f"    comm.Allreduce({loc}, {glob}, op=MPI.SUM)", "    for i in range(n):",
                f"        u[i] = u[i] + c * math.sin({glob}[0] * w[i])"]
    if kind == "per_element":
        return [f"{loc} = np.zeros(1)", f"{glob} = np.zeros(1)", "for i in range(n):",
                f"    {loc}[0] = {expr(ctx, ['u[i]', 'w[i]'], 1)}",
                f"    comm.Allreduce({loc}, {glob}, op=MPI.SUM)",
                f"    s += {glob}[0] * {expr(ctx, ['u[i]', 'w[i]'], 1)}"]
    return [f"{glob} = np.zeros(n)", "for t in range(nt):",
            f"    comm.Sendrecv(u, (rank + 1) % size, 5, {glob}, (rank - 1 + size) % size, 5)",
            "    for i in range(n):", f"        u[i] = u[i] + c * math.tanh({glob}[i] * w[i])"]


MPI_BLOCKS = {"stencil": mpi_block_stencil, "collective": mpi_block_collective,
              "recv_loop": mpi_block_recv_loop, "loop": block_loop,
              "root_bcast": mpi_block_root_bcast, "minmax": mpi_block_minmax,
              "gather": mpi_block_gather, "scan": mpi_block_scan}
MPI_BLOCK_FEATURES = {"stencil": ("mpi_halo", "mpi_nonblocking"),
                      "collective": ("mpi_collective_loop",),
                      "recv_loop": ("mpi_recv_in_loop",), "loop": ("loop",),
                      "root_bcast": ("mpi_root_bcast",), "minmax": ("mpi_minmax",),
                      "gather": ("mpi_gather",), "scan": ("mpi_scan",)}


def mpi_loss(ctx: Ctx) -> tuple[list[str], bool]:
    """The loss: the local sum's allreduce (replicated), the local sum itself (per rank),
    glob[0] of an array Allreduce (replicated), or that value carried through a loop over
    the integer argument nt or divided by n * size, n an array's shape (replicated: both
    are the same on every rank)."""
    kinds = ["scalar"] + [k for k, f in (("local", "mpi_local_loss"), ("array", "mpi_array_loss"),
                                         ("carried", "mpi_uniform_loss"),
                                         ("mean", "mpi_uniform_loss"),
                                         ("root", "mpi_root_loss")) if FEATURES[f]]
    kind = ctx.pick(kinds)
    lines = ["for i in range(n):", "    s += u[i] * u[i] + 0.5 * w[i]"]
    if kind == "local":
        ctx.use("mpi_local_loss")
        return lines + ["return s"], False
    if kind == "root":   # rank 0's total, 0 elsewhere: summed over the ranks, counted once
        ctx.use("mpi_root_loss")
        if ctx.coin():
            return lines + [f"t = {communicator(ctx)}.reduce(s, op=MPI.SUM, root=0)",
                            "if rank == 0:", "    return t", "return 0.0"], False
        return lines + ["part = np.zeros(1)", "part[0] = s", "total = np.zeros(1)",
                        f"{communicator(ctx)}.Reduce(part, total, op=MPI.SUM, root=0)",
                        "return total[0]"], False
    reduced = ["part = np.zeros(1)", "part[0] = s", "total = np.zeros(1)",
               "comm.Allreduce(part, total, op=MPI.SUM)"]
    if kind == "array":
        ctx.use("mpi_array_loss")
        return lines + reduced + ["return total[0]"], True
    if kind == "carried":
        ctx.use("mpi_uniform_loss")
        return lines + reduced + ["r = total[0]", "for t in range(nt):",
                                  "    r = 0.9 * r + 0.05 * math.tanh(r)", "return r"], True
    if kind == "mean":
        ctx.use("mpi_uniform_loss")
        return lines + reduced + ["return total[0] / (n * size)"], True
    return lines + ["return comm.allreduce(s, op=MPI.SUM)"], True


@st.composite
def mpi_kernels(draw) -> Generated:
    """`main(u, w, c, nt, comm)`: 1-3 blocks of halo stencils, collectives and loops (comm
is COMM_WORLD: blocks may name MPI.COMM_WORLD instead)."""
    ctx = Ctx(draw)
    names = [b for b, fs in MPI_BLOCK_FEATURES.items() if any(FEATURES[f] for f in fs)]
    body = MPI_PROLOGUE + (["world = MPI.COMM_WORLD"] if FEATURES["mpi_world_body"] else [])
    for name in draw(st.lists(st.sampled_from(names), min_size=1, max_size=3)):
        body += MPI_BLOCKS[name](ctx)
    loss, replicated = mpi_loss(ctx)
    body += loss
    return Generated(module_source(ctx, "u, w, c, nt, comm", body),
                     n=draw(st.sampled_from(SIZES)), nt=draw(st.integers(1, 3)),
                     c=draw(st.sampled_from([0.2, 0.35, 0.5])), seed=draw(st.integers(0, 2**16)),
                     zeros=False, features=frozenset(ctx.features), replicated=replicated)
