"""examples/inverse_heat.py: its gradient agrees with finite differences, L-BFGS-B recovers
kappa to 1e-3 from noise-free data, the loss history is the same on 1, 2 and 3 ranks, and it
writes its PNG (or says it skipped it when matplotlib is missing)."""
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).parent.parent
EXAMPLE = ROOT / "examples" / "inverse_heat.py"


def _mpiexec() -> str:
    found = Path(sys.executable).parent / "mpiexec"
    return str(found) if found.exists() else shutil.which("mpiexec")


def _run(ranks: int, png: Path) -> str:
    out = subprocess.run([_mpiexec(), "-n", str(ranks), sys.executable, str(EXAMPLE),
                          "--png", str(png)], capture_output=True, text=True, timeout=300,
                         cwd=ROOT, env=dict(os.environ, NUMBA_NUM_THREADS="1"))
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out.stdout


def _losses(stdout: str) -> list[float]:
    return [float(x) for x in re.findall(r"^iter +\d+  loss (\S+)$", stdout, re.M)]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("inverse_heat")
    return {ranks: (_run(ranks, tmp / f"ranks{ranks}.png"), tmp / f"ranks{ranks}.png")
            for ranks in (1, 2, 3)}


def test_gradient_agrees_with_finite_differences():
    from mpi4py import MPI

    from examples.inverse_heat import N_CELLS, InverseProblem
    problem = InverseProblem(MPI.COMM_WORLD)
    rng = np.random.default_rng(1)
    kappa = 1.0 + 0.2 * rng.random(N_CELLS + 1)
    _, grad = problem(kappa)
    for _ in range(3):
        d = rng.standard_normal(N_CELLS + 1)
        h = 1e-5
        numeric = (problem(kappa + h * d)[0] - problem(kappa - h * d)[0]) / (2 * h)
        assert abs(grad @ d - numeric) <= 1e-6 * abs(numeric)


@pytest.mark.slow
def test_recovers_kappa_from_noise_free_data(runs):
    stdout, _ = runs[1]
    error = float(re.search(r"relative error of kappa (\S+)", stdout).group(1))
    assert error <= 1e-3
    losses = _losses(stdout)
    assert losses[-1] < 1e-8 * losses[0]


@pytest.mark.slow
@pytest.mark.parametrize("ranks", [2, 3])
def test_loss_history_is_the_same_on_any_rank_count(runs, ranks):
    serial, parallel = _losses(runs[1][0]), _losses(runs[ranks][0])
    assert len(serial) > 10 and len(parallel) == len(serial)
    np.testing.assert_allclose(parallel, serial, rtol=1e-10, atol=0)


@pytest.mark.slow
def test_writes_png(runs):
    for _, png in runs.values():
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_runs_without_matplotlib_and_says_so(tmp_path):
    png = str(tmp_path / "x.png")
    hide = ("import sys, runpy; sys.modules['matplotlib'] = None; "
            f"sys.argv = [{str(EXAMPLE)!r}, '--maxiter', '2', '--png', {png!r}]; "
            f"runpy.run_path({str(EXAMPLE)!r}, run_name='__main__')")
    out = subprocess.run([sys.executable, "-c", hide], capture_output=True, text=True,
                         timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "matplotlib is not installed: skipped the plot" in out.stdout
    assert not (tmp_path / "x.png").exists()
