"""Batched forward mode (width W) without copies: W tangent directions through one call equal
W single-direction jvps and central finite differences, on both backends, for arrays of 1-3
dimensions, Dual scalars and a kernel that updates its input in place; tangents may be passed
lanes first, (W, *shape) C-contiguous, or lanes last in memory (np.moveaxis of a (*shape, W)
array, what the compiled code reads in place); jacobian(mode="fwd", batch=W) agrees with
finite differences."""
import math

import numpy as np
import pytest

import hpcad as ad

BACKENDS = ["interp", "numba"]
EPS = 1e-6


@ad.kernel
def mix3(a, b, c, s, out):
    """1-, 2- and 3-dimensional inputs and a scalar into a 2-D output; returns a scalar."""
    total = 0.0
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            v = s * a[i] * b[i, j] + math.sin(c[i, j, 0] * c[i, j, 1])
            out[i, j] = v
            total += v * v
    return total


@ad.kernel
def square_in_place(x, s):
    """Updates x in place: its tangent is both read and written."""
    for i in range(x.shape[0]):
        x[i] = s * x[i] * x[i]


def _lanes_last(t):
    """t (W, *shape) with its memory laid out lanes last."""
    out = np.moveaxis(np.empty(t.shape[1:] + t.shape[:1]), -1, 0)
    out[...] = t
    return out


def _mix_args(rng):
    return [rng.standard_normal(3), rng.standard_normal((3, 4)),
            rng.standard_normal((3, 4, 2)), 0.7, np.zeros((3, 4))]


def _mix_flat(args, tangents):
    a, b, c, s, out = args
    da, db, dc, ds, dout = tangents
    return (a.copy(), da, b.copy(), db, c.copy(), dc, s, ds, out.copy(), dout)


MIX_ACTIVITY = (ad.Duplicated, ad.Duplicated, ad.Duplicated, ad.Dual, ad.Duplicated)


def _mix_numpy(a, b, c, s):
    """mix3 in NumPy: (result, out)."""
    out = s * a[:, None] * b + np.sin(c[..., 0] * c[..., 1])
    return float(np.sum(out * out)), out


def _mix_fd(args, direction):
    """Central differences of (result, out) along one direction (da, db, dc, ds)."""
    def at(h):
        a, b, c, s, _ = args
        da, db, dc, ds = direction
        return _mix_numpy(a + h * da, b + h * db, c + h * dc, s + h * ds)
    (rp, op), (rm, om) = at(EPS), at(-EPS)
    return (rp - rm) / (2 * EPS), (op - om) / (2 * EPS)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("layout", ["lanes_first", "lanes_last"])
def test_width_forward_equals_single_jvps_and_finite_differences(backend, layout):
    rng = np.random.default_rng(3)
    args = _mix_args(rng)
    width = 5
    dirs = [rng.standard_normal((width,) + args[k].shape) for k in range(3)]
    dirs.append(rng.standard_normal(width))
    place = _lanes_last if layout == "lanes_last" else np.array
    tangents = [place(d) for d in dirs[:3]] + [dirs[3], place(np.zeros((width, 3, 4)))]
    df = ad.autodiff(mix3, mode="forward", activity=MIX_ACTIVITY, width=width,
                     backend=backend)
    _, dret = df(*_mix_flat(args, tangents))
    dout = tangents[4]
    one = ad.autodiff(mix3, mode="forward", activity=MIX_ACTIVITY, backend=backend)
    for w in range(width):
        lane = [dirs[0][w].copy(), dirs[1][w].copy(), dirs[2][w].copy(), float(dirs[3][w]),
                np.zeros((3, 4))]
        _, dret1 = one(*_mix_flat(args, lane))
        np.testing.assert_allclose(dret[w], dret1, rtol=1e-12)
        np.testing.assert_allclose(dout[w], lane[4], rtol=1e-12, atol=1e-14)
        fd_ret, fd_out = _mix_fd(args, [d[w] for d in dirs])
        np.testing.assert_allclose(dret[w], fd_ret, rtol=1e-6)
        np.testing.assert_allclose(dout[w], fd_out, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("layout", ["lanes_first", "lanes_last"])
def test_width_forward_of_a_kernel_writing_its_input_in_place(backend, layout):
    rng = np.random.default_rng(4)
    x0, s, width = rng.standard_normal(6), 1.3, 4
    dx0 = rng.standard_normal((width, 6))
    ds = rng.standard_normal(width)
    dx = _lanes_last(dx0) if layout == "lanes_last" else dx0.copy()
    x = x0.copy()
    df = ad.autodiff(square_in_place, mode="forward", activity=(ad.Duplicated, ad.Dual),
                     width=width, backend=backend)
    df(x, dx, s, ds)
    np.testing.assert_allclose(x, s * x0 * x0)
    for w in range(width):
        # x_new = s x^2: its tangent is ds x^2 + 2 s x dx
        np.testing.assert_allclose(dx[w], ds[w] * x0 * x0 + 2 * s * x0 * dx0[w], rtol=1e-12)
        fd = (((s + EPS * ds[w]) * (x0 + EPS * dx0[w]) ** 2)
              - ((s - EPS * ds[w]) * (x0 - EPS * dx0[w]) ** 2)) / (2 * EPS)
        np.testing.assert_allclose(dx[w], fd, rtol=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
def test_forward_jacobian_in_batches_equals_finite_differences(backend):
    rng = np.random.default_rng(5)
    a, b, c, s, out = _mix_args(rng)
    jac = ad.jacobian(mix3, argnums=(0, 1, 2, 3), mode="fwd", batch=7, backend=backend)
    got = jac(a, b, c, s, out)
    for k, (arr, blk) in enumerate(zip((a, b, c, s), got)):
        shape = np.shape(arr)
        assert blk.shape == shape
        for j in range(int(np.prod(shape, dtype=int))):
            direction = [np.zeros_like(a), np.zeros_like(b), np.zeros_like(c), 0.0]
            if shape:
                direction[k].reshape(-1)[j] = 1.0
            else:
                direction[k] = 1.0
            fd, _ = _mix_fd((a, b, c, s, out), direction)
            np.testing.assert_allclose(np.reshape(blk, -1)[j], fd, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("backend", BACKENDS)
def test_width_forward_refuses_tangents_in_neither_layout(backend):
    rng = np.random.default_rng(6)
    args = _mix_args(rng)
    width = 3
    strided = np.zeros((width, 6, 4))[:, ::2]          # (3, 3, 4), neither layout
    tangents = [np.zeros((width, 3)), strided, np.zeros((width, 3, 4, 2)), np.zeros(width),
                np.zeros((width, 3, 4))]
    df = ad.autodiff(mix3, mode="forward", activity=MIX_ACTIVITY, width=width,
                     backend=backend)
    with pytest.raises(ad.ArgumentError, match="lanes last"):
        df(*_mix_flat(args, tangents))
