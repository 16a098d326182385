"""GradBench eval `lstm`: ADBench's LSTM (diagonal weight matrices) run over a character
sequence, its loss (`objective`) and the gradient of the loss with respect to main_params and
extra_params, flattened row by row and concatenated (`jacobian`), as GradBench's
evals/lstm/README.md and ADBench define them.

main_params has two rows per layer: the weights and then the biases of its forget, input,
output and change gates (b each); extra_params holds the input weights, output weights and
output biases; state holds each layer's hidden and cell rows. ADBench's log-sum-exp adds 2 to
the sum of exponentials, and so does this one.
"""
from __future__ import annotations

import math

import numpy as np

import hpcad as ad
from hpcad.gradbench.protocol import evaluation


@ad.kernel
def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


@ad.kernel
def lstm_loss(main_params, extra_params, state, sequence):
    n_layers = main_params.shape[0] // 2
    b = main_params.shape[1] // 4
    c = sequence.shape[0]
    s = state.copy()
    x = np.empty(b)
    total = 0.0
    for t in range(c - 1):
        for j in range(b):
            x[j] = sequence[t, j] * extra_params[0, j]
        for layer in range(n_layers):
            w = main_params[2 * layer]
            bias = main_params[2 * layer + 1]
            hidden = s[2 * layer]
            cell = s[2 * layer + 1]
            for j in range(b):
                forget = sigmoid(x[j] * w[j] + bias[j])
                ingate = sigmoid(hidden[j] * w[b + j] + bias[b + j])
                outgate = sigmoid(x[j] * w[2 * b + j] + bias[2 * b + j])
                change = math.tanh(hidden[j] * w[3 * b + j] + bias[3 * b + j])
                cell[j] = cell[j] * forget + ingate * change
                hidden[j] = outgate * math.tanh(cell[j])
            for j in range(b):
                x[j] = hidden[j]
        sumexp = 2.0
        for j in range(b):
            x[j] = x[j] * extra_params[1, j] + extra_params[2, j]
            sumexp += math.exp(x[j])
        lse = math.log(sumexp)
        for j in range(b):
            total += sequence[t + 1, j] * (x[j] - lse)
    return -total / ((c - 1) * b)


def prepare(raw: dict) -> tuple:
    return tuple(np.array(raw[name], dtype=np.float64)
                 for name in ("main_params", "extra_params", "state", "sequence"))


def flat(grads: tuple) -> list:
    return np.concatenate([g.ravel() for g in grads]).tolist()


@evaluation(prepare=prepare, output=float)
def objective(args: tuple) -> float:
    return lstm_loss(*args)


@evaluation(prepare=prepare, output=flat)
def jacobian(args: tuple) -> tuple:
    return ad.grad(lstm_loss, argnums=(0, 1))(*args)


FUNCTIONS = {"objective": objective, "jacobian": jacobian}


def warm() -> None:
    rng = np.random.default_rng(0)
    layers, b, c = 2, 3, 4
    raw = {"main_params": rng.random((2 * layers, 4 * b)), "extra_params": rng.random((3, b)),
           "state": rng.random((2 * layers, b)), "sequence": rng.random((c, b))}
    objective(raw)
    jacobian(raw)
