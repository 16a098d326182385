"""The benchmark runner works end to end at tiny sizes (the figures themselves are reported
by `python -m benchmarks`, not asserted here), and the hand-written reference adjoints it
compares against agree with hpcad's gradients."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import hpcad as ad
from benchmarks import heat, jacobi
from benchmarks.reference.heat_adjoint import HeatAdjoint
from benchmarks.reference.jacobi_adjoint import JacobiAdjoint

ROOT = Path(__file__).parent.parent.parent


@pytest.mark.slow
def test_runner_writes_json_and_table(tmp_path):
    out = tmp_path / "bench.json"
    run = subprocess.run([sys.executable, "-m", "benchmarks", "--quick", "--cases", "heat",
                          "--out", str(out)], capture_output=True, text=True, cwd=ROOT,
                         timeout=600)
    assert run.returncode == 0, run.stderr
    assert "| heat quick |" in run.stdout
    data = json.loads(out.read_text())
    row = data["rows"][0]
    assert data["machine"]["numba"] and row["hpcad_grad_s"] > 0
    assert row["compile"]["cached_compiles"] == 0
    assert (tmp_path / "ratios.png").read_bytes()[:4] == b"\x89PNG"   # plotted beside it
    assert not (tmp_path / "scaling.png").exists()                     # nothing to plot


@pytest.mark.slow
def test_checkpointing_benchmark_covers_heat_burgers_and_jacobi(tmp_path):
    out = tmp_path / "bench.json"
    run = subprocess.run([sys.executable, "-m", "benchmarks", "--quick", "--cases",
                          "checkpointing", "--out", str(out)], capture_output=True, text=True,
                         cwd=ROOT, timeout=600, env=dict(os.environ, HPCAD_BENCH_REPEATS="1"))
    assert run.returncode == 0, run.stderr
    rows = {r["name"]: r["policies"] for r in json.loads(out.read_text())["rows"]}
    assert {"heat checkpointing quick", "burgers checkpointing quick",
            "jacobi checkpointing quick"} <= set(rows)
    for policies in rows.values():
        for name, p in policies.items():
            if name.startswith("budget") and "error" not in p:
                assert p["fits"], (name, p)


@pytest.mark.slow
def test_planning_benchmark_prints_and_writes_plans(tmp_path):
    """The planning case plans 1e3 and 1e5 steps (quick) and writes its times as JSON."""
    out = tmp_path / "bench.json"
    run = subprocess.run([sys.executable, "-m", "benchmarks", "--quick", "--cases", "planning",
                          "--out", str(out)], capture_output=True, text=True, cwd=ROOT,
                         timeout=300, check=False)
    assert run.returncode == 0, run.stderr
    assert "| planning quick | 100000 |" in run.stdout
    steps = json.loads(out.read_text())["rows"][0]["steps"]
    assert set(steps) == {"1000", "100000"}
    assert steps["100000"]["policy"].startswith("revolve") and steps["100000"]["choose_s"] > 0


def test_handwritten_heat_adjoint_agrees_with_hpcad():
    u0, alpha, steps = heat.make_args((64, 7))
    du_ad, dalpha_ad = ad.grad(heat.heat, argnums=(0, 1))(u0, alpha, steps)
    du = np.zeros_like(u0)
    _, dalpha = HeatAdjoint()(u0.copy(), du, alpha, steps)
    np.testing.assert_allclose(du, du_ad, rtol=1e-12)
    assert abs(dalpha - dalpha_ad) <= 1e-12 * abs(dalpha_ad)


def test_handwritten_jacobi_adjoint_agrees_with_hpcad():
    u0, v0, steps = jacobi.make_args((12, 5))
    gu, gv = ad.grad(jacobi.jacobi, argnums=(0, 1))(u0, v0, steps)
    du, dv = np.zeros_like(u0), np.zeros_like(v0)
    JacobiAdjoint()(u0.copy(), du, v0.copy(), dv, steps)
    np.testing.assert_allclose(du, gu, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(dv, gv, rtol=1e-12, atol=1e-15)


@pytest.mark.slow
def test_gradbench_benchmark_has_a_row_per_eval_function(tmp_path):
    """Every function of every GradBench eval module gets timed (hpcad, and JAX where
    benchmarks/gradbench_jax.py has it); no checkout given, so no manual figures."""
    from benchmarks.common import jax_available
    from benchmarks.gradbench import INPUTS, written_evals
    from hpcad.gradbench.protocol import module
    out = tmp_path / "bench.json"
    env = {k: v for k, v in os.environ.items() if k != "HPCAD_GRADBENCH_DIR"}
    run = subprocess.run([sys.executable, "-m", "benchmarks", "--quick", "--cases", "gradbench",
                          "--out", str(out)], capture_output=True, text=True, cwd=ROOT,
                         timeout=900, env=env | {"HPCAD_BENCH_REPEATS": "1"})
    assert run.returncode == 0, run.stderr
    rows = json.loads(out.read_text())["rows"][0]["rows"]
    timed = {(r["eval"], r["function"]) for r in rows if r.get("hpcad_s")}
    for name in written_evals():
        if name in INPUTS:
            assert {(name, f) for f in module(name).FUNCTIONS} <= timed, name
    assert all(r["manual_s"] is None for r in rows if "manual_s" in r)
    if jax_available():
        assert {("kmeans", "cost"), ("kmeans", "dir")} <= {
            (r["eval"], r["function"]) for r in rows if r.get("jax_s")}
    assert "| kmeans | dir |" in run.stdout


@pytest.mark.slow
def test_compile_benchmark_measures_cold_compiles_in_fresh_processes(tmp_path):
    """The compile case (quick: heat's primal and gradient) writes each mode's cold compile
    seconds, split into hpcad / numba / LLVM, and the generated source's lines."""
    out = tmp_path / "bench.json"
    run = subprocess.run([sys.executable, "-m", "benchmarks", "--quick", "--cases", "compile",
                          "--out", str(out)], capture_output=True, text=True, cwd=ROOT,
                         timeout=600, check=False)
    assert run.returncode == 0, run.stderr
    assert "| compile quick |" in run.stdout
    row = json.loads(out.read_text())["rows"][0]
    for mode in ("primal", "grad"):
        got = row[mode]
        assert got["compile_s"] > 0 and got["compiled"] >= 1, got
        assert got["source_lines"] > 0 and got["llvm_s"] > 0
    assert row["grad"]["source_lines"] > row["primal"]["source_lines"]
    assert row["grad"]["over_primal"] > 0
    warm = row["grad helpers cached"]     # helpers.py's functions in the cache, nothing else
    assert warm["compile_s"] > 0 and warm["compiled"] >= 1 and warm["over_primal"] > 0


_RUN_FORM = '''#setup: import numpy as np ; np.random.seed(0) ; N = 1000 ; x = np.random.rand(N) ; \
p = (2.0, 0.5)
#run: scaled_rosen(x, *p)
import numpy as np

def scaled_rosen(x, a, b):
    return a * np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2) + b * np.sum((1 - x[:-1]) ** 2)
'''


def test_outside_check_reads_a_numpy_benchmarks_file(tmp_path):
    """The numpy-benchmarks form: `#setup:` sizes above 32 capped, `#run:` arguments (a
    starred tuple spread), the parameters named from the function's signature."""
    from benchmarks.outside_check import argument_names, load_module, numpy_case
    f = tmp_path / "scaled_rosen.py"
    f.write_text(_RUN_FORM)
    name, args = numpy_case(f)
    assert name == "scaled_rosen" and args[0].shape == (32,) and args[1:] == [2.0, 0.5]
    fn = getattr(load_module(f, "scaled_rosen_ref"), name)
    assert argument_names(fn, 3) == ["x", "a", "b"]


@pytest.mark.slow
def test_outside_check_runs_a_numpy_benchmarks_folder(tmp_path):
    (tmp_path / "scaled_rosen.py").write_text(_RUN_FORM)
    (tmp_path / "complex_abs.py").write_text(
        "#setup: import numpy as np ; z = np.ones(4) * 1j\n#run: complex_abs(z)\n"
        "import numpy as np\n\ndef complex_abs(z):\n    return np.abs(z)\n")
    run = subprocess.run([sys.executable, "-m", "benchmarks.outside_check", str(tmp_path),
                          "--backend", "interp"], capture_output=True, text=True, cwd=ROOT,
                         timeout=600)
    assert run.returncode == 0, run.stderr
    assert "| scaled_rosen | numpy | works | gradient | FD per argument: x, a, b |" \
        in run.stdout
    assert "| complex_abs | numpy | error | primal | ArgumentError: argument 'z': arrays of " \
           "dtype complex128" in run.stdout
