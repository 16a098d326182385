"""A process that computes a gradient on the numba backend through the compile cache
(HPCAD_CACHE_DIR) and prints, as one JSON line, the gradient, hpcad's compile/load counts and
every warning it saw. The cache tests run it as the user whose cache is attacked or damaged.

    python cache_victim.py [backend]
"""
import json
import sys
import warnings

import numpy as np

import hpcad as ad
from hpcad.backend.numba import STATS
from hpcad.kernels.stencils import heat_misfit


def gradient(backend: str) -> list[float]:
    u = np.linspace(0.0, 1.0, 32) ** 2
    du, dalpha = ad.grad(heat_misfit, argnums=(0, 2), backend=backend)(u, np.zeros(32), 0.2, 5)
    return [*map(float, du), float(dalpha)]


if __name__ == "__main__":
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        grad = gradient(sys.argv[1] if len(sys.argv) > 1 else "numba")
    print(json.dumps(dict(STATS, grad=grad,
                          warnings=[f"{w.category.__name__}: {w.message}" for w in caught])))
