"""The derivative rules, in tables keyed by op name (registry.py), one module per dialect
family: arith (the partials of elementary ops), mem, linalg (matrix products), scf, par,
mpi (the v-form collectives: mpi_vforms), custom (calls to kernels with custom rules), tape
(Hessian-vector products) and rt (checks, progress). Importing this package fills the tables."""
from . import arith, custom, linalg, mem, mpi, mpi_vforms, par, rt, scf, tape
from .registry import JVP, VJP, defrule, jvp_rule, vjp_rule

__all__ = ["JVP", "VJP", "arith", "custom", "defrule", "jvp_rule", "linalg", "mem", "mpi",
           "mpi_vforms", "par", "rt", "scf", "tape", "vjp_rule"]
