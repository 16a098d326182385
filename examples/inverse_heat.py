"""Inverse problem: recover the diffusivity kappa(x) of a 1-D heat equation from its final
states, by L-BFGS-B (scipy) driven by hpcad's gradient. The domain is split across MPI
ranks (halo exchange inside the kernel); every rank runs the optimizer on the same global
kappa, assembled from the ranks' gradient slices, so all ranks take the same steps. Rank 0
prints the iterations and writes a PNG of recovered vs true kappa and of the loss curve.

    python examples/inverse_heat.py [--png inverse_heat.png]
    mpiexec -n 3 python examples/inverse_heat.py
"""
import argparse
import sys
from fractions import Fraction

import numpy as np
from mpi4py import MPI
from scipy.optimize import minimize

import hpcad as ad

N_CELLS = 240            # cells of the global domain [0, 1]; kappa lives on the N+1 faces
N_STEPS = 20             # explicit steps between the initial and the observed state
RATIO = 0.2              # dt / dx^2; stable while RATIO * kappa < 0.5
MODES = (1, 2, 3, 4)     # one experiment per initial state sin(m pi x): together their
#                          gradients vanish at no face, so every face's kappa is seen
BOUNDS = (0.2, 2.0)


@ad.kernel
def misfit(kappa, u, obs, ratio, nsteps, comm):
    """This rank's share of 0.5 * sum((u_T - obs)^2) over all experiments; u ends as u_T.
    u[e] holds the owned cells of experiment e between two ghost cells; kappa[f] sits on
    the face between local cells f and f + 1. Each face's flux is computed on one rank
    only, the owner of the cell on its left (faces 1..m-2; rank 0 also the boundary face
    0), and sent to the rank on its right. In the reverse sweep a face's adjoint is then a
    sum of two terms (the same in either order), and a cell's adjoint gets the term from
    the other rank last, where the serial sweep adds it too: the gradient is bitwise the
    same on any number of ranks."""
    rank = comm.Get_rank()
    size = comm.Get_size()
    left = rank - 1 if rank > 0 else MPI.PROC_NULL
    right = rank + 1 if rank < size - 1 else MPI.PROC_NULL
    first_face = 1 if rank > 0 else 0
    n_exp, m = u.shape
    flux = np.zeros((n_exp, m))
    for step in range(nsteps):
        comm.Sendrecv(u[:, 1], left, 0, u[:, m - 1], right, 0)
        for e in range(n_exp):
            for f in range(first_face, m - 1):
                flux[e, f] = kappa[f] * (u[e, f + 1] - u[e, f])
        comm.Sendrecv(flux[:, m - 2], right, 1, flux[:, 0], left, 1)
        for e in range(n_exp):
            for i in range(1, m - 1):
                u[e, i] += ratio * (flux[e, i] - flux[e, i - 1])
    s = 0.0
    for e in range(n_exp):
        for i in range(1, m - 1):
            d = u[e, i] - obs[e, i]
            s += d * d
    return 0.5 * s


def true_kappa(x_faces: np.ndarray) -> np.ndarray:
    return 1.0 + 0.5 * np.sin(2.0 * np.pi * x_faces) * np.exp(-((x_faces - 0.4) / 0.3) ** 2)


def block(n: int, comm) -> tuple[int, int]:
    """The first global cell this rank owns and how many: contiguous, near-equal blocks."""
    counts = [n // comm.size + (r < n % comm.size) for r in range(comm.size)]
    return sum(counts[:comm.rank]), counts[comm.rank]


class InverseProblem:
    """loss(kappa) and its gradient for the global kappa; the same numbers on every rank."""

    def __init__(self, comm):
        self.comm = comm
        self.start, self.count = block(N_CELLS, comm)
        x = (np.arange(self.start - 1, self.start + self.count + 1) + 0.5) / N_CELLS
        self.u0 = np.array([np.sin(m * np.pi * x) for m in MODES])
        self.u0[:, 0] *= self.start > 0                       # Dirichlet ghost at x = 0
        self.u0[:, -1] *= self.start + self.count < N_CELLS   # and at x = 1
        self.faces = slice(self.start, self.start + self.count + 1)
        self.kappa_true = true_kappa(np.arange(N_CELLS + 1) / N_CELLS)
        self.obs = self.u0.copy()
        misfit(self.kappa_true[self.faces], self.obs, self.u0, RATIO, N_STEPS, comm)  # obs <- u_T
        self.reverse = ad.autodiff(misfit, mode="reverse", activity=(
            ad.Duplicated, ad.DuplicatedNoNeed, ad.Const, ad.Const, ad.Const, ad.Const))
        self.history: list[float] = []

    def __call__(self, kappa: np.ndarray) -> tuple[float, np.ndarray]:
        u, dkappa = self.u0.copy(), np.zeros(self.count + 1)
        self.reverse(kappa[self.faces], dkappa, u, np.zeros_like(u), self.obs, RATIO,
                     N_STEPS, self.comm)
        grad = np.zeros_like(kappa)
        grad[self.faces] = dkappa
        self.comm.Allreduce(MPI.IN_PLACE, grad)   # each face's share is on one rank only
        return self.loss(u), grad

    def loss(self, u_final: np.ndarray) -> float:
        """0.5 * sum((u_T - obs)^2) over the global domain: the ranks' exact sums of their
        squares, added exactly and rounded once, so the same float on any rank count (the
        kernel's own sum, and an allreduce, would add in an order that depends on it)."""
        d = (u_final - self.obs)[:, 1:-1]
        local = sum(map(Fraction, (d * d).ravel().tolist()), Fraction(0))
        return float(sum(self.comm.allgather(local)) / 2)


def plot(problem: InverseProblem, kappa: np.ndarray, path: str) -> None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: skipped the plot")
        return
    x = np.arange(N_CELLS + 1) / N_CELLS
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5))
    left.plot(x, problem.kappa_true, "k-", label="true")
    left.plot(x, kappa, "r--", label="recovered")
    left.set_xlabel("x")
    left.set_ylabel("kappa")
    left.legend()
    right.semilogy(problem.history, "o-", ms=3)
    right.set_xlabel("iteration")
    right.set_ylabel("loss")
    fig.suptitle(f"inverse heat: {N_CELLS} cells, {len(MODES)} experiments, "
                 f"{problem.comm.size} rank(s)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    print(f"wrote {path}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--png", default="inverse_heat.png", help="where rank 0 writes the plot")
    parser.add_argument("--maxiter", type=int, default=200)
    args = parser.parse_args(argv)
    comm = MPI.COMM_WORLD
    problem = InverseProblem(comm)
    root = comm.rank == 0
    kappa0 = np.ones(N_CELLS + 1)

    def record(loss: float) -> None:
        problem.history.append(loss)
        if root:
            print(f"iter {len(problem.history) - 1:4d}  loss {loss:.17e}", flush=True)

    def on_iteration(intermediate_result) -> None:   # scipy passes the result by this name
        record(float(intermediate_result.fun))

    if root:
        print(f"ranks {comm.size}, cells {N_CELLS}, experiments {len(MODES)}, "
              f"steps {N_STEPS}")
    record(problem(kappa0)[0])
    result = minimize(problem, kappa0, jac=True, method="L-BFGS-B",
                      bounds=[BOUNDS] * (N_CELLS + 1), callback=on_iteration,
                      options={"maxiter": args.maxiter, "ftol": 1e-15, "gtol": 1e-12})
    error = np.linalg.norm(result.x - problem.kappa_true) / np.linalg.norm(problem.kappa_true)
    if root:
        print(f"stopped: {result.message}")
        print(f"relative error of kappa {error:.3e}")
        plot(problem, result.x, args.png)
    return 0


if __name__ == "__main__":
    sys.exit(main())
