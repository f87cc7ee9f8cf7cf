"""``python -m bench [--quick] [--threads N] [--only SUBSTRING]``: run every case, write results/latest.md
and the same results as a Plotly chart, results/latest.html. ``python -m bench --chart X.md`` redraws
X.html from an existing table."""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import platform
import time
from pathlib import Path

import torch

import bench
from bench.harness import Deferred, markdown, parse_markdown, run_case
from figures.benchmarks import ratio_chart

RESULTS = Path(__file__).resolve().parent / "results"


def discover(quick: bool):
    """Cases (or :class:`bench.harness.Deferred` cases) from every ``bench.cases_*`` module, in name order."""
    for info in sorted(pkgutil.iter_modules(bench.__path__), key=lambda i: i.name):
        if info.name.startswith("cases_"):
            module = importlib.import_module(f"bench.{info.name}")
            yield from module.cases(quick)


def write_chart(rows: list, table: Path) -> None:
    """``table``'s chart as X.html beside it; plotly.min.js is written once into that folder
    (``include_plotlyjs="directory"``), so the charts open offline without a copy each."""
    ratio_chart(rows).write_html(table.with_suffix(".html"), include_plotlyjs="directory", include_mathjax=False)


def write(args: argparse.Namespace, rows: list, notes: list[str], started: float) -> None:
    load = os.getloadavg()
    header = (
        f"# Benchmarks ({'quick' if args.quick else 'full'})\n\n"
        f"torch {torch.__version__}, {args.threads} threads, {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, load average {load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f} when written, "
        f"{time.time() - started:.0f} s. Same process, variants alternated (order rotated) in every rep; "
        "ratios are per-rep time / reference time."
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(markdown(rows, header, notes))
    write_chart(rows, args.out)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer reps, smaller models (under 5 minutes)")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads for every case")
    parser.add_argument("--only", default="", help="run only cases whose name contains this")
    parser.add_argument("--out", type=Path, default=RESULTS / "latest.md")
    parser.add_argument("--chart", type=Path, help="only redraw this table's chart (X.md -> X.html)")
    args = parser.parse_args()
    if args.chart:
        write_chart(parse_markdown(args.chart.read_text()), args.chart)
        return
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    started = time.time()
    rows, notes = [], []
    for case in discover(args.quick):
        if args.only not in case.name:
            continue
        if isinstance(case, Deferred):
            case = case.build()
        print(f"== {case.name}", flush=True)
        case_rows = run_case(case)
        for row in case_rows:
            print(f"   {row.label:<48} {1000 * row.median_s:9.1f} ms  x{row.ratio:.2f} [{row.ratio_min:.2f}-{row.ratio_max:.2f}]", flush=True)
        rows += case_rows
        if case.note:
            notes.append(f"- {case.name}: {case.note}")
        write(args, rows, notes, started)  # after every case, so an interrupted run keeps its results
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
