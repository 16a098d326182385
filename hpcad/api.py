"""hpcad's public API (README.md, API): `grad`, `value_and_grad`, `vjp`, `jvp`, `jacobian`,
`autodiff` with Enzyme-style activities, and `check_grad`. Every argument problem is an
`ArgumentError` naming the argument before anything runs."""
from __future__ import annotations

import hashlib
import itertools
import os
import sys
import warnings
from dataclasses import replace

import numpy as np

from .ad.common import has_tangent
from .backend import interp
from .checkpoint.budget import env_budget, parse_bytes
from .checkpoint.cost import INTERMEDIATES
from .checkpoint.plan import STORE_ALL, Kind, Plan
from .checkpoint.planner import plan_call, reusable, run_time_args
from .errors import ArgumentError, GradientMismatch, HpcadWarning, NoOverload
from .frontend.nested import NestedDerivative
from .frontend.signature import typeof
from .ir.activity import ACTIVE, CONST, DUP, SHADOW
from .ir.core import walk
from .ir.types import ArrayType, ScalarType, spoken
from .kernel import (
    MISS,
    Kernel,
    as_kernel,
    check_backend,
    check_written_apart,
    fingerprint,
    no_direct,
)
from .mpi_job import watch
from .passes.replication import comparable_arguments, replication_types
from .passes.replication_notes import describe


class Const:
    """Activity: the argument is held constant (no derivative)."""


class Active:
    """Activity (reverse mode): a float scalar whose adjoint is returned."""


class Duplicated:
    """Activity: a float array followed by its shadow array."""


class DuplicatedNoNeed(Duplicated):
    """Activity: like Duplicated; the caller does not need the primal array's new value."""


class Dual:
    """Activity (forward mode): a float scalar followed by its tangent."""


_MARKERS = (Const, Active, Duplicated, DuplicatedNoNeed, Dual)
CHECK_PARAMS = "HPCAD_CHECK_PARAMS"   # 0: trust params= without comparing the ranks' values


# -- running derivative functions ----------------------------------------------------------
def _is_float_scalar(t) -> bool:
    return isinstance(t, ScalarType) and t.is_float


def _is_float_array(t) -> bool:
    return isinstance(t, ArrayType) and t.dtype.is_float


def _has_derivative(t) -> bool:
    """A result with a derivative: a float scalar, or a float array the kernel returns
    (seeded with a cotangent array in reverse mode, a tangent array in forward mode)."""
    return _is_float_scalar(t) or _is_float_array(t)


def _returns_array(spec) -> bool:
    return any(isinstance(t, ArrayType) for t in spec.primal.result_types)


def _structure(out: tuple, is_tuple: bool):
    if not out:
        return None
    return tuple(out) if is_tuple else out[0]


def _returns_tuple(spec) -> bool:
    return len(spec.primal.result_types) != 1


def _check_no_overlap(named_arrays) -> None:
    arrays = [(n, a) for n, a in named_arrays if isinstance(a, np.ndarray)]
    for i, (n1, a1) in enumerate(arrays):
        for n2, a2 in arrays[i + 1:]:
            if np.may_share_memory(a1, a2):
                raise ArgumentError(f"arrays '{n1}' and '{n2}' overlap in memory; hpcad assumes "
                                    f"array arguments and shadows are distinct buffers")


def _check_written_apart(k: Kernel, args, written) -> None:
    check_written_apart(k.__name__, k.arg_names, args, written)


def _check_shadow(name: str, primal, shadow, width: int = 1) -> None:
    if not isinstance(shadow, np.ndarray):
        raise ArgumentError(f"shadow of '{name}' must be a NumPy array, got "
                            f"{type(shadow).__name__}")
    if width != 1 and shadow.shape != (width,) + primal.shape:
        raise ArgumentError(f"shadow of '{name}' has shape {shadow.shape}, expected "
                            f"{(width,) + primal.shape}: width {width} directions of the "
                            f"shape of '{name}', {primal.shape}")
    if width == 1 and shadow.shape != primal.shape:
        raise ArgumentError(f"shadow of '{name}' has shape {shadow.shape}, expected "
                            f"{primal.shape} (the shape of '{name}')")
    if shadow.dtype != primal.dtype:
        raise ArgumentError(f"shadow of '{name}' has dtype {shadow.dtype}, expected "
                            f"{primal.dtype}")
    if not shadow.flags.writeable:
        raise ArgumentError(f"shadow of '{name}' is read-only; hpcad accumulates into shadows, "
                            f"pass a writable array")
    if primal.flags.c_contiguous and not (shadow.flags.c_contiguous or width > 1 and
                                          np.moveaxis(shadow, 0, -1).flags.c_contiguous):
        raise ArgumentError(f"shadow of '{name}' must be C-contiguous like '{name}'"
                            + (" (or lanes last: np.moveaxis(a, -1, 0) of a C-contiguous "
                               f"{primal.shape + (width,)} array a)" if width > 1 else ""))


def _direction(what: str, name: str, primal, given) -> np.ndarray:
    """`given`, a tangent (jvp) or direction (hvp) for the float array argument `name`, as
    an array of `primal`'s shape and real numbers. Its layout and writability do not matter
    (a Fortran-ordered, strided or read-only `np.broadcast_to` one is fine): the callers copy
    it into an array of their own."""
    got = np.asarray(given)
    if got.shape != primal.shape:
        raise ArgumentError(f"{what} for '{name}' has shape {got.shape}, expected "
                            f"{primal.shape} (the shape of '{name}')")
    if got.dtype.kind not in "biuf":
        raise ArgumentError(f"{what} for '{name}' has dtype {got.dtype}; pass real numbers")
    return got


def _reverse_call(k: Kernel, args, activity, shadows, seeds, backend, width: int = 1,
                  params: tuple[int, ...] = ()):
    """Run the adjoint of k. shadows: {arg index: array}; seeds: float per float result (a
    length-`width` array each when width > 1) or None for ret=Const. Returns (primal
    results, adjoints of ACTIVE args in order); those of the replicated parameters at
    positions `params` summed over the ranks (README, MPI)."""
    spec, fn, flat, _ = _reverse_setup(k, args, activity, shadows, seeds, width, params)
    out = k.run(fn, flat, backend)
    n = len(spec.primal.result_types)
    return out[:n], out[n:]


def _reverse_setup(k: Kernel, args, activity, shadows, seeds, width: int = 1,
                   params: tuple[int, ...] = (), fresh: bool = False):
    """_reverse_call's derivative and its flat arguments, and the plan: (spec, fn, flat,
    plan). fresh: the arguments the derivative writes are copies (grad: inputs are not
    modified; those it only reads are passed as they are)."""
    spec = k.specialize(args)
    params, uniform = _checked_params(k, spec, args, params)
    flat = _with_shadows(spec, args, activity, shadows)
    lead = len(flat)
    n_float = sum(1 for t in spec.primal.result_types if _has_derivative(t))
    if seeds is not None:
        if len(seeds) != n_float:
            raise ArgumentError(f"kernel '{k.__name__}' returns {n_float} float values; "
                                f"got {len(seeds)} seeds")
        flat.extend(seeds)
    if seeds is not None and spec.communicates:
        _warn_replicated_arrays(k, spec, params, uniform, _params_communicator(spec, args))
    plan = _plan_call(k, spec, tuple(activity), seeds is not None, args, flat)
    fn = spec.derivative("reverse", tuple(activity), seeds is not None, plan, width, params,
                         uniform)
    if fresh:
        written = _written(spec, fn, activity)
        args = tuple(_copy(a) if i in written else a for i, a in enumerate(args))
        flat = _with_shadows(spec, args, activity, shadows) + flat[lead:]
    if fn.run_args is not None:   # a checkpointed time loop: its snapshot count, ...
        flat.extend(run_time_args(fn.run_args, plan.snapshots, args))
    return spec, fn, flat, plan


def _written(spec, fn, activity) -> frozenset[int]:
    """Positions of k's arguments that the reverse derivative fn writes, from those of its
    flat arguments it writes (Specialization.written): each argument, then its shadow if
    any."""
    flat_of = []
    for i, (a, kind) in enumerate(zip(spec.primal.args, activity)):
        flat_of.append(i)
        if has_tangent(a, kind) and isinstance(a.type, ArrayType):
            flat_of.append(None)   # the shadow
    return frozenset(flat_of[j] for j in spec.written(fn)
                     if j < len(flat_of) and flat_of[j] is not None)


def _with_shadows(spec, args, activity, shadows) -> list:
    """The reverse derivative's leading arguments: each argument, followed by its shadow
    where it is an array that carries one."""
    flat = []
    for i, (a, kind) in enumerate(zip(args, activity)):
        flat.append(a)
        if has_tangent(spec.primal.args[i], kind) and isinstance(spec.primal.args[i].type,
                                                                 ArrayType):
            flat.append(shadows[i])
    return flat


def _plan_call(k: Kernel, spec, activity: tuple, ret_active: bool, args, flat) -> Plan:
    """The checkpointing plan for this call (checkpoint/planner.py); every rank of a kernel
    that calls MPI plans alike."""
    comm = _communicator(args) if spec.communicates else None
    if comm is not None:
        watch()     # a planning error that ends one rank aborts the job (hpcad/mpi_job.py)
    return plan_call(k, spec, activity, ret_active, args, flat, comm)


def _params_communicator(spec, args):
    """The communicator replicated parameters are the same over: the kernel's first
    communicator argument, else COMM_WORLD where it calls MPI; None for a kernel without
    one (then each rank's gradient is already complete: params= changes nothing)."""
    if not spec.communicates and "mpi4py.MPI" not in sys.modules:
        return None   # (no argument is a communicator where mpi4py is not loaded)
    from mpi4py import MPI
    comm = next((a for a in args if isinstance(a, MPI.Comm)), None)
    return comm if comm is not None or not spec.communicates else MPI.COMM_WORLD


def _checked_params(k: Kernel, spec, args,
                   params: tuple[int, ...]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(params, uniform) over the kernel's communicator (passes/replication.py), ((), ())
    without one: the declared `params`, once every rank is shown to hold the same values of
    them (HPCAD_CHECK_PARAMS=0 trusts the caller), and the positions of the other integer
    and boolean arguments whose values, and array arguments whose shapes, are the same on
    every rank (a trip count, a switch, a local size: not differentiable, they only steer
    which values are replicated; one that differs stays per-rank). One allgather per call
    compares both. Ranks whose declared values differ are an ArgumentError on every rank."""
    comm = _params_communicator(spec, args)
    if comm is None:
        return (), ()
    params, uniform = _compared_params(k, spec, args, params, comm)
    if spec.communicates:   # (a result counted in the global loss hpcad cannot tell how)
        spec.refuse_uncounted(params, uniform)
    return params, uniform


def _compared_params(k: Kernel, spec, args, params: tuple[int, ...],
                     comm) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """_checked_params's comparison over `comm`."""
    # (a kernel that calls no MPI has no collective per call to add: nothing to compare)
    candidates = comparable_arguments(spec.primal, params) if spec.communicates else ()
    alike = _same_ranks_communicators(comm, args)
    if comm.Get_size() == 1:
        return params, tuple(sorted(candidates + alike))
    check = params if os.environ.get(CHECK_PARAMS, "1").strip() != "0" else ()
    floats = tuple(n for n, a in enumerate(spec.primal.args) if spec.communicates and
                   n not in params and isinstance(a.type, ScalarType) and a.type.is_float)
    if not check and not candidates and not floats:
        return params, alike
    watch()
    counts = _counting_contents(spec, params, candidates)
    mine = (tuple(_digest(args[n]) for n in check),
            tuple(np.shape(args[n]) if isinstance(args[n], np.ndarray) else int(args[n])
                  for n in candidates) + tuple(float(args[n]) for n in floats)
            + tuple(_digest(args[n]) for n in counts))
    everyone = comm.allgather(mine)
    _refuse_differing(k, check, [d for d, _ in everyone], mine[0])
    # (ranks that called other kernels send other lengths: nothing is the same, and the
    # plan's check says what differs)
    same = [n for j, n in enumerate(candidates + floats)
            if all(len(v) == len(mine[1]) and v[j] == mine[1][j] for _, v in everyone)]
    uniform = tuple(sorted([n for n in same if n not in floats] + list(alike)))
    # integer arrays of the same contents everywhere count as declared (no derivative)
    at = len(candidates) + len(floats)
    params = tuple(sorted(params + tuple(
        n for j, n in enumerate(counts, at) if n in uniform
        and all(len(v) == len(mine[1]) and v[j] == mine[1][j] for _, v in everyone))))
    _warn_per_rank_floats(k, spec, params, uniform, tuple(n for n in same if n in floats))
    return params, uniform


def _counting_contents(spec, params: tuple[int, ...],
                       candidates: tuple[int, ...]) -> tuple[int, ...]:
    """Positions of the integer and boolean array arguments whose contents, the same on
    every rank, would make a result one value for all ranks (a v-form collective's counts
    and displacements passed as arguments: `Allgatherv(x, [buf, counts, displs, ...])`):
    a call compares them (a digest in its allgather) and, where they are equal, takes them
    as declared parameters. Only where declaring them changes how a result counts, so
    that index arrays that do not are not hashed at every call."""
    ints = tuple(n for n in candidates if isinstance(t := spec.primal.args[n].type, ArrayType)
                 and not t.dtype.is_float)
    if not ints:
        return ()
    base = spec.global_outputs(params, candidates)
    alt = spec.global_outputs(tuple(sorted(params + ints)), candidates)
    return ints if base != alt else ()


def _same_ranks_communicators(comm, args) -> tuple[int, ...]:
    """Positions of the communicator arguments after the first (`comm`) that hold the same
    processes (MPI.Comm.Compare: IDENT, CONGRUENT or SIMILAR; a local call), as a Cartesian
    communicator made from comm does: a value the same on every rank of one is the same on
    every rank of the other (passes/replication.py takes them as one communicator)."""
    from mpi4py import MPI
    same = (MPI.IDENT, MPI.CONGRUENT, MPI.SIMILAR)
    return tuple(n for n, a in enumerate(args) if isinstance(a, MPI.Comm) and a is not comm
                 and not a.Is_inter() and MPI.Comm.Compare(comm, a) in same)


def _warn_per_rank_floats(k: Kernel, spec, params: tuple[int, ...], uniform: tuple[int, ...],
                          floats: tuple[int, ...]) -> None:
    """An HpcadWarning where a result is per-rank (summed over the ranks) only because of
    float arguments, not compared (a float is per-rank unless declared in params=), that
    hold the same value on every rank in this call: the user may see that result as one
    value for all ranks. Names the floats it needs (all of them if none alone)."""
    if not floats:
        return
    def flips(extra: tuple[int, ...]) -> bool:
        base = spec.global_outputs(params, uniform)
        alt = spec.global_outputs(tuple(sorted(params + extra)), uniform)
        return any(b and not a for a, b in zip(base, alt, strict=True))
    if not flips(floats):
        return
    needed = [n for n in floats if not flips(tuple(m for m in floats if m != n))] or floats
    names = ", ".join(repr(k.arg_names[n]) for n in needed)
    warnings.warn(f"kernel '{k.__name__}': a result is each rank's part of a sum over the "
                  f"ranks (the global loss adds them up) because it depends on the float "
                  f"argument(s) {names}, which are per-rank unless declared; they hold the "
                  f"same value on every rank here, and declared the result would be one "
                  f"value for all ranks, counted once. If that is the loss you mean, pass "
                  f"params=({names},) (their gradients then come back summed over the "
                  f"ranks); README, MPI", HpcadWarning, stacklevel=_outside_hpcad())


def _warn_replicated_arrays(k: Kernel, spec, params: tuple[int, ...],
                            uniform: tuple[int, ...], comm) -> None:
    """An HpcadWarning where a cotangent is given for a returned float array that the
    replication types show to be the same on every rank: a returned array is each rank's
    part of the global loss, however it is made, so its cotangents are summed over the
    ranks, and the same cotangent on every rank gives `size` times the gradient of one loss
    of that array. (Only a returned float counts once where replicated: whether an array is
    replicated depends on how precisely the analysis follows its elements, and a result's
    meaning must not.)"""
    if comm is None or comm.Get_size() == 1:
        return
    kinds = spec.replication(params, uniform).results
    same = [j for j, (t, r) in enumerate(zip(spec.primal.result_types, kinds, strict=False))
            if isinstance(t, ArrayType) and t.dtype.is_float and r.one_global_output]
    if same:
        which = ", ".join(str(j) for j in same)
        warnings.warn(f"kernel '{k.__name__}' returns an array that is the same on every "
                      f"rank (result {which}); a returned array counts as each rank's own "
                      f"part of the global loss, so the cotangents given on the ranks are "
                      f"summed: the same cotangent on all {comm.Get_size()} ranks gives "
                      f"{comm.Get_size()} times the gradient of one loss of that array. Pass "
                      f"it on one rank (zeros on the others), or divided by the number of "
                      f"ranks; README, MPI", HpcadWarning, stacklevel=_outside_hpcad())


def _outside_hpcad() -> int:
    """warnings.warn's stacklevel, from its caller, of the first frame outside the
    hpcad package (the user's call)."""
    package = os.path.dirname(os.path.abspath(__file__))
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_code.co_filename.startswith(package):
        frame, level = frame.f_back, level + 1
    return level


def compared_arguments(k: Kernel, args) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(params, uniform) as a gradient call finds them without declared parameters: the
    integer arrays of the same contents on every rank, and the positions of k's integer and
    boolean arguments, and array arguments' shapes, that are the same on every rank
    (collective where k has a communicator): hpcad/testing.py counts k's results as
    ad.grad does."""
    return _checked_params(k, k.specialize(args), args, ())


def _refuse_differing(k: Kernel, params: tuple[int, ...], everyone: list, mine: tuple) -> None:
    """An ArgumentError naming the declared parameters whose digests differ between ranks."""
    differ = [k.arg_names[n] for j, n in enumerate(params)
              if any(d[j] != mine[j] for d in everyone)]
    if differ:
        holders: dict = {}
        for rank, d in enumerate(everyone):
            holders.setdefault(d, []).append(rank)
        groups = "; ".join(f"ranks {', '.join(map(str, r))}" for r in holders.values())
        raise ArgumentError(f"params= declares {', '.join(map(repr, differ))} of kernel "
                            f"'{k.__name__}' the same on every rank, but the ranks hold "
                            f"different values ({groups} agree among themselves): pass "
                            f"the same values everywhere (e.g. comm.Bcast them from one "
                            f"rank), or leave them out of params= to get each rank's share "
                            f"of their gradient")


def _digest(value) -> str:
    """A parameter's bits, dtype and shape, hashed (the same on two ranks iff equal)."""
    a = np.ascontiguousarray(value)
    text = f"{a.dtype.str}{a.shape}".encode() + a.tobytes()
    return hashlib.sha256(text).hexdigest()[:32]


def _param_positions(k: Kernel, params, args) -> tuple[int, ...]:
    """params= (argument names or positions, one or a tuple) as sorted positions: numbers
    or number arrays, not communicators."""
    given = params if isinstance(params, (tuple, list)) else (params,)
    out = set()
    for p in given:
        if isinstance(p, str) and p in k.arg_names:
            n = k.arg_names.index(p)
        elif isinstance(p, int) and not isinstance(p, bool) and -len(args) <= p < len(args):
            n = p % len(args)
        else:
            raise ArgumentError(f"params={params!r}: {p!r} is not an argument of kernel "
                                f"'{k.__name__}' ({', '.join(k.arg_names)}); name the "
                                f"replicated parameters or give their positions")
        t = typeof(args[n], k.arg_names[n])
        if not isinstance(t, (ScalarType, ArrayType)):
            raise ArgumentError(f"params=: argument '{k.arg_names[n]}' is {spoken(t)}; only "
                                f"numbers and arrays can be replicated parameters")
        out.add(n)
    return tuple(sorted(out))


def _communicator(args):
    """The communicator a kernel that calls MPI runs on: its first, else COMM_WORLD (as
    numba-mpi's calls)."""
    from mpi4py import MPI
    return next((a for a in args if isinstance(a, MPI.Comm)), MPI.COMM_WORLD)


def _forward_call(k: Kernel, args, activity, tangents, backend, width: int = 1,
                  same: tuple = ((), ())):
    """Run the tangent function of k. tangents: {arg index: tangent} (`width` directions
    each); `same`: (params, uniform) where the caller counts the results by their
    replication types (passes/replication.py), which the derivative then checks.
    Returns (primal results, tangents of float results)."""
    spec = k.specialize(args)
    fn = spec.derivative("forward", tuple(activity), True, width=width, params=same[0],
                         uniform=same[1])
    flat = []
    for i, (a, kind) in enumerate(zip(args, activity)):
        flat.append(a)
        if has_tangent(spec.primal.args[i], kind):
            flat.append(tangents[i])
    out = k.run(fn, flat, backend)
    n = len(spec.primal.result_types)
    return out[:n], out[n:]


# -- Enzyme-style in-place interface ---------------------------------------------------------
def autodiff(f, mode: str = "reverse", activity=(), ret=Active, width: int = 1,
             backend: str | None = None):
    """The in-place derivative of kernel f (README.md, API): reverse
    `df(u, du, alpha, n, seed=1.0) -> (primal_ret, dalpha)`, forward
    `df(u, u_dot, alpha, alpha_dot, n) -> (primal_ret, ret_dot)`. With width=W > 1 every
    shadow has shape (W, *primal.shape), Dual tangents, seeds, returned adjoints and
    tangents are length-W arrays (a scalar seed applies to all W directions). A returned
    float array is seeded with an array of its shape and its tangent is one ((W, *shape)
    at width W). A kernel that returns nothing takes no seed."""
    k = as_kernel(f)
    check_backend(backend)
    activity = tuple(activity)
    width = _check_autodiff(k, mode, activity, ret, width)
    n_flat = sum(2 if a in (Duplicated, DuplicatedNoNeed, Dual) else 1 for a in activity)

    def df(*flat, seed=None):
        if len(flat) != n_flat:
            layout = ", ".join(f"{n}, d_{n}" if a in (Duplicated, DuplicatedNoNeed, Dual) else n
                               for n, a in zip(k.arg_names, activity))
            raise ArgumentError(f"derivative of '{k.__name__}' takes {n_flat} arguments "
                                f"({layout}), got {len(flat)}")
        args, inner, shadows, named = _split_flat(k, activity, flat, width)
        _check_no_overlap(named)
        args = k.bind_in_order(tuple(args))
        spec = k.specialize(args)
        as_tuple = _returns_tuple(spec)
        if mode == "forward":
            out, dots = _forward_call(k, args, inner, shadows, backend, width)
            return _structure(out, as_tuple), _float_structure(spec, dots, as_tuple, width)
        seeds = None
        if ret is Active:
            given = 1.0 if seed is None and spec.primal.result_types else seed
            seeds = _seeds(k, spec, given, as_tuple, width)
        out, adjoints = _reverse_call(k, args, inner, shadows, seeds, backend, width)
        return (_structure(out, as_tuple),) + tuple(_lanes(g, width) for g in adjoints)

    df.__name__ = f"d_{k.__name__}"
    return df


def _check_autodiff(k, mode: str, activity: tuple, ret, width) -> int:
    """autodiff's arguments checked before anything runs; returns the width as an int."""
    if mode not in ("reverse", "forward"):
        raise ArgumentError(f"mode must be 'reverse' or 'forward', got {mode!r}")
    if not isinstance(width, (int, np.integer)) or isinstance(width, bool) or width < 1:
        raise ArgumentError(f"width must be a positive int (the number of directions each "
                            f"shadow carries), got {width!r}")
    if len(activity) != len(k.arg_names):
        raise ArgumentError(f"kernel '{k.__name__}' has {len(k.arg_names)} arguments "
                            f"({', '.join(k.arg_names)}) but {len(activity)} activities "
                            f"were given")
    allowed = (Const, Active, Duplicated, DuplicatedNoNeed) if mode == "reverse" else \
        (Const, Dual, Duplicated, DuplicatedNoNeed)
    for name, a in zip(k.arg_names, activity):
        if a not in allowed:
            hint = " (use Dual in forward mode)" if a is Active else \
                " (use Active in reverse mode)" if a is Dual else ""
            raise ArgumentError(f"activity of '{name}' is {getattr(a, '__name__', a)!r}, not "
                                f"one of {', '.join(m.__name__ for m in allowed)}{hint}")
    if ret not in (Active, Const):
        raise ArgumentError("ret must be hpcad.Active or hpcad.Const")
    return int(width)


def _split_flat(k, activity: tuple, flat: tuple, width: int):
    """The in-place derivative's flat arguments -> (primal args, inner activities, shadows
    by argument index, (name, array) pairs that must not overlap), each checked."""
    args, inner, shadows, named = [], [], {}, []
    pos = 0
    for i, (name, a) in enumerate(zip(k.arg_names, activity)):
        primal = flat[pos]
        t = typeof(primal, name)
        args.append(primal)
        named.append((name, primal))
        pos += 1
        if a is Const:
            inner.append(CONST)
        elif a in (Active, Dual):
            if not _is_float_scalar(t):
                raise ArgumentError(f"argument '{name}' is {a.__name__} but is not a float "
                                    f"scalar ({spoken(t)}); arrays are Duplicated")
            inner.append(ACTIVE)
        else:
            if not _is_float_array(t):
                raise ArgumentError(f"argument '{name}' is {a.__name__} but is not a float "
                                    f"array ({spoken(t)})")
            inner.append(DUP)
        if a in (Duplicated, DuplicatedNoNeed, Dual):
            shadow = flat[pos]
            pos += 1
            if a is Dual:
                shadows[i] = _dual_tangent(name, primal, shadow, width)
            else:
                _check_shadow(name, primal, shadow, width)
                shadows[i] = shadow
                named.append((f"d_{name}", shadow))
    return args, inner, shadows, named


def _seeds(k, spec, seed, as_tuple, width: int = 1, out=None, what: str = "seed"):
    """The seeds of k's float results from the caller's `seed` (`what`: "seed", autodiff's,
    or "cotangent", vjp_fn's): a float per float scalar, a cotangent array per float array
    (of the shape of that result in `out`, the primal results, when given; else the
    derivative checks it when it runs: ad/reverse.py); a kernel that returns nothing takes
    none (seed None or ()). A tuple seeds the float results of a tuple, or every result with
    None for those that are not float (as jvp returns their tangents)."""
    types = spec.primal.result_types
    n_float = sum(1 for t in types if _has_derivative(t))
    if not types:
        if seed is not None and not (isinstance(seed, (tuple, list)) and not seed):
            raise ArgumentError(f"kernel '{k.__name__}' returns nothing, so there is nothing "
                                f"to seed: leave seed out (got seed={seed!r})")
        return []
    if as_tuple:
        if isinstance(seed, (tuple, list)) and len(seed) == len(types) != n_float and all(
                s is None for s, t in zip(seed, types) if not _has_derivative(t)):
            seed = [s for s, t in zip(seed, types) if _has_derivative(t)]
        if not isinstance(seed, (tuple, list)) or len(seed) != n_float:
            form = f"seed=(s1, ..., s{n_float})" if what == "seed" else \
                f"a tuple of {n_float} cotangent{'s' * (n_float != 1)}"
            others = "" if n_float == len(types) else \
                ", or one per result with None for the others"
            got = f"a tuple of {len(seed)}" if isinstance(seed, (tuple, list)) else \
                type(seed).__name__
            raise ArgumentError(f"kernel '{k.__name__}' returns a tuple of {len(types)} "
                                f"({', '.join(spoken(t) for t in types)}) with {n_float} float "
                                f"value{'s' * (n_float != 1)}: pass {form}, one per float "
                                f"result{others} (got {got})")
    elif n_float == 0:
        raise ArgumentError(f"kernel '{k.__name__}' returns no float value to seed; use "
                            f"ret=hpcad.Const")
    seeds = list(seed) if as_tuple else [seed]
    floats = [(j, t) for j, t in enumerate(spec.primal.result_types) if _has_derivative(t)]
    return [_array_seed(k, j, t, s, width, None if out is None else out[j].shape)
            if isinstance(t, ArrayType) else _seed(s, width)
            for (j, t), s in zip(floats, seeds)]


def _array_seed(k, j: int, t: ArrayType, seed, width: int, shape: tuple | None):
    """The cotangent of k's array result j (of type t; of `shape` where known): a float
    array of its rank (its shape) and dtype, at width W one per direction, (W, *shape)."""
    lead = () if width == 1 else (width,)
    got = np.asarray(seed) if isinstance(seed, (np.ndarray, list, tuple)) else None
    if got is None or got.dtype.kind not in "fi" or got.ndim != len(lead) + t.ndim or \
            got.shape[:len(lead)] != lead or shape is not None and got.shape != lead + shape:
        want = f"shape {lead + shape}" if shape is not None else \
            f"{len(lead) + t.ndim} dimensions" + (f", the first of length {width}" if lead
                                                  else "")
        what = f"an array of shape {got.shape} and dtype {got.dtype}" if got is not None \
            else type(seed).__name__
        raise ArgumentError(f"kernel '{k.__name__}' returns {spoken(t)} as result {j}; "
                            f"its cotangent must be a float array of {want}, got {what}")
    return np.array(got, dtype=t.dtype.np_dtype)


def _real(value, what: str) -> float:
    """`value`, a derivative direction or cotangent of a float scalar, as a float; an
    ArgumentError where it is not one real number."""
    if np.ndim(value) != 0 or np.asarray(value).dtype.kind not in "biuf":
        got = f"an array of shape {np.shape(value)} and dtype {np.asarray(value).dtype}" \
            if isinstance(value, np.ndarray) else f"{type(value).__name__} {value!r:.60}"
        raise ArgumentError(f"{what} must be one real number, got {got}")
    return float(value)


def _seed(s, width: int):
    """One result's seed: a float, or at width W a length-W array (a float applies to all)."""
    if width == 1:
        return _real(s, "the cotangent of a float result")
    got = np.asarray(s, dtype=np.float64)
    if got.shape not in ((), (width,)):
        raise ArgumentError(f"a seed at width {width} is a float or a length-{width} array, "
                            f"got shape {got.shape}")
    return np.array(np.broadcast_to(got, (width,)))


def _dual_tangent(name: str, primal, tangent, width: int):
    """A Dual scalar's tangent: a float, or at width W a length-W float array."""
    if width == 1:
        if not isinstance(tangent, (float, int, np.floating)):
            raise ArgumentError(f"tangent of '{name}' must be a float")
        return type(primal)(tangent) if isinstance(primal, np.floating) else float(tangent)
    dtype = primal.dtype if isinstance(primal, np.floating) else np.float64
    got = np.asarray(tangent)
    if got.shape != (width,) or got.dtype.kind not in "fi":
        raise ArgumentError(f"tangent of '{name}' at width {width} must be a float array of "
                            f"shape ({width},), got {type(tangent).__name__} of shape "
                            f"{got.shape}")
    return np.array(got, dtype=dtype)


def _lanes(value, width: int):
    """A derivative of a scalar as returned: a float at width 1, else its W lanes."""
    if width == 1:
        return value
    return np.array(np.broadcast_to(np.asarray(value), (width,)))


def _float_structure(spec, values, as_tuple, width: int = 1):
    """Derivatives come back only for float results (scalars as `_lanes`, arrays as they
    are); put None where a result is not float."""
    it = iter(values)
    full = [None if not _has_derivative(t) else next(it) if isinstance(t, ArrayType) else
            _lanes(next(it), width) for t in spec.primal.result_types]
    return _structure(tuple(full), as_tuple)


# -- functional interface --------------------------------------------------------------------
def copy_args(args):
    return tuple(_copy(a) if isinstance(a, np.ndarray) else a for a in args)


def _copy(a: np.ndarray) -> np.ndarray:
    """A copy of the caller's array of the same layout type: C-contiguous where `a` is, and
    not C-contiguous where `a` is not, since a kernel's meaning can depend on it (`a.ravel()`
    and `a.reshape(...)` are views of a C-contiguous array and copies of any other, as in
    NumPy). `a.copy()` would make every copy C-contiguous."""
    if a.flags.c_contiguous:
        return a.copy()
    out = a.copy(order="K")     # an F-contiguous array stays one
    if out.flags.c_contiguous:  # a strided view: a copy with a gap after each element
        out = np.empty(a.shape + (2,), a.dtype)[..., 0]
        out[...] = a
    return out


def float_kinds(k, args, wanted):
    """Internal activities: wanted float args active (arrays duplicated); other float arrays
    get a zero shadow (in case they receive active values); the rest constant."""
    kinds = []
    for i, (name, a) in enumerate(zip(k.arg_names, args)):
        t = typeof(a, name)
        if _is_float_array(t):
            kinds.append(DUP if i in wanted else SHADOW)
        elif _is_float_scalar(t) and i in wanted:
            kinds.append(ACTIVE)
        else:
            kinds.append(CONST)
    return kinds


def _copy_written(spec, fn, flat: list, given: set[int]) -> list:
    """flat, fn's arguments, with a copy of each caller's array (at a position in `given`)
    that fn (a derivative of spec's) may write: inputs stay as they were given."""
    written = spec.written(fn) & given
    return [_copy(a) if i in written and isinstance(a, np.ndarray) else a
            for i, a in enumerate(flat)]


def _zero_shadows(args, kinds):
    return {i: np.zeros_like(a) for i, (a, kind) in enumerate(zip(args, kinds))
            if kind in (DUP, SHADOW)}


def _normalize_argnums(k, argnums, args):
    nums = argnums if isinstance(argnums, tuple) else (argnums,)
    if not nums:
        raise ArgumentError(f"argnums=() names no argument of kernel '{k.__name__}' to "
                            f"differentiate; give a position, or a tuple of them")
    for n in nums:
        if not isinstance(n, int) or isinstance(n, bool):
            raise ArgumentError(f"argnums {argnums!r}: argument positions are ints (0 for "
                                f"'{k.arg_names[0]}' of kernel '{k.__name__}'), or a tuple "
                                f"of them")
        if not -len(args) <= n < len(args):
            raise ArgumentError(f"argnums {argnums!r} out of range for kernel "
                                f"'{k.__name__}' with {len(args)} arguments")
    nums = tuple(n % len(args) for n in nums)
    for n in nums:
        t = typeof(args[n], k.arg_names[n])
        if not (_is_float_scalar(t) or _is_float_array(t)):
            raise ArgumentError(f"cannot differentiate with respect to '{k.arg_names[n]}': it "
                                f"is {spoken(t)}, not a float scalar or float array"
                                + _hinted("; {}", _float_hint(args[n], k.arg_names[n])))
    return nums


def _argnums_given(argnums):
    """argnums as given, in the form the transformations read: a list (or other sequence)
    of positions as a tuple and NumPy integers as ints, as JAX takes them; anything else
    unchanged (_normalize_argnums says what is wrong with it)."""
    if isinstance(argnums, (list, range)):
        argnums = tuple(argnums)
    if isinstance(argnums, tuple):
        return tuple(int(n) if isinstance(n, np.integer) else n for n in argnums)
    return int(argnums) if isinstance(argnums, np.integer) else argnums


def _negative(argnums) -> bool:
    """Whether argnums holds a negative position (check_negative_argnums)."""
    nums = argnums if isinstance(argnums, tuple) else (argnums,)
    return any(isinstance(n, int) and n < 0 for n in nums)


def check_negative_argnums(k, argnums, given: int) -> None:
    """(Also hpcad.testing's.) A negative position in argnums counts from the end of the
    kernel's parameters; JAX
    counts it from the end of the positional arguments passed. Where a call passes fewer
    positionally (`given`) than the kernel has parameters (the rest by keyword or default)
    the two differ: refused, never guessed."""
    n = len(k.arg_names)
    if given == n or not _negative(argnums):
        return
    nums = argnums if isinstance(argnums, tuple) else (argnums,)
    first = next(m for m in nums if isinstance(m, int) and m < 0)
    if first < -n:   # (out of range: _normalize_argnums says so)
        return
    ours = k.arg_names[first % n]
    theirs = k.arg_names[first % given] if -given <= first < 0 and given else "none"
    raise ArgumentError(f"argnums {argnums!r}: a negative position counts from the end of "
                        f"kernel '{k.__name__}''s {n} parameters ({', '.join(k.arg_names)}), "
                        f"but this call passes {given} of them positionally and the rest by "
                        f"keyword or default, so {first} could mean '{ours}' (the parameter) "
                        f"or '{theirs}' (the positional argument): give argnums as positions "
                        f"from the start (0 for '{k.arg_names[0]}')")


def _float_hint(value, name: str) -> str:
    """What to pass instead of an integer where a derivative is asked for ("" if nothing)."""
    if isinstance(value, (bool, np.bool_)):
        return ""
    if isinstance(value, (int, np.integer)):
        return f"pass it as a float ({name}={float(value)!r}, not {value!r})"
    if isinstance(value, np.ndarray) and value.dtype.kind in "iu":
        return f"pass a float array ({name}.astype(np.float64))"
    return ""


def _hinted(form: str, hint: str) -> str:
    return form.format(hint) if hint else ""


def value_and_grad(f, argnums=0, backend: str | None = None, params=()):
    """-> function returning (f(*args), d f / d args[argnums]). Under MPI, the arguments
    named in `params` (names or positions) are replicated parameters, the same on every
    rank: their gradients come back complete on every rank, summed over the ranks by one
    allreduce per call (README, MPI); the others' are each rank's share."""
    return _gradient_function(f, "value_and_grad", argnums, backend, params)


def grad(f, argnums=0, backend: str | None = None, params=()):
    """-> function returning d f / d args[argnums] (a tuple if argnums is a tuple); `params`
    as value_and_grad's."""
    return _gradient_function(f, "grad", argnums, backend, params)


def _gradient_function(f, transform: str, argnums, backend, params):
    """value_and_grad's or grad's function (transform): a call with arguments whose
    fingerprints an earlier call had takes the _GradCall that call kept."""
    k = as_kernel(f)
    argnums = _argnums_given(argnums)
    site = _call_site(transform, argnums, backend, params)

    last = [no_direct]   # the direct call of the _GradCall that ran last (_GradCall.direct)
    n_params = len(k.arg_names)
    negative = _negative(argnums)

    def gradient_fn(*args, **keywords):
        if negative:
            check_negative_argnums(k, argnums, len(args))
        if keywords or k.keyword_only or len(args) != n_params:   # in parameter order
            args = k.bind(args, keywords)   # (argnums count parameters), defaults filled in
        out = last[0](args)
        if out is not MISS:
            return out
        try:   # a signature called before (_GradCall)
            call = k.calls[(site, *map(fingerprint, args))]
        except Exception:   # a new one, or an argument without a fingerprint
            call = None
        if call is None:   # (outside the except: its errors come without the KeyError)
            return _value_and_grad(k, args, argnums, backend, params, site, transform)
        last[0] = call.direct
        return call(args)

    gradient_fn.__hpcad_derivative__ = NestedDerivative(k, transform, argnums)
    return gradient_fn


def _value_and_grad(k: Kernel, given: tuple, argnums, backend, params, site, transform):
    """value_and_grad's (or grad's) full path: every check, then (where the key fixes all
    it decided) a _GradCall in k.calls for the next call with arguments of these types.
    Copies only the arguments the derivative writes; a float array not differentiated gets
    no shadow where no active value reaches it (Specialization.without_dead_shadows)."""
    args = k.bind_in_order(given)
    nums = _normalize_argnums(k, argnums, args)
    replicated = _param_positions(k, params, args)
    spec = k.specialize(args)
    _check_scalar_result(k, spec, "grad")
    _check_written_apart(k, args, spec.written(spec.primal))
    kinds = spec.without_dead_shadows(tuple(float_kinds(k, args, set(nums))))
    shadows = _zero_shadows(args, kinds)
    spec, fn, flat, plan = _reverse_setup(k, args, kinds, shadows, [1.0], params=replicated,
                                          fresh=True)
    out = k.run(fn, flat, backend)
    n = len(spec.primal.result_types)
    result = _GradResult(kinds, nums, isinstance(argnums, tuple), transform == "grad")
    key = _key(site, given) if len(given) == len(k.arg_names) else None
    if key is not None and not spec.communicates:
        k.calls[key] = _GradCall(k, spec, kinds, fn, check_backend(backend or k.backend),
                                 result, lambda a: _value_and_grad(k, a, argnums, backend,
                                                                   params, site, transform),
                                 key[1:])
    return result.pick(out[0], out[n:], shadows)


def _key(site, args):
    """The fast dispatch key of args at a call site (Kernel.calls), or None where there is
    none (a site that cannot be a key, an argument without a fingerprint)."""
    if site is None:
        return None
    try:
        return (site, *map(fingerprint, args))
    except Exception:
        return None


_SITES: dict = {}   # (transformation, argnums, backend, params) -> a small number


def _call_site(*config):
    """A number for one configuration of a transformation, the first part of its fast
    dispatch keys in Kernel.calls (never None, the kernel's own call); None where the
    configuration cannot be a key (it then always takes the full path)."""
    try:
        return _SITES.setdefault(config, len(_SITES) + 1)
    except TypeError:   # (e.g. params given as a list)
        return None


def _plan_fixed(k: Kernel, spec, kinds, fn) -> bool:
    """Whether every later call with arguments of these types gets fn's plan: a kernel
    without a pinned plan or budget of its own whose store-all derivative keeps no tape
    (its estimated bytes, 0, fit any budget, and no segments can keep a tape in cache:
    checkpoint/planner.py). Else the plan is kept per call key."""
    if k.pinned is not None or k.budget != "auto":
        return False
    store_all = spec.derivative("reverse", tuple(kinds), True,
                                replace(STORE_ALL, intermediates=k.intermediates))
    return fn is store_all and not any(op.name == "tape.push" for op in walk(fn.body))


class _GradResult:
    """Where value_and_grad's gradients come from: the shadows of DUP arguments, the
    scalar adjoints of ACTIVE ones (in argument order among the results); grad's without
    the value (alone)."""

    def __init__(self, kinds, nums, as_tuple: bool, alone: bool = False):
        adjoint = {i: j for j, i in enumerate(i for i, kind in enumerate(kinds)
                                               if kind == ACTIVE)}
        self.picks = tuple((kinds[n] == DUP, n if kinds[n] == DUP else adjoint[n])
                           for n in nums)
        self.as_tuple, self.alone = as_tuple, alone
        # pick written out as a lambda of the picks (on every grad call: a loop over them
        # costs twice as much)
        g = [f"shadows[{j}]" if is_shadow else f"float(adjoints[{j}])"
             for is_shadow, j in self.picks]
        g_text = f"({', '.join(g)},)" if as_tuple else g[0]
        self.pick = eval(f"lambda value, adjoints, shadows: "
                         f"{g_text if alone else f'(value, {g_text})'}")


class _GradCall:
    """value_and_grad for arguments of one key: what the full path decided for them, kept
    (argument checks, activity, which arguments get shadows), so that a call allocates
    the shadows, copies the arguments the derivative writes and runs it. The plan (its
    derivative, the arguments that writes, its run-time arguments, the policy) is kept
    once where the key fixes it (_plan_fixed), else per call key (what the planner reads
    of a call: checkpoint/planner.key_function), planned the first time as the full path
    plans; a plan that is not reusable (snapshots in files) is planned every call. It
    takes the full path where more can change: the kernel's rules changed (a stale
    specialization: another kernel that shares it forgot it) or its compiled code was
    dropped. (A new backend or checkpointing policy on the kernel drops its kept calls:
    kernel._Setting.) `direct` does the same without the key, where numba checks the
    types."""

    KEPT = 64   # plans kept (past these, a new call key starts the dict afresh)

    def __init__(self, k, spec, kinds, fn, backend, result, full, prints=()):
        self.k, self.spec, self.kinds, self.full = k, spec, kinds, full
        self.n = len(spec.primal.result_types)
        # per argument with a shadow, last first (the flat arguments are the arguments, the
        # seed, and each shadow inserted after its argument): its position and the dtype of
        # its shadow (C-contiguous), or False (another layout: np.zeros_like keeps it)
        self.shadows = tuple((i, a.type.dtype.np_dtype if a.type.layout == "C" else False)
                             for i, (a, kind) in enumerate(zip(spec.primal.args, kinds))
                             if has_tangent(a, kind) and isinstance(a.type, ArrayType))[::-1]
        shadowed = {i for i, _ in self.shadows}
        places = itertools.accumulate((1 + (i in shadowed) for i in range(len(kinds))),
                                      initial=0)
        self.places = tuple(places)[:-1]   # where each argument is in the flat arguments
        self.fixed = (fn, self.copied(fn), (), k.last_policy) \
            if _plan_fixed(k, spec, kinds, fn) else None
        self.plans: dict[tuple, tuple] = {}   # call key -> a plan as self.fixed
        self.apart = tuple(spec.written(spec.primal))   # _check_written_apart's
        # the pairs it compares: a written array and another array argument (the key
        # fixes which arguments are arrays)
        self.pairs = tuple((i, j) for i in self.apart for j, a in enumerate(spec.primal.args)
                           if j != i and isinstance(a.type, ArrayType))
        self.backend, self.result = backend, result
        self.prints, self.calls = prints, k.calls   # (direct)
        if backend == "interp":   # (its types are checked by the key only)
            self.direct = no_direct

    def copied(self, fn) -> tuple[tuple[int, int], ...]:
        """(place in the flat arguments, position) of each argument fn writes (a copy of
        it is passed)."""
        return tuple((self.places[i], i) for i in sorted(_written(self.spec, fn, self.kinds)))

    def with_shadows(self, args) -> tuple[list, dict]:
        """The derivative's leading arguments (each shadowed argument followed by its new
        zero shadow, then the seed 1.0) and the shadows by argument position."""
        flat, shadows = [*args, 1.0], {}
        for i, dtype in self.shadows:
            s = shadows[i] = np.zeros(args[i].shape, dtype) if dtype is not False else \
                np.zeros_like(args[i])
            flat.insert(i + 1, s)
        return flat, shadows

    def __call__(self, args):
        k = self.k
        if self.spec.stale:
            return self.full(args)
        for i, j in self.pairs:
            if np.may_share_memory(args[i], args[j]):
                _check_written_apart(k, args, self.apart)
        flat, shadows = self.with_shadows(args)
        fn, copied, run_args, k.last_policy = self.fixed or \
            self.plans.get(self.spec.call_key(args)) or self.planned(args, flat)
        for place, i in copied:
            flat[place] = _copy(args[i])
        flat.extend(run_args)
        if self.backend == "interp":
            out = interp.run_function(fn, flat)
        else:
            entry = k.compiled.get(id(fn))
            if entry is None:
                return self.full(args)
            out = entry[1](*flat)
        return self.result.pick(out[0], out[self.n:], shadows)

    def direct(self, args):
        """__call__ for arguments whose key is not known, or MISS (the caller then finds
        the key): their numba types are checked by the compiled derivative's dispatcher
        before it runs anything (backend/numba Compiled.exact), and the fingerprints of
        those it writes (it gets copies) are compared with the key's. So MISS for
        another key, a plan not kept for this call key, overlapping arrays (the full
        path says what is wrong), the interpreter, compiled code dropped or replaced,
        or the kernel's rules or settings changed; what it does before the run reads
        the arguments and nothing else (any error there: MISS)."""
        k = self.k
        if self.spec.stale or k.calls is not self.calls:
            return MISS
        try:
            for i, j in self.pairs:
                if np.may_share_memory(args[i], args[j]):
                    return MISS
            flat, shadows = self.with_shadows(args)
            plan = self.fixed or self.plans.get(self.spec.call_key(args))
            if plan is None:
                return MISS
            fn, copied, run_args, policy = plan
            for place, i in copied:
                if fingerprint(args[i]) != self.prints[i]:
                    return MISS
                flat[place] = _copy(args[i])
            flat.extend(run_args)
            entry = k.compiled.get(id(fn))
            exact = entry[1].exact
        except Exception:
            return MISS
        try:
            out = exact(*flat)
        except NoOverload:
            return MISS
        k.last_policy = policy
        return self.result.pick(out[0], out[self.n:], shadows)

    def planned(self, args, flat) -> tuple:
        """The plan of this call, as self.fixed, where none is kept under its call key
        (flat: the derivative's leading arguments, which size its tape)."""
        k, spec, key = self.k, self.spec, self.spec.call_key(args)
        plan = _plan_call(k, spec, self.kinds, True, args, flat)
        fn = spec.derivative("reverse", self.kinds, True, plan)
        run_args = () if fn.run_args is None else \
            run_time_args(fn.run_args, plan.snapshots, args)
        made = (fn, self.copied(fn), run_args, k.last_policy)
        if reusable(plan):
            if len(self.plans) >= self.KEPT:
                self.plans.clear()
            self.plans[key] = made
        return made


def _check_scalar_result(k, spec, what: str) -> None:
    """grad, value_and_grad and hvp differentiate one float result."""
    types = spec.primal.result_types
    if len(types) == 1 and _is_float_scalar(types[0]):
        return
    got = f"({', '.join(map(str, types))})"
    if _returns_array(spec):
        raise ArgumentError(f"{what} needs kernel '{k.__name__}' to return one float, but it "
                            f"returns an array {got}: use hpcad.vjp(f, *args) and call its "
                            f"vjp_fn with a cotangent of the array's shape (or hpcad.jvp "
                            f"for a tangent of the array)")
    raise ArgumentError(f"{what} needs kernel '{k.__name__}' to return one float; it returns "
                        f"{got}; use vjp or jacobian")


def vjp(f, *primals, backend: str | None = None, params=()):
    """-> (f(*primals), vjp_fn); vjp_fn(cotangent) gives one entry per primal (None for
    constant arguments). The cotangent has one entry per float result (a tuple for a
    tuple, or one entry per result with None for those that are not float): a float, or
    an array of a returned array's shape. Inputs are never modified.
    `params` as value_and_grad's."""
    k = as_kernel(f)
    args = k.bind_in_order(primals)
    replicated = _param_positions(k, params, args)
    spec = k.specialize(args)
    _check_written_apart(k, args, spec.written(spec.primal))   # (read twice: fine)
    kinds = float_kinds(k, args, set(range(len(args))))
    as_tuple = _returns_tuple(spec)
    out = k.run(spec.primal, copy_args(args), backend)   # (an array result may be a view)
    frozen = copy_args(args)   # the point of linearization, whatever the caller does next

    def vjp_fn(cotangent):
        seeds = _seeds(k, spec, cotangent, as_tuple, out=out, what="cotangent")
        shadows = _zero_shadows(frozen, kinds)
        _, fn, flat, _ = _reverse_setup(k, frozen, kinds, shadows, seeds, params=replicated,
                                        fresh=True)   # copies what the derivative writes
        adjoints = k.run(fn, flat, backend)[len(spec.primal.result_types):]
        scalar_adj = iter(adjoints)
        result = []
        for i, kind in enumerate(kinds):
            if kind == DUP:
                result.append(shadows[i])
            elif kind == ACTIVE:
                result.append(float(next(scalar_adj)))
            else:
                result.append(None)
        return tuple(result)

    return _structure(out, as_tuple), vjp_fn


def jvp(f, primals, tangents, backend: str | None = None):
    """-> (f(*primals), tangent of the result along `tangents`)."""
    k = as_kernel(f)
    primals, tangents = tuple(primals), tuple(tangents)
    if len(tangents) != len(primals):
        raise ArgumentError(f"jvp: {len(primals)} primals but {len(tangents)} tangents; pass "
                            f"one tangent per primal (None for constant arguments)")
    args = k.bind_in_order(primals)
    spec = k.specialize(args)
    _check_written_apart(k, args, spec.written(spec.primal))
    args = copy_args(args)
    kinds, tans = [], {}
    for i, (name, a, t) in enumerate(zip(k.arg_names, args, tangents + (None,) * len(args))):
        ty = typeof(a, name)
        if t is None:
            if _is_float_array(ty):
                kinds.append(SHADOW)
                tans[i] = np.zeros_like(a)
            else:
                kinds.append(CONST)
        elif _is_float_array(ty):
            kinds.append(DUP)
            tans[i] = np.array(_direction("tangent", name, a, t), dtype=a.dtype,
                               order="C" if a.flags.c_contiguous else "K")
        elif _is_float_scalar(ty):
            kinds.append(ACTIVE)
            t = _real(t, f"jvp: the tangent of float '{name}'")
            tans[i] = type(a)(t) if isinstance(a, np.floating) else t
        else:
            raise ArgumentError(f"jvp: argument '{name}' is {ty}; its tangent must be None"
                                + _hinted(" (or {})", _float_hint(a, name)))
    _check_no_overlap(list(zip(k.arg_names, args)) + [(f"tangent {k.arg_names[i]}", t)
                                                      for i, t in tans.items()])
    spec = k.specialize(args)
    as_tuple = _returns_tuple(spec)
    out, dots = _forward_call(k, args, kinds, tans, backend)
    return _structure(out, as_tuple), _float_structure(spec, dots, as_tuple)


def jacobian(f, argnums=0, mode: str = "rev", batch=None, backend: str | None = None,
             params=()):
    """-> function returning the Jacobian of f's float result(s) w.r.t. args[argnums]: shape
    out_shape + in_shape, out_shape () for one result, (m,) for a tuple of m, the array's
    shape for one float array (not under MPI, not in a tuple). Rows (mode
    "rev") or columns ("fwd") come `batch` at a time from one batched derivative call
    (width = batch; default min(count, 8)). Under MPI each rank gets, in either mode, the
    derivatives of the global result(s) with respect to its own inputs (README's MPI
    section: a per-rank result is summed over the ranks, a replicated one counts once);
    `params` as value_and_grad's: with respect to a replicated parameter, the same on
    every rank, the complete derivative, on every rank."""
    k = as_kernel(f)
    argnums = _argnums_given(argnums)
    if mode not in ("rev", "fwd"):
        raise ArgumentError(f"jacobian mode must be 'rev' or 'fwd', got {mode!r}")
    if batch is not None and (not isinstance(batch, int) or isinstance(batch, bool)
                              or batch < 1):
        raise ArgumentError(f"jacobian batch must be a positive int, got {batch!r}")

    def jac(*args, **keywords):
        check_negative_argnums(k, argnums, len(args))
        args = k.bind(args, keywords)
        nums = _normalize_argnums(k, argnums, args)
        replicated = _param_positions(k, params, args)
        spec = k.specialize(args)
        _check_written_apart(k, args, spec.written(spec.primal))   # (read twice: fine)
        if _returns_array(spec):
            return _array_jacobian(k, spec, args, nums, mode, batch, backend, argnums)
        _check_float_results(k, spec)
        n_out = sum(1 for t in spec.primal.result_types if _is_float_scalar(t))
        as_tuple = _returns_tuple(spec)
        out_shape = (n_out,) if as_tuple else ()
        outs = [t.np_dtype for t in spec.primal.result_types if _is_float_scalar(t)]
        blocks = [np.zeros(out_shape + np.shape(args[n]), np.result_type(args[n], *outs))
                  for n in nums]
        fill = _jacobian_rows if mode == "rev" else _jacobian_columns
        fill(k, args, nums, blocks, n_out, as_tuple, batch, backend, replicated)
        return tuple(blocks) if isinstance(argnums, tuple) else blocks[0]

    return jac


def _check_float_results(k, spec) -> None:
    """jacobian of float scalars: every result a float (row j of the Jacobian is result j;
    an integer, a boolean or no result at all has no row to give)."""
    types = spec.primal.result_types
    if types and all(_is_float_scalar(t) for t in types):
        return
    got = f"({', '.join(map(str, types))})"
    raise ArgumentError(f"jacobian needs kernel '{k.__name__}' to return floats (one, a tuple "
                        f"of them, or one float array); it returns {got}, which has no "
                        f"derivative to give: return the float values only (or use "
                        f"hpcad.jvp, which gives None for a result that is not a float)")


def _array_jacobian(k, spec, args, nums, mode, batch, backend, argnums):
    """The Jacobian of a kernel returning one float array, of shape out_shape + in_shape:
    rows from W unit cotangents per reverse call, or columns from W unit tangents per
    forward call."""
    types = spec.primal.result_types
    if len(types) != 1 or not _is_float_array(types[0]) or spec.communicates:
        raise ArgumentError(f"jacobian of kernel '{k.__name__}', which returns "
                            f"({', '.join(map(str, types))}), is not supported: jacobian takes "
                            f"one float array (not in a tuple, not under MPI) or float "
                            f"scalars; use hpcad.vjp (one row per cotangent) or hpcad.jvp "
                            f"(one column per tangent)")
    out = k.run(spec.primal, copy_args(args), backend)[0]
    out_shape = out.shape
    m = int(np.prod(out_shape, dtype=int))
    blocks = []
    for n in nums:
        in_shape = np.shape(args[n])
        count = m if mode == "rev" else int(np.prod(in_shape, dtype=int))
        flat = np.zeros((m, int(np.prod(in_shape, dtype=int))),   # (grad's dtype, jvp's)
                        np.result_type(args[n], out.dtype))
        width, chunks = _chunks(count, batch)
        for chunk in chunks:
            units = list(enumerate(chunk))
            run = copy_args(args)
            if mode == "rev":
                kinds = float_kinds(k, run, {n})
                shadows = _zero_shadows_width(run, kinds, width)
                seed = _units(width, units, out_shape)
                _, adjoints = _reverse_call(k, run, kinds, shadows, [seed], backend, width)
                got = shadows[n] if kinds[n] == DUP else np.asarray(_lanes(adjoints[0], width))
                flat[list(chunk)] = got.reshape(width, -1)[:len(units)]
            else:
                kinds = float_kinds(k, run, {n})
                tangents = _zero_shadows_width(run, kinds, width, skip=n, lanes_last=True)
                tangents[n] = _units(width, units, in_shape, lanes_last=True)
                _, dots = _forward_call(k, run, kinds, tangents, backend, width)
                flat[:, list(chunk)] = dots[0].reshape(width, m)[:len(units)].T
        blocks.append(flat.reshape(out_shape + in_shape))
    return tuple(blocks) if isinstance(argnums, tuple) else blocks[0]


def _zero_shadows_width(args, kinds, width: int, skip=None, lanes_last=False) -> dict:
    """Zero shadows (width W: (W, *shape)) of the arrays that carry one, but `skip`; with
    lanes_last, in the memory layout forward derivatives read in place."""
    return {i: _zeros_width(width, a.shape, a.dtype, lanes_last)
            for i, (a, kind) in enumerate(zip(args, kinds))
            if kind in (DUP, SHADOW) and i != skip}


def _zeros_width(width: int, shape: tuple, dtype=np.float64, lanes_last=False):
    """Zeros of shape (W, *shape) ((*shape) at width 1). With lanes_last their memory
    is (*shape, W), the layout the numba backend's batched code reads in place
    (backend/numba/lane_layout.py): a forward Jacobian's tangents are not copied."""
    if width == 1:
        return np.zeros(shape, dtype)
    if lanes_last:
        return np.moveaxis(np.zeros(tuple(shape) + (width,), dtype), -1, 0)
    return np.zeros((width,) + tuple(shape), dtype)


def _chunks(count: int, batch) -> tuple[int, list[range]]:
    """The width and the ranges of `count` rows or columns, `batch` at a time (none for a
    count of 0: an argument or result of size 0). By default the width is the power of two
    at or above the count, at most 8: derivatives compiled for widths 1, 2, 4 and 8 serve
    every count (the lanes of a chunk past its entries carry zero directions), where one
    width per count would compile a derivative for each size of the arguments."""
    width = max(1, min(batch, count)) if batch else min(8, 1 << max(count - 1, 0).bit_length())
    return width, [range(lo, min(lo + width, count)) for lo in range(0, count, width)]


def _units(width: int, entries, shape: tuple, lanes_last=False):
    """For each (lane, j) of entries, lane holds the unit direction e_j (j a flat index
    into shape, 0 for a scalar): a width-W tangent or seed, the other lanes zero; width 1
    keeps plain shapes. lanes_last: as _zeros_width."""
    t = _zeros_width(width, shape, lanes_last=lanes_last) if width > 1 else np.zeros(shape)
    for lane, j in entries:
        t[(lane,) * (width > 1) + np.unravel_index(j, shape)] = 1.0
    return t if width > 1 or shape else float(t)


def _jacobian_rows(k, args, nums, blocks, n_out, as_tuple, batch, backend, params):
    """Reverse mode: W output rows per call, seeded with W unit cotangents; the adjoints of
    the replicated parameters `params` summed over the ranks (as grad's)."""
    kinds = float_kinds(k, args, set(nums))
    width, chunks = _chunks(max(n_out, 1), batch)
    for rows in chunks:
        run = copy_args(args)
        shadows = {i: np.zeros((width,) * (width > 1) + a.shape, a.dtype)
                   for i, (a, kind) in enumerate(zip(run, kinds)) if kind in (DUP, SHADOW)}
        seeds = [_units(width, [(lane, 0) for lane, r in enumerate(rows) if r == j], ())
                 for j in range(n_out)]
        _, adjoints = _reverse_call(k, run, kinds, shadows, seeds, backend, width, params)
        scalar = dict(zip([i for i, kind in enumerate(kinds) if kind == ACTIVE], adjoints))
        for blk, n in zip(blocks, nums):
            got = shadows[n] if kinds[n] == DUP else np.asarray(_lanes(scalar[n], width))
            got = got.reshape((width,) + np.shape(args[n]))
            for lane, row in enumerate(rows):
                blk[(row,) if as_tuple else ()] = got[lane]


def _jacobian_columns(k, args, nums, blocks, n_out, as_tuple, batch, backend, params):
    """Forward mode: W input columns per call, along W unit tangents. Under MPI each rank's
    arguments are its own inputs (a parameter passed to every rank too): a column is one
    entry on one rank, whose lane only that rank seeds; a replicated parameter's (declared
    in `params`, the same on every rank) is one entry moved on every rank at once. The
    global loss sums the per-rank results over the ranks and counts a replicated one once
    (passes/replication.py), so a per-rank result's tangents are summed over the ranks, a
    replicated one's is the same on all."""
    spec = k.specialize(args)
    comm = _communicator(args) if spec.communicates else None
    same = _checked_params(k, spec, args, params)   # (sizes the same on every rank)
    replicated = np.array([r.one_global_output for r, t in
                           zip(replication_types(spec.primal, *same).results,
                               spec.primal.result_types)
                           if _is_float_scalar(t)], dtype=bool).reshape(n_out, 1)
    rank = comm.rank if comm is not None else 0
    for blk, n in zip(blocks, nums):
        shape = np.shape(args[n])
        count = int(np.prod(shape, dtype=int))
        counts = comm.allgather(count) if comm is not None and n not in same[0] else [count]
        columns = [(r, j) for r, c in enumerate(counts) for j in range(c)]
        if comm is not None and n in same[0]:   # every rank moves the parameter
            columns = [(rank, j) for _, j in columns]
        width, chunks = _chunks(len(columns), batch)
        for chunk in chunks:
            mine = [(lane, columns[c][1]) for lane, c in enumerate(chunk)
                    if columns[c][0] == rank]
            run = copy_args(args)
            kinds = float_kinds(k, run, {n})
            tangents = {i: _zeros_width(width, a.shape, a.dtype, lanes_last=True)
                        for i, (a, kind) in enumerate(zip(run, kinds)) if kind == SHADOW}
            tangents[n] = _units(width, mine, shape, lanes_last=True)
            _, dots = _forward_call(k, run, kinds, tangents, backend, width,
                                    same if comm is not None else ((), ()))
            dots = np.asarray([_lanes(d, width) for d in dots],
                              dtype=np.float64).reshape(n_out, width)
            if comm is not None:
                dots = np.where(replicated, dots, comm.allreduce(dots))
            flat = blk.reshape(n_out if as_tuple else 1, -1)
            for lane, j in mine:
                flat[:, j] = dots[:, lane]


def hvp(f, argnums=0, backend: str | None = None, params=()):
    """-> function `hvp_fn(*args, v)` returning H v, the Hessian of f's float result w.r.t.
    args[argnums] times v (v shaped like that argument; a tuple of directions, and of
    results, when argnums is a tuple). Forward over reverse: the reverse derivative's IR,
    differentiated in forward mode, in one call. Inputs are not modified. Keyword arguments
    are taken as the kernel does (`hvp_fn(x, v, alpha=0.5)`: v is the last positional one).
    `params` as value_and_grad's: H v's entries for the replicated parameters come back
    complete on every rank (the tangent of their gradient's sum over the ranks)."""
    both = grad_and_hvp(f, argnums, backend, params)
    return lambda *args_and_v, **keywords: both(*args_and_v, **keywords)[2]


def grad_and_hvp(f, argnums=0, backend: str | None = None, params=()):
    """-> function `fn(*args, v)` returning (f(*args), gradient, H v), as value_and_grad and
    hvp give them, from ONE forward-over-reverse call: the reverse sweep that H v
    differentiates leaves the gradient in its shadows (k-means' Newton step needs both).
    `params` as value_and_grad's (for the gradient and H v alike)."""
    k = as_kernel(f)
    argnums = _argnums_given(argnums)

    def grad_and_hvp_fn(*args_and_v, **keywords):
        if not args_and_v:
            raise ArgumentError("hvp_fn(*args, v): the direction v comes last")
        *given, v = args_and_v
        check_negative_argnums(k, argnums, len(given))
        args = k.bind(tuple(given), keywords)
        nums = _normalize_argnums(k, argnums, args)
        replicated = _param_positions(k, params, args)
        if len(set(nums)) != len(nums):
            raise ArgumentError(f"hvp: argnums {argnums!r} names an argument twice; each "
                                f"direction moves one argument: name each argument once")
        if isinstance(argnums, tuple) and not isinstance(v, (tuple, list)) and \
                (np.ndim(v) == 0 or len(v) != len(nums)):
            raise ArgumentError(f"hvp with argnums={argnums!r} takes a tuple of directions, "
                                f"one per argument ({', '.join(k.arg_names[n] for n in nums)})"
                                f", as its last argument; got {type(v).__name__}")
        directions = v if isinstance(argnums, tuple) else (v,)
        if len(directions) != len(nums):
            raise ArgumentError(f"hvp: {len(nums)} arguments to differentiate but "
                                f"{len(directions)} directions")
        spec = k.specialize(args)
        _check_scalar_result(k, spec, "hvp")
        _check_written_apart(k, args, spec.written(spec.primal))
        _warn_unplanned(k)
        kinds = spec.without_dead_shadows(tuple(float_kinds(k, args, set(nums))))
        tangent = dict(zip(nums, directions))
        flat, adjoints, shadows, given_at = [], {}, {}, set()
        for i, (a, kind) in enumerate(zip(args, kinds)):
            given_at.add(len(flat))
            if kind == ACTIVE:
                flat += [a, _real(tangent[i], f"hvp: the direction for float "
                                             f"'{k.arg_names[i]}'")]
            elif kind in (DUP, SHADOW):
                t = np.zeros_like(a)
                if kind == DUP:
                    t[...] = _direction("direction", k.arg_names[i], a, tangent[i])
                adjoints[i] = np.zeros_like(a)  # the gradient on return
                shadows[i] = np.zeros_like(a)   # the shadow's tangent: H v on return
                flat += [a, t, adjoints[i], shadows[i]]
            else:
                flat.append(a)
        flat.append(1.0)   # the seed
        replicated, uniform = _checked_params(k, spec, args, replicated)
        fn = spec.derivative("hvp", kinds, True, params=replicated, uniform=uniform)
        out = k.run(fn, _copy_written(spec, fn, flat, given_at), backend)
        # results: the primal value, the scalar adjoints; then their tangents
        n_active = sum(1 for kind in kinds if kind == ACTIVE)
        scalar_adjoint, scalar_product = iter(out[1:1 + n_active]), iter(out[2 + n_active:])
        grads, products = {}, {}
        for i, kind in enumerate(kinds):
            if kind == ACTIVE:
                grads[i], products[i] = float(next(scalar_adjoint)), float(next(scalar_product))
            elif kind == DUP:
                grads[i], products[i] = adjoints[i], shadows[i]
        g = tuple(grads[n] for n in nums)
        hv = tuple(products[n] for n in nums)
        if not isinstance(argnums, tuple):
            g, hv = g[0], hv[0]
        return float(out[0]), g, hv

    return grad_and_hvp_fn


def _warn_unplanned(k: Kernel) -> None:
    """An HpcadWarning where the kernel's checkpointing policy (a snapshot count, a memory
    budget, HPCAD_MEMORY_BUDGET) would checkpoint or limit its reverse sweep: forward over
    reverse keeps the whole tape (and its tangents) whatever the policy; its results are the
    same, its memory is not bounded by the budget."""
    budget = env_budget() if k.budget == "auto" else k.budget
    pinned = k.pinned is not None and k.pinned.checkpoints
    if not pinned and budget is None:
        return
    policy = k.pinned.describe() if pinned and k.pinned is not None else \
        f"a memory budget of {budget} bytes"
    warnings.warn(f"hvp of '{k.__name__}': forward over reverse keeps the whole tape and its "
                  f"tangents; the kernel's checkpointing ({policy}) applies to reverse-mode "
                  f"calls (grad, vjp, jacobian) only, and the memory of this call is not "
                  f"bounded by it", HpcadWarning, stacklevel=_outside_hpcad())


def check_grad(f, *args, argnums=None, eps: float | None = None, rtol: float | None = None,
               backend: str | None = None) -> float:
    """Compare `grad` of f against central finite differences of f, the kernel run on the
    same backend (along every coordinate for small inputs, along 4 random directions for
    large ones); args one per parameter, in order. Returns the largest relative
    error; raises GradientMismatch if it exceeds rtol or a gradient entry or finite
    difference is NaN or inf. The step (eps, relative to the argument's largest magnitude)
    and rtol default to 1e-6 and 1e-6 where the arguments differentiated are float64, 1e-3
    and 1e-2 where one is float32 (whose rounding a step of 1e-6 would swamp); a perturbed
    argument keeps its dtype, and the gradient is paired with the step as rounded. An error is
    the difference of the two derivatives less what the result's rounding makes of a
    difference quotient (4 eps |f| over the step), relative to the larger of them."""
    k = as_kernel(f)
    given = len(args)
    args = k.bind_in_order(tuple(args))
    if argnums is None:
        argnums = tuple(i for i, (n, a) in enumerate(zip(k.arg_names, args))
                        if _is_float_scalar(typeof(a, n)) or _is_float_array(typeof(a, n)))
        if not argnums:
            raise ArgumentError(f"check_grad: kernel '{k.__name__}' has no float argument to "
                                f"differentiate ({', '.join(k.arg_names)}); pass floats or "
                                f"float arrays")
    argnums = _argnums_given(argnums)
    check_negative_argnums(k, argnums, given)
    argnums = _normalize_argnums(k, argnums, args)   # (positions from the start, a tuple)
    positional, keywords = k.as_call(args)
    grads = grad(k, argnums=argnums, backend=backend)(*positional, **keywords)
    single = any(np.result_type(args[n]) == np.float32 for n in argnums)
    eps = eps if eps is not None else (1e-3 if single else 1e-6)
    rtol = rtol if rtol is not None else (1e-2 if single else 1e-6)

    def value(at: list) -> float:
        """The kernel's result at `at`, on the backend of the gradient: the same function
        (hpcad's integer arithmetic, kernels called inside on overlapping views, keyword-only
        parameters), where the Python function would compute another."""
        return float(k.run(k.specialize(tuple(at)).primal, at, backend)[0])
    # the result's rounding: a difference quotient is off by about ulp(f) / h (more where the
    # kernel's own sums round), which an error need not go below
    dtype = k.specialize(args).primal.result_types[0].np_dtype
    rounding = float(np.finfo(dtype).eps) * abs(value(list(copy_args(args))))
    rng = np.random.default_rng(0)
    worst = 0.0
    for n, g in zip(argnums, grads):
        _check_finite(k, n, g, "gradient")
        size = np.size(args[n])
        directions = [np.eye(size)[j].reshape(np.shape(args[n])) for j in range(size)] \
            if size <= 32 else [rng.standard_normal(np.shape(args[n])) for _ in range(4)]
        for j, d in enumerate(directions):
            h = eps * max(1.0, float(np.max(np.abs(args[n]))))
            plus, minus = list(copy_args(args)), list(copy_args(args))
            if isinstance(args[n], np.ndarray):   # (in its dtype: the kernel as called)
                plus[n][...] = plus[n] + h * d    # (in the copies: their layout kept)
                minus[n][...] = minus[n] - h * d
                step = (plus[n].astype(np.float64) - minus[n]) / (2 * h)   # d, as rounded
            else:
                plus[n], minus[n] = float(plus[n] + h * d), float(minus[n] - h * d)
                step = d
            analytic = float(np.sum(np.asarray(g, dtype=np.float64) * step))
            numeric = (value(plus) - value(minus)) / (2 * h)
            _check_finite(k, n, numeric, f"finite difference along "
                          f"{'coordinate' if size <= 32 else 'random direction'} {j}")
            err = max(0.0, abs(analytic - numeric) - 4.0 * rounding / h) / \
                max(abs(analytic), abs(numeric), 1e-8)
            worst = max(worst, err)
            if err > rtol:
                raise GradientMismatch(
                    f"gradient of '{k.__name__}' w.r.t. '{k.arg_names[n]}' disagrees with "
                    f"finite differences: directional derivative {analytic!r} vs {numeric!r} "
                    f"(relative error {err:.2e} > rtol {rtol:.1e})")
    return worst


def _check_finite(k: Kernel, n: int, value, what: str) -> None:
    """NaN compares false with every tolerance: a non-finite value must fail loudly."""
    bad = ~np.isfinite(np.asarray(value, dtype=np.float64))
    if not bad.any():
        return
    entry = f" at index {tuple(int(i) for i in np.argwhere(bad)[0])}" if bad.ndim else ""
    raise GradientMismatch(f"the {what} of '{k.__name__}' w.r.t. '{k.arg_names[n]}' is not "
                           f"finite{entry} ({np.asarray(value)[bad].flat[0]!r}); check_grad "
                           f"cannot compare it")


def checkpoint(f, snapshots: int | str = "store_all", schedule: str = "segments",
               budget: int | str | None = None, intermediates: str | None = None,
               disk: bool = True):
    """The kernel f with a checkpointing policy for its reverse sweep. `snapshots=S` (an
    int) checkpoints the longest time loop with S snapshots of its state:
    schedule="segments" splits it into S segments whose tape is recomputed one at a time
    (tape / S, one more forward run); schedule="revolve" follows a binomial (revolve)
    schedule from checkpoint_schedules (the tape holds one step; more recomputation).
    "store_all" (the default) keeps every step's tape; "recompute_all" keeps the least
    (lean revolve with one snapshot: checkpoint/revolve.py). `budget` (bytes, or a string
    such as "500MB") picks, per call, the fastest of these whose estimated tape + snapshot
    bytes fit; "auto" (also `snapshots="auto"`) takes the budget from HPCAD_MEMORY_BUDGET,
    and when it is unset takes the fastest plan: segments that keep the tape in cache
    where the store-all tape outgrows the cache, else store-all (a kernel without
    hpcad.checkpoint does the same).
    `intermediates` says what the reverse sweep does with the values inside a step
    (checkpoint/cost.py): "auto" (the default) stores those that are expensive to recompute
    (libm calls, powers) and recomputes cheap ones where that saves tape; "recompute" saves
    the fewest bytes (also under "recompute_all", and when a budget needs it); "store"
    stores every float value the reverse sweep uses. Gradients are the same either way.
    Under a budget, revolve reverses each step from its restored state with no tape where
    the kernel allows it (a step that reads its state before overwriting it), and a budget
    below one copy of the state puts the snapshots in files (runtime/snapshots.py: in
    HPCAD_SNAPSHOT_DIR, default the temporary directory), unless `disk=False`;
    schedule="restart" asks for the no-tape revolve with `snapshots` snapshots."""
    k = as_kernel(f)
    if schedule not in ("segments", "revolve", "restart"):
        raise ArgumentError(f"checkpoint: schedule must be 'segments', 'revolve' or "
                            f"'restart', got {schedule!r}")
    pinned = Plan(Kind.SEGMENTS) if schedule == "segments" else \
        Plan(Kind.REVOLVE, restart=schedule == "restart")
    if intermediates not in (None, *INTERMEDIATES):
        raise ArgumentError(f"checkpoint: intermediates must be one of {INTERMEDIATES}, got "
                            f"{intermediates!r}")
    count = None
    if snapshots == "recompute_all":
        count, pinned = 1, Plan(Kind.REVOLVE, lean=True)   # the least memory
        intermediates = intermediates or "recompute"
    elif snapshots == "auto":
        budget = budget or "auto"
    elif isinstance(snapshots, int) and not isinstance(snapshots, bool) and snapshots >= 1:
        count = snapshots
    elif snapshots != "store_all":
        raise ArgumentError(f"checkpoint: snapshots must be a positive int, 'store_all', "
                            f"'recompute_all' or 'auto', got {snapshots!r}")
    if budget is not None and count is not None:
        raise ArgumentError("checkpoint: give either a snapshot count or a budget, not both")
    if budget is not None and budget != "auto":
        budget = parse_bytes(budget)
    intermediates = intermediates or k.intermediates
    pinned = replace(pinned, snapshots=count, intermediates=intermediates) if count else \
        replace(STORE_ALL, intermediates=intermediates) if budget is None else None
    out = Kernel(k.py_func, k.backend, pinned, budget, intermediates, k.parallel)
    out.disk = bool(disk)
    out.specializations = k.specializations if count is None else {}
    return out


def plan(f, *args, snapshots: int | None = None, budget: int | str | None = None,
         params=()) -> str:
    """What the reverse sweep of f (every float argument active) saves on the tape and what
    it recomputes, as text ending with a hash: the same on every rank, since every rank
    plans the same IR the same way. With a `budget` (or one the kernel carries), also the
    checkpointing it picks for these arguments and its estimated tape + snapshot bytes.
    A kernel with a communicator: first each argument's and result's replication type
    (`params` as value_and_grad's) and where the adjoint sums over the ranks."""
    k = as_kernel(f)
    args = k.bind_in_order(tuple(args))
    spec = k.specialize(args)
    kinds = tuple(float_kinds(k, args, set(range(len(args)))))
    replicated, uniform = _checked_params(k, spec, args, _param_positions(k, params, args))
    chosen, head = Plan(Kind.SEGMENTS, snapshots, intermediates=k.intermediates), ""
    if snapshots is None:
        if budget is not None:
            k = checkpoint(k, budget=budget, disk=k.disk)
        # the arrays stand in for their shadows: only their sizes matter to the estimate
        flat = _with_shadows(spec, args, kinds, args) + [1.0]
        chosen = _plan_call(k, spec, kinds, True, args, flat)
        if k.last_policy is not None:
            c = k.last_policy
            files = f" (and {c.disk} bytes of snapshots in files)" if c.disk else ""
            head = f"policy: {c.plan.describe()} ({c.reason}); estimated {c.estimate} bytes " \
                f"per rank{files}\n"
    fn = spec.derivative("reverse", kinds, True, chosen, params=replicated, uniform=uniform)
    if fn.run_args is not None:
        head += f"checkpointing: {chosen.describe()}\n"
    summed = [k.arg_names[n] for n in replicated if kinds[n] in (ACTIVE, DUP)]
    lines = describe(replication_types(spec.primal, replicated, uniform), k.arg_names, summed)
    text = head + "\n".join(lines + fn.plan) + "\n"
    return text + f"plan hash {hashlib.sha256(text.encode()).hexdigest()[:16]}\n"
