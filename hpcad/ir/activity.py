"""The activity kinds of a function's arguments, by name: what passes/activity.py decides
and what the AD engines, the API and the frontend's nested derivatives (frontend/nested.py)
ask for. An argument is a constant, an active float scalar, a float array duplicated with a
shadow the caller gives, or one whose shadow hpcad allocates."""
from __future__ import annotations

CONST, ACTIVE, DUP, SHADOW = "const", "active", "dup", "shadow"
