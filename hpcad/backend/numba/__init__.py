"""The numba backend: IR -> Python source -> numba.njit, cached on disk, with tape and
snapshot buffers kept per compiled function and reused across calls: one set per call in
flight, so that calls from several threads (the compiled code releases the GIL) never share
one."""
from __future__ import annotations

import re
import threading
from contextlib import contextmanager

import numpy as np

from ...errors import (
    BufferMemoryError,
    HpcadError,
    IndexOutOfBounds,
    NoOverload,
    UnsupportedConstruct,
    where,
)
from ...ir.core import Function
from ...ir.printer import print_function
from ...ir.types import ArrayType, OpaqueType, ScalarType, lanes
from ...progress import progress
from ...runtime.snapshots import file_backed
from ...runtime.tape import TapeSlot
from . import cache, threads
from .codegen import PARALLEL_DECORATOR, generate, source_loc
from .lane_layout import lane_layout

STATS = {"compiled": 0, "loaded": 0}   # numba compilations vs. loads from the disk cache
# numba's workqueue layer runs one parallel region at a time in a process and aborts it when
# a second starts (calls from several Python threads): its parallel kernels take turns
_WORKQUEUE = threading.Lock()


def _numba_type(t):
    from numba import types
    if isinstance(t, OpaqueType):
        return types.int64          # an MPI handle (communicator, request)
    if isinstance(t, ArrayType):   # an array of vectors holds its lanes as a first axis
        return types.Array(_numba_type(ScalarType(t.dtype.name)), t.ndim + (t.dtype.width > 1),
                           "C" if t.layout == "C" else "A")
    if isinstance(t, ScalarType) and t.width > 1:
        return types.Array(_numba_type(ScalarType(t.name)), 1, "C")
    if isinstance(t, ScalarType):
        return {"f64": types.float64, "f32": types.float32, "i64": types.int64,
                "i32": types.int32, "i1": types.boolean}[t.name]
    raise HpcadError(f"the numba backend cannot pass values of type {t}")


@contextmanager
def _refusals_reported(fn: Function, py_name: str, path, source: str):
    """A numba error compiling fn's generated source as an hpcad error at the kernel's
    file:line of the op whose line numba refused (else at the kernel's `def`); a failure
    inside numba's compiler as an hpcad error that says so."""
    from numba.core.errors import NumbaError
    try:
        yield
    except NumbaError as e:
        text = re.sub(r"\x1b\[[0-9;]*m", "", str(e))
        lines = [int(n) for f, n in re.findall(r'File "([^"]*)", line (\d+)', text)
                 if f.endswith(path.name)]
        loc = source_loc(fn, py_name, lines[-1]) if lines else None
        what = "this construct" if loc else f"kernel '{fn.name.split('.')[0]}' (defined here)"
        code = f"; generated line {lines[-1]}: `{source.splitlines()[lines[-1] - 1].strip()}`" \
            if lines else ""
        raise UnsupportedConstruct(
            f"{where(loc or fn.loc)}: the numba backend cannot compile {what}: "
            f"{_numba_reason(text)}{code}; rewrite it, or run the kernel with "
            f"backend='interp' (`hpcad show-code` prints the generated source)") from None
    except (HpcadError, MemoryError):
        raise       # hpcad's own words (an MPI library of another ABI, say), or no memory
    except Exception as e:
        # not a refusal numba words for users (an assertion inside its parfor pass, say): a
        # defect of the code hpcad wrote or of numba, never of the kernel as written
        raise HpcadError(
            f"{where(fn.loc)}: numba failed inside its compiler on the code hpcad generated "
            f"for kernel '{fn.name.split('.')[0]}' ({type(e).__name__}: {e}); this is a "
            f"defect of hpcad or numba, not of your kernel: please report it with the "
            f"output of `hpcad show-code`; backend='interp' runs the kernel") from e


def _numba_reason(text: str) -> str:
    """numba's own sentence about what it refused, without its pipeline and file lines."""
    said = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("File "):
            break
        if line and not line.startswith(("Failed in", "No implementation")):
            said.append(line)
    return " ".join(said) or text.splitlines()[0]


class Buffers:
    """The tape and arena buffers of one compiled function, one set per call in flight. A
    call checks a set out and hands it back grown; a single-threaded caller gets the same
    set every call (no allocation on the hot path), concurrent calls each get their own (a
    new one when all are out), and every set stays for later calls: the function holds as
    many sets as it once had calls at the same time."""

    def __init__(self, slots: list):
        self.slots = slots
        self.idle = [self.empty()]   # (list.pop and list.append are atomic: no lock)

    def empty(self) -> tuple[np.ndarray, ...]:
        return tuple(np.empty(0, s.dtype.np_dtype) for s in self.slots)

    def take(self) -> tuple[np.ndarray, ...]:
        """A set of buffers for one call: an idle one, else a new one."""
        try:
            return self.idle.pop()
        except IndexError:
            return self.empty()

    def give(self, held: tuple[np.ndarray, ...]) -> None:
        """A set back after its call (grown by it, or as taken when the call failed)."""
        self.idle.append(held)

    @contextmanager
    def checkout(self):
        """A set of buffers for one call, as a one-element list: the call puts the grown
        set (the compiled code returns it) in its place."""
        held = [self.take()]
        try:
            yield held
        finally:
            self.give(held[0])

    def sets(self) -> list[tuple[np.ndarray, ...]]:
        """The sets not in use by a call now."""
        return list(self.idle)

    def release(self) -> None:
        """Drop every idle set's memory (the next call allocates again; a set given back
        by a call still running goes with the old list)."""
        self.idle = [self.empty()]


class Compiled:
    """One IR function compiled by numba; calling it runs it (buffers reused, per call in
    flight: Buffers)."""

    def __init__(self, fn: Function):
        self.comm_args = [k for k, a in enumerate(fn.args) if isinstance(a.type, OpaqueType)]
        self.lanes = lane_layout(fn)   # arrays of vectors: the caller's and the code's layout
        self.strided = {}      # the code's variants for arrays of vectors of any strides
        self.blocked: set[tuple[int, ...]] = set()   # those with blocked lane loops
        self.fn = fn if self.lanes is not None else None   # (their source is written then)
        self.where = f"{where(fn.loc)}: {fn.name}" if fn.loc else fn.name
        self.py_name = "".join(c if c.isalnum() else "_" for c in fn.name)
        with progress(2, f"hpcad: compiling {fn.name}") as steps:
            self.source, self.slots = generate(fn, self.py_name)
            steps.advance()
            # the source too: its error messages name kernel lines (faults.py)
            self._build(fn, cache.entry_key(print_function(fn) + self.source))
            steps.advance()

    def _build(self, fn: Function, key: str) -> None:
        """Everything after code generation: tape buffers, the numba signature, and the
        dispatcher (numba compiles the generated source, or loads it from the disk cache)."""
        self.n_results = len(fn.result_types)
        self.threading_layer = threads.start() if PARALLEL_DECORATOR in self.source else None
        self.turn = _WORKQUEUE if self.threading_layer == "workqueue" else None
        self.buffers = Buffers(self.slots)
        sig = tuple(_numba_type(a.type) for a in fn.args) + tuple(
            _numba_type(ArrayType(s.dtype, 1, "C")) for s in self.slots)
        self.mpi_handles = None
        if "mpi_handles" in self.source:
            from numba import types

            from . import mpi
            mpi.load_library()
            self.mpi_handles = mpi.handles()
            sig = sig + (types.Array(types.int64, 1, "C"),)
        # vector code (vector.py) takes the width and, inside parallel loops, the most threads
        # numba may run: run-time values (the cached code must not depend on the thread count)
        self.vector_args = ()
        header = next(line for line in self.source.splitlines()
                      if line.startswith(f"def {self.py_name}("))
        if "_lanes" in header:
            import numba
            from numba import types
            width = max(lanes(a.type) for a in fn.args + [r for r in fn.body.ops[-1].operands])
            self.vector_args = (width,) + ((numba.config.NUMBA_NUM_THREADS,)
                                           if "_nthreads" in header else ())
            sig = sig + (types.int64,) * len(self.vector_args)
        elif "_nthreads" in header:   # per-thread copies of adjoints (parallel.py)
            import numba
            from numba import types
            self.vector_args = (numba.config.NUMBA_NUM_THREADS,)
            sig = sig + (types.int64,)
        self.sig, self.entry_name = sig, f"{cache.short_name(self.py_name)}_{key}"
        with cache.entry(self.entry_name, self.source) as entry:
            module = entry.module(f"hpcad_cache_{key}")
            self.dispatcher = getattr(module, self.py_name)
            self.buffer_whats = getattr(module, "_BUFFERS", ())
            if not self.dispatcher.signatures:
                misses = self.dispatcher.stats.cache_misses.copy()
                with _refusals_reported(fn, self.py_name, entry.path, self.source):
                    self.dispatcher.compile(sig)
                compiled = self.dispatcher.stats.cache_misses != misses
                STATS["compiled" if compiled else "loaded"] += 1
        self.path = entry.path
        self.no_compiling()
        # no communicators, arrays of vectors, MPI handles or turn to wait for: exact calls
        self.direct = not (self.comm_args or self.lanes is not None
                           or self.mpi_handles is not None or self.turn is not None)
        self.plain = self.direct and not (self.slots or self.vector_args)   # nor buffers

    def no_compiling(self) -> None:
        """A call of the dispatcher with arguments of numba types it has no code for
        raises NoOverload rather than compiling (numba's dispatcher looks its
        `_compile_for_args` up on the instance), before running anything: callers that
        dispatch on numba's own type check (Kernel.__call__) take their full path then,
        and _run compiles for them. Its code for the arguments' exact types is found
        in C, with no conversion (numba converts only where it may not compile)."""
        self.dispatcher._compile_for_args = _no_overload

    @property
    def tapes(self) -> tuple[np.ndarray, ...]:
        """The buffers the next call from a single thread uses."""
        return self.buffers.sets()[-1]

    def held_bytes(self) -> tuple[int, int]:
        """(tape, arena) bytes of memory this function keeps between calls: the tape's
        buffers, and the arena of checkpoint snapshots (`mem.alloc {arena}`), less those
        in files (disk_bytes), summed over its sets of buffers (one per call that ran at
        the same time as others; Buffers)."""
        tape = arena = 0
        for buffers in self.buffers.sets():
            for s, t in zip(self.slots, buffers):
                if isinstance(s, TapeSlot):
                    tape += t.nbytes
                elif not file_backed(t):
                    arena += t.nbytes
        return tape, arena

    def disk_bytes(self) -> int:
        """Bytes of snapshots this function keeps in files (`mem.alloc {arena, disk}`)."""
        return sum(t.nbytes for buffers in self.buffers.sets() for t in buffers
                   if file_backed(t))

    def __call__(self, *args):
        """The results of fn for args (a tuple); on the hot path of every kernel and
        derivative call, so a plain function (no buffers, communicators, lanes or turn to
        wait for) calls its dispatcher and nothing else."""
        if self.plain:
            try:
                return self.dispatcher(*args)
            except NoOverload:   # (raised before the code ran: _run compiles and runs it)
                return self._run(args, ())
            except Exception as e:
                self.failed(e)
                raise
        if self.comm_args:
            from .mpi import comm_handle
            args = list(args)
            for k in self.comm_args:
                args[k] = comm_handle(args[k])
        if self.lanes is not None:   # arrays of vectors in the compiled code's layout
            given, args = args, list(args)
            back, strided = self.lanes.to_code(args)
            code = self.dispatcher
            if strided:
                if strided not in self.strided:
                    self.strided[strided] = self._compile_strided(strided)
                code = self.strided[strided]
                if code is None:        # numba takes these arrays contiguous only: copies
                    args = list(given)
                    back, _ = self.lanes.to_code(args, in_place=False)
                    code = self.dispatcher
            return self.lanes.to_caller(tuple(self._with_buffers(args, code)), back)
        return self._with_buffers(args)

    def exact(self, *args) -> tuple:
        """__call__ for arguments of the numba types of earlier calls; NoOverload, before
        anything runs, for others or where the function takes more than buffers
        (not `direct`)."""
        if self.plain:
            try:
                return self.dispatcher(*args)
            except NoOverload:
                raise
            except Exception as e:
                self.failed(e)
                raise
        if not self.direct:
            raise NoOverload
        idle = self.buffers.idle   # (Buffers.take and give, inline: a call each)
        try:
            held = idle.pop()
        except IndexError:
            held = self.buffers.empty()
        try:
            out = self.dispatcher(*args, *held, *self.vector_args)
        except BaseException as e:
            idle.append(held)
            if isinstance(e, Exception) and not isinstance(e, NoOverload):
                self.failed(e)
            raise
        idle.append(out[self.n_results:])
        return out[:self.n_results]

    def _compile_strided(self, strided: tuple[int, ...]):
        """The variant of the code that takes the arrays of vectors at positions `strided`
        with any strides (lane_layout.py: lanes first in the caller's memory, read in
        place), compiled on the first call that passes those so (most callers never do);
        None where numba refuses them strided (e.g. a reshape of one). Its source writes
        the lane loops that may be blocked so (vector.write_blocked: each lane streams
        its own run of the caller's memory); where none may, it is the contiguous
        variant's source, kept in the same disk cache entry (numba's index holds all).
        Called directly, not through a dispatcher, which would compile one more variant
        for each mix of C-contiguous and other strides; its arguments are those of the
        contiguous one, of the types the dispatcher checks there."""
        sig = tuple(t.copy(layout="A") if k in strided else t for k, t in enumerate(self.sig))
        source, _ = generate(self.fn, self.py_name, blocking=strided)
        if source != self.source:
            key = cache.entry_key(print_function(self.fn) + source)
            code = self._compile_variant(f"{cache.short_name(self.py_name)}_{key}", source,
                                         sig, key)
            if code is not None:
                self.blocked.add(strided)
                return code
        return self._compile_variant(self.entry_name, self.source, sig)

    def _compile_variant(self, name: str, source: str, sig: tuple, key: str | None = None):
        """The entry point of `source` (cache entry `name`; its module made afresh when
        `key` is given, else the contiguous variant's dispatcher) compiled for sig, None
        where numba refuses it."""
        from numba.core.errors import NumbaError

        from .numba_cache import EntryCache
        with cache.entry(name, source) as entry:
            dispatcher = self.dispatcher if key is None else \
                getattr(entry.module(f"hpcad_cache_{key}"), self.py_name)
            if entry.store is not None:
                dispatcher._cache = EntryCache(dispatcher.py_func, entry)
            misses = dispatcher.stats.cache_misses.copy()
            try:
                dispatcher.compile(sig)
            except NumbaError:
                return None
            STATS["compiled" if dispatcher.stats.cache_misses != misses else "loaded"] += 1
        return dispatcher.overloads[sig].entry_point

    def _with_buffers(self, args, code=None) -> tuple:
        """The results of a call with this function's tape and snapshot buffers, MPI handles
        and thread turn (none of them: straight to numba)."""
        if not self.slots and self.mpi_handles is None and self.turn is None:
            return self._run(args, (), code)
        held = self.buffers.take()
        try:
            buffers = held if self.mpi_handles is None else (*held, self.mpi_handles)
            if self.turn is None:
                out = self._run(args, buffers, code)
            else:
                with self.turn:
                    out = self._run(args, buffers, code)
            held = out[self.n_results:]
        finally:
            self.buffers.give(held)
        return out[:self.n_results]

    def _run(self, args, buffers, code=None) -> tuple:
        """The results of the dispatcher (or `code`, a variant of it) for args followed by
        buffers (and the vector width). Arguments of numba types the dispatcher has no
        code for (of this function's IR types still: a read-only or unaligned array, an
        F-ordered one) get code compiled for them, as numba's own dispatcher does."""
        try:
            try:
                return (code or self.dispatcher)(*args, *buffers, *self.vector_args)
            except NoOverload:
                full = (*args, *buffers, *self.vector_args)
                if code is None and self._take_as_compiled(full):
                    return self.dispatcher(*full)
                return type(self.dispatcher)._compile_for_args(self.dispatcher, *full)(*full)
        except Exception as e:
            self.failed(e)
            raise

    def _take_as_compiled(self, full: tuple) -> bool:
        """Whether the code compiled for the IR's signature takes these arguments: their
        numba types differ from it only in the layout of arrays it takes in any layout
        (a returned array's cotangent, for one, which callers pass C-contiguous). If so,
        the dispatcher is told to run that code for these types from now on, as numba's
        own does where it may not compile (a conversion), instead of compiling the whole
        function again for them."""
        from numba import types
        if self.sig not in self.dispatcher.overloads or len(full) != len(self.sig):
            return False
        given = tuple(self.dispatcher.typeof_pyval(a) for a in full)
        for g, t in zip(given, self.sig):
            if g != t and not (isinstance(g, types.Array) and isinstance(t, types.Array)
                               and t.layout == "A" and g.dtype == t.dtype
                               and g.ndim == t.ndim and g.mutable == t.mutable
                               and g.aligned == t.aligned):
                return False
        compiled = self.dispatcher.overloads[self.sig]
        self.dispatcher._insert([g._code for g in given], compiled.entry_point,
                                compiled.objectmode)
        return True

    def failed(self, e: Exception) -> None:
        """Raise the error of a failed call of the compiled code as hpcad reports it (a
        buffer that could not grow, an index out of bounds), else return (the caller
        raises e itself)."""
        if isinstance(e, BufferMemoryError) and len(e.args) == 3 and \
                isinstance(e.args[0], int):   # raised with the buffer's number (helpers.py)
            raise BufferMemoryError(self.buffer_whats[e.args[0]], *e.args[1:]) from None
        # numba's bounds check raises IndexError; inside a prange it surfaces as a
        # SystemError whose cause is that IndexError (faults.py raises hpcad's own)
        if isinstance(e, HpcadError) or not isinstance(e, (IndexError, SystemError)) or \
                not isinstance(e, IndexError) and not isinstance(e.__cause__, IndexError):
            return
        raise IndexOutOfBounds(
            f"{self.where}: an array index is out of bounds in the compiled code "
            f"({self.path.name}, checked because {cache.BOUNDSCHECK}=1); run the kernel "
            "with backend='interp' to see the index, the array's shape and its line") from e


def _no_overload(*args, **keywords):
    raise NoOverload


def compile_function(fn: Function) -> Compiled:
    return Compiled(fn)
