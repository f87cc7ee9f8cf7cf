"""One ``bench.cases_*`` module run by itself (``python -m bench.cases_X [--quick]``): its cases timed with
:func:`bench.harness.run_case` on 2 threads, the load average read before and after every case, and the
table written to ``bench/results/<name>.md`` with its chart beside it."""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

from bench.harness import Case, Row, markdown, run_case

THREADS = 2
RESULTS = Path(__file__).resolve().parent / "results"


def run_module(module: str, title: str, cases: Callable[[bool], list[Case]], out: str,
               summary: Callable[[Case, list[Row]], list[str]] | None = None) -> Path:
    """Time ``cases(quick)`` and write ``RESULTS / out`` (+ .html): each case's note, then the lines
    ``summary(case, rows)`` adds for it; the header gives the load average's range and median."""
    from bench.__main__ import write_chart

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    torch.set_num_threads(THREADS)
    torch.manual_seed(0)
    started, rows, notes, loads = time.time(), [], [], []
    for case in cases("--quick" in sys.argv):
        print(f"== {case.name}", flush=True)
        loads.append(os.getloadavg()[0])
        case_rows = run_case(case)
        loads.append(os.getloadavg()[0])
        rows += case_rows
        notes += ([f"- {case.name}: {case.note}"] if case.note else []) + (summary(case, case_rows) if summary else [])
        for row in case_rows:
            print(f"   {row.label:<64} {1000 * row.median_s:9.1f} ms  x{row.ratio:.2f}", flush=True)
    header = (f"# {title}\n\n`python -m {module}`: torch {torch.__version__}, {THREADS} threads, {platform.machine()}, "
              f"{os.cpu_count()} CPUs shared with other jobs, load average {min(loads):.1f}-{max(loads):.1f} "
              f"(median {statistics.median(loads):.1f}) during the cases, {time.time() - started:.0f} s. Same process, "
              "variants alternated (order rotated) in every rep; ratios are per-rep time / reference time.")
    path = RESULTS / out
    path.write_text(markdown(rows, header, notes))
    write_chart(rows, path)
    print(f"wrote {path}")
    return path
