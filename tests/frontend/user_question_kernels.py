"""Kernels as users posted them with numba (Stack Overflow, numba's discourse and issue
tracker, tutorials), written with `@hpcad.kernel` in place of `@njit`; each names where it
came from. tests/frontend/test_user_questions.py checks them."""
import math

import numpy as np
from numba import prange

import hpcad as ad

W_GLOBAL = np.array([0.5, -1.0, 2.0])


# --- prange reductions ----------------------------------------------------------------------

@ad.kernel
def sum_vector(x):   # "Race conditions in parallel Numba" (IMT2112 tutorial)
    length = x.shape[0]
    s = 0
    for i in prange(length):
        s += x[i]
    return s


@ad.kernel
def udt(n):   # numba #4922: a reduction updated twice, once under an if
    c = 0
    for i in prange(n):
        c += 1
        if i > 10:
            c += 1
    return c


@ad.kernel
def bug9518(test, pre, err1, err2):   # numba #9518: err2 = err2 - e after a serial loop
    for k in range(0, 100):
        pre = pre + test[k, 0]
    for k in prange(0, 100):
        err1 = err1 + test[k, 0]
        err2 = err2 - test[k, 0]
    return (err1, err2)


@ad.kernel
def prange_sub(n):   # numba #4582: s -= 2
    s = 0
    for i in prange(n):
        s -= 2
    return s


@ad.kernel
def neg_prange(N):   # numba #4489: a prange from a negative start, negative indices read
    total = 0.0
    X = np.ones(N)
    for i in prange(-N, 5):
        total += X[i]
        for j in range(-N, 5):
            total += X[j]
    return total


@ad.kernel
def inner_array(x):   # numba #2699: a temporary array made in each iteration
    s = 0.0
    for i in prange(x.shape[0]):
        tmp = np.zeros(1)
        tmp[0] = x[i] * 2.0
        s += tmp[0]
    return s


@ad.kernel
def prange_maxmin(x):   # max and min reductions in one prange
    m = -np.inf
    lo = np.inf
    for i in prange(x.shape[0]):
        m = max(m, x[i])
        lo = min(lo, x[i])
    return m - lo


@ad.kernel
def prange_var(x):   # several accumulators, then the variance
    n = x.shape[0]
    sx = 0.0
    sxx = 0.0
    for i in prange(n):
        sx += x[i]
        sxx += x[i] * x[i]
    mean = sx / n
    return sxx / n - mean * mean


@ad.kernel
def red_init(x, s0, p0):   # reductions whose start is no identity
    s = s0
    p = p0
    m = 0.5
    for i in prange(x.shape[0]):
        s -= x[i]
        p *= 1.0 + 0.1 * x[i]
        m = max(x[i], m)
    return s + p + m


@ad.kernel
def rowsum_red(a):   # np.sum of a row inside a prange reduction
    s = 0.0
    for i in prange(a.shape[0]):
        s += np.sum(a[i]) * a[i, 0]
    return s


# --- nested loops inside prange ---------------------------------------------------------------

@ad.kernel
def parallel_f(n):   # numba #8515: counters in a nested loop, a second prange with continue
    results = np.zeros(n, dtype=np.intp)
    counters = np.zeros(n, dtype=np.intp)
    for i in prange(n):
        for j in range(i):
            counters[i] += 1
    for i in prange(n):
        if i == 0:
            continue
        results[i] = counters[i] - counters[i - 1]
    return results[1:]


@ad.kernel
def row_view(n):   # IntelLabs/numba #13: a row view written in a nested loop
    b = np.zeros((n, n))
    for i in prange(n):
        a = b[i]
        for j in range(n):
            a[j] = i + j
    return b.sum()


@ad.kernel
def assign(points, centroids, labels):   # k-means assignment: locals per iteration
    n, d = points.shape
    k = centroids.shape[0]
    total = 0.0
    for i in prange(n):
        best = 1e300
        bj = 0
        for j in range(k):
            dist = 0.0
            for c in range(d):
                t = points[i, c] - centroids[j, c]
                dist += t * t
            if dist < best:
                best = dist
                bj = j
        labels[i] = bj
        total += best
    return total


@ad.kernel
def sort_rows(a):   # a bubble sort of each row in a prange
    for r in prange(a.shape[0]):
        n = a.shape[1]
        for i in range(n):
            for j in range(n - i - 1):
                if a[r, j] > a[r, j + 1]:
                    a[r, j], a[r, j + 1] = a[r, j + 1], a[r, j]
    return a


@ad.kernel
def wrap_counter(a, b):   # numba #6597: a row counter that wraps, in prange(1)
    n_rows = b.shape[0]
    s = 0.0
    for x in prange(1):
        i_row = 0
        for _ in range(n_rows):
            bi = int(b[i_row])
            s += a[i_row, :bi].sum()
            i_row += 1
            if i_row >= n_rows:
                i_row -= n_rows
    return s


@ad.kernel
def lap3d(u, out):   # a 3-D stencil, prange over the outer axis
    n0, n1, n2 = u.shape
    for i in prange(1, n0 - 1):
        for j in range(1, n1 - 1):
            for k in range(1, n2 - 1):
                out[i, j, k] = (u[i + 1, j, k] + u[i - 1, j, k] + u[i, j + 1, k]
                                + u[i, j - 1, k] + u[i, j, k + 1] + u[i, j, k - 1]
                                - 6 * u[i, j, k])
    return np.sum(out * out)


@ad.kernel
def flat_pairs(a, out):   # a prange over flattened pairs k // m, k % m
    n, m = a.shape
    for k in prange(n * m):
        i = k // m
        j = k % m
        out[i, j] = a[i, j] + i - j
    return out


# --- serial loops, while loops, early returns, helpers ---------------------------------------

@ad.kernel
def recurrence(arr1, arr2):   # UCL cluster club: a loop-carried dependency
    for i in range(1, arr1.shape[0]):
        arr2[i] = arr2[i - 1] + arr1[i] ** 2
    return arr2


@ad.kernel
def coulomb(x, y, z):   # numpy-discussion: the sum of 1/r over pairs
    N = x.shape[0]
    result = 0.0
    for i in range(N):
        for j in range(i + 1, N):
            result += 1.0 / math.sqrt((x[j] - x[i]) ** 2 + (y[j] - y[i]) ** 2
                                      + (z[j] - z[i]) ** 2)
    return result


@ad.kernel
def mandel(x, y, max_iters):   # the Mandelbrot escape count, in real arithmetic
    zr = 0.0
    zi = 0.0
    for i in range(max_iters):
        zr, zi = zr * zr - zi * zi + x, 2.0 * zr * zi + y
        if (zr * zr + zi * zi) >= 4:
            return i
    return 255


def f(x, a):
    return x ** 2 - a


def f_prime(x):
    return 2 * x


@ad.kernel
def newton_sqrt(a, x0, tolerance, max_iterations):   # Newton-Raphson: while, helpers, returns
    x = x0
    iteration = 0
    while iteration < max_iterations:
        fx = f(x, a)
        if abs(fx) < tolerance:
            return x
        x_new = x - fx / f_prime(x)
        if abs(x_new - x) < tolerance:
            return x_new
        x = x_new
        iteration += 1
    return x


@ad.kernel
def jacobi(u, tol, maxit):   # Jacobi sweeps until the largest change is below tol
    n = u.shape[0]
    err = 1.0
    it = 0
    new = u.copy()
    while err > tol and it < maxit:
        err = 0.0
        for i in range(1, n - 1):
            new[i] = 0.5 * (u[i - 1] + u[i + 1])
            err = max(err, abs(new[i] - u[i]))
        for i in range(1, n - 1):
            u[i] = new[i]
        it += 1
    return u


@ad.kernel
def while_true(x, tol):   # Heron's square root, while True with a break
    k = 0
    s = x[0]
    while True:
        s = 0.5 * (s + x[1] / s)
        k += 1
        if abs(s * s - x[1]) < tol or k > 50:
            break
    return s


def clip(x, lo, hi):
    if x < lo:
        return lo
    if x > hi:
        return hi
    return x


@ad.kernel
def clip_all(x, out, lo, hi):   # a helper with early returns called in a prange
    for i in prange(x.shape[0]):
        out[i] = clip(x[i], lo, hi) ** 2
    return out


@ad.kernel
def halving(c):   # numba #9742: while conditional: ... conditional //= 2
    conditional = c // 2
    s = 0
    while conditional:
        s += conditional
        conditional //= 2
    return s


@ad.kernel
def bubble_sort(a):   # a bubble sort with a tuple swap
    n = a.shape[0]
    for i in range(n):
        for j in range(n - i - 1):
            if a[j] > a[j + 1]:
                a[j], a[j + 1] = a[j + 1], a[j]
    return a


@ad.kernel
def insertion_sort(a):   # an insertion sort with a while loop
    for i in range(1, a.shape[0]):
        key = a[i]
        j = i - 1
        while j >= 0 and a[j] > key:
            a[j + 1] = a[j]
            j -= 1
        a[j + 1] = key
    return a


@ad.kernel
def last_index(x, t):   # the loop variable read after a break
    i = 0
    for i in range(x.shape[0]):
        if x[i] > t:
            break
    return i * x[i] + x[0]


# --- arrays: 1-D to 4-D, temporaries, views and slices ----------------------------------------

@ad.kernel
def scalar_distance(r, output):   # Stanczak: a distance matrix with math.sqrt
    N, M = r.shape
    for i in range(N):
        for j in range(N):
            tmp = 0.0
            for k in range(M):
                tmp += (r[i, k] - r[j, k]) ** 2
            output[i, j] = math.sqrt(tmp)
    return output


@ad.kernel
def f32_sum(bx1, bx2, bx3):   # SO: a float32 sum of squares over 3-D arrays
    xpt, ypt, zpt = bx1.shape
    dummy = 0.0
    for kxi in range(xpt):
        for kyi in range(ypt):
            for kzi in range(zpt):
                dummy = dummy + (bx1[kxi, kyi, kzi] * bx1[kxi, kyi, kzi]
                                 + bx2[kxi, kyi, kzi] * bx2[kxi, kyi, kzi]
                                 + bx3[kxi, kyi, kzi] * bx3[kxi, kyi, kzi])
    return dummy


@ad.kernel
def four_d(a, w):   # a 4-D contraction
    n0, n1, n2, n3 = a.shape
    out = np.zeros((n0, n1))
    for i in range(n0):
        for j in range(n1):
            for k in range(n2):
                for q in range(n3):
                    out[i, j] += a[i, j, k, q] * w[q]
    return out


@ad.kernel
def heat2d(u, alpha, nsteps):   # a new np.zeros each time step, a slice written back
    n, m = u.shape
    for t in range(nsteps):
        new = np.zeros((n, m))
        for i in range(1, n - 1):
            for j in range(1, m - 1):
                new[i, j] = u[i, j] + alpha * (u[i + 1, j] + u[i - 1, j] + u[i, j + 1]
                                               + u[i, j - 1] - 4 * u[i, j])
        u[1:-1, 1:-1] = new[1:-1, 1:-1]
    return np.sum(u * u)


@ad.kernel
def row_views(a, out):   # numba #8313 (its fixed form): row views written in a loop
    n, m = a.shape
    for i in range(n):
        out_tmp = out[i]
        a_tmp = a[i]
        for j in range(m):
            out_tmp[j] = 2.0 * a_tmp[j]
    return out


@ad.kernel
def inner_func_nb(result, a, b):   # np.exp inside a loop
    for i in range(len(result)):
        result[i] = np.exp(2.1 * a[i] + 3.2 * b[i])
    return result


@ad.kernel
def iterate_direct(x, y):   # for v in x, enumerate, zip
    s = 0.0
    for v in x:
        s += v * v
    for i, v in enumerate(y):
        s += i * v
    for a, b in zip(x, y):
        s += a * b
    return s


@ad.kernel
def iterate_rows(a):   # for row in a 2-D array
    s = 0.0
    for row in a:
        s += row[0] * row[-1]
    return s


@ad.kernel
def reversed_loops(x):   # loops running down, negative indices
    n = x.shape[0]
    out = np.zeros(n)
    for i in range(n - 1, -1, -1):
        out[i] = x[i - n] + x[-1 - i] * 2.0
    for i in range(n, 0, -2):
        out[i - 1] += out[-i]
    return out


@ad.kernel
def block_cumsum(x, out, bs):   # np.cumsum of blocks written through slices
    n = x.shape[0]
    for b in range(0, n, bs):
        out[b:b + bs] = np.cumsum(x[b:b + bs])
    return out


@ad.kernel
def aug_overlap(u):   # overlapping slices: numpy reads the old values (numba.njit does not)
    u[1:] += u[:-1]
    return u


@ad.kernel
def shift_rows(a):   # an overlapping 2-D slice copy
    a[1:, :] = a[:-1, :] * 2.0
    return a


@ad.kernel
def window_max(x, w, out):   # np.max and np.min of a sliding window
    for i in range(x.shape[0] - w + 1):
        out[i] = np.max(x[i:i + w]) - np.min(x[i:i + w])
    return out


@ad.kernel
def diff_cumsum(x, steps):   # np.diff and np.cumsum in a time loop
    for t in range(steps):
        d = np.diff(x)
        x[1:] = x[0] + np.cumsum(d) * 0.9
    return x


@ad.kernel
def matvec_rows(A, x, y):   # np.dot of each row in a prange
    for i in prange(A.shape[0]):
        y[i] = np.dot(A[i], x)
    return y


# --- integers, float32, booleans, rounding ------------------------------------------------------

@ad.kernel
def negdivmod(a, b):   # floor division and modulo of negative integers
    out = np.zeros(a.shape[0], dtype=np.int64)
    for i in range(a.shape[0]):
        out[i] = (a[i] // b[i]) * 1000 + (a[i] % b[i])
    return out


@ad.kernel
def float_divmod(x, d):   # floor division and modulo of negative floats
    out = np.empty((x.shape[0], 2))
    for i in range(x.shape[0]):
        out[i, 0] = x[i] // d
        out[i, 1] = x[i] % d
    return out


@ad.kernel
def int_ops(n):   # / // % >> & on negative integers
    s = 0.0
    for i in range(-n, n):
        s += i / 3 + i // -3 + i % -3 + (i >> 1) + (-i & 3)
    return s


@ad.kernel
def periodic_shift(a, shift):   # a periodic index (i - shift) % n
    n = a.shape[0]
    out = np.empty_like(a)
    for i in range(n):
        out[i] = a[(i - shift) % n]
    return out


@ad.kernel
def roundings(x):   # round, int, math.floor, np.round of halves and negatives
    out = np.empty((x.shape[0], 4))
    for i in range(x.shape[0]):
        out[i, 0] = round(x[i])
        out[i, 1] = int(x[i])
        out[i, 2] = math.floor(x[i])
        out[i, 3] = np.round(x[i])
    return out


@ad.kernel
def masked_mean(x, mask):   # a boolean mask and a count
    s = 0.0
    count = 0
    for i in range(x.shape[0]):
        if mask[i]:
            s += x[i]
            count += 1
    return s / count


@ad.kernel
def mask_sum(x):   # boolean-mask indexing
    return x[x > 0].sum() + np.sum(x[x < -0.5] ** 2)


@ad.kernel
def int_mean(a):   # the mean of an int array: true division of an int sum
    s = 0
    for i in range(a.shape[0]):
        s += a[i]
    return s / a.shape[0]


@ad.kernel
def int32_acc(a):   # int32 squares summed (numba widens to int64; NumPy scalars would wrap)
    s = 0
    for i in range(a.shape[0]):
        s += a[i] * a[i]
    return s


@ad.kernel
def f32_literal(x32):   # a float32 accumulator times a float64 literal
    s = np.float32(0.0)
    for i in range(x32.shape[0]):
        s += x32[i] * 0.1
    return s


@ad.kernel
def mixed(x32, k, y64):   # float32, int and float64 mixed
    s = np.float32(0.0)
    for i in range(x32.shape[0]):
        s += x32[i] * k + np.float32(i) / 3
    return s * y64[0]


@ad.kernel
def signs(a, x):   # np.sign of ints and of signed zeros, abs of ints
    s = 0.0
    for i in range(a.shape[0]):
        s += np.sign(x[i]) * abs(a[i]) + np.sign(a[i])
    return s


# --- numba's array reductions in a prange ------------------------------------------------------

@ad.kernel
def prange_array_reduction(x):   # SO 72594592: numba's whole-array reduction y += x[i]
    n = x.shape[0]
    y = np.zeros(4)
    for i in prange(n):
        y += x[i]
    return y


@ad.kernel
def two_d_array_reduction(n):   # numba #4555: result1 -= tmp[i] of 2-D int arrays
    shp = (10, 10)
    result1 = np.zeros(shp, np.int_)
    tmp_shp = (n, 10, 10)
    tmp = np.ones(tmp_shp, np.int_)
    for i in range(n):
        tmp[i] = i
    for i in prange(n):
        result1 -= tmp[i]
    return result1


@ad.kernel
def row_sums(a, w):   # weighted rows summed in a prange
    acc = np.zeros(a.shape[1])
    for i in prange(a.shape[0]):
        acc += a[i] * w
    return np.sum(acc * acc)


@ad.kernel
def weighted_sums(a, w):   # its Jacobian in w, batched (test_user_questions)
    acc = np.zeros(a.shape[1])
    for i in prange(a.shape[0]):
        acc += a[i] * w
    return acc


@ad.kernel
def squared_weighted_sums(a, w):   # its Hessian in w (test_user_questions)
    acc = np.zeros(a.shape[1])
    for i in prange(a.shape[0]):
        acc += a[i] * w * w
    return np.sum(acc * acc)


@ad.kernel
def view_reduction(x, y):   # a reduction into a named view of an argument
    v = y[1:]
    for i in prange(x.shape[0]):
        v -= x[i] * x[i]
    return np.sum(y * y)


@ad.kernel
def int_into_float(k, x):   # ints added and floats subtracted into a float array
    acc = np.zeros(2)
    for i in prange(k.shape[0]):
        acc += k[i]
        acc -= x[i]
    return acc


# --- refused: races the users asked about, and code numba takes that hpcad does not -------------

@ad.kernel
def prange_wrong_result(x):   # numba's docs (SO 72594592): every iteration writes all of y
    n = x.shape[0]
    y = np.zeros(4)
    for i in prange(n):
        y[:] += x[i]
    return y


@ad.kernel
def prange_race_y0(x):   # UCL cluster club: y[:] = y[0] + x[i]
    n = x.shape[0]
    y = np.zeros(4)
    for i in prange(n):
        y[:] = y[0] + x[i]
    return y


@ad.kernel
def prange_histogram(x, lo, hi, nbins):   # a histogram filled in a prange
    hist = np.zeros(nbins, dtype=np.int64)
    w = (hi - lo) / nbins
    for i in prange(x.shape[0]):
        k = int((x[i] - lo) / w)
        if 0 <= k < nbins:
            hist[k] += 1
    return hist


@ad.kernel
def prange_argmax(x):   # an argmax in a prange: best and idx are no reduction
    best = -np.inf
    idx = 0
    for i in prange(x.shape[0]):
        if x[i] > best:
            best = x[i]
            idx = i
    return idx


@ad.kernel
def if_max(x):   # the max as users write it: if x[i] > m: m = x[i]
    m = -np.inf
    for i in prange(x.shape[0]):
        if x[i] > m:
            m = x[i]
    return m


@ad.kernel
def not_a_reduction(x):   # s = x[i] - s reads s other than as s - e
    s = 0.0
    for i in prange(x.shape[0]):
        s = x[i] - s
    return s


@ad.kernel
def ifloordiv(n):   # numba #7867: acc //= 2 (numba refuses it too since #7919)
    acc = 10000
    for i in prange(n):
        acc //= 2
    return acc


@ad.kernel
def div_red(n):   # numba #4582: c /= 2 in a prange
    c = n * 1.0
    for i in prange(n):
        c /= 2
    return c


@ad.kernel
def detect_positive_split(x, is_positive, N):   # numba #2477: one prange iteration per half
    for i in prange(2):
        for j in range(i * N // 2, (i + 1) * N // 2):
            is_positive[j] = 0
            if x[j] > 0:
                is_positive[j] = 1
    return is_positive


@ad.kernel
def uses_globals(x):   # a global array read in the kernel (numba freezes it)
    s = 0.0
    for i in range(1, 6):
        s += x[i] * W_GLOBAL[i % 3]
    return s


@ad.kernel
def mandel_c(x, y, max_iters):   # the Mandelbrot escape count in complex numbers
    c = complex(x, y)
    z = 0.0j
    for i in range(max_iters):
        z = z * z + c
        if (z.real * z.real + z.imag * z.imag) >= 4:
            return i
    return 255


@ad.kernel
def product_array_reduction(x):   # acc *= x[i]: numba takes it, hpcad does not
    acc = np.ones(3)
    for i in prange(x.shape[0]):
        acc *= x[i]
    return acc


@ad.kernel
def f32_wider(x):   # float64 values into a float32 array: NumPy adds in float64
    acc = np.zeros(3, dtype=np.float32)
    for i in prange(x.shape[0]):
        acc += x[i]
    return acc


@ad.kernel
def read_inside(x):   # the reduced array read inside the loop: a race
    acc = np.zeros(3)
    out = np.zeros(x.shape[0])
    for i in prange(x.shape[0]):
        acc += x[i]
        out[i] = acc[0]
    return out
