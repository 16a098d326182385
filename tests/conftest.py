"""tests/mpi runs only under mpiexec (tests/test_mpi_launch.py starts it with --with-mpi);
a plain `pytest` run does not collect it, rather than reporting it skipped."""
import sys

collect_ignore = [] if "--with-mpi" in sys.argv else ["mpi"]
