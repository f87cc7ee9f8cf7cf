"""``python -m bench.cases_X``: one module's cases through :func:`bench.standalone.run_module` (the one home
of the standalone timing loop), with the notes a module adds per case."""

from __future__ import annotations

import sys

import bench.standalone as standalone
from bench.cases_vit import OURS, THEIRS, ratio_to_ours
from bench.harness import Case, Row


def test_run_module_writes_the_table_notes_load_and_chart(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(standalone, "RESULTS", tmp_path)
    monkeypatch.setattr(sys, "argv", ["bench.cases_x", "--quick"])
    asked: list[bool] = []

    def cases(quick: bool) -> list[Case]:
        asked.append(quick)
        return [Case("first", {"a": lambda: None, "b": lambda: sum(range(1000))}, reference="a", reps=2, warmup=0,
                     note="a note"),
                Case("second", {"c": lambda: None}, reference="c", reps=1, warmup=0)]

    path = standalone.run_module("bench.cases_x", "Some benchmarks", cases, "x.md",
                                 lambda case, rows: [f"- {case.name}: {len(rows)} rows"])
    table = path.read_text()
    assert asked == [True] and path == tmp_path / "x.md" and (tmp_path / "x.html").is_file()
    assert table.startswith("# Some benchmarks\n\n`python -m bench.cases_x`: torch ")
    assert "2 threads" in table and "load average " in table and "(median " in table
    assert "| first | b |" in table and "| second | c |" in table
    assert table.index("- first: a note") < table.index("- first: 2 rows") < table.index("- second: 1 rows")


def test_vit_note_gives_pytorch_grad_cam_over_ours_only_where_both_ran() -> None:
    def row(label: str, ratio: float, median_s: float) -> Row:
        return Row("case", label, median_s, ratio, ratio, ratio, ratio, ratio, "")

    case = Case("Grad-CAM case", {}, reference="one forward (no grad)")
    rows = [row("one forward (no grad)", 1.0, 0.1), row(OURS, 1.2, 0.12), row(THEIRS, 3.0, 0.3)]
    assert ratio_to_ours(case, rows) == ["- Grad-CAM case: pytorch-grad-cam / ours = 2.50 (median times 300 / 120 ms)."]
    assert ratio_to_ours(case, rows[:2]) == []
