"""Stencil windows: a loop that reads an array at fixed offsets of its index (`u[i-1]`,
`u[i]`, `u[i+1]`) while nothing in the loop writes it, but something after it does, would
save each of those loads per iteration. Instead, the augmented forward sweep copies the
window the loop reads, `u[lb+min_offset : ub+max_offset]`, onto the tape once before the
loop (one indexed tape slot), and the loop's reverse reloads `u[i+c]` from entry
`i + c - (lb + min_offset)`. The tape then holds one value per element instead of one per
load, and the values derived from the loads are recomputed. The planner takes a window only
where it stores fewer bytes (reverse.py, `plan`). Functions of the reverse engine, which
they receive as their first argument (checkpoint/engine.py)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..ir.core import Block, Builder, Op, Value, walk
from ..ir.dialects import iv_offset, unit_step
from ..ir.effects import writes
from ..ir.types import i64
from .cost import value_bytes
from .engine import Engine
from .tape import array_type, built, trip_count


def window_loads(engine: Engine, r: Any) -> dict[Value, tuple[Value, int]]:
    """The loads of r's loop body that a window could serve: {loaded value: (array,
    offset)}. Only for a unit-step loop with top-level bounds (so the tape slot is sized
    before the sweep starts), outside parallel loops and tasks (one window position),
    without MPI or kept calls inside, reading a 1-D array that the loop does not write."""
    if r.top or engine.intermediates == "store":
        return {}
    loop = r.old.parent
    if loop.name not in ("scf.for", "par.parallel_for"):
        return {}
    if not unit_step(loop):
        return {}
    if not all(engine.region_of(v, r).top for v in loop.operands[:2]):
        return {}
    outer = loop.parent.parent
    while outer is not None:
        if outer.name in ("par.parallel_for", "par.join"):
            return {}
        outer = outer.parent.parent
    if any(o.dialect == "mpi" or o.name == "func.call" for o in walk(r.old)):
        return {}   # (calls kept for custom rules)
    written = {engine.act.key(a) for o in walk(r.old) for a in writes(o)}
    iv = r.old.args[0]
    out = {}
    for op in r.old.ops:
        if op.name != "mem.load" or len(op.operands) != 2 or engine.recomputable_op(op):
            continue
        array, index = op.operands
        c = iv_offset(index, iv)
        if c is None or engine.act.key(array) in written or not engine.region_of(array, r).top:
            continue
        out[op.results[0]] = (array, c)
    return out

def window_bytes(windows: dict[Value, tuple[Value, int]]) -> int:
    """Per iteration of the loop, about: one element per windowed array."""
    arrays = {a: v for v, (a, _) in windows.items()}
    return sum(value_bytes(v) for v in arrays.values())

def open_windows(engine: Engine, r: Any, windows: dict[Value, tuple[Value, int]]) -> None:
    """Copy each window onto the tape before the loop's forward copy; r.windows maps each
    served load to (its Window, its offset)."""
    offsets: dict[Value, list[int]] = {}
    for array, c in windows.values():   # in program order: deterministic on every rank
        offsets.setdefault(array, []).append(c)
    fwd_loop = r.fwd.parent
    parent = fwd_loop.parent
    b = Builder(parent)
    b.index = parent.ops.index(fwd_loop)
    b.loc = fwd_loop.loc
    lb, ub = fwd_loop.operands[:2]
    opened = {}
    for array, cs in offsets.items():
        w = opened[array] = Window(engine.tape.new_slot(), array, min(cs), max(cs))
        lo, hi, count = w.extent(b, lb, ub)
        b.op("tape.reserve", [count], attrs={"slot": w.slot})
        body = Block([Value(i64, "w")])
        inner = Builder(body)
        x = inner.op1("mem.load", [engine.vmap[array], body.args[0]], array_type(array).dtype)
        inner.op("tape.push", [x, inner.op1("arith.sub", [body.args[0], lo], i64)],
                 attrs={"slot": w.slot})
        inner.op("scf.yield", [])
        b.op("scf.for", [lo, hi, _const(b, 1)], [], regions=[body])
        b.op("tape.advance", [count], attrs={"slot": w.slot})
    r.windows = {v: (opened[a], c) for v, (a, c) in windows.items()}

def reload_from_window(engine: Engine, r: Any, v: Value, placeholder: Value) -> list[Op]:
    """Ops of r's reverse prologue that define placeholder as v's window entry."""
    w, c = r.windows[v]
    b = Builder(Block())
    lo = _shifted(b, engine.primal(r.old.parent.operands[0], r), w.low)
    at = _shifted(b, r.rev.args[0], c)
    pop = Op("tape.pop", [b.op1("arith.sub", [at, lo], i64)], [], {"slot": w.slot})
    pop.results = [placeholder]
    placeholder.owner = pop
    return built(b) + [pop]

def close_windows(engine: Engine, r: Any, ctx: Any) -> None:
    """Before the loop's reverse (built next in the current block): move each window's
    slot back to its start."""
    if not r.windows:
        return
    lb, ub = (engine.primal(v, ctx) for v in r.old.parent.operands[:2])
    for w in dict.fromkeys(w for w, _ in r.windows.values()):
        _, _, count = w.extent(engine.b, lb, ub)
        engine.b.op("tape.retreat", [count], attrs={"slot": w.slot})


@dataclass(frozen=True)
class Window:
    """One array's window: its tape slot and the lowest and highest offset the loop reads."""
    slot: int
    array: Value
    low: int
    high: int

    def extent(self, b: Builder, lb: Value, ub: Value) -> tuple[Value, Value, Value]:
        """The window's first index, its end and its length, for a loop over range(lb, ub)."""
        lo, hi = _shifted(b, lb, self.low), _shifted(b, ub, self.high)
        return lo, hi, trip_count(b, lo, hi, _const(b, 1))


def _const(b: Builder, value: int) -> Value:
    return b.op1("arith.const", [], i64, {"value": value})


def _shifted(b: Builder, v: Value, c: int) -> Value:
    return b.op1("arith.add", [v, _const(b, c)], i64)
