"""1-D explicit heat equation, differentiated through 100 in-place time steps: the loss is the
squared misfit of the final temperature to a target profile. Prints the loss, the gradient
norms with respect to the initial state and the diffusivity, and ad.check_grad's verdict
against finite differences; exits with status 1 if the check fails.

    python examples/heat.py
"""
import sys

import numpy as np

import hpcad as ad
from hpcad.kernels.stencils import heat_misfit


def main() -> int:
    n, nsteps = 200, 100
    x = np.linspace(0.0, 1.0, n)
    u0 = np.exp(-200.0 * (x - 0.4) ** 2)
    target = 0.5 * np.exp(-100.0 * (x - 0.5) ** 2)
    alpha = 0.25      # alpha = kappa dt / dx^2; the explicit scheme is stable up to 0.5

    loss, (du0, dalpha) = ad.value_and_grad(heat_misfit, argnums=(0, 2))(u0, target, alpha, nsteps)
    print(f"loss                      {loss:.10e}")
    print(f"|d loss / d u0|           {np.linalg.norm(du0):.10e}")
    print(f"d loss / d alpha          {dalpha:.10e}")
    try:
        error = ad.check_grad(heat_misfit, u0, target, alpha, nsteps, argnums=(0, 2))
    except ad.GradientMismatch as mismatch:
        print(f"gradient check FAILED: {mismatch}")
        return 1
    print(f"gradient check passed: max relative error vs finite differences {error:.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
