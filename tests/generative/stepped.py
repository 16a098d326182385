"""Kernels whose body is one time loop (`for step in range(nt)`) around blocks of the
grammar (grammar.BLOCKS: loops, nests, while loops with break, calls, prange loops,
fork-join tasks, tuples, offset views), for the planner check (checks.check_plans): a time
loop that updates u and w in place, which checkpointing splits, recomputes and restores,
with everything the grammar puts inside a step. Inputs: hypothesis `draw`; output: a
grammar.Generated with 2-6 steps."""
from __future__ import annotations

from hypothesis import strategies as st

from tests.generative import grammar

# blocks inside a step ("time" is the loop itself)
STEP_BLOCKS = ("loop", "nested", "while", "call", "prange", "forkjoin", "tuple", "views",
               "early_return", "recurrence", "skewed_nests")


def step_update(ctx: grammar.Ctx) -> list[str]:
    """An in-place update of u or w from both (the state the time loop carries), bounded."""
    a = ctx.pick(["u", "w"])
    return ["for i in range(n):",
            f"    {a}[i] = {a}[i] + {grammar.bounded(ctx, ['u[i]', 'w[i]', f'{a}[(i + 1) % n]'])}"]


@st.composite
def stepped_kernels(draw, parallel: bool = False) -> grammar.Generated:
    """`main(u, w, c, nt)`: 1-3 blocks and an in-place update of the state in each step;
    `parallel`: one of the blocks a prange loop or fork-join tasks."""
    ctx = grammar.Ctx(draw)
    names = [b for b in STEP_BLOCKS if grammar.block_enabled(b)]
    chosen = draw(st.lists(st.sampled_from(names), min_size=1, max_size=3))
    if parallel:
        chosen.insert(draw(st.integers(0, len(chosen))), draw(st.sampled_from(
            [b for b in ("prange", "forkjoin") if grammar.FEATURES[b]])))
    step: list[str] = []
    for name in chosen:
        step += grammar.BLOCKS[name](ctx)
    step += step_update(ctx)
    ctx.locals.clear()      # the step's local arrays are new in every step
    body = ["n = u.shape[0]", "s = 0.0", "for step in range(nt):"] + grammar.indent(step)
    body += grammar.loss_lines(ctx)
    ctx.use("stepped")
    return grammar.Generated(grammar.module_source(ctx, "u, w, c, nt", body),
                             n=draw(st.sampled_from(grammar.SIZES)), nt=draw(st.integers(2, 6)),
                             c=draw(st.sampled_from([0.2, 0.35, 0.5])),
                             seed=draw(st.integers(0, 2**16)), zeros=draw(st.booleans()),
                             features=frozenset(ctx.features), prange=ctx.prange)
