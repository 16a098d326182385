"""The numba backend compiles a gather's innermost interior loop in a function of its own
(unsigned indices, where LLVM vectorizes it) inside a parallel loop too, as it does in
serial code: inline in numba's parfor body the row loop of Jacobi 2-D's parallel gradient
took twice the serial gradient's CPU time. The source of the parallel gradient calls the
outlined loop inside its prange; the gradient agrees with the serial kernel's."""
import re

import numpy as np

import hpcad as ad
from hpcad.backend.numba.codegen import generate
from hpcad.cli import default_activity
from hpcad.kernels import stencils
from tests.ad.harness import relative_error

U = np.outer(np.linspace(0.1, 1.0, 12), np.linspace(0.3, 1.2, 10))


def _source(kernel, args) -> str:
    spec = kernel.specialize(kernel.bind(args))
    grad = spec.derivative("reverse", default_activity(spec), True)
    return generate(grad, "grad")[0]


def test_gather_row_loop_is_outlined_inside_the_prange():
    source = _source(stencils.jacobi_prange, (U, np.zeros_like(U), 3))
    outlined = re.findall(r"^def (grad_loop\d+)\(", source, re.M)
    assert outlined, source
    body = source[source.index("def grad("):]
    prange_bodies = body.split("in prange(")[1:]
    assert any(name + "(" in part for part in prange_bodies for name in outlined), source


def test_outlined_gradient_matches_the_serial_kernel():
    got = ad.grad(stencils.jacobi_prange, argnums=(0, 1), backend="numba")(U, 0.5 * U, 4)
    want = ad.grad(stencils.jacobi, argnums=(0, 1), backend="numba")(U, 0.5 * U, 4)
    for a, b in zip(got, want, strict=True):
        assert relative_error(a, b) <= 1e-12
