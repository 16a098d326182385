"""The compilation driver: `Kernel` (what `@hpcad.kernel` returns) specializes its Python
function per argument-type signature, optimizes the IR, builds derivative functions on
demand (cached by mode and activity) and runs them on a backend."""
from __future__ import annotations

import inspect
import weakref
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from .ad import nested
from .ad.custom import RuleCalls, written_arguments
from .ad.forward import forward
from .ad.reverse import reverse
from .backend import interp
from .checkpoint.budget import Choice
from .checkpoint.plan import STORE_ALL, Plan
from .checkpoint.planner import key_function
from .errors import ArgumentError, NoOverload, UnsupportedConstruct
from .frontend.lower import global_numbers, globals_changed, lower_kernel
from .frontend.markers import numba_python_function
from .frontend.signature import signature_of
from .ir.activity import CONST, SHADOW
from .ir.clone import clone_function
from .ir.core import Function, Module, walk
from .ir.types import ArrayType
from .ir.verifier import verify_function
from .mpi_job import collective
from .passes.activity import analyze
from .passes.branch_allocs import branch_allocations, hoist_branch_allocations
from .passes.extrema import rewrite_extrema
from .passes.pipeline import finish_derivative, optimize_module
from .passes.race import check_races, guard_parallel_starts, refuse_racing_derivative
from .passes.replication import (
    ReplicationTypes,
    assert_loops_run,
    refuse_mixed,
    replication_types,
)

BACKENDS = ("numba", "interp")
DEFAULT_BACKEND = "numba"


def _fingerprint_function():
    """numba's C typeof fingerprint of one argument (type, dtype, ndim, layout and
    writability of an array; the type of a scalar): the fast dispatch key's parts. Equal
    fingerprints give equal hpcad types (frontend/signature.py): typeof reads only an
    array's dtype name, ndim and C-contiguity and a scalar's type. It raises for values
    it has no fingerprint for (communicators), which then take the full path."""
    try:
        from numba._dispatcher import compute_fingerprint
        return compute_fingerprint
    except ImportError:   # (an unknown numba: every call takes the full path)
        def none(value):
            raise NotImplementedError
        return none


fingerprint = _fingerprint_function()


def overlap(a, b) -> bool:
    """Whether two arrays share memory: their extents meet (np.may_share_memory) and, for
    strided views, an element too (np.shares_memory, bounded work; too hard counts as
    shared), so that `z[::2]` and `z[1::2]` are apart."""
    if not np.may_share_memory(a, b):
        return False
    try:
        return bool(np.shares_memory(a, b, max_work=10_000))
    except np.exceptions.TooHardError:
        return True


def check_written_apart(name: str, arg_names, args, written) -> None:
    """Refuse a call in which an array the kernel writes (positions `written`) overlaps
    another argument (`f(u, u)` for `f(u, out)` writing `out`, or two overlapping slices of
    one array): hpcad compiles and differentiates array arguments as distinct buffers (it
    fuses loops and reuses loaded values across stores to other arguments, as Fortran
    compilers do), so the call would compute another function than the Python one. The same
    array passed twice and only read is fine."""
    for i in written:
        for j, b in enumerate(args):
            if j != i and isinstance(b, np.ndarray) and overlap(args[i], b):
                raise ArgumentError(
                    f"arrays '{arg_names[i]}' and '{arg_names[j]}' of kernel '{name}' overlap "
                    f"in memory and the kernel writes '{arg_names[i]}': hpcad compiles and "
                    f"differentiates array arguments as distinct buffers; pass a copy for one "
                    f"of them (e.g. {arg_names[j]}.copy()), or pass the array once and slice "
                    f"it inside the kernel")


def check_writable(name: str, arg_names, args, written) -> None:
    """Refuse a call that would write a read-only array (`x.setflags(write=False)`,
    `np.broadcast_to`): said by name, before numba's typing error or NumPy's."""
    for i in written:
        a = args[i]
        if isinstance(a, np.ndarray) and not a.flags.writeable:
            raise ArgumentError(f"kernel '{name}' writes its argument '{arg_names[i]}', which is "
                                f"a read-only array: pass a writable one "
                                f"({arg_names[i]}.copy())")


def check_backend(backend: str | None) -> str:
    backend = backend or DEFAULT_BACKEND
    if backend not in BACKENDS:
        raise ArgumentError(f"unknown backend '{backend}'; available: {', '.join(BACKENDS)}")
    return backend


@dataclass
class Specialization:
    """One kernel compiled for one tuple of argument types."""
    primal: Function
    arg_names: list[str]
    derivatives: dict = field(default_factory=dict)
    rules: RuleCalls | None = None   # calls to kernels with custom derivative rules
    constants: dict = field(default_factory=dict)   # activity -> without_dead_shadows
    writes: dict = field(default_factory=dict)   # id(function) -> (it, written positions)
    stale: bool = False   # its kernel's rules changed: fast calls must not use it (forget)
    replicated: dict = field(default_factory=dict)   # (params, uniform) -> replication types
    global_reads: tuple = ()   # the numbers read from module globals when it was lowered

    def global_outputs(self, params: tuple[int, ...],
                       uniform: tuple[int, ...]) -> tuple[bool, ...]:
        """Which results are one global output (passes/replication.py) with the arguments
        at `params` replicated and those at `uniform` of equal value or shape on every rank
        (once per pair)."""
        return tuple(r.one_global_output for r in self.replication(params, uniform).results)

    def replication(self, params: tuple[int, ...],
                    uniform: tuple[int, ...]) -> ReplicationTypes:
        """The primal's replication types (passes/replication.py), once per pair."""
        key = (params, uniform)
        got = self.replicated.get(key)
        if got is None:
            got = self.replicated[key] = replication_types(self.primal, params, uniform)
        return got

    def refuse_uncounted(self, params: tuple[int, ...], uniform: tuple[int, ...]) -> None:
        """A DifferentiationError where a float result's count in the global loss is
        unknown (values replicated over different communicators: passes/replication.py)."""
        refuse_mixed(self.replication(params, uniform), range(len(self.primal.result_types)))

    @cached_property
    def communicates(self) -> bool:
        """Whether the kernel calls MPI (then its derivative calls are collective)."""
        return any(op.dialect == "mpi" for op in walk(self.primal.body))

    @cached_property
    def call_key(self):
        """The function giving a call's key: what the checkpoint planner reads of the call
        (checkpoint/planner.py: key_function)."""
        return key_function(self.primal, self.rules is not None)

    def written(self, fn: Function) -> frozenset[int]:
        """Positions of fn's arguments that fn may write, through any alias
        (ad/custom.written_arguments), found once per function: this specialization's
        primal or one of its derivatives."""
        known = self.writes.get(id(fn))
        if known is None or known[0] is not fn:
            known = self.writes[id(fn)] = (fn, frozenset(written_arguments(fn)))
        return known[1]

    def without_dead_shadows(self, activity: tuple[str, ...]) -> tuple[str, ...]:
        """activity (reverse mode, result active) with SHADOW made CONST for each float array
        no active value can reach: the kernel never writes it (through any alias) and its
        alias class is not varied, so its shadow would stay zero and feed nothing; the
        derivative then takes no shadow for it. Kept as given for a kernel with custom
        rules or MPI calls (whose shadow groups decide otherwise: passes/activity.py)."""
        out = self.constants.get(activity)
        if out is None:
            out = activity
            if SHADOW in activity and self.rules is None and not self.communicates:
                primal = self.primal_for("reverse")
                act = analyze(primal, list(activity), True)
                written = set(written_arguments(primal))
                returned = {act.key(v) for v in primal.body.ops[-1].operands}
                out = tuple(CONST if kind == SHADOW and k not in written
                            and act.key(a) not in act.varied and act.key(a) not in returned
                            else kind for k, (a, kind) in enumerate(zip(primal.args, activity)))
            self.constants[activity] = out
        return out

    def primal_for(self, mode: str) -> Function:
        """The primal a derivative of this mode is built from: custom rules' calls for the
        mode, max/min reductions of parallel loops rewritten to reach the winner, for a
        reverse sweep the arrays of top-level ifs allocated before them
        (passes/branch_allocs.py)."""
        primal = self.primal if self.rules is None else self.rules.for_mode(mode)
        if any(op.name == "par.parallel_for" for op in walk(primal.body)):
            primal = clone_function(primal)
            rewrite_extrema(primal)   # max/min reductions: derivative to the winner
        if mode != "forward" and branch_allocations(primal):
            primal = clone_function(primal)
            hoist_branch_allocations(primal)   # arrays of top-level ifs: seen by the reverse
        return primal

    def derivative(self, mode: str, activity: tuple[str, ...], ret_active: bool,
                   plan: Plan = STORE_ALL, width: int = 1,
                   params: tuple[int, ...] = (), uniform: tuple[int, ...] = ()) -> Function:
        """The derivative function of this mode and activity, built once per plan shape:
        a checkpointed one takes its snapshot count at run time (checkpoint/plan.py), so a
        new problem size, whatever snapshot count it is planned with, reuses it. A reverse
        one sums the adjoints of the replicated parameters `params` over the ranks; the
        arguments at `uniform` have the same value or shape on every rank (ad/reverse.py)."""
        plan = plan.shape
        key = (mode, activity, ret_active, plan, width, params, uniform)
        fn = self.derivatives.get(key)
        if fn is None:
            primal = self.primal_for(mode)
            if mode == "hvp":   # forward over reverse (ad/hvp.py)
                from .ad.hvp import forward_over_reverse
                rev = self.derivative("reverse", activity, True, params=params,
                                      uniform=uniform)
                fn, _ = forward_over_reverse(rev, primal, activity)
                fn = finish_derivative(fn)
                self.derivatives[key] = fn
                return fn
            # results counted once only where loops run: the derivative asserts that they do
            checked = assert_loops_run(primal, replication_types(primal, params, uniform))
            if mode == "forward" and checked is primal and (params or uniform):
                fn = self.derivatives[key] = self.derivative(mode, activity, ret_active,
                                                             plan, width)
                return fn   # (a forward derivative sums nothing: params change nothing)
            primal = checked
            act = analyze(primal, list(activity), ret_active)
            refuse_racing_derivative(primal, act.shadowed)
            if mode == "forward":
                offset = nested.tape_offset(primal, width)
                fn = forward(primal, list(activity), act, self.rules, width, offset)
                nested.finish_forward(fn, offset)
            else:
                nested.refuse_reverse_over_tape(primal)
                fn = reverse(primal, list(activity), act, ret_active, plan, self.rules, width,
                             params, uniform)
            if self.rules is not None:
                fn = self.rules.inline(fn)
            fn = finish_derivative(fn)
            self.derivatives[key] = fn
        return fn


class _Setting:
    """A Kernel attribute that what it plans and keeps per call depends on (the backend,
    and the checkpointing policy the planner reads: checkpoint/planner.py): setting it
    drops that (Kernel.policies, and Kernel.calls, whose grad calls keep their plans).
    Kept in a plain attribute of its own, `_name` (a write to the instance's __dict__
    would make every attribute lookup of the kernel a dict lookup: +0.03 us a call)."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = "_" + name

    def __get__(self, k: Kernel | None, owner: type | None = None):
        return self if k is None else getattr(k, self.name)

    def __set__(self, k: Kernel, value) -> None:
        setattr(k, self.name, value)
        k.policies, k.calls, k.direct = {}, {}, no_direct


class Kernel:
    """A numba-style Python function that hpcad can run and differentiate."""
    __hpcad_kernel__ = True
    backend = _Setting()
    pinned, budget, intermediates, disk = _Setting(), _Setting(), _Setting(), _Setting()

    def __init__(self, py_func, backend: str | None = None, pinned: Plan | None = None,
                 budget: int | str | None = "auto", intermediates: str = "auto",
                 parallel: bool = False):
        self.py_func = py_func
        self.backend = backend
        self.parallel = parallel     # array statements as parallel loops (numba's parfors)
        # checkpointing (see hpcad.checkpoint and checkpoint/planner.py): a pinned plan, or
        # one chosen per call within the memory budget
        self.pinned = pinned
        self.intermediates = intermediates   # store or recompute them: checkpoint/cost.py
        self.budget = budget         # bytes, "auto" (HPCAD_MEMORY_BUDGET) or None
        self.disk = True             # snapshots may go to files (runtime/snapshots.py)
        self.policies: dict = {}     # tape and time-loop sizes per call shape (the planner's)
        self.last_policy: Choice | None = None   # the planner's last choice
        self.signature = inspect.signature(py_func)
        self.arg_names = list(self.signature.parameters)
        self.keyword_only = [q.name for q in self.signature.parameters.values()
                             if q.kind == q.KEYWORD_ONLY]
        self.specializations: dict[tuple, Specialization] = {}
        self.fresh: dict[tuple, Specialization] = {}   # for_types(current=True), when stale
        # the kernels whose specializations call this one's custom rules (inlined into
        # their derivatives): they forget theirs when these rules change (forget)
        self.dependents: weakref.WeakSet[Kernel] = weakref.WeakSet()
        self.compiled: dict[int, tuple] = {}   # id(IR function) -> (function, compiled code)
        # fast dispatch: (call site, argument fingerprints) -> a call that needs no checks
        # beyond the key (see __call__ and api.value_and_grad); cleared with a _Setting
        self.calls: dict[tuple, object] = {}
        # faster still: the last specialization's compiled code where numba's dispatcher
        # can check the types (direct_call)
        self.direct = no_direct
        self.__name__ = py_func.__name__
        self.__doc__ = py_func.__doc__

    def forget(self) -> None:
        """Drop every specialization (its derivatives are stale: the rules changed), and
        those of the kernels that call this one's rules (dependents), which inlined them."""
        for spec in [*self.specializations.values(), *self.fresh.values()]:
            spec.stale = True
        self.specializations.clear()
        self.fresh.clear()
        self.policies, self.calls, self.direct = {}, {}, no_direct
        dependents, self.dependents = list(self.dependents), weakref.WeakSet()
        for caller in dependents:
            caller.forget()

    def bind(self, args: tuple, keywords: dict | None = None) -> tuple:
        """The arguments of a call `f(*args, **keywords)` in parameter order with defaults
        filled in, bound as Python binds them (inspect.Signature.bind): a keyword-only
        parameter only by its keyword. An ArgumentError naming the argument if they don't
        fit."""
        try:
            bound = self.signature.bind(*args, **(keywords or {}))
        except TypeError as e:
            positional = len(self.arg_names) - len(self.keyword_only)
            if self.keyword_only and len(args) > positional:
                names = ", ".join(f"'{n}'" for n in self.keyword_only)
                raise ArgumentError(
                    f"kernel '{self.__name__}' takes {positional} positional arguments, "
                    f"{len(args)} given: {names} "
                    f"{'is' if len(self.keyword_only) == 1 else 'are'} keyword-only; pass "
                    f"{self.keyword_only[0]}=... by name") from None
            raise ArgumentError(f"kernel '{self.__name__}': {e}") from None
        bound.apply_defaults()
        return tuple(bound.arguments.values())

    def bind_in_order(self, args: tuple) -> tuple:
        """A tuple with one argument per parameter in parameter order, keyword-only ones
        included (what bind returns; jvp's and vjp's primals, autodiff's arguments), or
        fewer where defaults follow: bound again, defaults filled in."""
        n = len(self.arg_names)
        if len(args) > n:
            raise ArgumentError(f"kernel '{self.__name__}' takes {n} arguments "
                                f"({', '.join(self.arg_names)}), {len(args)} given")
        return self.bind(*self.as_call(args))

    def as_call(self, args: tuple) -> tuple[tuple, dict]:
        """Arguments in parameter order (one per parameter, keyword-only ones included, or
        fewer) as a Python call passes them: (positional ones, keyword-only ones by name),
        for `self(*pos, **keywords)` and the functions grad returns."""
        keywords = {q: a for q, a in zip(self.arg_names, args) if q in self.keyword_only}
        return tuple(a for q, a in zip(self.arg_names, args)
                     if q not in self.keyword_only), keywords

    def specialize(self, args: tuple) -> Specialization:
        return self.for_types(signature_of(args, self.arg_names))

    def for_types(self, types: tuple, current: bool = False) -> Specialization:
        """The specialization for argument types `types` (a kernel calling a derivative of
        this one knows only the types: frontend/nested.py). Lowering freezes the numbers
        the kernel reads from module globals; current: lowered with their values now,
        as a caller lowered now inlines the kernel's calls (the one kept for calls from
        Python stays frozen at its first lowering, as numba's)."""
        spec = self.specializations.get(types)
        if spec is not None and current and globals_changed(spec.global_reads):
            spec = self.fresh.get(types)
            if spec is not None and globals_changed(spec.global_reads):
                spec = None
            if spec is None:
                spec = self.fresh[types] = self._specialization(types)
        if spec is None:
            spec = self.specializations[types] = self._specialization(types)
        return spec

    def _specialization(self, types: tuple) -> Specialization:
        reads = global_numbers(self.py_func)
        module = self.lower(types)
        rules = RuleCalls(module) if module.rules else None   # before inlining
        for callee in [*module.rules.values(), *module.derived]:
            if callee is not self:
                callee.dependents.add(self)
        fn = optimize_module(module)
        guard_parallel_starts(fn)
        verify_function(fn)
        check_races(fn)
        return Specialization(fn, self.arg_names, rules=rules, global_reads=reads)

    def lower(self, types) -> Module:
        """This kernel's IR module for argument `types` (callees included)."""
        return lower_kernel(self.py_func, types, self.parallel)

    def run(self, fn: Function, args, backend: str | None = None) -> tuple:
        backend = check_backend(backend or self.backend)
        if backend == "interp":
            with collective(self, fn, args):
                return interp.run_function(fn, list(args))
        entry = self.compiled.get(id(fn))
        if entry is None:
            from .backend.numba import compile_function
            entry = self.compiled[id(fn)] = (fn, compile_function(fn))
        with collective(self, fn, args):
            return entry[1](*args)

    def __call__(self, *args, **keywords):
        if not keywords and not self.keyword_only:   # (else bind says how they may come)
            out = self.direct(args)   # (direct_call)
            if out is not MISS:
                return out
            try:   # a signature called before, as a key of fingerprints (fast_call)
                call = self.calls[(None, *map(fingerprint, args))]
            except Exception:   # a new one, or an argument without a fingerprint
                pass
            else:
                return call(args)
        bound = self.bind(args, keywords)
        spec = self.specialize(bound)
        written = spec.written(spec.primal)
        check_written_apart(self.__name__, self.arg_names, bound, written)
        check_writable(self.__name__, self.arg_names, bound, written)
        out = _unpack(self.run(spec.primal, bound))
        if not keywords and len(args) == len(self.arg_names):
            try:
                key = (None, *map(fingerprint, args))
            except Exception:   # an argument without a fingerprint: always the full path
                return out
            self.calls[key] = self.fast_call(spec)
            self.direct = self.direct_call(spec)
        return out

    def direct_call(self, spec: Specialization):
        """A call of spec's primal for the arguments of a call that took the full path,
        or MISS, where numba's dispatcher checks the arguments' types: its compiled
        code is plain (backend/numba Compiled.plain: no buffers, communicators, lanes or
        thread turn) and its dispatcher runs it only for arguments of the numba types of
        calls that reached it before (the full path's, of spec's IR types: equal numba
        types give equal IR types, frontend/signature.py), else raises NoOverload
        (Compiled.no_compiling). MISS for another number of arguments, an array it
        writes that may overlap another argument (fast_call checks it), where the
        compiled code was dropped or replaced (tests and benchmarks clear or wrap
        `compiled`), or another backend; the caller then takes fast_call's path."""
        fid, compiled = id(spec.primal), self.compiled
        entry = compiled.get(fid)
        if spec.communicates or check_backend(self.backend) != "numba" or entry is None \
                or not getattr(entry[1], "plain", False):
            return no_direct
        code, n, one = entry[1], len(self.arg_names), len(spec.primal.result_types) == 1
        dispatcher, may_share = code.dispatcher, np.may_share_memory
        arrays = [j for j, a in enumerate(spec.primal.args) if isinstance(a.type, ArrayType)]
        pairs = tuple((i, j) for i in spec.written(spec.primal) for j in arrays if j != i)

        def call(args):
            if len(args) != n or compiled.get(fid) is not entry:
                return MISS
            for i, j in pairs:   # a written array that may overlap another: fast_call says
                if may_share(args[i], args[j]):
                    return MISS
            try:
                out = dispatcher(*args)
            except NoOverload:
                return MISS
            except Exception as e:
                code.failed(e)
                raise
            return out[0] if one else _unpack(out)
        return call

    def fast_call(self, spec: Specialization):
        """A call of spec's primal for arguments of the key's types, doing what __call__'s
        full path does past binding and typing them: the check that an array it writes
        overlaps no other argument; a kernel that calls MPI keeps that path (its collective
        checks)."""
        fn, call = spec.primal, self.fast_run(spec)
        written = spec.written(fn)
        arrays = [j for j, a in enumerate(fn.args) if isinstance(a.type, ArrayType)]
        pairs = tuple((i, j) for i in written for j in arrays if j != i)
        if not pairs:
            return call
        name, arg_names, may_share = self.__name__, self.arg_names, np.may_share_memory

        def checked(args):
            for i, j in pairs:
                if may_share(args[i], args[j]):
                    check_written_apart(name, arg_names, args, written)
            return call(args)
        return checked

    def fast_run(self, spec: Specialization):
        """spec's primal run on the arguments; the compiled code is looked up every call
        (tests and benchmarks clear `compiled` to start afresh)."""
        fn, backend = spec.primal, check_backend(self.backend)
        if spec.communicates:
            return lambda args: _unpack(self.run(fn, args))
        if backend == "interp":
            return lambda args: _unpack(interp.run_function(fn, list(args)))
        compiled, fid = self.compiled, id(fn)

        def call(args):
            entry = compiled.get(fid)
            return _unpack(entry[1](*args) if entry is not None else self.run(fn, args))
        return call

    def __repr__(self) -> str:
        return f"<hpcad.kernel {self.__name__}>"


MISS = object()   # (direct_call: these arguments take another path)


def no_direct(args):
    return MISS


def _unpack(out: tuple):
    """A kernel's results as it returns them: None, one value, or a tuple."""
    if not out:
        return None
    return out[0] if len(out) == 1 else out


def kernel(fn=None, *, backend: str | None = None, parallel: bool = False):
    """Decorator: `@hpcad.kernel`, `@hpcad.kernel(backend="interp")`, or
    `@hpcad.kernel(parallel=True)`: whole-array statements and reductions run as parallel
    loops, like numba's `parallel=True`."""
    if backend is not None:
        check_backend(backend)
    if fn is None:
        return lambda f: kernel(f, backend=backend, parallel=parallel)
    py_func, parallel = _python_function(fn, parallel)
    return Kernel(py_func, backend, parallel=parallel)


def _python_function(fn, parallel: bool) -> tuple:
    """(the Python function, parallel) of a kernel made from fn: a `numba.njit` function's
    Python function, parallel where numba's was (`parallel=True`), else fn itself (not a
    ufunc or a built-in function)."""
    py_func = numba_python_function(fn)
    if py_func is None:
        if _numba_ufunc(fn) or isinstance(fn, np.ufunc) or inspect.isbuiltin(fn):
            raise UnsupportedConstruct(
                f"hpcad.kernel takes a Python function (def) or a numba.njit function, not "
                f"{_what_it_is(fn)}; "
                + ("write its scalar body as a function and loop over the elements in a "
                   "kernel (or use np.where for a choice per element)"
                   if _numba_ufunc(fn) else
                   "call it inside a kernel instead"))
        return fn, parallel
    return py_func, parallel or bool(getattr(fn, "targetoptions", {}).get("parallel"))


def _numba_ufunc(fn) -> bool:
    """Whether fn is a numba.vectorize or numba.guvectorize function."""
    return type(fn).__module__.startswith("numba.np.ufunc")


def _what_it_is(fn) -> str:
    """fn in the user's words: a numba ufunc, a NumPy ufunc or a built-in function."""
    name = getattr(fn, "__name__", type(fn).__name__)
    if _numba_ufunc(fn):
        return f"the numba.vectorize or guvectorize function {name!r}"
    if isinstance(fn, np.ufunc):
        return f"NumPy's ufunc {name!r}"
    return f"the built-in function {name!r}"


def as_kernel(f) -> Kernel:
    if isinstance(f, Kernel):
        return f
    if numba_python_function(f) is not None:
        py_func, parallel = _python_function(f, False)
        return Kernel(py_func, parallel=parallel)
    made = getattr(f, "__hpcad_derivative__", None)
    if made is not None:   # ad.grad(g): a Python function of *args, not a kernel
        name = made.kernel.__name__
        raise ArgumentError(
            f"expected a kernel, got the function ad.{made.transform}({name}) returns; to "
            f"differentiate a derivative, call it in a kernel (@hpcad.kernel def d_{name}"
            f"(...): return ad.{made.transform}({name}, argnums=...)(...)) and pass that "
            f"kernel (ad.hvp({name}) gives Hessian-vector products directly)")
    if callable(f) and hasattr(f, "__code__"):
        return Kernel(f)
    raise ArgumentError(f"expected a kernel (a function decorated with @hpcad.kernel), "
                        f"got {type(f).__name__}")
