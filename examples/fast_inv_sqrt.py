"""The Quake bit-trick inverse square root inside a kernel, differentiated with a custom rule.

`fast_inv_sqrt` reads the bits of a float32 as an int32 (`buf.view(np.int32)`), shifts them
and reads them back as a float: those integer operations have no derivative, so hpcad
refuses to differentiate through them. With `ad.custom_vjp` / `ad.custom_jvp` the derivative
of x**-0.5 (-0.5 * y**3, with y the approximation) is given as rule kernels, and a loss that
normalizes vectors with it is differentiated. Prints the refusal without the rule, then the
gradient with it against finite differences of the exact function (within the trick's
accuracy); exits with status 1 if the check fails.

    python examples/fast_inv_sqrt.py
"""
import sys

import numpy as np

import hpcad as ad

# The trick's relative error after one Newton step is below 2e-3; the rule's y**3 triples
# it, so the gradient is checked against the exact function's at 1e-2.
ACCURACY = 1e-2


@ad.kernel
def fast_inv_sqrt(x):
    buf = np.empty(1, dtype=np.float32)
    buf[0] = x
    bits = buf.view(np.int32)
    bits[0] = 0x5f3759df - (bits[0] >> 1)       # the magic first guess
    y = buf[0]
    return y * (1.5 - 0.5 * x * y * y)           # one Newton step


inv_sqrt = ad.custom_vjp(fast_inv_sqrt)


@ad.kernel
def inv_sqrt_fwd(x):
    y = inv_sqrt(x)
    return y, y                                  # the result, and y saved for bwd


@ad.kernel
def inv_sqrt_bwd(x, y, g):
    return -0.5 * y * y * y * g                  # d x**-0.5 / dx = -0.5 x**-1.5


@ad.kernel
def inv_sqrt_jvp(x, dx):
    y = inv_sqrt(x)
    return y, -0.5 * y * y * y * dx


inv_sqrt.defvjp(inv_sqrt_fwd, inv_sqrt_bwd)
inv_sqrt.defjvp(inv_sqrt_jvp)


def make_loss(inverse_sqrt):
    """sum_i w . v_i / |v_i|: the projections of the normalized rows of v on w."""
    @ad.kernel
    def projection_loss(v, w):
        loss = 0.0
        for i in range(v.shape[0]):
            sq = 0.0
            for j in range(v.shape[1]):
                sq += v[i, j] * v[i, j]
            scale = inverse_sqrt(sq)
            for j in range(v.shape[1]):
                loss += w[j] * v[i, j] * scale
        return loss
    return projection_loss


def exact_loss(v, w):
    return float(np.sum((v / np.linalg.norm(v, axis=1, keepdims=True)) @ w))


def main() -> int:
    rng = np.random.default_rng(0)
    v, w = rng.standard_normal((50, 3)), np.array([1.0, -2.0, 0.5])

    try:
        ad.grad(make_loss(fast_inv_sqrt))(v, w)
        print("no error without the rule: FAILED")
        return 1
    except ad.DifferentiationError as refusal:
        print(f"without a rule: {refusal}")

    loss = make_loss(inv_sqrt)
    value, dv = ad.value_and_grad(loss)(v, w)
    h = 1e-6
    fd = np.zeros_like(v)
    for idx in np.ndindex(*v.shape):
        e = np.zeros_like(v)
        e[idx] = h
        fd[idx] = (exact_loss(v + e, w) - exact_loss(v - e, w)) / (2 * h)
    error = float(np.max(np.abs(dv - fd)) / np.max(np.abs(fd)))
    t = rng.standard_normal(v.shape)
    _, dot = ad.jvp(loss, (v, w), (t, None))      # forward mode agrees with reverse mode
    fwd_error = abs(dot - float(np.sum(dv * t))) / abs(dot)
    print(f"loss (bit trick)          {value:.6f}   exact {exact_loss(v, w):.6f}")
    print(f"|d loss / d v|            {np.linalg.norm(dv):.6f}")
    if error > ACCURACY or fwd_error > 1e-10:
        print(f"gradient check FAILED: relative error {error:.2e} (forward {fwd_error:.2e})")
        return 1
    print(f"gradient check passed: relative error vs finite differences of the exact "
          f"function {error:.2e} (tolerance {ACCURACY:.0e}); forward vs reverse {fwd_error:.1e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
