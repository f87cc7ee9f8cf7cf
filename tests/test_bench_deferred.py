"""``python -m bench --only X`` builds a deferred case only when its name contains X (its set-up,
e.g. a reference library's batch-size sweep, is the slow part)."""

from __future__ import annotations

import sys

import bench.__main__ as bench_main
from bench.harness import Case, Deferred


def test_only_the_selected_deferred_case_is_built(tmp_path, monkeypatch) -> None:
    built: list[str] = []

    def deferred(name: str) -> Deferred:
        def build() -> Case:
            built.append(name)
            return Case(name, {"a": lambda: None, "b": lambda: None}, reference="a", reps=1, warmup=0)
        return Deferred(name, build)

    monkeypatch.setattr(bench_main, "discover", lambda quick: iter([deferred("slow sweep"), deferred("wanted case")]))
    out = tmp_path / "run.md"
    monkeypatch.setattr(sys, "argv", ["bench", "--quick", "--only", "wanted", "--out", str(out)])
    bench_main.main()
    assert built == ["wanted case"]
    table = out.read_text()
    assert "| wanted case | b |" in table and "slow sweep" not in table
