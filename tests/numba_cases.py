"""The numba cases of the serial suite's width-1 derivative tests weighed together (python -m
tests.numba_cover): the cases whose numba test compiles the forward and reverse derivatives
(tests/ad/harness.check_case) in test_kernels ("k:"), test_parallel_derivatives ("p:"),
test_reductions ("r:"), test_construct ("c:"), test_loops ("l:"), test_differences ("d:"),
test_array_expressions ("a:") and test_linalg ("g:"), the last two's primal tests too ("ap:",
"gp:", their kept cases). Each case counts what its test compiles (`only`: derivatives where
the test compiles no primal). One full-tier run compiles them all: a case is worth its compile
where it runs code generation no other file's kept case runs.

    python -m tests.numba_cover "tests.numba_cases:cases()" --keep "$(python -c
        'import tests.numba_cases as n; print(",".join(n.kept()))')"
"""
import dataclasses
import importlib

# prefix: (module, case lists, the tuple of cases its numba test compiles, what it compiles)
FILES = {
    "k:": ("tests.ad.test_kernels", ("CASES",), "ON_NUMBA", "derivatives"),
    "p:": ("tests.parallel.test_parallel_derivatives", ("CASES",), "ON_NUMBA", "derivatives"),
    "r:": ("tests.frontend.test_reductions", ("CASES", "NUMPY_CASES"), "ON_NUMBA", None),
    "c:": ("tests.frontend.test_construct", ("CASES", "NUMPY_CASES"), "ON_NUMBA", None),
    "l:": ("tests.frontend.test_loops", ("CASES",), "ON_NUMBA", None),
    "d:": ("tests.frontend.test_differences", ("CASES", "NUMPY_CASES"), "ON_NUMBA", None),
    "a:": ("tests.frontend.test_array_expressions", ("CASES",), "DERIVATIVES_ON_NUMBA",
           "derivatives"),
    "g:": ("tests.ad.test_linalg", ("CASES",), "FD_ON_NUMBA", "derivatives"),
}
PRIMAL_TESTS = {   # prefix: (module, the cases its primal test compiles): only those count
    "ap:": ("tests.frontend.test_array_expressions", "PRIMAL_ON_NUMBA"),
    "gp:": ("tests.ad.test_linalg", "PRIMAL_ON_NUMBA"),
}


@dataclasses.dataclass
class NumbaCase:
    name: str
    kernel: object
    make_args: object
    only: str | None


def cases(*prefixes: str) -> list[NumbaCase]:
    """Every case of the files (the primal tests' kept ones), or those whose name starts
    with one of prefixes."""
    out = []
    for prefix, (module, lists, _, only) in FILES.items():
        m = importlib.import_module(module)
        out += [NumbaCase(prefix + c.name, c.kernel, _named(c), only)
                for name in lists for c in getattr(m, name)]
    for prefix, (module, chosen) in PRIMAL_TESTS.items():
        m = importlib.import_module(module)
        out += [NumbaCase(prefix + c.name, c.kernel, _named(c), "primal") for c in m.CASES
                if c.name in getattr(m, chosen)]
    return [c for c in out if not prefixes or c.name.startswith(prefixes)]


def _named(case):
    """case.make_args drawing from the generator the test draws from (seeded by its name)."""
    from tests.ad.harness import case_rng
    return lambda rng: case.make_args(case_rng(case))


def kept() -> list[str]:
    """The cases the files compile with numba now."""
    names = []
    for prefix, (module, _, chosen, _) in FILES.items():
        names += [prefix + n for n in getattr(importlib.import_module(module), chosen)]
    names += [c.name for c in cases(*PRIMAL_TESTS)]
    return names
