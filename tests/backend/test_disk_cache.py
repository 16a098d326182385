"""Compiled code is cached on disk: a second process computing the same gradient with the
same HPCAD_CACHE_DIR compiles nothing."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent.parent

SCRIPT = """
import json, sys
import numpy as np
from hpcad.kernels.stencils import heat_misfit
import hpcad as ad
from hpcad.backend.numba import STATS
u = np.linspace(0.0, 1.0, 32)
g = ad.grad(heat_misfit, argnums=(0, 2))(u, np.zeros(32), 0.2, 5)
print(json.dumps(dict(STATS, dalpha=g[1])))
"""


def _run(cache_dir):
    env = dict(os.environ, HPCAD_CACHE_DIR=str(cache_dir))
    out = subprocess.run([sys.executable, "-c", SCRIPT],
                         capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_second_process_hits_the_cache(tmp_path):
    first = _run(tmp_path)
    second = _run(tmp_path)
    assert first["compiled"] >= 1
    assert second["compiled"] == 0 and second["loaded"] >= 1
    assert second["dalpha"] == first["dalpha"]
    assert any(p.suffix == ".py" for p in tmp_path.iterdir())


@pytest.mark.slow
def test_ranks_starting_together_share_one_compilation(tmp_path):
    env = dict(os.environ, HPCAD_CACHE_DIR=str(tmp_path))
    code = SCRIPT
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env) for _ in range(3)]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    assert sum(r["compiled"] for r in results) == 1
    assert len({r["dalpha"] for r in results}) == 1


def test_numba_optimisation_level_is_part_of_the_key(monkeypatch):
    """A run with NUMBA_OPT=0 (debugging, or a quick test run) writes entries that a later
    run at numba's default level must not load: the level is in the entry's key."""
    from numba.core import config

    from hpcad.backend.numba import cache
    text = "func @k() {}"
    default = cache.entry_key(text)
    monkeypatch.setattr(config, "OPT", config._OptLevel(0))
    assert cache.entry_key(text) != default
    monkeypatch.setattr(config, "OPT", config._OptLevel(3))
    assert cache.entry_key(text) == default
