"""Checks batched derivatives (`ad.autodiff(..., width=W)`) against W separate unbatched
calls: forward mode with W tangent directions, reverse mode with W seeds and W cotangents of
the arrays' exit values, every lane equal to its own width-1 call. Used by tests/ad,
tests/parallel and tests/mpi. Input: a kernel, its arguments, W, a backend and a generator."""
import numpy as np

import hpcad as ad

RTOL = 1e-12


def _is_float_array(a) -> bool:
    return isinstance(a, np.ndarray) and a.dtype.kind == "f"


def _is_float(a) -> bool:
    return isinstance(a, (float, np.floating))


def lane_error(a, b) -> float:
    """|a - b| relative to the larger of the two (max norms), 0 for two zeros."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    scale = max(np.max(np.abs(a), initial=0.0), np.max(np.abs(b), initial=0.0), 1e-300)
    return float(np.max(np.abs(a - b), initial=0.0) / scale)


def _copy(args):
    return [a.copy() if isinstance(a, np.ndarray) else a for a in args]


def _as_list(x):
    return list(x) if isinstance(x, tuple) else [x]


def _stacked(x, width):
    """W directions as a width-W call takes them; width 1 keeps today's shapes (no lane axis,
    floats for scalars)."""
    if width > 1:
        return x.copy()
    return x[0].copy() if x.ndim > 1 else float(x[0])


def _lane(x, w: int, width: int):
    """Lane w of a returned derivative of a scalar (a float at width 1)."""
    if width == 1:
        assert np.ndim(x) == 0, f"width 1 returns a float, got shape {np.shape(x)}"
        return x
    assert np.shape(x) == (width,), f"a derivative of a scalar has shape {np.shape(x)}"
    return x[w]


def check_forward(kernel, args, width, backend, rng, rtol=RTOL) -> None:
    activity = tuple(ad.Duplicated if _is_float_array(a) else ad.Dual if _is_float(a)
                     else ad.Const for a in args)
    tangents = [rng.standard_normal((width,) + a.shape).astype(a.dtype) if _is_float_array(a)
                else rng.standard_normal(width) if _is_float(a) else None for a in args]
    batched = ad.autodiff(kernel, mode="forward", activity=activity, width=width,
                          backend=backend)
    single = ad.autodiff(kernel, mode="forward", activity=activity, backend=backend)
    flat = []
    for a, t in zip(_copy(args), tangents, strict=True):
        flat += [a] if t is None else [a, _stacked(t, width)]
    out, dots = batched(*flat)
    for w in range(width):
        flat = []
        for a, t in zip(_copy(args), tangents, strict=True):
            flat += [a] if t is None else [a, t[w].copy() if t.ndim > 1 else float(t[w])]
        out_w, dots_w = single(*flat)
        assert lane_error(_as_list(out), _as_list(out_w)) <= rtol, "primal results differ"
        for k, (d, d_w) in enumerate(zip(_as_list(dots), _as_list(dots_w), strict=True)):
            if d_w is None:
                assert d is None
                continue
            d = _lane(d, w, width)
            err = lane_error(d, d_w)
            assert err <= rtol, f"forward lane {w}, result {k}: {d!r} vs {d_w!r} ({err:.1e})"


def check_reverse(kernel, args, width, backend, rng, rtol=RTOL) -> None:
    activity = tuple(ad.Duplicated if _is_float_array(a) else ad.Active if _is_float(a)
                     else ad.Const for a in args)
    out = kernel(*_copy(args))
    n_out = len(out) if isinstance(out, tuple) else 1
    seeds = rng.standard_normal((n_out, width))
    shadows = [rng.standard_normal((width,) + a.shape).astype(a.dtype)
               if _is_float_array(a) else None for a in args]
    batched = ad.autodiff(kernel, mode="reverse", activity=activity, width=width,
                          backend=backend)
    single = ad.autodiff(kernel, mode="reverse", activity=activity, backend=backend)
    got_shadows = [_stacked(s, width) if s is not None else None for s in shadows]
    flat = []
    for a, s in zip(_copy(args), got_shadows, strict=True):
        flat += [a] if s is None else [a, s]
    seed = tuple(_stacked(s, width) for s in seeds) if isinstance(out, tuple) \
        else _stacked(seeds[0], width)
    if width == 1:
        got_shadows = [s[None] if s is not None else None for s in got_shadows]
    got = batched(*flat, seed=seed)
    for w in range(width):
        lane_shadows = [s[w].copy() if s is not None else None for s in shadows]
        flat = []
        for a, s in zip(_copy(args), lane_shadows, strict=True):
            flat += [a] if s is None else [a, s]
        lane_seed = tuple(float(s[w]) for s in seeds) if isinstance(out, tuple) \
            else float(seeds[0][w])
        want = single(*flat, seed=lane_seed)
        assert lane_error(_as_list(got[0]), _as_list(want[0])) <= rtol, "primal results differ"
        for k, (g, g_w) in enumerate(zip(got[1:], want[1:], strict=True)):
            g = _lane(g, w, width)
            err = lane_error(g, g_w)
            assert err <= rtol, f"reverse lane {w}, adjoint {k}: {g!r} vs {g_w!r} ({err:.1e})"
        for k, (s, s_w) in enumerate(zip(got_shadows, lane_shadows, strict=True)):
            if s is not None:
                err = lane_error(s[w], s_w)
                assert err <= rtol, f"reverse lane {w}, shadow of argument {k} ({err:.1e})"
