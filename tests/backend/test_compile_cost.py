"""What a cold compile compiles: the numba functions a derivative's generated code calls are
compiled once per argument type, not once per call site (a numba function called with
literal arguments, such as each tape buffer's message, is compiled again for each)."""
import math
import re

import numpy as np
import pytest
from numba.core import dispatcher

import hpcad as ad
from hpcad.backend.numba import helpers


@ad.kernel
def four_tapes(x, y):
    """Four loops, each saving its exp() for the reverse sweep: four tape buffers, sized
    with four messages (their lines), the last one from two loops' counts."""
    s = 0.0
    for i in range(x.shape[0]):
        s += math.exp(x[i]) * y[i]
    for i in range(x.shape[0]):
        s += math.exp(2.0 * x[i]) * y[i]
    for i in range(x.shape[0]):
        s += math.exp(3.0 * x[i]) * y[i]
    for i in range(x.shape[0]):
        for j in range(y.shape[0]):
            s += math.exp(x[i] * y[j])
    return s


def test_tape_sizes_compile_once_however_many_buffers(tmp_path, monkeypatch):
    monkeypatch.setenv("HPCAD_CACHE_DIR", str(tmp_path))
    compiled = []
    original = dispatcher.Dispatcher.compile

    def compile(self, sig):
        if self.py_func.__module__ == helpers.__name__ and self.py_func.__name__ == "buffer_size":
            compiled.append(sig)
        return original(self, sig)
    monkeypatch.setattr(dispatcher.Dispatcher, "compile", compile)
    x, y = np.linspace(0.0, 1.0, 5), np.linspace(1.0, 2.0, 5)
    g = ad.grad(four_tapes, argnums=(0, 1))(x, y)
    sources = "".join(p.read_text() for p in tmp_path.glob("*.py"))
    assert sources.count("_buffer_size(") >= 4
    # each buffer's text is passed as its number in _BUFFERS: a string raised from compiled
    # code linked ~500 lines of LLVM IR into every derivative
    assert len(re.findall(r"_buffer_size\(.*, \d+\)$", sources, re.M)) >= 4
    assert "_BUFFERS = (" in sources
    assert len({str(sig) for sig in compiled}) <= 1
    outer = np.exp(np.outer(x, y))
    expected = sum(k * np.exp(k * x) * y for k in range(1, 4)) + outer @ y
    np.testing.assert_allclose(g[0], expected, rtol=1e-12)
    dy = sum(np.exp(k * x) for k in range(1, 4)) + x @ outer
    np.testing.assert_allclose(g[1], dy, rtol=1e-12)



@ad.kernel
def wrapped_heat(u, alpha, nsteps):
    """hpcad.kernels.stencils.heat under a name of this test's own: its compiled module is
    made here, never one an earlier test loaded from a disk cache (no LLVM text then)."""
    n = u.shape[0]
    tmp = np.zeros(n)
    for t in range(nsteps):
        for i in range(1, n - 1):
            tmp[i] = u[i] + alpha * (u[i - 1] - 2.0 * u[i] + u[i + 1])
        for i in range(1, n - 1):
            u[i] = tmp[i]
    s = 0.0
    for i in range(n):
        s += u[i] * u[i]
    return s


def test_generated_functions_carry_only_the_wrappers_they_need(tmp_path, monkeypatch):
    """The derivative is called from Python: it has numba's CPython wrapper; the loops
    compiled in functions of their own (heat's derivative has some) are called from it
    alone: no wrapper; and none has a C-callable wrapper (first-class function use)."""
    import sys

    monkeypatch.setenv("HPCAD_CACHE_DIR", str(tmp_path))
    u = np.linspace(0.0, 1.0, 16)
    ad.grad(wrapped_heat, argnums=(0, 1))(u.copy(), 0.2, 3)
    module = next(m for name, m in sys.modules.items() if name.startswith("hpcad_cache_")
                  and hasattr(m, "wrapped_heat_rev"))
    loops = [getattr(module, n) for n in vars(module) if n.startswith("wrapped_heat_rev_loop")]
    assert loops

    def wrappers(function) -> set[str]:
        """The wrappers numba defined for the function (not for functions linked in)."""
        defined = [line for cres in function.overloads.values()
                   for line in cres.library.get_llvm_str().splitlines()
                   if line.startswith("define") and "linkonce_odr" not in line]
        return {kind for kind, symbol in (("cpython", "@_ZN7cpython"), ("cfunc", "cfunc."))
                if any(symbol in d for d in defined)}
    assert wrappers(module.wrapped_heat_rev) == {"cpython"}
    assert all(wrappers(loop) == set() for loop in loops)


@ad.kernel
def heat_once(u, alpha, nsteps):
    """wrapped_heat again, under a name of its own: compiled in this test, not earlier."""
    n = u.shape[0]
    tmp = np.zeros(n)
    for t in range(nsteps):
        for i in range(1, n - 1):
            tmp[i] = u[i] + alpha * (u[i - 1] - 2.0 * u[i] + u[i + 1])
        for i in range(1, n - 1):
            u[i] = tmp[i]
    s = 0.0
    for i in range(n):
        s += u[i] * u[i]
    return s


def test_loop_functions_compile_once_and_statements_fold(tmp_path, monkeypatch):
    """Each loop compiled in a function of its own is compiled for one signature: a tape
    position passed to it is int64 from the start (as the literal 0 it was compiled a
    second time, for the literal's type); and the generated source writes a value used
    once inside its user's expression, bools combined with `&` (`and` branches): fewer
    statements for numba. The gradient is that of central differences."""
    monkeypatch.setenv("HPCAD_CACHE_DIR", str(tmp_path))
    compiled = []
    original = dispatcher.Dispatcher.compile

    def compile(self, sig):
        compiled.append((self.py_func.__name__, str(sig)))
        return original(self, sig)
    monkeypatch.setattr(dispatcher.Dispatcher, "compile", compile)
    u = np.linspace(0.0, 1.0, 16) ** 2
    g, _ = ad.grad(heat_once, argnums=(0, 1))(u.copy(), 0.2, 3)
    signatures: dict[str, set[str]] = {}
    for name, sig in compiled:
        if name.startswith("heat_once_rev_loop"):
            signatures.setdefault(name, set()).add(sig)
    assert signatures
    assert all(len(sigs) == 1 for sigs in signatures.values()), signatures
    source = "".join(p.read_text() for p in tmp_path.glob("heat_once_rev*.py"))
    assert re.search(r"^ +(\w+ = |if ).* & ", source, re.M)
    assert not re.search(r"^ +(\w+ = |if ).* (and|or) ", source, re.M)
    # u[i - 1] - 2.0 * u[i] + u[i + 1], its loads aside, as one statement
    assert re.search(r"= \(\w+ - \(2\.0 \* \w+\)\) \+ \w+$", source, re.M)
    expected = _central_differences(lambda v: heat_once.py_func(v, 0.2, 3), u)
    np.testing.assert_allclose(g, expected, rtol=1e-6, atol=1e-8)


@ad.kernel
def two_stages(x, y):
    """Two stages of the same update, written twice (as a Runge-Kutta step is): their
    adjoint loops are the same but for the arrays they read and write."""
    n = x.shape[0]
    k1 = np.zeros(n)
    k2 = np.zeros(n)
    for i in range(1, n):
        k1[i] = x[i] * y[i - 1] + math.sin(x[i - 1])
    for i in range(n):
        y[i] += 0.1 * k1[i]
    for i in range(1, n):
        k2[i] = x[i] * y[i - 1] + math.sin(x[i - 1])
    for i in range(n):
        y[i] += 0.05 * k2[i]
    s = 0.0
    for i in range(n):
        s += y[i] * y[i]
    return s


def _central_differences(f, x, h=1e-6):
    g = np.zeros_like(x)
    for k in range(x.size):
        e = np.zeros_like(x)
        e[k] = h
        g[k] = (f(x + e) - f(x - e)) / (2 * h)
    return g


@pytest.mark.parametrize("backend", ["numba", "interp"])
def test_repeated_loops_share_one_function(tmp_path, monkeypatch, backend):
    """The numba backend writes a loop that repeats once, as a function called from each
    place (backend/numba/shared.py); the gradient is right on both backends."""
    monkeypatch.setenv("HPCAD_CACHE_DIR", str(tmp_path))
    x, y = np.linspace(0.2, 0.9, 7), np.linspace(1.0, 1.5, 7)
    g = ad.grad(two_stages, argnums=0, backend=backend)(x, y.copy())
    expected = _central_differences(lambda v: two_stages.py_func(v, y.copy()), x)
    np.testing.assert_allclose(g, expected, rtol=1e-6, atol=1e-8)
    if backend == "numba":
        source = "".join(p.read_text() for p in tmp_path.glob("two_stages_rev*.py"))
        shared = re.findall(r"^def (two_stages_rev_shared\d+)\(", source, re.M)
        assert shared
        assert all(source.count(f"{name}(") >= 3 for name in shared)   # def + 2 calls


@ad.kernel
def until_small(x):
    """A while loop: its trip count is known only as it runs, so the tape grows (_grow)."""
    s = x[0]
    k = 0
    while s > 1e-3:
        s = 0.5 * s * math.cos(x[1] * s)
        k += 1
    return s + k * x[1]


def test_growing_tape_compiles_no_slice_assignment(tmp_path, monkeypatch):
    """The tape of a loop whose trips are known only as it runs grows by copying: element by
    element, since a slice assignment made numba compile its shape-mismatch message (string
    formatting: over a second of each process's first such derivative)."""
    monkeypatch.setenv("HPCAD_CACHE_DIR", str(tmp_path))
    compiled = []
    original = dispatcher.Dispatcher.compile

    def compile(self, sig):
        compiled.append(self.py_func.__qualname__)
        return original(self, sig)
    monkeypatch.setattr(dispatcher.Dispatcher, "compile", compile)
    x = np.array([3.0, 0.7])
    g = ad.grad(until_small, argnums=0)(x)
    assert "= _grow(" in "".join(p.read_text() for p in tmp_path.glob("until_small*.py"))
    assert not [n for n in compiled if "shape_context" in n]
    expected = _central_differences(lambda v: until_small.py_func(v), x)
    np.testing.assert_allclose(g, expected, rtol=1e-5)


_HELPER_RUN = """
import json
import numpy as np
import hpcad as ad
from hpcad.backend.numba import helpers
from tests.backend.test_compile_cost import four_tapes
x, y = np.linspace(0.0, 1.0, 5), np.linspace(1.0, 2.0, 5)
g = ad.grad(four_tapes, argnums=(0, 1))(x, y)
stats = [h.stats for h in (helpers.buffer_size, helpers.empty, helpers.zeros, helpers.grow)]
print(json.dumps({"misses": sum(sum(s.cache_misses.values()) for s in stats),
                  "hits": sum(sum(s.cache_hits.values()) for s in stats),
                  "g": [list(map(float, g[0])), list(map(float, g[1]))]}))
"""


def test_helpers_compile_once_per_machine(tmp_path):
    """The functions every generated module calls (tape sizes, buffers) are compiled by the
    first process and kept in the disk cache: a later process that compiles a derivative
    anew (its own entry gone) loads them instead of compiling them again."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, HPCAD_CACHE_DIR=str(tmp_path / "cache"), PYTHONPATH=str(root))

    def run() -> dict:
        out = subprocess.run([sys.executable, "-c", _HELPER_RUN], env=env, cwd=root,
                             capture_output=True, text=True, timeout=600, check=True)
        return json.loads(out.stdout.strip().splitlines()[-1])
    first = run()
    assert first["misses"] >= 2 and first["hits"] == 0       # buffer_size, empty
    kernels = [p for p in (tmp_path / "cache").iterdir()
               if p.name != ".key" and not p.name.startswith("helper_")]
    assert kernels and any(p.name.startswith("helper_") for p in (tmp_path / "cache").iterdir())
    for p in kernels:
        p.unlink()
    second = run()
    assert second["misses"] == 0 and second["hits"] >= 2
    x, y = np.linspace(0.0, 1.0, 5), np.linspace(1.0, 2.0, 5)
    outer = np.exp(np.outer(x, y))
    expected = sum(k * np.exp(k * x) * y for k in range(1, 4)) + outer @ y
    for got in (first, second):
        np.testing.assert_allclose(got["g"][0], expected, rtol=1e-12)
