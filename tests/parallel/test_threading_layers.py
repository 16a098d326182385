"""Parallel gradients under each of numba's threading layers (omp, tbb, workqueue), each in a
fresh process with NUMBA_THREADING_LAYER and NUMBA_NUM_THREADS=2 set and LD_LIBRARY_PATH unset
(hpcad preloads pip's libtbb): the process runs the requested layer on two threads, every layer
gives the interpreter's gradient, and the layers agree (bitwise where no atomics are used)."""
import functools
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import hpcad as ad
from tests.ad.harness import is_active, relative_error
from tests.parallel import par_kernels as pk

ROOT = Path(__file__).resolve().parents[2]   # the child imports tests.parallel from here
LAYERS = ["omp", "tbb", "workqueue"]
TIMEOUT_S = 240
SEED = 3
# One adjoint of each race-free form: own elements, gathered stencil, two-colour chunks,
# per-thread copies (rows by numba's thread id), atomic adds.
NAMES = ("elementwise", "stencil1d", "red_black", "cutoff_pairs", "gather_repeated")

# Gradients w.r.t. every float argument, at the arguments each case draws from SEED.
CHILD = """
import json, sys
import numba
import numpy as np
import hpcad as ad
from tests.parallel import par_kernels as pk

if {threads_first!r}:
    numba.set_num_threads(2)
cases = {{case.name: case for case in pk.CASES}}
grads = {{}}
for name in {names!r}:
    case = cases[name]
    args = case.make_args(np.random.default_rng({seed!r}))
    argnums = tuple(k for k, a in enumerate(args) if isinstance(a, float)
                    or (isinstance(a, np.ndarray) and a.dtype.kind == "f"))
    g = ad.grad(case.kernel, argnums=argnums, backend="numba")(*args)
    grads[name] = [x.tolist() if isinstance(x, np.ndarray) else x for x in g]
print(json.dumps({{"layer": numba.threading_layer(), "threads": numba.get_num_threads(),
                  "grads": grads}}))
"""


@functools.cache
def run_child(layer: str, threads_first: bool = False) -> dict:
    """Run CHILD in a fresh interpreter under `layer`; its JSON report."""
    env = dict(os.environ, NUMBA_THREADING_LAYER=layer, NUMBA_NUM_THREADS="2")
    env.pop("LD_LIBRARY_PATH", None)
    code = CHILD.format(seed=SEED, names=NAMES,
                        threads_first=threads_first)
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=TIMEOUT_S, cwd=ROOT)
    assert proc.returncode == 0, f"layer {layer}: exit {proc.returncode}\n{proc.stderr[-3000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


@functools.cache
def interpreter_gradients() -> dict:
    cases = {case.name: case for case in pk.CASES}
    grads = {}
    for name in NAMES:
        case = cases[name]
        args = case.make_args(np.random.default_rng(SEED))
        argnums = tuple(k for k, a in enumerate(args) if is_active(a))
        grads[name] = ad.grad(case.kernel, argnums=argnums, backend="interp")(*args)
    return grads


@pytest.mark.parametrize("layer", LAYERS)
def test_requested_layer_runs_on_two_threads(layer):
    report = run_child(layer)
    assert report["layer"] == layer
    assert report["threads"] == 2


@pytest.mark.parametrize("layer", LAYERS)
def test_gradient_under_layer_matches_interpreter(layer):
    grads = run_child(layer)["grads"]
    for name, expected in interpreter_gradients().items():
        assert len(grads[name]) == len(expected)
        for k, (got, want) in enumerate(zip(grads[name], expected, strict=True)):
            assert relative_error(got, want) <= 1e-12, f"{name}: gradient {k}"


def test_layers_agree():
    cases = {case.name: case for case in pk.CASES}
    reports = {layer: run_child(layer)["grads"] for layer in LAYERS}
    first = reports[LAYERS[0]]
    for layer in LAYERS[1:]:
        for name in NAMES:
            for k, (got, want) in enumerate(zip(reports[layer][name], first[name], strict=True)):
                if isinstance(want, list) and cases[name].adjoint != pk.ATOMIC:
                    # the same operations in the same order on every layer
                    assert got == want, f"{layer}: {name} gradient {k} differs bitwise"
                else:
                    assert relative_error(got, want) <= 1e-13, f"{layer}: {name} gradient {k}"


def test_tbb_works_when_threads_are_set_before_the_first_gradient():
    # A user script that sets the thread count right after `import hpcad`, before any kernel
    # is compiled: numba launches its threads then, so libtbb must already be loaded.
    report = run_child("tbb", threads_first=True)
    assert report["layer"] == "tbb" and report["threads"] == 2


@pytest.mark.slow
@pytest.mark.parametrize("layer", ["omp", "tbb"])
def test_whole_parallel_suite_passes_under_layer(layer):
    """The derivative and race tests of this folder, run again with the layer forced."""
    here = Path(__file__).parent
    env = dict(os.environ, NUMBA_THREADING_LAYER=layer, NUMBA_NUM_THREADS="2")
    env.pop("LD_LIBRARY_PATH", None)
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          str(here / "test_parallel_derivatives.py"),
                          str(here / "test_races.py")],
                         capture_output=True, text=True, env=env, timeout=900, cwd=here)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert " passed" in out.stdout.splitlines()[-1]
