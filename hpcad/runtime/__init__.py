"""Plain run-time support that both backends and the planner use, with no backend import:
snapshot files (snapshots.py)."""
