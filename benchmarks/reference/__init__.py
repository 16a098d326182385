"""Hand-written numba adjoints (written by a person, not generated), the yardstick for
hpcad's reverse mode: they store the same trajectory tape hpcad does."""
