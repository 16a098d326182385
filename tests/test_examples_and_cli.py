"""The examples run and pass their own gradient checks; the `hpcad` command works."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent


@pytest.mark.parametrize("example", ["heat.py", "gmm.py", "fast_inv_sqrt.py"])
def test_example_runs(example):
    out = subprocess.run([sys.executable, str(ROOT / "examples" / example)],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "passed" in out.stdout
    if example == "fast_inv_sqrt.py":   # without the rule: the bit-operation error, file:line
        assert re.search(r"without a rule: .*fast_inv_sqrt\.py:\d+: a derivative would flow "
                         r"through the bits of a float.*custom_vjp", out.stdout), out.stdout


def _hpcad(*args):
    return subprocess.run([sys.executable, "-m", "hpcad.cli", *args], capture_output=True,
                          text=True, timeout=120)


def test_show_ir_prints_primal_and_derivatives():
    target = f"{ROOT / 'examples' / 'heat.py'}:heat_misfit"
    sig = "float64[:], float64[:], float64, int64"
    primal = _hpcad("show-ir", target, "--sig", sig)
    assert primal.returncode == 0, primal.stderr
    assert primal.stdout.startswith("func @heat_misfit(")
    rev = _hpcad("show-ir", target, "--sig", sig, "--grad")
    assert rev.returncode == 0 and "func @heat_misfit.rev(" in rev.stdout
    assert "tape.push" in rev.stdout
    fwd = _hpcad("show-ir", target, "--sig", sig, "--fwd")
    assert fwd.returncode == 0 and "func @heat_misfit.fwd(" in fwd.stdout


def test_show_ir_of_a_numba_function(tmp_path):
    """`hpcad show-ir f.py:f` of a @numba.njit function stopped with a TypeError
    ("... got CPUDispatcher"); it shows the IR of its Python function, as hpcad.kernel(f)."""
    source = tmp_path / "nj.py"
    source.write_text("import numba\n\n\n@numba.njit\ndef f(x):\n    return x[0] * 2.0\n")
    out = _hpcad("show-ir", f"{source}:f", "--sig", "float64[:]", "--grad")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("func @f.rev(")


def test_show_ir_reports_bad_signature():
    out = _hpcad("show-ir", f"{ROOT / 'examples' / 'heat.py'}:heat_misfit", "--sig", "float64")
    assert out.returncode == 2
    assert "--sig gives 1 types" in out.stderr


def test_version_names_hpcad_and_what_it_compiles_with():
    import numba

    import hpcad
    out = _hpcad("--version")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f"hpcad {hpcad.__version__} (numba {numba.__version__}, ")
