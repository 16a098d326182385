"""Parallel constructs a kernel may use, written so that the kernel still runs as plain
Python (where they are sequential). Inside hpcad they are markers (see markers/*.toml):
`prange` becomes a parallel loop, the others fork-join tasks.

    for i in hpcad.prange(n): ...               # iterations may run concurrently
    a, b = hpcad.join(f, (x,), g, (y, z))       # f(x) and g(y, z) may run concurrently
    h1 = hpcad.spawn(f, x); h2 = hpcad.spawn(g, y)
    r1 = hpcad.sync(h1); r2 = hpcad.sync(h2)    # tasks run between spawn and sync
    hpcad.par_map(f, n, out, *args)             # out[i] = f(i, *args) for i in range(n)
    s = hpcad.par_sum(f, n, *args)              # sum of f(i, *args) for i in range(n)
"""
from __future__ import annotations


def prange(*args, allow_races: bool = False):
    """range(*args) whose iterations may run in parallel. allow_races=True tells hpcad that
    iterations touching the same array elements is intended (hpcad then does not stop it;
    it refuses to differentiate such a race on an array that carries a derivative)."""
    return range(*args)


def join(f, args_f, g, args_g):
    """Run f(*args_f) and g(*args_g), possibly in parallel; returns (f's result, g's)."""
    return f(*args_f), g(*args_g)


class _Task:
    __slots__ = ("result",)

    def __init__(self, result):
        self.result = result


def spawn(f, *args):
    """Start f(*args) as a task; its result is available from sync(handle)."""
    return _Task(f(*args))


def sync(handle):
    """Wait for a spawned task and return its result."""
    return handle.result


def par_map(f, n, out, *args):
    """out[i] = f(i, *args) for every i in range(n), in parallel."""
    for i in range(n):
        out[i] = f(i, *args)


def par_sum(f, n, *args):
    """The sum of f(i, *args) over i in range(n), computed in parallel."""
    s = 0.0
    for i in range(n):
        s += f(i, *args)
    return s
