"""Which cases of a parametrized test file the full tier compiles with numba (the ON_NUMBA
tuples, tests/ad/harness.on_numba): a case is worth a numba compile (seconds to tens of
seconds each, cold) where its numba code generation runs something no other kept case's
does. This tool measures that without compiling: for each case it builds the derivatives
(forward and reverse, at the widths asked) and the primal, writes their numba source
(hpcad/backend/numba/codegen.generate) while tracing which lines of hpcad/backend/numba/ run,
and collects the functions the source calls (math.tanh, np.ascontiguousarray, prange,
atomic adds...). It then prints a greedy cover: the kept cases first, then, one at a time,
the case that adds most that the chosen ones do not run, with what it adds.

    python -m tests.numba_cover tests.ad.test_width:CASES --widths 3 --keep heat1d_explicit
    python -m tests.numba_cover "tests.kernels.test_numpy_style:[case(n) for n in KERNELS]"

The expression after the colon is evaluated in the module and gives objects with `name`,
`kernel` and `make_args(rng)` (tests/ad/kernels.Case); it may add other files' cases, to
weigh a case against the kept numba cases of the suite (names must differ):

    python -m tests.numba_cover "tests.ad.test_linalg:CASES + [c for c in
        __import__('tests.frontend.test_construct', fromlist=['_']).CASES]" --keep ...
 `--only primal` or `--only derivatives`
restricts what is counted (a test of primals only, or of derivatives only; a case's own `only`
attribute, where it has one, says it for that case). `--was` names the cases kept before a
change and prints what they run that the --keep cases do not (nothing: the new set may replace
the old). Code generation
that depends on run-time strides (lane_layout's variants) and numba's own compile are not
traced: a case kept for its lines is kept; one left out adds nothing that generation shows."""
import argparse
import importlib
import os
import re
import sys

import numpy as np

ROOT = os.path.realpath(os.path.join(os.path.dirname(__file__), "..", "hpcad", "backend",
                                     "numba"))
CALLED = re.compile(r"[A-Za-z_][A-Za-z_0-9.]*(?=\()|\b(?:prange|while|break|continue|with|"
                    r"parallel=PARALLEL)\b")
STRING = re.compile(r"'(?:[^'\\\n]|\\.)*'|\"(?:[^\"\\\n]|\\.)*\"")   # messages name no calls
LOCAL = re.compile(r"^(f|_?[a-z]\d*|[a-z]+_\d+)$")   # generated names of values and loops


def _is_float_array(a) -> bool:
    return isinstance(a, np.ndarray) and a.dtype.kind == "f"


def traced(fn) -> set:
    """The (file, line) pairs of hpcad/backend/numba/ that writing fn's source runs, and
    ("calls", name) for each function its source calls."""
    from hpcad.backend.numba.codegen import generate
    from hpcad.backend.numba.lane_layout import lane_layout
    hits: set = set()

    def local(frame, event, arg):
        if event == "line":
            hits.add((os.path.basename(frame.f_code.co_filename), frame.f_lineno))
        return local

    def outer(frame, event, arg):
        return local if frame.f_code.co_filename.startswith(ROOT) else None

    sys.settrace(outer)
    try:
        source = generate(fn, "f")[0]
        lane_layout(fn)
    finally:
        sys.settrace(None)
    for name in set(CALLED.findall(STRING.sub("''", source))):
        name = re.sub(r"\d+", "N", re.sub(r"^\w+_parts", "parts", name))
        if not LOCAL.match(name):
            hits.add(("calls", name))
    return hits


def case_features(case, widths, only: str | None) -> set:
    """What the numba code of the case's primal and derivatives (at widths) runs."""
    from tests.ad.harness import case_rng
    args = case.kernel.bind(case.make_args(case_rng(case)))
    spec = case.kernel.specialize(args)
    features = set() if only == "derivatives" else traced(spec.primal)
    if only == "primal":
        return features
    for width in widths:
        for mode in ("forward", "reverse"):
            scalar = "dual" if mode == "forward" else "active"
            activity = tuple("dup" if _is_float_array(a) else scalar
                             if isinstance(a, (float, np.floating)) else "const" for a in args)
            features |= traced(spec.derivative(mode, activity, True, width=width))
    return features


def cover(features: dict, keep: list) -> list:
    """(name, what it adds) in the order a greedy cover takes them, the kept first."""
    chosen, seen = [], set()
    for name in keep:
        chosen.append((name, features[name] - seen))
        seen |= features[name]
    everything = set().union(*features.values())
    while seen != everything:
        name = max(features, key=lambda n: len(features[n] - seen))
        chosen.append((name, features[name] - seen))
        seen |= features[name]
    return chosen


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("cases", help="module:expression giving the cases")
    parser.add_argument("--widths", type=int, nargs="+", default=[1])
    parser.add_argument("--keep", default="", help="cases kept anyway (comma-separated)")
    parser.add_argument("--only", choices=["primal", "derivatives"])
    parser.add_argument("--was", default="", help="cases kept before (comma-separated)")
    args = parser.parse_args(argv)
    module_name, expression = args.cases.split(":", 1)
    module = importlib.import_module(module_name)
    cases = eval(expression, vars(module))  # noqa: S307 (a command-line expression)
    features = {c.name: case_features(c, args.widths, getattr(c, "only", args.only))
                for c in cases}
    keep = [k for k in args.keep.split(",") if k]
    if args.was:
        was = set().union(*(features[k] for k in args.was.split(",") if k))
        lost = sorted(f"{f}:{n}" for f, n in was - set().union(*(features[k] for k in keep)))
        print(f"the --was cases run {len(was)} lines and calls; the --keep cases miss "
              f"{len(lost)}: {' '.join(lost)}")
    for name, added in cover(features, keep):
        lines = sorted(f"{f}:{n}" for f, n in added if f != "calls")
        calls = sorted(n for f, n in added if f == "calls")
        print(f"{name}: +{len(added)}" + (f"  lines {' '.join(lines[:8])}" if lines else "")
              + (" ..." if len(lines) > 8 else "") + (f"  calls {' '.join(calls)}" if calls
                                                       else ""))
    print(f"{len(set().union(*features.values()))} lines and calls in all, "
          f"{len(cases)} cases")


if __name__ == "__main__":
    main()
