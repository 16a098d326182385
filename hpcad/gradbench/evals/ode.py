"""GradBench eval `ode`: cmpad's `an_ode`, y_0' = x_0, y_i' = x_i y_{i-1}, y(0) = 0, solved
to t = 2 by s steps of classic Runge-Kutta (`primal`: y(2)); `gradient`: the gradient of
y(2)'s last element in x."""
from __future__ import annotations

import numpy as np

import hpcad as ad
from hpcad.gradbench.protocol import evaluation


@ad.kernel
def slope(x, y, out):
    """out = y'(y) for the ODE's right-hand side."""
    out[0] = x[0]
    for i in range(1, x.shape[0]):
        out[i] = x[i] * y[i - 1]


@ad.kernel
def runge_kutta(x, s: int, y):
    """y = the solution at t = 2 after s steps of RK4 from y = 0."""
    h = 2.0 / s
    k1 = np.empty_like(x)
    k2 = np.empty_like(x)
    k3 = np.empty_like(x)
    k4 = np.empty_like(x)
    stage = np.empty_like(x)
    y[:] = 0.0
    for _ in range(s):
        slope(x, y, k1)
        stage[:] = y + h * k1 / 2.0
        slope(x, stage, k2)
        stage[:] = y + h * k2 / 2.0
        slope(x, stage, k3)
        stage[:] = y + h * k3
        slope(x, stage, k4)
        y += h * (k1 + 2.0 * k2 + 2.0 * k3 + k4) / 6.0


@ad.kernel
def solve(x, s: int):
    y = np.empty_like(x)
    runge_kutta(x, s, y)
    return y


@ad.kernel
def last(x, s: int):
    y = np.empty_like(x)
    runge_kutta(x, s, y)
    return y[x.shape[0] - 1]


def prepare(raw: dict) -> tuple[np.ndarray, int]:
    return np.asarray(raw["x"], dtype=np.float64), int(raw["s"])


gradient_of_last = ad.grad(last)


@evaluation(prepare=prepare, output=np.ndarray.tolist)
def primal(args: tuple[np.ndarray, int]) -> np.ndarray:
    return solve(*args)


@evaluation(prepare=prepare, output=np.ndarray.tolist)
def gradient(args: tuple[np.ndarray, int]) -> np.ndarray:
    return gradient_of_last(*args)


FUNCTIONS = {"primal": primal, "gradient": gradient}


def warm() -> None:
    args = (np.linspace(0.0, 1.0, 4), 2)
    primal.run(args)
    gradient.run(args)
