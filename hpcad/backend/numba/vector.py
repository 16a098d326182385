"""Vector values (batched derivatives, `f64x8`) in generated code. The IR keeps the width
as a type; here each run of lane-wise ops in a block (vector arithmetic, loads and stores of
arrays of vectors) becomes one inner `for w in range(W)` loop over plain scalars, which numba
compiles to small vectorizable loops. Primal ops of the block are written before that loop
(they never read vector values, and touch other arrays). A vector that lives beyond its
loop (loop-carried, used in another loop or by an MPI call, returned) is a length-W array,
allocated once per call; inside a parallel loop each thread has its own row. Arrays of
vectors keep the lanes as their last, contiguous axis (n, W), so that a lane loop reads
W adjacent numbers; the caller's (W, n) shadows are copied in and out at the ends. Lane
loops run to `_lanes`, an argument (= W): a loop of unknown length is vectorized by LLVM's
loop vectorizer (with its run-time alias checks), where a constant 8 is unrolled first and
then left scalar, since stores to one array of vectors may alias loads from another.

Lane-outer loops (ir/lanes.py). A loop whose body only computes (pure scalar ops, loads,
tape pops) and writes vectors, such as a reverse sweep over time steps of an adjoint
stencil, runs once per lane instead: `for w in range(W): for t ...: for i ...:`, every
vector in it a plain local. Its lanes do not interact and it changes no scalar state but
the tape position, which each lane starts from afresh, so the order is free; each lane then
streams over its own contiguous row of the shadows, which stays in cache across time
steps, where lanes last the W rows together would not. When every loop that streams over
arrays of vectors is such a loop, the arrays keep the caller's layout, lanes first (W, n),
and no copy is made."""
from __future__ import annotations

from ...errors import HpcadError, where
from ...ir.core import Block, Op, Value, walk
from ...ir.dialects import MEMORY_ACCESSES, accessed_array
from ...ir.lanes import is_lane_array, is_vector, lane_op, lane_outer_loops
from ...ir.types import ArrayType, lanes
from .common import NP_TYPES

# ops without regions that must still wait for the pending lane loop: they may touch whole
# arrays of vectors (scalar code, allocations, primal memory ops and the tape may go first:
# lane ops touch only arrays of vectors)
_BARRIERS = ("mem.fill", "mem.copy", "mem.add_into", "func.call")


class VectorWriter:
    """Mixed into the source writer."""

    def vector_setup(self) -> None:
        self.lane: str | None = None            # the lane variable while writing a lane loop
        self.local: set[Value] = set()          # vectors that live within one lane loop
        self.vector_names: set[str] = set()     # locals that hold a length-W array
        self.storage: dict[str, tuple] = {}     # name -> (dtype, parallel home or None)
        self.homes: list[dict] = []             # enclosing parallel bodies being written
        self.vector_reductions: dict[Op, tuple[str, bool]] = {}
        self.widths = {lanes(v.type) for o in walk(self.fn.body) for v in o.operands + o.results}
        self.widths |= {lanes(a.type) for a in self.fn.args}
        self.widths.discard(1)
        if len(self.widths) > 1:
            raise HpcadError(f"@{self.fn.name} mixes vector widths {sorted(self.widths)}")
        self.width = self.widths.pop() if self.widths else 1
        self.outer: set[Op] = set()             # lane-outer loops
        self.outer_lane: str | None = None      # the lane variable while writing one
        self.rows: dict[Value, str] = {}        # and its row of each array of vectors
        if self.width > 1:
            self.plan_lanes(self.fn.body)
            self.outer = lane_outer_loops(self.fn.body)
            for loop in self.outer:   # every vector in a lane-outer loop is a plain local
                for block in [loop.regions[0]] + [r for o in walk(loop.regions[0])
                                                   for r in o.regions]:
                    self.local.update(a for a in block.args if is_vector(a))
                for op in walk(loop.regions[0]):
                    self.local.update(r for r in op.results if is_vector(r))
            for op in walk(self.fn.body):
                if op.name == "scf.for" and op not in self.outer:
                    self.coalesce_carried(op)
            for a in self.fn.args:
                if lanes(a.type) > 1:
                    self.vector_names.add(self.name(a))

    @property
    def lanes_first(self) -> bool:
        """Whether arrays of vectors are laid out (W, ...): when loops run lane-outer."""
        return bool(self.outer)

    # -- which ops form lane loops ------------------------------------------------------------
    lane_op = staticmethod(lane_op)

    @staticmethod
    def breaks_lanes(op: Op) -> bool:
        """Whether op must be written after the pending lane loop (not hoisted above it).
        Planning and writing must agree on this, so it looks at nothing but the op."""
        return bool(op.regions) or op.dialect in ("mpi", "scf", "func", "par", "vec") \
            or op.name in _BARRIERS

    def plan_lanes(self, block: Block) -> None:
        """Group each block's lane ops into lane loops; a vector is local when every use is
        in its own loop."""
        group, groups, opened = 0, {}, False
        for op in block.ops:
            if self.lane_op(op):
                groups[op] = group
                opened = True
            elif opened and self.breaks_lanes(op):
                group += 1
                opened = False
            for region in op.regions:
                self.plan_lanes(region)
        users: dict[Value, list[Op]] = {}
        for op in block.ops:
            for v in op.operands:
                users.setdefault(v, []).append(op)
        nested = {v for op in block.ops for r in op.regions for o in walk(r) for v in o.operands}
        for op, g in groups.items():
            for r in op.results:
                if is_vector(r) and r not in nested and all(groups.get(u) == g
                                                            for u in users.get(r, ())):
                    self.local.add(r)

    def write_lane_outer(self, loop: Op, depth: int) -> None:
        """`for w in range(W):` around the loop, its carried vectors plain locals, copied
        out to their arrays at the end of each lane, each array of vectors read and written
        through the lane's own row, each tape position it moves set back to where it was
        for the next lane. A loop with sums that may be taken in any order runs in a
        function of its own (codegen.outline_loop), as at width 1."""
        moved = sorted({self.by_slot[o.attrs["slot"]].position for o in walk(loop.regions[0])
                        if o.name == "tape.retreat" or o.name == "tape.pop" and not o.operands})
        starts = [self.fresh("start") for _ in moved]
        for start, position in zip(starts, moved):
            self.emit(depth, f"{start} = {position}")
        lane = self.fresh("w")
        self.emit(depth, f"for {lane} in range(_lanes):")
        for start, position in zip(starts, moved):
            self.emit(depth + 1, f"{position} = {start}")
        arrays = {accessed_array(o) for o in walk(loop.regions[0]) if o.name in MEMORY_ACCESSES}
        for arr in sorted((a for a in arrays if is_lane_array(a)), key=self.name):
            self.rows[arr] = self.fresh(f"{self.name(arr)}_row")   # the lane's own row
            self.emit(depth + 1, f"{self.rows[arr]} = {self.ref(arr)}[{lane}]")
        self.lane = self.outer_lane = lane
        carried = [self.fresh(r.name) if is_vector(r) else self.name(r) for r in loop.results]
        try:
            if self.outlines(loop):
                self.outline_loop(loop, depth + 1, carried)
            else:
                self.write_for(loop, depth + 1, carried)
        finally:
            self.lane = self.outer_lane = None
            self.rows = {}
        for r, local in zip(loop.results, carried):
            if is_vector(r):
                self.emit(depth + 1, f"{self.stored(r)}[{lane}] = {local}")

    def coalesce_carried(self, loop: Op) -> None:
        """A vector the loop body computes only to carry it to the next iteration is written
        straight into the carried array, when nothing in the body reads the carried value
        after that (saves a copy loop per iteration, e.g. an adjoint summed over a loop)."""
        body = loop.regions[0]
        term = body.ops[-1]
        for k, (arg, y) in enumerate(zip(body.args[1:], term.operands)):
            d = y.owner
            if not is_vector(y) or not isinstance(d, Op) or d.parent is not body \
                    or term.operands.count(y) != 1 or arg in term.operands:
                continue
            if any(y in o.operands for o in walk(body) if o is not term):
                continue
            at = body.ops.index(d)
            if all(self.top_index(o, body) <= at for o in walk(body) if arg in o.operands):
                self.names[y] = self.name(loop.results[k])

    @staticmethod
    def top_index(op: Op, block: Block) -> int:
        while op.parent is not block:
            op = op.parent.parent
        return block.ops.index(op)

    # -- writing lane loops -------------------------------------------------------------------
    def write_lanes(self, ops: list[Op], depth: int) -> None:
        if not ops:
            return
        if self.outer_lane is not None:   # in a lane-outer loop: the lane is fixed
            for op in ops:
                self.op(op, depth)
            return
        lane = self.fresh("w")
        self.emit(depth, f"for {lane} in range(_lanes):")
        self.lane = lane
        for op in ops:
            self.op(op, depth + 1)
        self.lane = None

    def lane_ref(self, v: Value, text: str) -> str:
        """How a lane loop reads vector v (a local scalar, or lane w of its array)."""
        if self.lane is None or v in self.local or (isinstance(v.owner, Op)
                                                    and v.owner.name == "arith.const"):
            return text
        return f"{text}[{self.lane}]"

    def target(self, v: Value) -> str:
        """Where op results are written: a local, or lane w of a vector's array."""
        if not is_vector(v) or v in self.local:
            return self.name(v)
        return f"{self.stored(v)}[{self.lane}]"

    def stored(self, v: Value) -> str:
        """The name of the length-W array that holds vector v (allocated once per call, or
        per thread inside a parallel loop)."""
        name = self.name(v)
        if name not in self.vector_names:
            self.vector_names.add(name)
            home = self.homes[-1] if self.homes else None
            self.storage[name] = (NP_TYPES[v.type.name], home)
            if home is not None:
                home["rows"].append(name)
        return name

    def carried_names(self, values: list[Value]) -> list[str]:
        return [self.stored(v) if is_vector(v) and v not in self.local else self.name(v)
                for v in values]

    def assign_lanes(self, depth: int, pairs: list[tuple[str, str]]) -> None:
        """targets[w] = sources[w] for every lane, all sources read before any is written
        (loops may yield their carried vectors swapped)."""
        lane = self.fresh("w")
        self.emit(depth, f"for {lane} in range(_lanes):")
        temps = []
        for _, src in pairs:
            temp = self.fresh("lane")
            read = f"{src}[{lane}]" if src in self.vector_names else src
            self.emit(depth + 1, f"{temp} = {read}")
            temps.append(temp)
        for (dst, _), temp in zip(pairs, temps):
            self.emit(depth + 1, f"{dst}[{lane}] = {temp}")

    def vector_operand(self, v: Value) -> str:
        """A vector as an array argument (a constant becomes a filled array)."""
        text = self.ref(v)
        if text in self.vector_names:
            return text
        return f"np.full({self.width}, {text})"

    # -- single lanes (vec dialect: a rule called once per direction, ad/custom.py) -----------
    def op_vec_extract(self, op: Op, depth: int) -> None:
        vector, lane = op.operands
        value = self.ref(vector) if self.is_constant(vector) else \
            f"{self.stored(vector)}[{self.ref(lane)}]"
        self.emit(depth, f"{self.name(op.results[0])} = {value}")

    def op_vec_insert(self, op: Op, depth: int) -> None:
        """In place when the result shares the operand's array (a lane loop's carried
        vector, see coalesce_carried), else into a copy."""
        vector, value, lane = op.operands
        out = self.stored(op.results[0])
        source = self.ref(vector) if self.is_constant(vector) else self.stored(vector)
        if source != out:
            self.assign_lanes(depth, [(out, source)])
        self.emit(depth, f"{out}[{self.ref(lane)}] = {self.ref(value)}")

    def op_vec_lane(self, op: Op, depth: int) -> None:
        arr, lane = op.operands
        index = ", ".join(self.with_lane([":"] * arr.type.ndim, self.ref(lane)))
        self.emit(depth, f"{self.name(op.results[0])} = {self.ref(arr)}[{index}]")

    @staticmethod
    def is_constant(v: Value) -> bool:
        return isinstance(v.owner, Op) and v.owner.name == "arith.const"

    # -- parallel loops -----------------------------------------------------------------------
    def enter_home(self, depth: int) -> dict:
        home = {"at": len(self.lines), "depth": depth, "rows": [], "tid": None}
        self.homes.append(home)
        return home

    def thread_id(self, home: dict) -> str:
        if home["tid"] is None:
            home["tid"] = self.fresh("thread")
        return home["tid"]

    def leave_home(self, home: dict) -> None:
        """Give the body its thread's rows of the vectors it keeps in arrays."""
        self.homes.pop()
        lines = []
        if home["rows"]:
            self.thread_id(home)
        if home["tid"] is not None:
            lines.append(f"{home['tid']} = get_thread_id()")
        lines += [f"{name} = {name}_rows[{home['tid']}]" for name in home["rows"]]
        self.lines[home["at"]:home["at"]] = ["    " * home["depth"] + l for l in lines]

    def vector_reduction(self, loop: Op, update: Op | None, var: str, depth: int) -> str | None:
        """A sum reduction of a vector: each thread adds into its own row of a partial-sums
        array; the rows are added to the result after the loop (see reduce_rows)."""
        body = loop.regions[0]
        if update is None:   # passed through unchanged: the result is the initial value
            return None
        if not isinstance(update, Op) or update.parent is not body \
                or update.name not in ("arith.add", "arith.sub") \
                or not any(v in body.args for v in update.operands):
            raise HpcadError(f"{where(loop.loc)}: numba backend: a vector reduction of a "
                             f"parallel loop must be one sum update in its body")
        part = self.fresh(f"{var}_part")
        self.emit(depth, f"{part} = np.zeros((_nthreads, {self.width}), "
                         f"{NP_TYPES[update.results[0].type.name]})")
        self.vector_reductions[update] = (part, update.name == "arith.sub")
        self.names[update.results[0]] = var
        return part

    def reduction_lane(self, op: Op, depth: int) -> None:
        part, minus = self.vector_reductions[op]
        acc = self.names[op.results[0]]
        other = op.operands[1] if self.names.get(op.operands[0]) == acc else op.operands[0]
        tid = self.thread_id(self.homes[-1])
        self.emit(depth, f"{part}[{tid}, {self.lane}] {'-' if minus else '+'}= "
                         f"{self.ref(other)}")

    def reduce_rows(self, var: str, part: str, depth: int) -> None:
        lane, t = self.fresh("w"), self.fresh("t")
        self.emit(depth, f"for {lane} in range(_lanes):")
        self.emit(depth + 1, f"for {t} in range(_nthreads):")
        self.emit(depth + 2, f"{var}[{lane}] += {part}[{t}, {lane}]")

    def storage_lines(self) -> list[str]:
        """Allocations of the vectors' arrays, at the top of the function."""
        lines = []
        for name, (dtype, home) in self.storage.items():
            if home is None:
                lines.append(f"{name} = np.empty({self.width}, {dtype})")
            else:
                lines.append(f"{name}_rows = np.empty((_nthreads, {self.width}), {dtype})")
        return ["    " + l for l in lines]

    # -- the caller's arrays of vectors: lanes first outside, last inside -----------------------
    def with_lane(self, index: list[str], lane: str) -> list[str]:
        """The index of one element of an array of vectors: lane last, or first."""
        return [lane] + index if self.lanes_first else index + [lane]

    def lane_axis(self, axis: int) -> int:
        """The array axis of an array of vectors' element axis."""
        return axis + 1 if self.lanes_first else axis

    def user_array(self, a: Value) -> str:
        """The parameter name of argument a (an array of vectors arrives as `<name>_lanes`,
        lanes first, and is copied to `<name>`, lanes last, unless lanes stay first)."""
        name = self.name(a)
        return f"{name}_lanes" if a in self.lane_arrays() else name

    def lane_arrays(self) -> list[Value]:
        if self.lanes_first:
            return []
        return [a for a in self.fn.args if isinstance(a.type, ArrayType) and lanes(a.type) > 1]

    def lanes_in(self) -> list[str]:
        lines = []
        for a in self.lane_arrays():
            name, nd = self.name(a), a.type.ndim
            dims = ", ".join(f"{name}_lanes.shape[{k + 1}]" for k in range(nd))
            lines.append(f"{name} = np.empty(({dims}, {self.width}), {NP_TYPES[a.type.dtype.name]})")
            lines += self.transpose_lines(name, f"{name}_lanes", nd, into_lanes_last=True)
        return ["    " + l for l in lines]

    def lanes_out(self, depth: int) -> None:
        for a in self.lane_arrays():
            name = self.name(a)
            for line in self.transpose_lines(f"{name}_lanes", name, a.type.ndim,
                                             into_lanes_last=False):
                self.emit(depth, line)

    def transpose_lines(self, dst: str, src: str, ndim: int, into_lanes_last: bool) -> list[str]:
        """dst[..., w] = src[w, ...] (or back): explicit loops, which numba compiles well."""
        lane = self.fresh("w")
        idx = [self.fresh(f"e{k}") for k in range(ndim)]
        lanes_last = ", ".join(idx + [lane])
        lanes_first = ", ".join([lane] + idx)
        shape_of = dst if into_lanes_last else src
        lines = [f"for {lane} in range(_lanes):"]
        for k, e in enumerate(idx):
            lines.append("    " * (k + 1) + f"for {e} in range({shape_of}.shape[{k}]):")
        lhs, rhs = (lanes_last, lanes_first) if into_lanes_last else (lanes_first, lanes_last)
        lines.append("    " * (ndim + 1) + f"{dst}[{lhs}] = {src}[{rhs}]")
        return lines
