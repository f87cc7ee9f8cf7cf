"""Every Python block of docs/api.md runs, in order, in one namespace (as a reader would paste them)."""

import re

import pytest

from tests.conftest import ROOT

DOC = ROOT / "docs" / "api.md"
BLOCKS = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)


def test_the_guide_has_the_promised_snippets():
    assert len(BLOCKS) >= 6
    image, text = BLOCKS[0], BLOCKS[2]
    assert len([line for line in image.splitlines() if line.strip()]) <= 5
    assert len([line for line in text.splitlines() if line.strip()]) <= 5


@pytest.mark.slow
def test_every_snippet_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__docs__"}
    for number, block in enumerate(BLOCKS, 1):
        try:
            exec(compile(block, f"docs/api.md block {number}", "exec"), namespace)
        except Exception as err:  # name the failing block
            raise AssertionError(f"docs/api.md python block {number} failed: {err!r}") from err
    printed = capsys.readouterr().out
    assert "out of range" in printed  # the error example really raised
    assert (tmp_path / "report.html").stat().st_size > 1_000_000  # plotly.js inlined
    assert (tmp_path / "grid.png").read_bytes()[:4] == b"\x89PNG"
