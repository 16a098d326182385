"""Kernels for test_boundscheck.py, importable by the processes it starts: each indexes
`shift` elements past where it should, so a shift of 0 is in bounds and a large one is not."""
import hpcad as ad


@ad.kernel
def shifted_read(u, shift):
    s = 0.0
    for i in range(u.shape[0]):
        s += u[i + shift] * u[i]
    return s


@ad.kernel
def shifted_read_parallel(out, u, shift):
    for i in ad.prange(u.shape[0]):
        out[i] = 2.0 * u[i + shift]
    s = 0.0
    for i in range(out.shape[0]):
        s += out[i] * out[i]
    return s
