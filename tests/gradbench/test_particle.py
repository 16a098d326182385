"""GradBench's particle eval (hpcad/gradbench/evals/particle.py), every mode pair, against
plain NumPy: the Euler trajectory with the analytic force and its derivative in w carried
alongside by hand (the Hessian of the 1/r potentials), and the same descent on w; both
backends (numba in the slow tier)."""
import pytest

from hpcad.gradbench.evals import particle
from tests.ad.harness import INTERP_FAST
from tests.gradbench.descent_reference import miss_and_derivative
from tests.gradbench.descent_reference import particle_reference as reference


def test_reference_derivative_matches_differences():
    eps = 1e-6
    fd = (miss_and_derivative(eps)[0] - miss_and_derivative(-eps)[0]) / (2 * eps)
    assert miss_and_derivative(0.0)[1] == pytest.approx(fd, rel=1e-6)


@pytest.mark.parametrize("backend", INTERP_FAST)
@pytest.mark.parametrize("name", ["ff", "fr", "rf", "rr"])
def test_particle_matches_numpy_descent(name, backend):
    got = particle.variant(name[0], name[1], backend)(0.0)
    assert got == pytest.approx(reference(0.0), rel=1e-9)
