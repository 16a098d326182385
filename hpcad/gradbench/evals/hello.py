"""GradBench eval `hello`: x * x (`square`) and its derivative (`double`)."""
from __future__ import annotations

import hpcad as ad
from hpcad.gradbench.protocol import evaluation


@ad.kernel
def square(x: float) -> float:
    return x * x


@evaluation(prepare=float, output=float)
def value(x: float) -> float:
    return square(x)


@evaluation(prepare=float, output=float)
def derivative(x: float) -> float:
    return ad.grad(square)(x)


FUNCTIONS = {"square": value, "double": derivative}


def warm() -> None:
    value.run(1.0)
    derivative.run(1.0)
