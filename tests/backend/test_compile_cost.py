"""What a cold compile compiles: the numba functions a derivative's generated code calls are
compiled once per argument type, not once per call site (a numba function called with
literal arguments, such as each tape buffer's message, is compiled again for each)."""
import math

import numpy as np
from numba.core import dispatcher

import hpcad as ad
from hpcad.backend.numba import sizes


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
        if self.py_func.__module__ == sizes.__name__:
            compiled.append(sig)
        return original(self, sig)
    monkeypatch.setattr(dispatcher.Dispatcher, "compile", compile)
    x, y = np.linspace(0.0, 1.0, 5), np.linspace(1.0, 2.0, 5)
    g = ad.grad(four_tapes, argnums=(0, 1))(x, y)
    sources = "".join(p.read_text() for p in tmp_path.glob("*.py"))
    assert sources.count("_buffer_size(") >= 4
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
