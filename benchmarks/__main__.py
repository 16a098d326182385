"""Run the benchmarks: `python -m benchmarks [--quick] [--cases heat,jacobi,gmm] [--out F]`.
Prints a table of medians (after a warm-up) and ratios measured in the same run, and writes
them as JSON with the machine's facts (default benchmarks/results/latest.json), with PNG
plots beside it (benchmarks/plots.py)."""
from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from benchmarks import plots
from benchmarks.common import compile_times, write_json

CASES = ("heat", "jacobi", "heat3d", "coupled", "gmm", "gemm", "burgers", "scaling",
         "mpi_scaling", "checkpointing", "width", "planning", "numpy_style",
         "halo",
         "gradbench",
         "overhead",
         "parallel_adjoint",
         "compile")
QUICK = {"heat": {"heat quick": (20_000, 20)}, "jacobi": {"jacobi quick": (100, 10)},
         "heat3d": {"heat3d quick": (24, 5)}, "coupled": {"coupled quick": (100, 10)},
         "gmm": {"gmm quick": (5, 5, 500)}, "gemm": {"gemm quick": (100,)},
         "burgers": {"burgers quick": (20_000, 20)},
         "scaling": {"heat prange quick": ("heat", (20_000, 5)),
                     "jacobi prange quick": ("jacobi", (60, 5))},
         "mpi_scaling": {"heat_mpi quick": (2_000, 5)},
         "checkpointing": {"heat checkpointing quick": ("heat", (5_000, 20)),
                           "burgers checkpointing quick": ("burgers", (5_000, 20)),
                           "jacobi checkpointing quick": ("jacobi", (60, 10))},
         "width": {"heat width quick": ("heat", (5_000, 20)),
                   "gmm width quick": ("gmm", (3, 4, 200)),
                   "fwd cost stream quick": ("cost", ("stream", (20_000,))),
                   "fwd cost ba quick": ("cost", ("ba", (3, 10, 200)))},
         "planning": {"planning quick": (10**3, 10**5)},
         "numpy_style": {"jacobi_2d quick": ("jacobi_2d", 60, 3), "gemm quick": ("gemm", 40, None)},
         "halo": {"halo quick": (16, 3, 2)},
         "gradbench": {"gradbench quick": "quick"},
         "overhead": {"overhead quick": (50, 50, 5)},
         "parallel_adjoint": {"heat parallel quick": ("heat", (20_000, 5)),
                              "jacobi parallel quick": ("jacobi", (60, 5)),
                              "lennard-jones quick": ("lj", (64,))},
         "compile": {"compile quick": ("heat", ("primal", "grad"))}}


def ratios(row: dict) -> dict:
    out = {"grad_over_primal": row["hpcad_grad_s"] / row["numba_primal_s"],
           "jvp_over_primal": row["hpcad_jvp_s"] / row["numba_primal_s"]}
    if "handwritten_grad_s" in row:
        out["grad_over_handwritten"] = row["hpcad_grad_s"] / row["handwritten_grad_s"]
    if "jax_grad_s" in row:
        out["jax_over_grad"] = row["jax_grad_s"] / row["hpcad_grad_s"]
    return out


def fmt_ms(x) -> str:
    return "-" if x is None else f"{1e3 * x:9.2f}"


def fmt_x(x) -> str:
    return "-" if x is None else f"{x:6.2f}"


HEADER = ("case", "numba primal ms", "hpcad primal ms", "hpcad grad ms", "grad/primal",
          "jvp/primal", "hand adj ms", "grad/hand", "JAX grad ms", "JAX/hpcad",
          "compile primal s", "compile grad s", "cached start s")


def table_lines(rows: list[dict]) -> list[str]:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    for r in rows:
        c = r.get("compile", {})
        cells = (r["name"], fmt_ms(r["numba_primal_s"]), fmt_ms(r["hpcad_primal_s"]),
                 fmt_ms(r["hpcad_grad_s"]), fmt_x(r["grad_over_primal"]),
                 fmt_x(r["jvp_over_primal"]), fmt_ms(r.get("handwritten_grad_s")),
                 fmt_x(r.get("grad_over_handwritten")), fmt_ms(r.get("jax_grad_s")),
                 fmt_x(r.get("jax_over_grad")),
                 fmt_x(c.get("primal_compile_s")), fmt_x(c.get("grad_compile_s")),
                 fmt_x(c.get("cached_start_s")))
        lines.append("| " + " | ".join(cell.strip() for cell in cells) + " |")
    return lines


SCALING_HEADER = ("case", "threads", "layer", "primal ms", "grad ms", "grad/primal",
                  "primal efficiency", "grad efficiency", "grad eff / primal eff")


def scaling_lines(rows: list[dict]) -> list[str]:
    lines = ["| " + " | ".join(SCALING_HEADER) + " |", "|" + "---|" * len(SCALING_HEADER)]
    for r in rows:
        for t, x in r["threads"].items():
            cells = (r["name"], str(t), r["threading_layer"], fmt_ms(x["primal_s"]),
                     fmt_ms(x["grad_s"]), fmt_x(x["grad_over_primal"]),
                     fmt_x(x["primal_efficiency"]), fmt_x(x["grad_efficiency"]),
                     fmt_x(x["grad_efficiency"] / x["primal_efficiency"]))
            lines.append("| " + " | ".join(c.strip() for c in cells) + " |")
    return lines


MPI_HEADER = ("case", "ranks", "primal ms", "grad ms", "grad/primal", "primal weak eff",
              "grad weak eff", "grad eff / primal eff")


def mpi_lines(rows: list[dict]) -> list[str]:
    lines = ["| " + " | ".join(MPI_HEADER) + " |", "|" + "---|" * len(MPI_HEADER)]
    for r in rows:
        for ranks, x in r["ranks"].items():
            cells = (r["name"], str(ranks), fmt_ms(x["primal_s"]), fmt_ms(x["grad_s"]),
                     fmt_x(x["grad_over_primal"]), fmt_x(x["primal_efficiency"]),
                     fmt_x(x["grad_efficiency"]),
                     fmt_x(x["grad_efficiency"] / x["primal_efficiency"]))
            lines.append("| " + " | ".join(c.strip() for c in cells) + " |")
    return lines


CHECKPOINT_HEADER = ("case", "snapshots", "grad ms", "time / store-all", "MB kept",
                     "memory / store-all", "grad diff")


def checkpoint_lines(rows: list[dict]) -> list[str]:
    lines = ["| " + " | ".join(CHECKPOINT_HEADER) + " |", "|" + "---|" * len(CHECKPOINT_HEADER)]
    for r in rows:
        for policy, x in r["policies"].items():
            if "error" in x:
                lines.append(f"| {r['name']} | {policy} | {x['error']} | | | | |")
                continue
            cells = (r["name"], policy, fmt_ms(x["grad_s"]), fmt_x(x["time_vs_store_all"]),
                     f"{x['bytes'] / 1e6:.1f}" + (f" (+{x['disk_bytes'] / 1e6:.0f} in files)"
                                                  if x.get("disk_bytes") else ""),
                     fmt_x(x["memory_vs_store_all"]), f"{x['grad_difference']:.0e}")
            lines.append("| " + " | ".join(c.strip() for c in cells) + " |")
    return lines


def _width_lines(rows: list[dict]) -> list[str]:
    from benchmarks.width import width_lines
    return width_lines(rows)


def _planning_lines(rows: list[dict]) -> list[str]:
    from benchmarks.planning import planning_lines
    return planning_lines(rows)


def _numpy_style_lines(rows: list[dict]) -> list[str]:
    from benchmarks.numpy_style import numpy_style_lines
    return numpy_style_lines(rows)


def _halo_lines(rows: list[dict]) -> list[str]:
    from benchmarks.halo import halo_lines
    return halo_lines(rows)


def _gradbench_lines(rows: list[dict]) -> list[str]:
    from benchmarks.gradbench import gradbench_lines
    return gradbench_lines(rows)


def _overhead_lines(rows: list[dict]) -> list[str]:
    from benchmarks.overhead import overhead_lines
    return overhead_lines(rows)


def _parallel_adjoint_lines(rows: list[dict]) -> list[str]:
    from benchmarks.parallel_adjoint import parallel_adjoint_lines
    return parallel_adjoint_lines(rows)


def _compile_lines(rows: list[dict]) -> list[str]:
    from benchmarks.compile import table_lines
    return table_lines(rows)


# The cases with a table of their own, in the order the tables are printed and written; every
# other case is a row of the ratio table ("ratios").
TABLES = {"ratios": table_lines, "scaling": scaling_lines, "mpi_scaling": mpi_lines,
          "checkpointing": checkpoint_lines, "width": _width_lines, "planning": _planning_lines,
          "numpy_style": _numpy_style_lines, "halo": _halo_lines,
          "gradbench": _gradbench_lines,
          "overhead": _overhead_lines,
          "parallel_adjoint": _parallel_adjoint_lines,
          "compile": _compile_lines}


def _announce(name: str) -> None:
    print(f"running {name} ...", file=sys.stderr, flush=True)


def _own_table_rows(module, sizes: dict) -> list[dict]:
    rows = []
    for name, size in sizes.items():
        _announce(name)
        rows.append({"name": name, **module.run(size)})
    return rows


def _ratio_rows(case: str, module, sizes: dict, compile_row: dict) -> list[dict]:
    rows = []
    for name, size in sizes.items():
        _announce(name)
        row = {"name": name, "case": case, "size": list(size), **module.run(size)}
        row.update(ratios(row))
        row["compile"] = compile_row
        rows.append(row)
    return rows


def _print_tables(tables: dict[str, list[dict]]) -> None:
    printed = False
    for key, rows in tables.items():
        if rows:
            if printed:
                print()
            print("\n".join(TABLES[key](rows)))
            printed = True


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a smoke test)")
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "latest.json"))
    parser.add_argument("--no-compile", action="store_true",
                        help="skip the cold-compile and cached-start measurements")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)   # plots are written beside it
    tables: dict[str, list[dict]] = {key: [] for key in TABLES}
    for case in args.cases.split(","):
        module = importlib.import_module(f"benchmarks.{case}")
        sizes = QUICK[case] if args.quick else module.SIZES
        if case in TABLES:
            tables[case] += _own_table_rows(module, sizes)
        else:
            compile_row = {} if args.no_compile else compile_times(case)
            tables["ratios"] += _ratio_rows(case, module, sizes, compile_row)
    if tables["checkpointing"]:
        importlib.import_module("benchmarks.checkpointing").plot(
            tables["checkpointing"], out.with_name("checkpointing.png"))
    _print_tables(tables)
    write_json([row for rows in tables.values() for row in rows], out)
    print(f"wrote {out}", file=sys.stderr)
    for name, draw, data in (("ratios.png", plots.ratios, (tables["ratios"],)),
                             ("scaling.png", plots.scaling,
                              (tables["scaling"], tables["mpi_scaling"]))):
        if draw(*data, out.with_name(name)) is not None:
            print(f"wrote {out.with_name(name)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
