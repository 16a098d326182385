"""hpcad benchmarks: `python -m benchmarks` runs every case, prints a table and writes JSON."""
