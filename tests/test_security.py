"""Static security checks: Streamlit settings, checkpoint loading, remote code, eval/exec."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OWN_CODE = [p for folder in ("explainers", "models", "ui", "pages", "figures", "evaluation", "reports", "bench", "train")
            for p in (ROOT / folder).rglob("*.py")] + [ROOT / "dashboard.py"]


def test_streamlit_settings() -> None:
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["enableXsrfProtection"] is True
    assert 0 < config["server"]["maxUploadSize"] <= 200
    assert config["browser"]["gatherUsageStats"] is False
    assert config["server"]["headless"] is True


def test_checkpoints_load_only_as_weights_and_remote_code_is_never_enabled() -> None:
    assert len(OWN_CODE) > 40
    for path in OWN_CODE:
        text = path.read_text()
        for call in re.finditer(r"torch\.load\(", text):
            statement = call_text(text, call.end() - 1)
            assert "weights_only=True" in statement, f"{path.relative_to(ROOT)}: {statement}"
        assert not re.search(r"trust_remote_code\s*=\s*True", text), path
        assert not re.search(r"(?<![\w.])(eval|exec)\(", text), path
        assert "pickle.load" not in text, path


def call_text(text: str, open_paren: int) -> str:
    """The argument list starting at ``text[open_paren] == "("``, up to its matching parenthesis."""
    depth = 0
    for i in range(open_paren, len(text)):
        depth += {"(": 1, ")": -1}.get(text[i], 0)
        if depth == 0:
            return text[open_paren : i + 1]
    raise AssertionError("unbalanced parentheses")
