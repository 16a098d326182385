"""Machine code loaded from the disk cache links without numba's lowering registries (numba
refreshes its whole target context before every load: most of a warm start), and only where
LLVM knows every symbol the code calls: code calling an unknown one gets numba's full refresh
first, never a link to address 0."""
import ctypes
import json
import os
import subprocess
import sys

import llvmlite.binding as ll
from numba.core import caching

from hpcad.backend.numba import numba_cache

SCRIPT = """
import json, sys
import numpy as np
import hpcad as ad
from hpcad.kernels import numpy_style, stencils
from hpcad.backend.numba import STATS
u = np.linspace(0.0, 1.0, 16)
A, x = np.arange(12.0).reshape(4, 3) / 7.0, np.linspace(0.5, 1.5, 3)
atax = ad.kernel(numpy_style.atax)
heat = ad.kernel(stencils.heat_prange.py_func, parallel=True)
found = {"blas": ad.grad(atax, argnums=1)(A, x).tolist(),
         "interp": ad.grad(atax, argnums=1, backend="interp")(A, x).tolist(),
         "parallel": list(ad.value_and_grad(heat, argnums=1)(u.copy(), 0.1, 3)),
         "parallel_interp": list(ad.value_and_grad(heat, argnums=1, backend="interp")(
             u.copy(), 0.1, 3))}
try:
    atax(A, np.ones(4))
except ad.HpcadError as e:
    found["error"] = type(e).__name__
print(json.dumps(dict(found, stats=STATS, imported=[m for m in LAZY if m in sys.modules])))
"""
# what a warm process without MPI does not import: numba's lowering registries (arraymath
# stands for them), hpcad's compiled MPI helpers, mpi4py, networkx (checkpoint planning)
LAZY = ("numba.np.arraymath", "hpcad.backend.numba.mpi", "mpi4py", "networkx")


def _run(cache_dir) -> dict:
    env = dict(os.environ, HPCAD_CACHE_DIR=str(cache_dir))
    out = subprocess.run([sys.executable, "-c", f"LAZY = {LAZY!r}\n" + SCRIPT],
                         capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_warm_process_loads_only_what_it_needs_and_agrees(tmp_path):
    cold, warm = _run(tmp_path), _run(tmp_path)
    assert cold["stats"]["compiled"] >= 3 and warm["stats"] == {
        "compiled": 0, "loaded": cold["stats"]["compiled"]}
    assert warm["imported"] == []     # BLAS, parallel and raising code linked without them
    for key in ("blas", "parallel", "error"):
        assert warm[key] == cold[key], key
    assert warm["error"] == "KernelAssertionError"
    assert all(abs(a - b) <= 1e-12 * (1 + abs(b)) for a, b in zip(warm["blas"], warm["interp"]))
    value, grad = warm["parallel"]
    assert abs(value - warm["parallel_interp"][0]) <= 1e-12 * abs(value)
    assert abs(grad - warm["parallel_interp"][1]) <= 1e-12 * abs(grad)


def _libdata(symbol: str) -> tuple:
    module = ll.parse_assembly(f"""
        declare double @{symbol}(double)
        declare double @llvm.sqrt.f64(double)
        define double @f(double %x) {{
          %r = call double @{symbol}(double %x)
          %s = call double @llvm.sqrt.f64(double %r)
          ret double %s
        }}""")
    return ("f", "object", (b"", module.as_bitcode()))


def test_unknown_symbols_are_those_llvm_cannot_resolve():
    name = "hpcad_test_symbol_registered_late"
    assert numba_cache.unknown_symbols(_libdata(name)) == [name]
    value = ctypes.c_double(0.0)
    ll.add_symbol(name, ctypes.addressof(value))
    assert numba_cache.unknown_symbols(_libdata(name)) == []
    assert numba_cache.unknown_symbols(("f", "bitcode", b"")) is None
    assert numba_cache.unknown_symbols(None) is None


class _Context:
    refreshed = 0

    def refresh(self):
        self.refreshed += 1


def test_code_calling_an_unknown_symbol_gets_numbas_full_refresh(monkeypatch):
    monkeypatch.setattr(caching.CompileResultCacheImpl, "rebuild",
                        lambda self, context, payload: "rebuilt")
    known = ctypes.c_double(0.0)
    ll.add_symbol("hpcad_test_symbol_known", ctypes.addressof(known))
    impl = numba_cache._Impl.__new__(numba_cache._Impl)
    for libdata, refreshes in ((_libdata("hpcad_test_no_such_symbol"), 1),
                               (("f", "bitcode", b""), 1),
                               (_libdata("hpcad_test_symbol_known"), 0)):
        context = _Context()
        assert impl.rebuild(context, (libdata,)) == "rebuilt"
        assert context.refreshed == refreshes, libdata[1]
