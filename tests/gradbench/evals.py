"""Per GradBench eval: small inputs generated as the eval's driver generates them and
INDEPENDENT reference outputs (NumPy formulas, finite differences of a NumPy primal), one
`Case` per function. Adding an eval is adding its rows to CASES."""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from tests.gradbench import test_ba as ba_t
from tests.gradbench import test_gmm as gmm_t
from tests.gradbench import test_ht as ht_t
from tests.gradbench import test_lstm as lstm_t
from tests.gradbench.descent_reference import particle_reference, saddle_reference


@dataclass(frozen=True)
class Case:
    eval: str
    function: str
    make_input: Callable[[], Any]      # the message's input (JSON-ready)
    reference: Callable[[Any], Any]    # the expected output for that input
    rtol: float = 1e-8


def _driver_rng() -> None:
    np.random.seed(31337)   # the drivers' seed, for determinism


def central_difference(f: Callable[[np.ndarray], float], x: np.ndarray,
                       eps: float = 1e-6) -> np.ndarray:
    out = np.empty_like(x)
    for i in range(x.size):
        e = np.zeros_like(x)
        e.flat[i] = eps
        out.flat[i] = (f(x + e) - f(x - e)) / (2 * eps)
    return out


# --- lse ----------------------------------------------------------------------------------
def lse_input(n: int = 50) -> dict:
    _driver_rng()
    return {"x": (np.random.rand(n) * 40.0 - 20.0).tolist()}


def lse_value(x: np.ndarray) -> float:
    a = x.max()
    return float(a + np.log(np.exp(x - a).sum()))


def lse_gradient(inp: dict) -> list:
    x = np.asarray(inp["x"])
    e = np.exp(x - x.max())
    return (e / e.sum()).tolist()


# --- llsq ---------------------------------------------------------------------------------
def llsq_input(n: int = 16, m: int = 6) -> dict:
    _driver_rng()
    return {"x": np.random.rand(m).tolist(), "n": n}


def llsq_system(inp: dict) -> tuple[np.ndarray, np.ndarray]:
    n, m = inp["n"], len(inp["x"])
    t = -1.0 + np.arange(n) * 2.0 / (n - 1)
    return np.vander(t, m, increasing=True), np.sign(t)


def llsq_primal(inp: dict) -> float:
    V, s = llsq_system(inp)
    r = s - V @ np.asarray(inp["x"])
    return float(r @ r / 2.0)


def llsq_gradient(inp: dict) -> list:
    V, s = llsq_system(inp)
    return (-V.T @ (s - V @ np.asarray(inp["x"]))).tolist()


# --- ode ----------------------------------------------------------------------------------
def ode_input(n: int = 6, s: int = 4) -> dict:
    _driver_rng()
    return {"x": np.random.rand(n).tolist(), "s": s}


def rk4(x: np.ndarray, s: int) -> np.ndarray:
    def f(y):
        return np.concatenate(([x[0]], x[1:] * y[:-1]))
    h, y = 2.0 / s, np.zeros_like(x)
    for _ in range(s):
        k1 = f(y)
        k2 = f(y + h / 2 * k1)
        k3 = f(y + h / 2 * k2)
        k4 = f(y + h * k3)
        y = y + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    return y


def ode_primal(inp: dict) -> list:
    return rk4(np.asarray(inp["x"]), inp["s"]).tolist()


def ode_gradient(inp: dict) -> list:
    return central_difference(lambda x: rk4(x, inp["s"])[-1], np.asarray(inp["x"])).tolist()


# --- det ----------------------------------------------------------------------------------
def det_input(ell: int = 5) -> dict:
    _driver_rng()
    return {"A": np.random.rand(ell * ell).tolist(), "ell": ell}


def det_matrix(inp: dict) -> np.ndarray:
    return np.asarray(inp["A"]).reshape(inp["ell"], inp["ell"])


def det_primal(inp: dict) -> float:
    return float(np.linalg.det(det_matrix(inp)))


def det_gradient(inp: dict) -> list:
    A = det_matrix(inp)
    return (np.linalg.det(A) * np.linalg.inv(A).T).ravel().tolist()   # the cofactors


# --- kmeans -------------------------------------------------------------------------------
def kmeans_input(k: int = 4, n: int = 40, d: int = 3) -> dict:
    _driver_rng()
    points = np.random.rand(n, d).tolist()
    return {"points": points, "centroids": points[-k:]}


def kmeans_distances(inp: dict) -> np.ndarray:
    P, C = np.asarray(inp["points"]), np.asarray(inp["centroids"])
    return ((P[:, None, :] - C[None, :, :]) ** 2).sum(axis=2)


def kmeans_dir(inp: dict) -> list:
    # J = 2 sum (C_j - P_i) over j's points, H = 2 count_j: J H^-1 = C_j - mean of its points
    P, C = np.asarray(inp["points"]), np.asarray(inp["centroids"])
    nearest = kmeans_distances(inp).argmin(axis=1)
    return np.stack([C[j] - P[nearest == j].mean(axis=0) for j in range(len(C))]).tolist()


# --- ba -----------------------------------------------------------------------------------
def ba_input() -> dict:
    return {"n": 3, "m": 4, "p": 10, "cam": [0.3, -0.2, 0.1, 0.5, 0.4, -1.0, 1.2, 0.1, -0.1,
                                             1e-3, 1e-5],
            "x": [0.3, -0.2, 4.0], "w": 0.8, "feat": [0.1, 0.2]}


def ba_problem(raw: dict) -> dict:
    """The driver's problem: p observations, observation i sees camera i mod n, point i mod m
    (every camera, point, weight and feature a copy of the given one)."""
    n, m, p = raw["n"], raw["m"], raw["p"]
    return {"cams": np.tile(raw["cam"], (n, 1)), "X": np.tile(raw["x"], (m, 1)),
            "w": np.full(p, float(raw["w"])), "feats": np.tile(raw["feat"], (p, 1)),
            "obs": np.stack([np.arange(p) % n, np.arange(p) % m], axis=1)}


def ba_objective(raw: dict) -> dict:
    pb = ba_problem(raw)
    reproj, w_err = ba_t.reference(pb["cams"], pb["X"], pb["w"], pb["obs"], pb["feats"])
    return {"reproj_error": {"elements": reproj[0].tolist(), "repeated": raw["p"]},
            "w_err": {"element": float(w_err[0]), "repeated": raw["p"]}}


def ba_jacobian(raw: dict) -> dict:
    """GradBench's CSR form of the Jacobian of (reprojection errors, weight errors) in (cams,
    points, weights), by central differences: its first 30 entries and its last."""
    n, m, p = raw["n"], raw["m"], raw["p"]
    dense = ba_t.dense_fd(ba_problem(raw))
    rows, cols = [0], []
    for i in range(p):
        block = [*range(11 * (i % n), 11 * (i % n) + 11),
                 *range(11 * n + 3 * (i % m), 11 * n + 3 * (i % m) + 3), 11 * n + 3 * m + i]
        for _ in range(2):
            cols += block
            rows.append(len(cols))
    for i in range(p):
        cols.append(11 * n + 3 * m + i)
        rows.append(len(cols))
    row_of = np.repeat(np.arange(3 * p), np.diff(rows))
    vals = dense[row_of, cols]
    return {"rows": rows[:30] + [rows[-1]], "cols": cols[:30] + [cols[-1]],
            "vals": vals[:30].tolist() + [float(vals[-1])]}


def ht_input(us: bool) -> dict:
    from hpcad.gradbench.evals import ht
    return json.loads(json.dumps(ht.synthetic(us=us, seed=4), default=lambda a: a.tolist()))


CASES = [
    Case("hello", "square", lambda: 1.5, lambda x: x * x),
    Case("hello", "double", lambda: 1.5, lambda x: 2 * x),
    Case("lse", "primal", lse_input, lambda inp: lse_value(np.asarray(inp["x"]))),
    Case("lse", "gradient", lse_input, lse_gradient),
    Case("llsq", "primal", llsq_input, llsq_primal),
    Case("llsq", "gradient", llsq_input, llsq_gradient),
    Case("ode", "primal", ode_input, ode_primal),
    Case("ode", "gradient", ode_input, ode_gradient, rtol=1e-6),
    Case("det", "primal", det_input, det_primal),
    Case("det", "gradient", det_input, det_gradient),
    # the written-out small determinants, and the first size that walks the stack
    *(Case("det", f, partial(det_input, ell), ref) for ell in (2, 3, 4)
      for f, ref in (("primal", det_primal), ("gradient", det_gradient))),
    Case("kmeans", "cost", kmeans_input, lambda inp: float(kmeans_distances(inp).min(1).sum())),
    Case("kmeans", "dir", kmeans_input, kmeans_dir),
    *(Case("saddle", f, lambda: {"start": [1.0, 1.0]},
           lambda inp: saddle_reference(np.asarray(inp["start"])), rtol=1e-9)
      for f in ("ff", "fr", "rf", "rr")),
    *(Case("particle", f, lambda: {"w": 0.0}, lambda inp: particle_reference(inp["w"]),
           rtol=1e-9) for f in ("ff", "fr", "rf", "rr")),
    Case("gmm", "objective", gmm_t.make_input,
         lambda raw: gmm_t.reference(raw, *gmm_t.params(raw))),
    Case("gmm", "jacobian", gmm_t.make_input,
         lambda raw: dict(zip(("alpha", "mu", "q", "l"), gmm_t.fd_gradient(raw), strict=True)),
         rtol=1e-6),
    Case("lstm", "objective", lstm_t.make_input,
         lambda raw: lstm_t.reference(*lstm_t.arrays(raw))),
    Case("lstm", "jacobian", lstm_t.make_input, lstm_t.fd_gradient, rtol=1e-6),
    *(Case("ht", f, partial(ht_input, us), ref, rtol=rtol) for us in (False, True)
      for f, ref, rtol in (("objective", lambda raw: ht_t.reference(raw, *ht_t.inputs(raw)),
                            1e-10),
                           ("jacobian", ht_t.fd_jacobian, 1e-6))),
    Case("ba", "objective", ba_input, ba_objective),
    Case("ba", "jacobian", ba_input, ba_jacobian, rtol=1e-6),
]
