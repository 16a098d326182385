"""Kernels with custom derivative rules, shared by the serial and parallel tests: the bit-trick
inverse square root (no derivative in its body), a sine whose rules deliberately give twice
the true derivative (so a test sees that the body was not differentiated), an array
kernel whose bwd rule accumulates into cotangent arrays, and a prange loop calling rules
(a row norm whose rules also give twice the true derivative, and the doubled sine)."""
import math

import numpy as np

import hpcad as ad


@ad.kernel
def bits_inv_sqrt(x):
    """1/sqrt(x) by the float32 bit trick and one Newton step (relative error < 2e-3)."""
    buf = np.empty(1, dtype=np.float32)
    buf[0] = x
    bits = buf.view(np.int32)
    bits[0] = 0x5f3759df - (bits[0] >> 1)
    y = buf[0]
    return y * (1.5 - 0.5 * x * y * y)


inv_sqrt = ad.custom_vjp(bits_inv_sqrt)


@ad.kernel
def inv_sqrt_fwd(x):
    y = inv_sqrt(x)
    return y, y


@ad.kernel
def inv_sqrt_bwd(x, y, g):
    return -0.5 * y * y * y * g


@ad.kernel
def inv_sqrt_jvp(x, dx):
    y = inv_sqrt(x)
    return y, -0.5 * y * y * y * dx


inv_sqrt.defvjp(inv_sqrt_fwd, inv_sqrt_bwd)
inv_sqrt.defjvp(inv_sqrt_jvp)


@ad.kernel
def sum_scaled_inv_sqrt(v):
    s = 0.0
    for i in range(v.shape[0]):
        s += inv_sqrt(v[i]) * v[i]      # ~ sum sqrt(v)
    return s


@ad.kernel
def sum_bits_inv_sqrt(v):
    s = 0.0
    for i in range(v.shape[0]):
        s += bits_inv_sqrt(v[i]) * v[i]   # the same, without a rule
    return s


@ad.custom_vjp
@ad.kernel
def doubled_sin(x):
    return math.sin(x)


@ad.kernel
def doubled_sin_fwd(x):
    return math.sin(x), math.cos(x)     # residual: cos(x), saved for bwd


@ad.kernel
def doubled_sin_bwd(x, c, g):
    return 2.0 * c * g                  # deliberately twice the true derivative


@ad.kernel
def doubled_sin_jvp(x, dx):
    return math.sin(x), 2.0 * math.cos(x) * dx


doubled_sin.defvjp(doubled_sin_fwd, doubled_sin_bwd)
doubled_sin.defjvp(doubled_sin_jvp)


@ad.kernel
def sum_doubled_sin(v, w):
    s = 0.0
    for i in range(v.shape[0]):
        s += w * doubled_sin(v[i])
    return s


@ad.custom_vjp
@ad.kernel
def scale_into(x, out, a):
    """out = a * x; returns sum(out)."""
    s = 0.0
    for i in range(x.shape[0]):
        out[i] = a * x[i]
        s += out[i]
    return s


@ad.kernel
def scale_into_fwd(x, out, a):
    return scale_into(x, out, a)


@ad.kernel
def scale_into_bwd(x, out, a, g, dx, dout):
    da = 0.0
    for i in range(x.shape[0]):
        total = dout[i] + g          # out[i] feeds both the array and the returned sum
        dx[i] += a * total
        da += x[i] * total
        dout[i] = 0.0                # out's entry value does not matter
    return da


@ad.kernel
def scale_into_jvp(x, out, a, dx, dout, da):
    s = scale_into(x, out, a)
    ds = 0.0
    for i in range(x.shape[0]):
        dout[i] = da * x[i] + a * dx[i]
        ds += dout[i]
    return s, ds


scale_into.defvjp(scale_into_fwd, scale_into_bwd)
scale_into.defjvp(scale_into_jvp)


@ad.kernel
def scaled_energy(x, a):
    out = np.zeros_like(x)
    s = scale_into(x, out, a)
    e = 0.0
    for i in range(x.shape[0]):
        e += out[i] * out[i] * x[i]
    return e + s * a


@ad.custom_vjp
@ad.kernel
def row_norm(a, i):
    s = 0.0
    for j in range(a.shape[1]):
        s += a[i, j] * a[i, j]
    return math.sqrt(s)


@ad.kernel
def row_norm_fwd(a, i):
    n = row_norm(a, i)
    return n, n


@ad.kernel
def row_norm_bwd(a, i, n, g, da):
    for j in range(a.shape[1]):
        da[i, j] += 2.0 * g * a[i, j] / n        # deliberately twice the true derivative


@ad.kernel
def row_norm_jvp(a, i, da):
    n = row_norm(a, i)
    d = 0.0
    for j in range(a.shape[1]):
        d += a[i, j] * da[i, j]
    return n, 2.0 * d / n


row_norm.defvjp(row_norm_fwd, row_norm_bwd)
row_norm.defjvp(row_norm_jvp)


@ad.kernel
def weighted_row_norms(a, w):
    s = 0.0
    for i in ad.prange(a.shape[0]):
        s += w[i] * row_norm(a, i) + doubled_sin(a[i, 0])
    return s
