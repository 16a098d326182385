"""GradBench eval `lse`: LogSumExp with the max trick (`primal`) and its gradient."""
from __future__ import annotations

import math

import numpy as np

import hpcad as ad
from hpcad.gradbench.protocol import evaluation


@ad.kernel
def logsumexp(x):
    """a + log(sum(exp(x - a))) with a = max(x): no exp overflows."""
    a = x[0]
    for i in range(1, x.shape[0]):
        a = max(a, x[i])
    total = 0.0
    for i in range(x.shape[0]):
        total += math.exp(x[i] - a)
    return a + math.log(total)


def prepare(raw: dict) -> np.ndarray:
    return np.asarray(raw["x"], dtype=np.float64)


gradient_of_lse = ad.grad(logsumexp)


@evaluation(prepare=prepare, output=float)
def primal(x: np.ndarray) -> float:
    return logsumexp(x)


@evaluation(prepare=prepare, output=np.ndarray.tolist)
def gradient(x: np.ndarray) -> np.ndarray:
    return gradient_of_lse(x)


FUNCTIONS = {"primal": primal, "gradient": gradient}


def warm() -> None:
    x = np.linspace(0.0, 1.0, 4)
    primal.run(x)
    gradient.run(x)
