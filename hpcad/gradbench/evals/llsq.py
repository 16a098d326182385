"""GradBench eval `llsq`: the linear least squares objective of cmpad's `llsq_obj`,
y(x) = 1/2 sum_i (s_i - sum_j x_j t_i^j)^2 with t_i = -1 + 2 i / (n - 1), s_i = sign(t_i),
(`primal`) and its gradient in x."""
from __future__ import annotations

import numpy as np

import hpcad as ad
from hpcad.gradbench.protocol import evaluation


@ad.kernel
def objective(x, n: int):
    total = 0.0
    for i in range(n):
        t = -1.0 + i * 2.0 / (n - 1)
        residual = np.sign(t)
        power = 1.0
        for j in range(x.shape[0]):
            residual -= x[j] * power
            power *= t
        total += residual * residual
    return total / 2.0


def prepare(raw: dict) -> tuple[np.ndarray, int]:
    return np.asarray(raw["x"], dtype=np.float64), int(raw["n"])


gradient_of_objective = ad.grad(objective)


@evaluation(prepare=prepare, output=float)
def primal(args: tuple[np.ndarray, int]) -> float:
    return objective(*args)


@evaluation(prepare=prepare, output=np.ndarray.tolist)
def gradient(args: tuple[np.ndarray, int]) -> np.ndarray:
    return gradient_of_objective(*args)


FUNCTIONS = {"primal": primal, "gradient": gradient}


def warm() -> None:
    args = (np.linspace(0.0, 1.0, 3), 4)
    primal.run(args)
    gradient.run(args)
