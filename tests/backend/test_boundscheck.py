"""HPCAD_BOUNDSCHECK=1 compiles the numba backend's code with every index checked: an index
out of bounds raises hpcad.IndexOutOfBounds (an IndexError naming the kernel's file:line), as
the interpreter raises IndexError, instead of reading or writing outside the array. The flag
is part of the compile-cache key: checked and unchecked code never stand in for each other.
The compiled kernels run in processes of their own, so that unchecked code cannot corrupt
this one."""
import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import hpcad as ad
from tests.backend import bounds_kernels as bk

ROOT = Path(__file__).resolve().parents[2]   # the child imports tests.backend from here

SCRIPT = """
import json, sys
import numpy as np
from tests.backend import bounds_kernels as bk
import hpcad as ad
from hpcad.backend.numba import STATS
name, shift = sys.argv[1], int(sys.argv[2])
u = np.linspace(0.5, 1.5, 16)
args, wrt = ((u, shift), 0) if name == "shifted_read" else ((np.zeros(16), u, shift), 1)
try:
    value = float(ad.grad(getattr(bk, name), argnums=wrt, backend="numba")(*args)[0])
    error = None
except IndexError as e:
    value, error = None, [type(e).__name__, str(e)]
print(json.dumps(dict(STATS, value=value, error=error)))
"""

KERNELS = ["shifted_read", "shifted_read_parallel"]
OUT_OF_BOUNDS = 1_000_000


def run_numba(cache_dir: Path, name: str, shift: int, checked: bool) -> dict:
    """The gradient of bk.<name> on numba in a new process: STATS, value, error."""
    env = dict(os.environ, HPCAD_CACHE_DIR=str(cache_dir))
    env.pop("HPCAD_BOUNDSCHECK", None)
    if checked:
        env["HPCAD_BOUNDSCHECK"] = "1"
    out = subprocess.run([sys.executable, "-c", SCRIPT, name, str(shift)],
                         capture_output=True, text=True, env=env, timeout=600, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def kernel_line(name: str) -> str:
    """file:line of the kernel's read at `i + shift`."""
    lines, first = inspect.getsourcelines(getattr(bk, name).py_func)
    return f"{bk.__file__}:{first + next(k for k, line in enumerate(lines) if 'i + shift' in line)}"


@pytest.mark.parametrize("name", [KERNELS[0], pytest.param(KERNELS[1], marks=pytest.mark.slow)])
def test_out_of_bounds_raises_on_numba_when_checked(name, tmp_path):
    got = run_numba(tmp_path, name, OUT_OF_BOUNDS, checked=True)
    assert got["error"] is not None, f"no error; gradient {got['value']}"
    kind, message = got["error"]
    assert kind == "IndexOutOfBounds"
    assert kernel_line(name) in message and "HPCAD_BOUNDSCHECK=1" in message, message


@pytest.mark.parametrize("name", KERNELS)
def test_out_of_bounds_raises_on_the_interpreter(name):
    u = np.linspace(0.5, 1.5, 16)
    args = (u, OUT_OF_BOUNDS) if name == "shifted_read" else (np.zeros(16), u, OUT_OF_BOUNDS)
    with pytest.raises(IndexError):
        ad.grad(getattr(bk, name), argnums=0, backend="interp")(*args)


@pytest.mark.slow
def test_checked_and_unchecked_code_are_cached_apart(tmp_path):
    unchecked = run_numba(tmp_path, "shifted_read", 0, checked=False)
    checked = run_numba(tmp_path, "shifted_read", 0, checked=True)
    assert unchecked["compiled"] >= 1 and checked["compiled"] >= 1, (unchecked, checked)
    again = [run_numba(tmp_path, "shifted_read", 0, checked=flag) for flag in (False, True)]
    assert all(run["compiled"] == 0 and run["loaded"] >= 1 for run in again), again
    expected = 2.0 * float(np.linspace(0.5, 1.5, 16)[0])   # d/du_0 of the sum of u_i^2
    assert all(run["value"] == pytest.approx(expected, rel=1e-14)
               for run in [unchecked, checked, *again])


ATOMIC_SCRIPT = """
import numpy as np
from numba import njit
from hpcad.backend.numba.intrinsics import atomic_add

@njit(boundscheck=True)
def scatter(a, i):
    atomic_add(a, i, 1.0)

try:
    scatter(np.zeros(4), {index})
    print("no error")
except IndexError:
    print("IndexError")
"""


def test_atomic_adds_are_checked_too():
    """The atomic float add of racing adjoint accumulations (intrinsics.py) computes its
    element's address itself: it follows numba's boundscheck flag as plain indexing does."""
    out = subprocess.run([sys.executable, "-c", ATOMIC_SCRIPT.format(index=OUT_OF_BOUNDS)],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0 and out.stdout.strip() == "IndexError", (out.stdout, out.stderr)
