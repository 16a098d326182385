"""Kernels written with the Python constructs numba accepts (assert, loops over arrays,
enumerate, zip, keyword and default parameters, math functions), for tests/frontend.
They live outside the test modules so that pytest does not rewrite their `assert`s (numba
compiles the same functions to check the primal)."""
import math

import numba
import numpy as np

import hpcad as ad


@ad.kernel
def checked_energy(x, c):
    assert c > 0.0, "c must be positive"
    s = 0.0
    for i in range(x.shape[0]):
        assert x[i] < 10.0   # each element
        s += c * math.sin(x[i]) * x[i]
    return s


@ad.kernel
def checked_in_prange(x, c):
    out = np.zeros(x.shape[0])
    for i in numba.prange(x.shape[0]):
        assert x[i] < 10.0, "x too large"
        out[i] = c * x[i] * x[i]
    s = 0.0
    for i in range(x.shape[0]):
        s += out[i] * x[i]
    return s


@ad.kernel
def sum_over_elements(x, c):
    s = 0.0
    for v in x:
        s += c * math.sin(v) * v
    return s


@ad.kernel
def sum_over_rows(a, c):
    s = 0.0
    for row in a:
        t = 0.0
        for v in row:
            t += v * v
        s += c * math.exp(0.1 * t)
    return s


@ad.kernel
def weighted_by_position(x, c):
    s = 0.0
    for i, v in enumerate(x):
        s += (i + 1) * c * v * v
    for i, v in enumerate(x, 2):
        s += i * math.cos(v)
    return s


@ad.kernel
def enumerate_a_range(x, c):
    s = 0.0
    for k, j in enumerate(range(x.shape[0] - 1, 0, -2)):
        s += (k + 1.0) * x[j] * c
    for k, j in enumerate(range(1, x.shape[0], 3), 1):
        s += k * x[j] * x[j - 1]
    return s


@ad.kernel
def dot_by_zip(x, y, c):
    s = 0.0
    for a, b in zip(x, y):       # y is longer: stops at x's end
        s += a * b * c
    return s


@ad.kernel
def zip_enumerate_unpacked(x, y, c):
    s = 0.0
    for i, (a, b) in enumerate(zip(x, y)):
        s += i * a * math.sin(b) + c
    for j, (a, b) in zip(range(1, 100), zip(x, y)):
        s += j * a * b
    return s


@ad.kernel
def zip_rows(a, y):
    s = 0.0
    for row, w in zip(a, y):
        for v in row:
            s += w * v * v
    return s


@ad.kernel
def loops_in_prange_body(a, y, c):
    n = a.shape[0]
    out = np.zeros(n)
    for i in numba.prange(n):
        t = 0.0
        for j, (v, w) in enumerate(zip(a[i], y)):
            t += (j + 1) * v * w * c
        for v in a[i]:
            t += math.sin(v)
        out[i] = t
    s = 0.0
    for v in out:
        s += v * v
    return s


@ad.kernel
def element_loop_with_break(x, c):
    s = 0.0
    for i, v in enumerate(x):
        if i >= 4:
            break
        if v < -0.9:
            continue
        s += c * v * v
    return s


@ad.kernel
def strict_zip(x, y):
    s = 0.0
    for a, b in zip(x, y, strict=True):
        s += a * b
    return s


@ad.kernel
def loop_over_arrays(a):
    s = 0.0
    for v in (a, a):
        s += v[0]
    return s


@ad.kernel
def loop_over_mixed_tuple(a):
    s = 0.0
    for v in (1, 2.0):
        s += v * a[0]
    return s


@ad.kernel
def loop_over_number(x):
    s = 0.0
    for v in x[0]:
        s += v
    return s


@ad.kernel
def unpack_an_element(x):
    s = 0.0
    for a, b in x:
        s += a * b
    return s


@ad.kernel
def enumerate_with_keyword(x):
    s = 0.0
    for i, v in enumerate(x, start=1):
        s += i * v
    return s


@ad.kernel
def damped_sum(x, c=0.5, steps=3, scale=2.0):
    s = 0.0
    for step in range(steps):
        for v in x:
            s += scale * c * math.sin(v + step)
    return s


@ad.kernel
def calls_with_keywords(x, c):
    return damped_sum(x, c, scale=1.5) + damped_sum(x, steps=2)


# keyword-only parameters (numba.njit refuses them: checked against plain Python)
@ad.kernel
def keyword_only(x, c=0.5, *, steps=3, scale=2.0):
    s = 0.0
    for step in range(steps):
        for v in x:
            s += scale * c * math.cos(v * step)
    return s


@ad.kernel
def calls_keyword_only(x, c):
    return keyword_only(x, c, scale=1.5) + keyword_only(x, steps=2)


@ad.kernel
def special_functions(x, c):
    s = 0.0
    for v in x:
        s += math.erf(c * v) + 0.5 * math.erfc(v - c) + math.hypot(v, c) * np.hypot(c, 2.0 * v)
    return s


@ad.kernel
def inverse_hyperbolic(x, c):
    s = 0.0
    for v in x:
        s += math.asinh(c * v) + math.acosh(1.5 + v * v) + 2.0 * math.atanh(0.5 * v)
    return s + np.sum(np.arcsinh(x) * np.arctanh(0.3 * x) + np.arccosh(2.0 + x))


@ad.kernel
def skips_bad_values(x, c):
    s = 0.0
    for v in x:
        if math.isnan(v) or np.isinf(v):
            continue
        if math.isfinite(v * c) and not np.isnan(c):
            s += round(3.0 * c) * v * v + round(c, 1) * v
    return s


@ad.kernel
def rounded(x, out, digits):
    for i, v in enumerate(x):
        out[i, 0] = round(v) if abs(v) < 1e15 else -1   # (round(inf) and round(nan) raise)
        out[i, 1] = round(v, 2)
        out[i, 2] = round(v, -2)
        out[i, 3] = round(v, 25)
        out[i, 4] = round(v, 0)
        out[i, 5] = math.isnan(v) + 2 * math.isinf(v) + 4 * np.isfinite(v)
    return round(x[0], 1) + digits


@ad.kernel
def round_to_int(v):
    return round(v)


@ad.kernel
def ndindex_and_flat(x, a, c):
    """numba-examples' Lennard-Jones array version: rows summed through np.ndindex with the
    index tuple as the subscript, the shape sliced, then `for v in d.flat`."""
    b = a.reshape(2, 2, 3) * c
    out = np.empty(b.shape[:2], dtype=b.dtype)
    for i in np.ndindex(out.shape):
        out[i] = b[i].sum()
    for i in np.ndindex(2, 3):
        out[i[0], 1] += b[1, i[0], i[1]] * x[i[1]]
    for i in np.ndindex(out.shape[0], 2):
        out[i] *= 1.5 + x[i[1]]
    s = 0.0
    for v in out.flat:
        if v > 0.1:
            s += v * v
    for v in (a * x[:3]).flat:
        s += math.sin(v)
    return s


@ad.kernel
def loops_over_slices(x, a, c):
    s = 0.0
    for v in x[1:]:
        s += c * v * v
    for v in x[::-2]:
        s += math.sin(v)
    for u, w in zip(x[1:], x[:-1]):
        s += u * w
    for row in a[1:, :2]:
        for v in row:
            s += c * v
    for v in 2.0 * x + c:
        s += v * v * v
    return s


@ad.kernel
def writes_through_a_slice(x):
    for i, v in enumerate(x[1:]):
        x[i + 2 if i + 2 < x.shape[0] else 0] += v   # later items see the writes
    s = 0.0
    for v in x:
        s += v * v
    return s


@ad.kernel
def rows_of_a_new_axis_slice(a):
    s = 0.0
    for row in a[:, np.newaxis]:
        s += row[0, 0]
    return s


@ad.kernel
def hypot_of_arrays(x, y):
    h = np.hypot(x, 2.0 * y)
    s = 0.0
    for v, bad in zip(h, np.isnan(x * y)):
        if not bad:
            s += v * v * v
    return s


@ad.kernel
def checked_heat(u, alpha, nsteps):
    n = u.shape[0]
    tmp = np.zeros(n)
    for t in range(nsteps):
        for i in range(1, n - 1):
            tmp[i] = u[i] + alpha * (u[i - 1] - 2.0 * u[i] + u[i + 1])
        for i in range(1, n - 1):
            u[i] = tmp[i]
        assert u[n // 2] < 100.0, "blew up"
    s = 0.0
    for i in range(n):
        s += u[i] * u[i]
    return s


@ad.kernel
def sum_over_planes(a, c):
    s = 0.0
    for k, plane in enumerate(a):
        for row in plane:
            for v in row:
                s += (k + c) * v * v
    return s


@ad.kernel
def enumerate_range_with_step(x, step):
    s = 0.0
    for k, j in enumerate(range(0, x.shape[0], step)):
        s += k * x[j]
    return s


@ad.kernel
def unpack_three_from_zip(x):
    s = 0.0
    for i, (a, b, c) in enumerate(zip(x, x)):
        s += a * b * c
    return s


@ad.kernel
def tuple_from_either_branch(x, c):
    """A tuple bound on both branches of an if (an int on one, a float on the other)."""
    s = 0.0
    for i in range(x.shape[0]):
        if x[i] > 0.0:
            t = (x[i], c)
        else:
            t = (c * x[i], 2)
        a, b = t
        s += a * b
    return s


@ad.kernel
def tuple_or_number(x, c):
    if c > 0.0:
        t = (x[0], c)
    else:
        t = x[0]
    return t[0]


@ad.kernel
def tuple_carried_by_loops(x, c):
    """A tuple of numbers rebound from itself in a for loop and in a while loop, read after
    each (its last value)."""
    t = (x[0], c)
    for i in range(1, x.shape[0]):
        t = (t[1], c * t[0] + x[i] * t[1])
    k = 0
    u = (t[0], 1)
    while k < 3:
        u = (u[0] * 0.5 + u[1], u[0])
        k += 1
    return t[0] * t[1] + u[0]


@ad.kernel
def tuple_in_prange(x, c):
    out = np.zeros(x.shape[0])
    t = (0.0, 0.0)
    for i in numba.prange(x.shape[0]):
        t = (x[i] * c, x[i])
        out[i] = t[0] * t[1]
    return np.sum(out)


@ad.kernel
def private_scalar_in_prange(x, c):
    """A number made before the prange and rebound first thing in each iteration: private."""
    out = np.zeros(x.shape[0])
    tmp = 0.0
    for i in numba.prange(x.shape[0]):
        tmp = c * x[i]
        tmp += x[i] * x[i]
        out[i] = tmp * x[i]
    return np.sum(out)


@ad.kernel
def private_scalar_read_after_prange(x, c):
    tmp = 0.0
    for i in numba.prange(x.shape[0]):
        tmp = c * x[i]
        x[i] = tmp
    return tmp


@ad.kernel
def loops_over_tuples(x, c):
    """A stencil's offsets as a tuple of integers (with `continue`), weights as a tuple of
    floats read from the arguments, pairs as a tuple of tuples, and an array's shape."""
    s = 0.0
    n = x.shape[0]
    for i in range(1, n - 1):
        for off in (-1, 0, 1):
            if i == 1 and off == -1:
                continue
            for wgt in (c, 0.5 * c, x[0]):
                s += wgt * x[i + off] * x[i]
    for a, b in ((0, 1.0), (2, -c)):
        s += b * x[a] * x[a]
    for m in x.shape:
        s += m * x[-1]
    return s
