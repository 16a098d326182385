"""Time loops written to trip checkpointing (tests/checkpoint/test_plans_agree.py): a step
that reads a value it overwrites later, buffers swapped by `a, b = b, a` (locals and the
arguments themselves), an integer hash carried from step to step, a while loop with break
in each step, prange loops in each step, a float carried over steps, a break out of the
time loop and a `continue` in it, the step index in the update, a range not from 0, a
scratch array only partly refilled, a fill in every other step, an array the kernel
rewrites after the loop, two views of one array, kernels called in each step, a 2-D state,
a reshaped state, an integer array state. Each is `f(u, w, c, nt) -> float`, u and w float
arrays of one length that the kernels update in place."""
import math

import numba
import numpy as np

import hpcad as ad


@ad.kernel
def overwritten_in_step(u, w, c, nt):
    n = u.shape[0]
    s = 0.0
    for t in range(nt):
        for i in range(n):
            s += u[i] * w[i]
        for i in range(n):
            u[i] = math.tanh(u[i]) + c * w[i]
        for i in range(n):
            w[i] = w[i] * u[i] + 0.1 * math.sin(s)
    for i in range(n):
        s += u[i] * u[i] + w[i]
    return s


@ad.kernel
def swapped(u, w, c, nt):
    n = u.shape[0]
    a = np.zeros(n)
    b = np.zeros(n)
    for i in range(n):
        a[i] = u[i]
    for t in range(nt):
        for i in range(1, n - 1):
            b[i] = a[i] + c * math.tanh(a[i - 1] * w[i] - a[i + 1])
        b[0] = a[0]
        b[n - 1] = a[n - 1]
        a, b = b, a
    s = 0.0
    for i in range(n):
        s += a[i] * a[i]
    return s


@ad.kernel
def swapped_args(u, w, c, nt):
    n = u.shape[0]
    for t in range(nt):
        for i in range(1, n - 1):
            w[i] = u[i] + c * math.tanh(u[i - 1] - u[i + 1])
        w[0] = u[0]
        w[n - 1] = u[n - 1]
        u, w = w, u
    s = 0.0
    for i in range(n):
        s += u[i] * u[i] + 0.5 * w[i]
    return s


@ad.kernel
def hashed(u, w, c, nt):
    n = u.shape[0]
    h = 12345
    for t in range(nt):
        for k in range(3):
            h = (h * 1103515245 + 12345) % 2147483648
            j = h % n
            u[j] = u[j] + c * math.tanh(u[(j + 1) % n] * w[j])
        for i in range(n):
            w[i] = w[i] + 0.1 * u[i] * u[(i + h) % n]
    s = 0.0
    for i in range(n):
        s += u[i] * u[i] + w[i]
    return s


@ad.kernel
def while_in_step(u, w, c, nt):
    n = u.shape[0]
    s = 0.0
    for t in range(nt):
        k = 0
        acc = 0.0
        while k < n:
            acc += u[k] * u[k]
            k += 1
            if acc > 1.5:
                break
        for i in range(n):
            u[i] = u[i] + c * math.tanh(acc * w[i] + u[(i + 1) % n])
        s += acc
    for i in range(n):
        s += u[i] * u[i]
    return s


@ad.kernel
def prange_in_step(u, w, c, nt):
    n = u.shape[0]
    tmp = np.zeros(n)
    s = 0.0
    for t in range(nt):
        for i in numba.prange(1, n - 1):
            tmp[i] = u[i] + c * math.tanh(u[i - 1] * w[i] - u[i + 1])
        for i in numba.prange(1, n - 1):
            u[i] = tmp[i]
        for i in numba.prange(n):
            s += math.sin(u[i]) * w[i]
    for i in range(n):
        s += u[i] * u[i]
    return s


@ad.kernel
def carried_scalar(u, w, c, nt):
    n = u.shape[0]
    r = c
    for t in range(nt):
        for i in range(n):
            u[i] = u[i] + r * math.tanh(w[i] - u[i])
        r = 0.5 * r + 0.1 * math.sin(u[0])
    s = r
    for i in range(n):
        s += u[i] * u[i]
    return s


@ad.kernel
def break_in_time(u, w, c, nt):
    n = u.shape[0]
    s = 0.0
    for t in range(nt):
        for i in range(n):
            u[i] = u[i] + c * math.tanh(w[i] - u[i])
        s += u[0] * u[0]
        if s > 0.05:
            break
    for i in range(n):
        s += u[i] * u[i]
    return s


@ad.kernel
def continue_in_time(u, w, c, nt):
    n = u.shape[0]
    s = 0.0
    for t in range(nt):
        s += u[1]
        if u[0] > 0.2:
            continue
        for i in range(n):
            u[i] = u[i] + c * math.tanh(w[i] - u[i])
    for i in range(n):
        s += u[i] * u[i]
    return s


@ad.kernel
def index_in_step(u, w, c, nt):
    n = u.shape[0]
    for t in range(nt):
        for i in range(n):
            u[i] = u[i] + c * math.sin(u[i] * (t + 1) + w[(i + t) % n])
    s = 0.0
    for i in range(n):
        s += u[i] * u[i]
    return s


@ad.kernel
def offset_range(u, w, c, nt):
    n = u.shape[0]
    for t in range(2, nt + 2):
        for i in range(n):
            u[i] = u[i] + c * math.sin(u[i] * t + w[i])
    s = 0.0
    for i in range(n):
        s += u[i] * u[i]
    return s


@ad.kernel
def partial_scratch(u, w, c, nt):
    n = u.shape[0]
    tmp = np.zeros(n)
    tmp[0] = 0.5
    for t in range(nt):
        for i in range(1, n):
            tmp[i] = u[i] * tmp[i - 1] + c * w[i]
        for i in range(n):
            u[i] = math.tanh(u[i] + tmp[i])
        tmp[0] = u[n - 1]
    s = 0.0
    for i in range(n):
        s += u[i] * u[i]
    return s


@ad.kernel
def conditional_fill(u, w, c, nt):
    n = u.shape[0]
    tmp = np.zeros(n)
    for t in range(nt):
        if t % 2 == 0:
            for i in range(n):
                tmp[i] = math.sin(u[i]) + c
        for i in range(n):
            u[i] = u[i] + c * tmp[i] * w[i]
    s = 0.0
    for i in range(n):
        s += u[i] * u[i]
    return s


@ad.kernel
def rewritten_after_loop(u, w, c, nt):
    n = u.shape[0]
    for t in range(nt):
        for i in range(n):
            u[i] = u[i] + c * math.tanh(w[i] * u[i])
    for i in range(n):
        w[i] = w[i] * u[i]
    s = 0.0
    for i in range(n):
        s += u[i] * u[i] + w[i] * w[i]
    return s


@ad.kernel
def views_in_step(u, w, c, nt):
    n = u.shape[0]
    lo = u[:n - 1]
    hi = u[1:]
    for t in range(nt):
        for i in range(n - 1):
            lo[i] = lo[i] + c * math.tanh(hi[i] * w[i])
        for i in range(n - 1):
            hi[i] = hi[i] * 0.9 + 0.1 * lo[i]
    s = 0.0
    for i in range(n):
        s += u[i] * u[i]
    return s


@ad.kernel
def helper_step(a, b, c):
    for i in range(a.shape[0]):
        a[i] = a[i] + c * math.tanh(b[i] - a[i])
    return a[0]


@ad.kernel
def call_in_step(u, w, c, nt):
    n = u.shape[0]
    s = 0.0
    for t in range(nt):
        s += helper_step(u, w, c)
        s += helper_step(w, u, 0.5 * c)
    for i in range(n):
        s += u[i] * u[i]
    return s


@ad.kernel
def two_d_state(u, w, c, nt):
    n = u.shape[0]
    g = np.zeros((n, 2))
    for i in range(n):
        g[i, 0] = u[i]
        g[i, 1] = w[i]
    for t in range(nt):
        for i in range(n):
            g[i, 0] = g[i, 0] + c * math.tanh(g[i, 1])
            g[i, 1] = g[i, 1] - c * math.sin(g[i, 0])
    s = 0.0
    for i in range(n):
        s += g[i, 0] * g[i, 1]
    return s


@ad.kernel
def reshaped_state(u, w, c, nt):
    n = u.shape[0]
    m = u.reshape((1, n))
    for t in range(nt):
        for i in range(n):
            m[0, i] = m[0, i] + c * math.tanh(w[i] * m[0, (i + 1) % n])
    s = 0.0
    for i in range(n):
        s += u[i] * u[i]
    return s


@ad.kernel
def int_state(u, w, c, nt):
    n = u.shape[0]
    idx = np.zeros(n, dtype=np.int64)
    for i in range(n):
        idx[i] = i
    for t in range(nt):
        for i in range(n):
            idx[i] = (idx[i] * 5 + 3) % n
        for i in range(n):
            u[i] = u[i] + c * math.tanh(w[idx[i]] * u[i])
    s = 0.0
    for i in range(n):
        s += u[i] * u[i]
    return s


KERNELS = [overwritten_in_step, swapped, swapped_args, hashed, while_in_step, prange_in_step,
           carried_scalar, break_in_time, continue_in_time, index_in_step, offset_range,
           partial_scratch, conditional_fill, rewritten_after_loop, views_in_step, call_in_step,
           two_d_state, reshaped_state, int_state]


@ad.kernel
def loop_after_time_loop(u, w, c, nt, mt):
    """A time loop, then a loop of mt steps whose tape checkpointing keeps whole."""
    n = u.shape[0]
    for t in range(nt):
        for i in range(n):
            u[i] = u[i] + c * math.tanh(w[i] * u[(i + 1) % n])
    s = 0.0
    for t in range(mt):
        for i in range(n):
            s += math.tanh(u[i] * s * 0.01 + w[i] * t)
    for i in range(n):
        s += u[i] * u[i]
    return s
