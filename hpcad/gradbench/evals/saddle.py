"""GradBench eval `saddle`: min over x of max over y of f(x, y) = (x0^2 + x1^2) - (y0^2 + y1^2)
by gradient descent from `start` (both points), the inner argmax nested in the cost of the
outer argmin, then the argmax at that x; output x and y. `ff`, `fr`, `rf`, `rr` take the
outer and inner gradients in forward (f) or reverse (r) mode: nested AD in kernels."""
from __future__ import annotations

import numpy as np

import hpcad as ad
from hpcad.gradbench.descent import GRADIENTS, argmin_kernel
from hpcad.gradbench.protocol import evaluation


@ad.kernel
def objective(x, y):
    return (x[0] ** 2 + x[1] ** 2) - (y[0] ** 2 + y[1] ** 2)


@ad.kernel
def negated(x, y):
    """The inner argmax's cost: -f(x, .) (x held, c in the solver's terms)."""
    return -objective(x, y)


def outer_argmin(outer: str, inner: str, backend: str | None = None):
    """The outer argmin's kernel for gradient modes `outer` and `inner`."""
    argmax = argmin_kernel(negated, GRADIENTS[inner](negated))

    @ad.kernel
    def max_over_y(start, x):
        """max over y of f(x, y), from y = start."""
        y = np.zeros(2)
        for k in range(2):
            y[k] = start[k]
        argmax(x, y)
        return objective(x, y)

    return argmin_kernel(max_over_y, GRADIENTS[outer](max_over_y), backend)


def variant(outer: str, inner: str, backend: str | None = None):
    """The eval function `outer + inner` (e.g. "fr"): start -> x and y concatenated."""
    argmin = outer_argmin(outer, inner, backend)
    argmax = argmin_kernel(negated, GRADIENTS[outer](negated), backend)   # step 2

    def run(start: np.ndarray) -> np.ndarray:
        x = start.copy()
        argmin(start, x)
        y = start.copy()
        argmax(x, y)
        return np.concatenate([x, y])
    return run


def prepare(raw) -> np.ndarray:
    return np.array(raw["start"], dtype=np.float64)


def output(r: np.ndarray) -> list[float]:
    return [float(v) for v in r]


FUNCTIONS = {name: evaluation(prepare=prepare, output=output)(variant(name[0], name[1]))
             for name in ("ff", "fr", "rf", "rr")}


def warm() -> None:
    for ev in FUNCTIONS.values():
        ev.run(np.array([1.0, 1.0]))
