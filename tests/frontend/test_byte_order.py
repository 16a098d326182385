"""An array of non-native byte order (e.g. '>f8' on a little-endian machine) is refused
with an ArgumentError naming the argument and the conversion, by a kernel call and by a
derivative on both backends (numba failed with a TypingError about 'pyobject')."""
import sys

import numpy as np
import pytest

import hpcad as ad
from tests.ad.harness import BACKENDS

FOREIGN = ">f8" if sys.byteorder == "little" else "<f8"


@ad.kernel
def cubes(x):
    s = 0.0
    for i in range(x.shape[0]):
        s += x[i] ** 3
    return s


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_array_of_foreign_byte_order_is_refused(backend):
    x = np.linspace(-1.0, 1.0, 5).astype(FOREIGN)
    message = r"argument 'x': arrays of non-native byte order .* x.astype\('float64'\)"
    with pytest.raises(ad.ArgumentError, match=message):
        ad.kernel(cubes.py_func, backend=backend)(x)
    with pytest.raises(ad.ArgumentError, match=message):
        ad.grad(cubes, backend=backend)(x)
    native = x.astype("float64")
    np.testing.assert_allclose(ad.grad(cubes, backend=backend)(native), 3 * native**2,
                               rtol=1e-15)
