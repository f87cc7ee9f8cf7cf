"""The benchmark chart builder and the markdown round trip (pure functions, fake rows)."""

from __future__ import annotations

from bench.harness import Row, markdown, parse_markdown
from figures.benchmarks import goal_ratio, ratio_chart

ROWS = [
    Row("IG", "captum IG, best batch 10", 7.2, 1.0, 1.0, 1.0, 1.0, 1.0, ""),
    Row("IG", "ours: integrated_gradients", 5.8, 0.81, 0.76, 0.83, 0.78, 0.82, "<= 0.9x captum's best"),
    Row("Grad-CAM", "pytorch-grad-cam", 0.31, 2.98, 2.9, 3.29, 2.95, 3.14, ""),
]


def test_markdown_round_trip() -> None:
    parsed = parse_markdown(markdown(ROWS, "# header", ["- a note | with a bar"]))
    assert [(r.case, r.label, r.goal) for r in parsed] == [(r.case, r.label, r.goal) for r in ROWS]
    assert [round(r.median_s, 4) for r in parsed] == [round(r.median_s, 4) for r in ROWS]
    assert [(r.ratio, r.ratio_min, r.ratio_max) for r in parsed] == [(r.ratio, r.ratio_min, r.ratio_max) for r in ROWS]


def test_only_the_results_table_is_parsed() -> None:
    profile = "\n## Profile\n\n| op | a | b | c | d | e | f |\n|---|---|---|---|---|---|---|\n| conv | 1.0 | 2.0 | 3 | 4 | 5 | 6 |\n"
    parsed = parse_markdown(markdown(ROWS, "# header", ["- a note"]) + profile)
    assert [r.label for r in parsed] == [r.label for r in ROWS]
    assert parse_markdown(profile) == []


def test_chart_bars_whiskers_and_goal() -> None:
    fig = ratio_chart(ROWS)
    bars = {t.name: t for t in fig.data if t.type == "bar"}
    assert set(bars) == {"reference", "ours", "other"}
    assert list(bars["ours"].x) == [0.81]
    assert list(bars["ours"].error_x.array) == [0.83 - 0.81] and list(bars["ours"].error_x.arrayminus) == [0.81 - 0.76]
    goal = next(t for t in fig.data if t.name == "goal")
    assert list(goal.x) == [0.9] and goal.y[0].endswith("ours: integrated_gradients")
    assert fig.layout.xaxis.type == "log"
    assert list(fig.layout.yaxis.categoryarray)[-1].startswith("IG · captum")  # first row drawn at the top


def test_goal_parsing() -> None:
    assert goal_ratio("<= 1.1x one forward") == 1.1
    assert goal_ratio("<= 0.33 (batching >= 3x)") == 0.33
    assert goal_ratio(">= 4x ours") is None and goal_ratio("") is None


def test_a_table_gets_its_chart_beside_it(tmp_path) -> None:
    from bench.__main__ import write_chart

    table = tmp_path / "run.md"
    table.write_text(markdown(ROWS, "# header", []))
    write_chart(parse_markdown(table.read_text()), table)
    page = (tmp_path / "run.html").read_text()
    assert 'src="plotly.min.js"' in page and "ours: integrated_gradients" in page
    assert (tmp_path / "plotly.min.js").stat().st_size > 1_000_000  # the library itself, so it opens offline
