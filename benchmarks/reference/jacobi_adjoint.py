"""HAND-WRITTEN reverse-mode adjoint of the 2-D Jacobi benchmark (benchmarks/jacobi.py).
The sweep is linear, so the adjoint needs no tape: the forward run only produces the final
state, and the reverse applies the transposed stencil step by step, swapping the adjoint
buffers as the primal swapped its states."""
import numba


@numba.njit(cache=True, error_model="numpy")
def jacobi_forward(u, v, nsteps):
    n, m = u.shape
    for step in range(nsteps):
        for i in range(1, n - 1):
            for j in range(1, m - 1):
                v[i, j] = 0.25 * (u[i - 1, j] + u[i + 1, j] + u[i, j - 1] + u[i, j + 1])
        u, v = v, u
    s = 0.0
    for i in range(n):
        for j in range(m):
            s += u[i, j] * u[i, j]
    return s, u


@numba.njit(cache=True, error_model="numpy")
def jacobi_reverse(final, du, dv, nsteps):
    n, m = final.shape
    a, b = du, dv          # adjoints of the buffers currently named u and v
    if nsteps % 2 == 1:
        a, b = b, a
    for i in range(n):
        for j in range(m):
            a[i, j] += 2.0 * final[i, j]
    for step in range(nsteps - 1, -1, -1):
        a, b = b, a        # undo the swap: a belongs to this step's input, b to its output
        for i in range(1, n - 1):
            for j in range(1, m - 1):
                g = 0.25 * b[i, j]
                b[i, j] = 0.0
                a[i - 1, j] += g
                a[i + 1, j] += g
                a[i, j - 1] += g
                a[i, j + 1] += g


class JacobiAdjoint:
    """loss = adj(u, du, v, dv, nsteps): du, dv receive d loss / d (u0, v0)."""

    def __call__(self, u, du, v, dv, nsteps):
        loss, final = jacobi_forward(u, v, nsteps)
        jacobi_reverse(final, du, dv, nsteps)
        return loss
