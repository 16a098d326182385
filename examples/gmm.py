"""ADBench's Gaussian mixture model objective written as loops, differentiated with respect to
the mixture weights (alphas), the means and the inverse Cholesky factors (icf) by one call of
ad.grad(argnums=(0, 1, 2)), then checked against central finite differences along random
directions; exits with status 1 if a check fails.

    python examples/gmm.py
"""
import sys

import numpy as np

import hpcad as ad
from hpcad.kernels.gmm import gmm_objective


def main() -> int:
    rng = np.random.default_rng(2024)
    d, n_comp, n = 4, 5, 50
    alphas = rng.standard_normal(n_comp)
    means = rng.standard_normal((n_comp, d))
    icf = 0.3 * rng.standard_normal((n_comp, d + d * (d - 1) // 2))
    x = rng.standard_normal((n, d))
    params = (alphas, means, icf)
    data = (x, 1.0, 0)          # points, Wishart gamma and m (the prior's hyperparameters)

    gradient = ad.grad(gmm_objective, argnums=(0, 1, 2))(*params, *data)
    print(f"objective          {gmm_objective(*params, *data):.10e}")
    for name, g in zip(("alphas", "means", "icf"), gradient, strict=True):
        print(f"|d f / d {name:6s}|  {np.linalg.norm(g):.10e}")

    # Central differences along random directions v: (f(p + h v) - f(p - h v)) / 2h should
    # match sum_k <grad_k, v_k>; the error of the difference itself is ~1e-9 relative here.
    h, rtol, failed = 1e-6, 1e-6, False
    for trial in range(3):
        v = [rng.standard_normal(p.shape) for p in params]
        plus = gmm_objective(*[p + h * vk for p, vk in zip(params, v, strict=True)], *data)
        minus = gmm_objective(*[p - h * vk for p, vk in zip(params, v, strict=True)], *data)
        fd = (plus - minus) / (2.0 * h)
        directional = sum(float(np.vdot(g, vk)) for g, vk in zip(gradient, v, strict=True))
        error = abs(fd - directional) / max(abs(fd), abs(directional))
        failed |= error > rtol
        print(f"direction {trial}: AD {directional:+.12e}  FD {fd:+.12e}  rel. error {error:.1e}")
    print("gradient check FAILED" if failed else "gradient check passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
