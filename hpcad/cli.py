"""The `hpcad` command: `hpcad show-ir FILE.py:FUNC --sig "float64[:], float64" [--grad|--fwd]`
prints a kernel's optimized IR or its derivative's (a kernel that communicates with its
replication types as comments); `hpcad show-code` the numba source; `hpcad plan` what the
reverse sweep stores and, under MPI, each argument's and result's replication and where the
adjoint reduces over the ranks; `hpcad doctor` checks the installation; `hpcad cache` says
what the compile cache holds and `hpcad cache clear [--older-than DAYS]` removes entries.
`--params a,b` declares replicated parameters (README, MPI). The command sees types, not
values: it takes integer arguments and array shapes as the same on every rank (as a run
does where they are: api.py compares them)."""
from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time
from pathlib import Path

from .ad.common import has_tangent
from .backend.numba import cache
from .doctor import run as run_doctor
from .errors import HpcadError
from .ir.activity import ACTIVE, CONST, DUP
from .ir.dialects import cart_ndim
from .ir.printer import print_function
from .ir.types import ArrayType, OpaqueType, ScalarType, parse_type
from .kernel import Kernel, Specialization, kernel
from .passes.pipeline import optimize_module
from .passes.replication import comparable_arguments, replication_types
from .passes.replication_notes import describe, notes


def split_signature(sig: str) -> list[str]:
    """Split "float64[:, :], int64" at commas outside brackets."""
    parts, depth, cur = [], 0, ""
    for ch in sig:
        depth += ch == "["
        depth -= ch == "]"
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    if cur.strip():
        parts.append(cur)
    return [p.strip() for p in parts]


def load_kernel(target: str) -> Kernel:
    path, _, name = target.rpartition(":")
    if not path or not name:
        raise HpcadError(f"expected FILE.py:FUNC, got '{target}'")
    file = Path(path)
    if not file.exists():
        raise HpcadError(f"no such file: {path}")
    spec = importlib.util.spec_from_file_location(file.stem, file)
    module = importlib.util.module_from_spec(spec)
    # the kernel's module may import its siblings, or packages of the working directory
    sys.path[:0] = [str(file.parent.resolve()), str(Path.cwd())]
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.path[:2]
    obj = getattr(module, name, None)
    if obj is None:
        raise HpcadError(f"{path} has no function '{name}'")
    return obj if isinstance(obj, Kernel) else kernel(obj)   # (a numba.njit one too)


def _check_count(kernel: Kernel, parts: list) -> None:
    if len(parts) != len(kernel.arg_names):
        raise HpcadError(f"--sig gives {len(parts)} types, '{kernel.__name__}' takes "
                         f"{len(kernel.arg_names)} arguments ({', '.join(kernel.arg_names)})")


def specialization(kernel: Kernel, sig: str) -> Specialization:
    try:
        types = tuple(parse_type(t) for t in split_signature(sig))
    except ValueError as e:
        raise HpcadError(f"bad --sig: {e}") from None
    _check_count(kernel, types)
    return Specialization(optimize_module(kernel.lower(types)), kernel.arg_names)


def default_activity(spec: Specialization) -> tuple[str, ...]:
    """Every float argument active (arrays with a shadow), the rest constant."""
    kinds = []
    for a in spec.primal.args:
        t = a.type
        if isinstance(t, ArrayType) and t.dtype.is_float:
            kinds.append(DUP)
        elif isinstance(t, ScalarType) and t.is_float:
            kinds.append(ACTIVE)
        else:
            kinds.append(CONST)
    return tuple(kinds)


def cmd_show_ir(args) -> int:
    spec, fn = _selected_function(args)
    params = _params(spec, args.params)
    uniform = _uniform(spec, params, args.alike)
    if args.grad or args.fwd:   # the declared arguments where the derivative takes them
        params = _derivative_positions(spec, default_activity(spec), params, args.fwd)
        uniform = _derivative_positions(spec, default_activity(spec), uniform, args.fwd)
    types = replication_types(fn, params, uniform)
    sys.stdout.write(print_function(fn, locs=args.locs, notes=notes(types, params)
                                    if types.communicator is not None else None))
    return 0


def _params(spec: Specialization, given: str | None) -> tuple[int, ...]:
    """--params "theta,kappa" as argument positions."""
    names = [n.strip() for n in (given or "").split(",") if n.strip()]
    unknown = [n for n in names if n not in spec.arg_names]
    if unknown:
        raise HpcadError(f"--params names {', '.join(unknown)}, which are not arguments of "
                         f"the kernel ({', '.join(spec.arg_names)})")
    return tuple(sorted(spec.arg_names.index(n) for n in names))


def _uniform(spec: Specialization, params: tuple[int, ...],
             alike: str | None) -> tuple[int, ...]:
    """The arguments a call would find the same on every rank, as far as types tell: the
    integers and shapes (comparable_arguments), and the communicator arguments --alike
    names as holding the kernel communicator's processes (a call compares them with
    MPI.Comm.Compare; without --alike they are taken as different)."""
    names = [n.strip() for n in (alike or "").split(",") if n.strip()]
    comms = [k for k, a in enumerate(spec.primal.args) if isinstance(a.type, OpaqueType)
             and (a.type.name == "comm" or cart_ndim(a.type) is not None)]
    wrong = [n for n in names if n not in spec.arg_names or
             spec.arg_names.index(n) not in comms]
    if wrong:
        have = ", ".join(spec.arg_names[k] for k in comms) or "none"
        raise HpcadError(f"--alike names {', '.join(wrong)}, which are not communicator "
                         f"arguments of the kernel (it has: {have})")
    same = {spec.arg_names.index(n) for n in names} - set(comms[:1])
    return tuple(sorted(set(comparable_arguments(spec.primal, params)) | same))


def _derivative_positions(spec: Specialization, activity: tuple[str, ...],
                          params: tuple[int, ...], forward: bool) -> tuple[int, ...]:
    """Where the derivative function takes the primal arguments `params` (a shadow follows
    each array with one; a tangent, in forward mode, each active scalar too)."""
    out, pos = [], 0
    for k, (a, kind) in enumerate(zip(spec.primal.args, activity)):
        if k in params:
            out.append(pos)
        tangent = has_tangent(a, kind) and (forward or isinstance(a.type, ArrayType))
        pos += 1 + tangent
    return tuple(out)


def cmd_show_code(args) -> int:
    from .backend.numba.codegen import generate
    _, fn = _selected_function(args)
    source, _ = generate(fn, "".join(c if c.isalnum() else "_" for c in fn.name))
    sys.stdout.write(source)
    return 0


def example_arguments(kernel: Kernel, sig: str) -> tuple:
    """Arguments of the sizes --sig gives ("float64[100000], float64, int64=200"): zero
    arrays of those shapes, ones for floats, the given integers. Only sizes matter to a
    plan."""
    import re

    import numpy as np
    parts = split_signature(sig)
    _check_count(kernel, parts)
    out = []
    for name, part in zip(kernel.arg_names, parts):
        array = re.fullmatch(r"(\w+)\[([0-9,\s]+)\]", part)
        scalar = re.fullmatch(r"(\w+)\s*=\s*(-?[0-9.eE+-]+)", part)
        try:
            if array:
                shape = tuple(int(x) for x in array.group(2).split(",") if x.strip())
                out.append(np.zeros(shape, np.dtype(array.group(1))))
            elif scalar:
                out.append(np.dtype(scalar.group(1)).type(scalar.group(2)).item())
            elif re.fullmatch(r"float(32|64)", part):
                out.append(1.0)
            else:
                raise ValueError(part)
        except (TypeError, ValueError):
            raise HpcadError(f"--budget needs sizes in --sig: give argument '{name}' as e.g. "
                             f"float64[100000] (an array's shape) or int64=200 (an integer's "
                             f"value), got '{part}'") from None
    return tuple(out)


def cmd_plan(args) -> int:
    import hashlib

    from .api import checkpoint, plan
    from .checkpoint.plan import Kind, Plan
    kernel = load_kernel(args.target)
    if args.intermediates:
        kernel = checkpoint(kernel, intermediates=args.intermediates)
    if args.budget is not None:
        if args.snapshots is not None:
            raise HpcadError("give either --snapshots or --budget, not both")
        sys.stdout.write(plan(kernel, *example_arguments(kernel, args.sig), budget=args.budget,
                              params=tuple(n for n in (args.params or "").split(",") if n)))
        return 0
    spec = specialization(kernel, args.sig)
    chosen = Plan(Kind.SEGMENTS if args.snapshots else Kind.STORE_ALL, args.snapshots,
                  intermediates=kernel.intermediates)
    activity = default_activity(spec)
    params = _params(spec, args.params)
    uniform = _uniform(spec, params, args.alike)
    spec.refuse_uncounted(params, uniform)
    fn = spec.derivative("reverse", activity, True, chosen, params=params, uniform=uniform)
    head = "" if fn.run_args is None else f"checkpointing: {chosen.describe()}\n"
    summed = [spec.arg_names[k] for k in params if has_tangent(spec.primal.args[k], activity[k])]
    lines = describe(replication_types(spec.primal, params, uniform), spec.arg_names, summed)
    text = head + "\n".join(lines + fn.plan) + "\n"
    sys.stdout.write(text)
    print(f"plan hash {hashlib.sha256(text.encode()).hexdigest()[:16]}")
    return 0


def _selected_function(args) -> tuple[Specialization, object]:
    spec = specialization(load_kernel(args.target), args.sig)
    if args.grad or args.fwd:
        params = _params(spec, getattr(args, "params", None)) if args.grad else ()
        uniform = _uniform(spec, params, getattr(args, "alike", None)) if args.grad else ()
        if args.grad:
            spec.refuse_uncounted(params, uniform)
        return spec, spec.derivative("reverse" if args.grad else "forward",
                                     default_activity(spec), True, params=params,
                                     uniform=uniform)
    return spec, spec.primal


_ALIKE_HELP = ("communicator arguments that hold the same processes as the kernel's "
               "(its first), e.g. \"cart\" for a Cartesian communicator made from it: a call "
               "finds them by MPI.Comm.Compare, these commands only see types and take "
               "them as different unless named (README, MPI)")


def _add_kernel_arguments(p) -> None:
    p.add_argument("target", help="FILE.py:FUNC")
    p.add_argument("--sig", required=True, help='argument types, e.g. "float64[:], float64, '
                                                'int64"')
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--grad", action="store_true", help="the reverse-mode derivative")
    mode.add_argument("--fwd", action="store_true", help="the forward-mode derivative")
    p.add_argument("--params", default=None, help="replicated parameters, e.g. "
                   "\"theta,kappa\": the same on every rank, their gradient summed over the "
                   "ranks once (README, MPI)")
    p.add_argument("--alike", default=None, help=_ALIKE_HELP)


def _ago(then: float, now: float) -> str:
    days = (now - then) / 86400
    return f"{days:.0f} days ago" if days >= 2 else f"{days * 24:.0f} hours ago" \
        if days * 24 >= 2 else f"{(now - then) / 60:.0f} minutes ago"


def cmd_cache(args) -> int:
    """What the compile cache holds; `clear` removes the entries no process holds now (all,
    or those last written more than --older-than days ago). Only its owner may clear it."""
    try:
        root = cache.cache_path().absolute()
    except OSError as e:
        raise HpcadError(f"no compile cache: {e.strerror}") from None
    if not root.is_dir():
        print(f"compile cache {root}: " + ("not a directory (hpcad compiles in memory)"
                                           if root.exists() else
                                           "empty (the directory does not exist yet)"))
        return 0
    held, others = cache.held_entries(root)
    now = time.time()
    megabytes = sum(h.size for h in held) / 1e6
    span = f"; written from {_ago(held[0].written, now)} to {_ago(held[-1].written, now)}" \
        if held else ""
    print(f"compile cache {root}: {len(held)} entries, {megabytes:.1f} MB{span}")
    if args.action != "clear":
        return 0
    store = cache.store()
    if store is None or not store.writable or store.owner != os.geteuid():
        raise HpcadError(f"hpcad cannot clear the compile cache {root}: it is read-only or "
                         f"not yours (only its owner clears it; hpcad doctor says why)")
    old = held if args.older_than is None else \
        [h for h in held if h.written < now - args.older_than * 86400]
    removed = [h for h in old if cache.remove_entry(store, h)]
    kept = [f"{len(old) - len(removed)} that running processes hold"] \
        if len(removed) < len(old) else []
    if args.older_than is not None:
        kept.append(f"{len(held) - len(old)} written in the last {args.older_than:g} days")
    if others:
        kept.append(f"{others} other files (.key, files not hpcad's) as they were")
    print(f"removed {len(removed)} entries ({sum(h.size for h in removed) / 1e6:.1f} MB)"
          + (f"; kept {', '.join(kept)}" if kept else ""))
    return 0


def _version() -> str:
    """hpcad's version and those of what it compiles with (a bug report's first line)."""
    import numba
    import numpy

    from . import __version__
    return f"hpcad {__version__} (numba {numba.__version__}, numpy {numpy.__version__}, " \
           f"Python {sys.version.split()[0]})"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="hpcad", description="Parallel-aware automatic "
                                     "differentiation of numba-style kernels.")
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", required=True)
    show = sub.add_parser("show-ir", help="print a kernel's optimized IR or its derivative")
    _add_kernel_arguments(show)
    show.add_argument("--locs", action="store_true", help="print kernel source locations")
    show.set_defaults(run=cmd_show_ir)
    code = sub.add_parser("show-code", help="print the Python source the numba backend "
                                            "compiles for a kernel or its derivative")
    _add_kernel_arguments(code)
    code.set_defaults(run=cmd_show_code)
    plan = sub.add_parser("plan", help="what the reverse sweep saves and what it recomputes")
    plan.add_argument("target", help="FILE.py:FUNC")
    plan.add_argument("--sig", required=True, help="argument types; with --budget, their "
                      "sizes: \"float64[100000], float64, int64=200\"")
    plan.add_argument("--snapshots", type=int, default=None,
                      help="checkpoint the time loop with this many snapshots")
    plan.add_argument("--budget", default=None, help="memory budget per rank (e.g. 100MB): "
                      "the checkpointing that fits, and its estimated bytes")
    plan.add_argument("--params", default=None, help="replicated parameters, e.g. "
                      "\"theta,kappa\" (README, MPI)")
    plan.add_argument("--alike", default=None, help=_ALIKE_HELP)
    plan.add_argument("--intermediates", choices=("auto", "recompute", "store"), default=None,
                      help="store or recompute the values inside a step (default auto)")
    plan.set_defaults(run=cmd_plan)
    doctor = sub.add_parser("doctor", help="versions, MPI library and mpiexec, threading "
                                           "layers, compile cache: what to check when "
                                           "something is off (run it under mpiexec too)")
    doctor.set_defaults(run=lambda args: run_doctor())
    held = sub.add_parser("cache", help="what the compile cache holds; `hpcad cache clear` "
                                        "removes entries no running process holds")
    held.add_argument("action", nargs="?", choices=("info", "clear"), default="info")
    held.add_argument("--older-than", type=float, default=None, metavar="DAYS",
                      help="clear only the entries last written more than DAYS days ago")
    held.set_defaults(run=cmd_cache)
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except HpcadError as e:
        print(f"hpcad: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
