"""hpcad's kernel library: the workloads that the tests, the benchmarks and the examples share,
written once as plain numba-style kernels (`@ad.kernel`, loops over arrays).

    stencils      1-D heat (serial, prange, with a misfit loss), 2-D Jacobi, 1-D Burgers
    mpi_stencils  the 1-D heat and 2-D Jacobi split over MPI ranks, with their halo exchanges
    gmm           ADBench's Gaussian mixture model objective

Import the module you need (`from hpcad.kernels.stencils import heat`); nothing is imported
here, so that `mpi_stencils` loads mpi4py only when asked for.
"""
