"""GradBench eval lstm: the loss against a NumPy LSTM written from ADBench's definition
(gates of the concatenation [x, h, x, h] times the weight row plus the bias row, log-sum-exp
plus 2) and the jacobian against central differences of it, through the eval's functions
(numba) and the kernel's gradient on the interpreter."""
import numpy as np
import pytest

import hpcad as ad
from hpcad.gradbench.evals import lstm

LAYERS, B, C = 2, 3, 5


def make_input(seed=0, layers=LAYERS, b=B, c=C) -> dict:
    rng = np.random.default_rng(seed)
    return {"main_params": rng.random((2 * layers, 4 * b)).tolist(),
            "extra_params": rng.random((3, b)).tolist(),
            "state": rng.random((2 * layers, b)).tolist(),
            "sequence": rng.integers(0, 2, (c, b)).astype(float).tolist()}


def sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


def reference(main, extra, state, sequence) -> float:
    s = state.copy()
    b = s.shape[1]
    total = 0.0
    for t in range(len(sequence) - 1):
        x = sequence[t] * extra[0]
        for layer in range(len(s) // 2):
            h, cell = s[2 * layer], s[2 * layer + 1]
            gates = np.concatenate([x, h, x, h]) * main[2 * layer] + main[2 * layer + 1]
            cell = cell * sigmoid(gates[:b]) + sigmoid(gates[b:2 * b]) * np.tanh(gates[3 * b:])
            h = sigmoid(gates[2 * b:3 * b]) * np.tanh(cell)
            s[2 * layer], s[2 * layer + 1] = h, cell
            x = h
        y = x * extra[1] + extra[2]
        total += np.sum(sequence[t + 1] * (y - np.log(np.sum(np.exp(y)) + 2)))
    return -total / ((len(sequence) - 1) * b)


def arrays(raw):
    return [np.array(raw[name]) for name in ("main_params", "extra_params", "state",
                                             "sequence")]


def fd_gradient(raw, h=1e-6):
    main, extra, state, sequence = arrays(raw)
    out = []
    for p in (main, extra):
        for idx in np.ndindex(p.shape):
            keep = p[idx]
            p[idx] = keep + h
            up = reference(main, extra, state, sequence)
            p[idx] = keep - h
            down = reference(main, extra, state, sequence)
            p[idx] = keep
            out.append((up - down) / (2 * h))
    return np.array(out)


@pytest.mark.parametrize("seed,layers", [(0, 1), (1, 2)])
def test_objective_is_the_lstm_loss(seed, layers):
    raw = make_input(seed, layers=layers)
    assert lstm.objective(raw) == pytest.approx(reference(*arrays(raw)), rel=1e-12)


def test_jacobian_is_main_then_extra_row_by_row():
    raw = make_input(2)
    got = np.array(lstm.jacobian(raw))
    assert got.shape == (8 * LAYERS * B + 3 * B,)
    np.testing.assert_allclose(got, fd_gradient(raw), rtol=1e-6, atol=1e-9)


def test_interpreter_gradient_matches_central_differences():
    raw = make_input(3, layers=1, b=2, c=4)
    grads = ad.grad(lstm.lstm_loss, argnums=(0, 1), backend="interp")(*arrays(raw))
    np.testing.assert_allclose(np.concatenate([g.ravel() for g in grads]), fd_gradient(raw),
                               rtol=1e-6, atol=1e-9)


def test_state_is_left_unchanged():
    raw = make_input(4)
    args = lstm.prepare(raw)
    before = args[2].copy()
    lstm.objective.run(args)
    lstm.jacobian.run(args)
    np.testing.assert_array_equal(args[2], before)
