"""Where the caller's arrays of vectors meet the compiled code's layout. Callers hold the W
directions of a shadow as (W, *shape); the generated code reads them lanes last,
(*shape, W), or lanes first where its loops run lane-outer (vector.py, ir/lanes.py).
The rule, per argument, for arrays of any rank:
- its memory already is in the code's layout (a lanes-last one is `np.moveaxis(t, -1, 0)`
  of a C-contiguous (*shape, W) array, as `hpcad.jacobian` makes its tangents): passed as
  a view, no copy;
- lanes-last code, any other writable array of at least IN_PLACE_BYTES (e.g. a large
  (W, *shape) C-contiguous one): passed in place too, as the strided view (*shape, W) of
  the caller's memory, to the code's variant compiled with those arguments of any strides
  (numba/__init__.py compiles it on the first call that passes that set of arguments so).
  Its source writes the innermost lane loops that may, and whose arrays of vectors are
  all passed so, in blocks (vector.write_blocked: each lane streams its own run of the
  block in each direction's memory, where a lane loop per element touches W places at
  once, too many streams for the prefetcher at large W), so every direction's memory is
  streamed once, as W width-1 calls would; a transposed copy
  costs 2-3 more passes over it;
- any other (lanes-first code, whose lane-outer loops would read all W directions' memory
  per lane in place; every array of a call with a read-only array; a small one, which
  fits in cache, where the code may read each element many times and reads a copy with
  unit strides faster): transposed once into a contiguous copy before the call, and back
  after it when the code writes it.
A returned array of vectors comes back as a (W, *shape) view of the code's array.

One exception (in place, its lane loops run several times slower): an argument the code
both reads and writes, lanes last, is copied by the code into a private (*shape, W) buffer
at entry and back at exit (`private_args`). Its last extent is then the constant W in the
compiled code, which lets LLVM vectorize the in-place lane loops; the caller's array, whose
extents are only known at run time, does not, whether it is a view or a fresh copy."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...ir.core import Function, Op, walk
from ...ir.dialects import VIEWS
from ...ir.effects import reads, writes
from ...ir.lanes import is_lane_array, lane_outer_loops

IN_PLACE_BYTES = 1 << 19    # about a core's L2 cache: smaller arrays of vectors are copied


@dataclass(frozen=True)
class LaneArg:
    position: int
    contiguous: bool   # the compiled code's type is C-contiguous (else any strides)
    written: bool      # the code may write it (a copy goes back after the call)


@dataclass(frozen=True)
class LaneLayout:
    """How fn's arrays of vectors are passed: lanes last or first, which arguments."""
    lanes_last: bool
    args: tuple[LaneArg, ...]
    results: tuple[int, ...]   # returned arrays of vectors, lanes last in the code

    def to_code(self, args: list, in_place: bool = True) -> tuple[list, tuple[int, ...]]:
        """args with each array of vectors in the code's layout (args is changed); the
        (code's copy, caller's view) pairs to copy back after the call, and the positions
        of the arguments passed strided (the code's variant for those runs; none when not
        in_place)."""
        back, strided = [], []
        # the variant is called without the dispatcher's type checks: its arrays are writable
        in_place = in_place and self.lanes_last and all(x.flags.writeable for x in args
                                                        if isinstance(x, np.ndarray))
        for a in self.args:
            view = np.moveaxis(args[a.position], 0, -1) if self.lanes_last else \
                args[a.position]
            if a.contiguous and not view.flags.c_contiguous:
                if in_place and view.nbytes >= IN_PLACE_BYTES:
                    strided.append(a.position)
                else:
                    copy = np.ascontiguousarray(view)
                    if a.written:
                        back.append((copy, view))
                    view = copy
            args[a.position] = view
        return back, tuple(strided)

    def to_caller(self, out: tuple, back: list) -> tuple:
        for copy, view in back:
            view[...] = copy
        if not self.results:
            return out
        out = list(out)
        for k in self.results:
            out[k] = np.moveaxis(out[k], -1, 0)
        return tuple(out)


def lane_layout(fn: Function) -> LaneLayout | None:
    """fn's layout of arrays of vectors (None when it has none)."""
    arrays = [k for k, a in enumerate(fn.args) if is_lane_array(a)]
    returned = [k for k, v in enumerate(fn.body.ops[-1].operands) if is_lane_array(v)]
    if not arrays and not returned:
        return None
    last = not lane_outer_loops(fn.body)
    written = _touched_args(fn, writes)
    args = tuple(LaneArg(k, fn.args[k].type.layout == "C", written is None or k in written)
                 for k in arrays)
    return LaneLayout(last, args, tuple(returned) if last else ())


def private_args(fn: Function) -> set[int]:
    """The positions of the lanes-last arrays of vectors the code both reads and writes: it
    copies them into private (*shape, W) buffers (see the module docstring)."""
    if lane_outer_loops(fn.body):
        return set()
    arrays = {k for k, a in enumerate(fn.args) if is_lane_array(a)}
    read, written = _touched_args(fn, reads), _touched_args(fn, writes)
    return arrays & (arrays if read is None else read) & (arrays if written is None else written)


def _touched_args(fn: Function, effect) -> set[int] | None:
    """The positions of the arguments fn reads or writes (effect: ir.effects.reads or
    writes), through views too; None when an array cannot be traced to one (then every
    one counts)."""
    position = {a: k for k, a in enumerate(fn.args)}
    out: set[int] = set()
    for op in walk(fn.body):
        for arr in effect(op):
            while isinstance(arr.owner, Op) and arr.owner.name in VIEWS:
                arr = arr.owner.operands[0]
            if arr in position:
                out.add(position[arr])
            elif not isinstance(arr.owner, Op) or arr.owner.name != "mem.alloc":
                return None
    return out
