"""Derivative tests to call from your own test suite, in one process or under mpiexec:
`dot_test` (forward and reverse mode agree, <J v, w> = <v, J^T w>) and `taylor_test` (the
gradient's Taylor remainder shrinks at second order). Each rank draws random directions for
the arguments it holds; inner products are summed over the ranks, an output the same on every
rank (passes/replication.py, with the integers and shapes the call finds equal on every
rank, as ad.grad) counting once; arguments named in `params` (the same on every
rank, as for ad.grad) get the same direction on every rank. Both return their figures, or
raise DerivativeTestFailure (an AssertionError) with them; the figures are rank 0's,
broadcast, so every rank passes or fails alike."""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .api import check_negative_argnums, compared_arguments, copy_args, jvp, value_and_grad, vjp
from .errors import ArgumentError, DerivativeTestFailure
from .frontend.signature import typeof
from .ir.core import Op
from .ir.types import ArrayType, ScalarType
from .kernel import Kernel, as_kernel, check_written_apart
from .passes.replication import replication_types

__all__ = ["DerivativeTestFailure", "DotTestResult", "TaylorTestResult", "dot_test",
           "taylor_test"]

# arguments by position or name, one or several
Selection = int | str | Sequence[int | str]

# A Taylor remainder below ROUNDOFF * eps * (the loss's scale) is rounding error, not a
# remainder: its ratios say nothing about the order.
ROUNDOFF = 1e4


@dataclass(frozen=True)
class DotTestResult:
    """forward = <J v, w> (forward mode), reverse = <v, J^T w> (reverse mode), both summed
    over the ranks; relative_error = |forward - reverse| / max(|forward|, |reverse|)."""
    forward: float
    reverse: float
    relative_error: float
    rtol: float


@dataclass(frozen=True)
class TaylorTestResult:
    """remainders[k] = |f(x + h_k v) - f(x) - h_k <grad f(x), v>| for h_k = steps[k];
    rates[k] = log2(remainders[k] / remainders[k + 1]): 2 for a right gradient, 1 for a wrong
    one; NaN (not judged) where either remainder is below floor, the rounding error of f."""
    value: float
    slope: float
    steps: tuple[float, ...]
    remainders: tuple[float, ...]
    rates: tuple[float, ...]
    floor: float


@dataclass(frozen=True)
class _Setup:
    """A test's kernel, arguments, which of them it perturbs (nums) and with the same
    direction on every rank (shared), and the communicator (None in one process)."""
    kernel: Kernel
    args: tuple
    nums: tuple[int, ...]
    shared: frozenset[int]
    comm: object
    seed: int

    @property
    def rank(self) -> int:
        return 0 if self.comm is None else self.comm.rank

    def draws(self, purpose: int) -> tuple[np.random.Generator, np.random.Generator]:
        """Two random streams for one purpose (0: directions, 1: cotangents): the first the
        same on every rank, for shared draws, the second this rank's own."""
        return (np.random.default_rng((self.seed, purpose, 0)),
                np.random.default_rng((self.seed, purpose, 1 + self.rank)))

    def total(self, mine: float) -> float:
        """mine summed over the ranks, the same on every rank."""
        if self.comm is None:
            return mine
        return float(self.comm.bcast(self.comm.reduce(mine, root=0), root=0))


def dot_test(kernel: Callable[..., Any], args: Sequence[Any],
             argnums: Selection | None = None, *, params: Selection = (), seed: int = 0,
             rtol: float = 1e-10, comm: Any = None,
             backend: str | None = None) -> DotTestResult:
    """Check that forward and reverse mode are adjoint: <J v, w> (jvp) equals <v, J^T w>
    (vjp) to rtol, for random directions v of args[argnums] (default: every float argument)
    and random cotangents w of the kernel's float results. Collective under MPI."""
    s = _setup(kernel, args, argnums, params, comm, seed)
    directions = _directions(s)
    tangents = [directions.get(i) for i in range(len(s.args))]
    _, dots = jvp(s.kernel, _copies(s.args), tangents, backend=backend)
    out, pullback = vjp(s.kernel, *_copies(s.args), backend=backend)
    spec = s.kernel.specialize(s.args)
    outputs = _outputs(s, spec)
    results = tuple(out) if len(spec.primal.result_types) != 1 else (out,)
    dots = tuple(dots) if len(spec.primal.result_types) != 1 else (dots,)
    cotangents = _cotangents(s, outputs, results)
    adjoints = pullback(tuple(cotangents.values()) if len(results) != 1
                        else cotangents[0])
    forward = s.total(sum(_pair(dots[j], w) for j, w in cotangents.items()
                          if _counted_here(outputs[j])))
    reverse = s.total(sum(_pair(adjoints[i], v) for i, v in directions.items()))
    err = abs(forward - reverse) / max(abs(forward), abs(reverse), np.finfo(float).tiny)
    result = DotTestResult(forward, reverse, err, rtol)
    if not err <= rtol:   # (NaN fails too)
        raise DerivativeTestFailure(
            f"dot test of '{s.kernel.__name__}' failed: <J v, w> = {forward!r} (forward "
            f"mode) but <v, J^T w> = {reverse!r} (reverse mode), relative error {err:.2e} > "
            f"rtol {rtol:.1e}; one of its derivative rules is not the adjoint of the other "
            f"(a custom rule, or a bug to report)", result)
    return result


def taylor_test(kernel: Callable[..., Any], args: Sequence[Any],
                argnums: Selection | None = None, *, params: Selection = (),
                seed: int = 0, h: float = 1e-3, steps: int = 4, min_rate: float = 1.8,
                comm: Any = None, backend: str | None = None) -> TaylorTestResult:
    """Check the gradient of a kernel returning one float: along a random direction v,
    the remainder |f(x + h v) - f(x) - h <grad f(x), v>| must shrink at second order
    (rate >= min_rate) as h halves, `steps` times from h. f is the global loss: the sum of
    the ranks' results, or the result itself where it is the same on every rank."""
    if steps < 2:
        raise ArgumentError(f"taylor_test needs steps >= 2 to measure a rate, got {steps}")
    s = _setup(kernel, args, argnums, params, comm, seed)
    directions = _directions(s)
    positional, keywords = s.kernel.as_call(_copies(s.args))
    value, grads = value_and_grad(s.kernel, argnums=s.nums, backend=backend)(
        *positional, **keywords)
    spec = s.kernel.specialize(s.args)
    group = _outputs(s, spec)[0]
    slope = s.total(sum(_pair(g, directions[i]) for i, g in zip(s.nums, grads)))
    loss = _loss(s, group)
    base = loss(value)
    hs = tuple(h / 2.0 ** k for k in range(steps))
    values = [_run(s, spec, directions, step, backend) for step in hs]
    remainders = tuple(abs(loss(f) - base - step * slope) for f, step in zip(values, hs))
    floor = ROUNDOFF * _epsilon(s) * max(loss(abs(f)) for f in [value, *values])
    rates = tuple(math.log2(a / b) if min(a, b) > floor else math.nan
                  for a, b in zip(remainders, remainders[1:]))
    result = TaylorTestResult(base, slope, hs, remainders, rates, floor)
    checked = [r for r in rates if not math.isnan(r)]
    if any(r < min_rate for r in checked) or not all(map(math.isfinite, remainders)):
        table = "\n".join(f"  h = {step:.3e}  remainder = {r:.6e}" +
                          (f"  rate = {q:.3f}" if k < len(rates) else "")
                          for k, (step, r, q) in enumerate(zip(hs, remainders,
                                                               rates + (0.0,))))
        raise DerivativeTestFailure(
            f"Taylor test of '{s.kernel.__name__}' failed: the remainder |f(x + h v) - f(x) - "
            f"h <grad f, v>| shrinks at rate {min(checked, default=math.nan):.2f} < "
            f"{min_rate} as h halves (2 for a right gradient, 1 for a wrong one); f(x) = "
            f"{base!r}, <grad f, v> = {slope!r}:\n{table}", result)
    return result


# -- arguments and directions ----------------------------------------------------------------
def _setup(kernel, args, argnums, params, comm, seed: int) -> _Setup:
    k = as_kernel(kernel)
    if argnums is not None:   # before defaults fill the call (api.check_negative_argnums)
        check_negative_argnums(k, tuple(argnums) if isinstance(argnums, (list, range))
                               else argnums, len(args))
    args = k.bind_in_order(tuple(args))
    floats = tuple(i for i, (n, a) in enumerate(zip(k.arg_names, args)) if _is_float(a, n))
    nums = floats if argnums is None else _indices(k, argnums, "argnums")
    for i in nums:
        if i not in floats:
            raise ArgumentError(f"cannot perturb argument '{k.arg_names[i]}' of "
                                f"'{k.__name__}': it is not a float scalar or float array")
    shared = frozenset(_indices(k, params, "params"))
    spec = k.specialize(args)   # the call tested is the call made: f(u, u) writing u refused
    check_written_apart(k.__name__, k.arg_names, args, spec.written(spec.primal))
    comm = comm if comm is not None else _communicator(k, args)
    s = _Setup(k, args, nums, shared, comm, seed)
    _check_replicated(s)
    return s


def _is_float(a, name: str) -> bool:
    t = typeof(a, name)
    return isinstance(t, (ScalarType, ArrayType)) and \
        (t.is_float if isinstance(t, ScalarType) else t.dtype.is_float)


def _indices(k: Kernel, which, what: str) -> tuple[int, ...]:
    """Argument positions from an int, a name, or a tuple of them."""
    items = which if isinstance(which, (tuple, list, set, frozenset)) else (which,)
    out = []
    for item in items:
        if isinstance(item, str) and item in k.arg_names:
            out.append(k.arg_names.index(item))
        elif isinstance(item, int) and -len(k.arg_names) <= item < len(k.arg_names):
            out.append(item % len(k.arg_names))
        else:
            raise ArgumentError(f"{what}={which!r}: '{item}' is not an argument of "
                                f"'{k.__name__}' ({', '.join(k.arg_names)}); name arguments "
                                f"by position or name")
    return tuple(out)


def _communicator(k: Kernel, args: tuple):
    """The kernel's first communicator argument; COMM_WORLD for a kernel that calls MPI
    without one (numba-mpi); None for one that does not communicate."""
    if not k.specialize(args).communicates:
        return None
    from mpi4py import MPI
    return next((a for a in args if isinstance(a, MPI.Comm)), MPI.COMM_WORLD)


def _check_replicated(s: _Setup) -> None:
    """An argument named in params= (the same on every rank, as for ad.grad's params=) must be:
    perturbing it alike everywhere keeps it so."""
    if s.comm is None:
        return
    from mpi4py import MPI
    for i in sorted(s.shared):
        ours = np.asarray(s.args[i])
        theirs = s.comm.bcast(ours, root=0)
        same = ours.shape == np.shape(theirs) and bool(np.array_equal(ours, theirs))
        if not s.comm.allreduce(same, op=MPI.LAND):
            raise ArgumentError(f"argument '{s.kernel.arg_names[i]}' of "
                                f"'{s.kernel.__name__}' is named in params= but differs "
                                f"between ranks; pass the same value on every rank or leave "
                                f"it out of params=")


def _directions(s: _Setup) -> dict[int, object]:
    """A standard normal direction per perturbed argument: a float or an array of its shape."""
    shared, own = s.draws(0)
    out: dict[int, object] = {}
    for i in s.nums:
        rng, a = shared if i in s.shared else own, s.args[i]
        out[i] = rng.standard_normal(a.shape).astype(a.dtype) if isinstance(a, np.ndarray) \
            else float(rng.standard_normal())
    return out


def _copies(args: tuple) -> tuple:
    """Copies of the arrays of the same layout type (api._copy: a kernel's meaning can
    depend on whether an array is C-contiguous)."""
    return copy_args(args)


# -- outputs and inner products --------------------------------------------------------------
def _outputs(s: _Setup, spec) -> dict[int, Any]:
    """{result index: its group} for each float result: for a scalar the same on every rank
    of a communicator, that communicator (the value counts once per group of its ranks, as
    ad.grad seeds it: once in all for COMM_WORLD, once per group for one from Split); None
    for any other, and a returned array: this rank's part."""
    kinds = replication_types(spec.primal, *compared_arguments(s.kernel, s.args)).results
    out: dict[int, Any] = {}
    for j, (t, kind) in enumerate(zip(spec.primal.result_types, kinds)):
        if isinstance(t, ScalarType) and t.is_float:
            out[j] = _group(s, spec, kind.comm) \
                if kind.one_global_output and s.comm is not None else None
        elif isinstance(t, ArrayType) and t.dtype.is_float:
            out[j] = None
    if not out:
        raise ArgumentError(f"'{s.kernel.__name__}' returns no float value to test")
    return out


def _group(s: _Setup, spec, comm) -> Any:
    """The communicator object behind the IR value `comm`: an argument of the kernel, or
    COMM_WORLD (numba-mpi's calls)."""
    if comm in spec.primal.args:
        return s.args[spec.primal.args.index(comm)]
    from mpi4py import MPI
    return MPI.COMM_WORLD if isinstance(comm.owner, Op) and comm.owner.name == "mpi.world" \
        else s.comm


def _counted_here(group: Any) -> bool:
    """Whether this rank adds an output of this group into the global loss: every rank its
    own part; a replicated value only its group's first rank."""
    return group is None or group.Get_rank() == 0


def _cotangents(s: _Setup, outputs: dict[int, Any], results: tuple) -> dict[int, object]:
    """A random cotangent per float result, the same on every rank for a replicated one."""
    shared, own = s.draws(1)
    return {j: (own if g is None else shared).standard_normal(np.shape(results[j]))
            if np.ndim(results[j]) else float((own if g is None else shared).standard_normal())
            for j, g in outputs.items()}


def _pair(a, b) -> float:
    return float(np.sum(np.asarray(a, dtype=np.float64) * np.asarray(b, dtype=np.float64)))


def _loss(s: _Setup, group: Any):
    """The global loss from this rank's result (a collective under MPI)."""
    here = _counted_here(group)
    return lambda f: s.total(f if here else 0.0)


def _epsilon(s: _Setup) -> float:
    """The rounding unit of the least precise perturbed argument."""
    return max((float(np.finfo(s.args[i].dtype).eps) for i in s.nums
                if isinstance(s.args[i], np.ndarray)), default=float(np.finfo(float).eps))


def _run(s: _Setup, spec, directions: dict, step: float, backend: str | None) -> float:
    """The kernel's result at args + step * directions."""
    moved = list(_copies(s.args))
    for i, v in directions.items():
        a = moved[i]
        moved[i] = (a + step * v).astype(a.dtype) if isinstance(a, np.ndarray) \
            else type(a)(a + step * v)
    return float(s.kernel.run(spec.primal, moved, backend)[0])
