"""The method registry is complete and the only list of methods; the layers import only downwards."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import torch

import explainers
from explainers.registry import FAMILIES, KINDS

ROOT = Path(__file__).resolve().parent.parent
HIGHER = ("models", "figures", "ui", "pages", "evaluation", "reports", "cli", "jobs", "bench", "train")


def test_every_method_has_label_caption_source_and_checked_defaults() -> None:
    records = explainers.methods()
    assert len({m.name for m in records}) == len(records)
    for m in records:
        assert m.label and m.caption and m.source, m.name
        assert m.caption.endswith(".") and m.caption.count(". ") == 0, f"{m.name}: one sentence"
        assert m.family in FAMILIES and m.kinds and set(m.kinds) <= set(KINDS)
        for kind in m.kinds:
            for name, option in m.option_table(kind).items():
                option.check(option.default)  # every default passes its own validator
                assert hasattr(option, "default"), (m.name, name)
        assert m.__doc__ and len(m.__doc__.split()) > 5, f"{m.name}: docstring states the formula"


def test_registry_lists_by_kind_and_family_and_refuses_unknown_names() -> None:
    image = explainers.names("image")
    assert {"grad_cam", "hirescam", "xgrad_cam", "layer_cam", "eigen_cam", "eigen_grad_cam", "score_cam",
            "ablation_cam", "input_x_gradient", "vargrad"} <= set(image)
    assert "layer_grad_cam" not in image and "attention_rollout" in explainers.names("text")
    assert {"attention_rollout", "gradient_rollout", "attention_map"} <= set(image)  # ViT attention views
    assert all(m.family == "cam" for m in explainers.methods(family="cam"))
    assert explainers.method("grad_x_input").name == "input_x_gradient"  # old text name
    with pytest.raises(explainers.ExplainerError, match="Unknown method 'nope'; choose one of cam"):
        explainers.method("nope")
    with pytest.raises(explainers.ExplainerError, match="does not explain text"):
        explainers.method("score_cam", "text")
    assert explainers.METHODS == image  # old spelling, derived
    assert explainers.OPTIONS["integrated_gradients"]["steps"][0] == 50


def test_same_option_names_for_images_and_text() -> None:
    ig = explainers.method("integrated_gradients")
    shared = {"steps", "baseline", "tolerance", "max_steps", "memory_mb", "progress", "score"}
    assert shared <= set(ig.options) and shared <= set(ig.text_options)
    assert set(explainers.method("smoothgrad").options) >= {"samples", "noise_level", "seed"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def test_the_library_imports_no_higher_layer_and_pages_import_no_page() -> None:
    # explainers/__main__.py is the deprecated ``python -m explainers`` shim; it runs ``cli`` by name
    # and is never imported by the library.
    for path in (ROOT / "explainers").rglob("*.py"):
        if path.name == "__main__.py":
            continue
        bad = _imports(path) & set(HIGHER)
        assert not bad, f"{path.relative_to(ROOT)} imports {bad}"
        assert "streamlit" not in _imports(path), path
    for path in (ROOT / "figures").glob("*.py"):
        assert not _imports(path) & {"ui", "pages", "streamlit"}, path
    for path in (ROOT / "pages").glob("*.py"):
        text = path.read_text(encoding="utf-8")
        others = set(re.findall(r"^from pages\.(\w+) import|^import pages\.(\w+)", text, re.M))
        assert not {n for pair in others for n in pair if n}, f"{path.name} imports another page"


def test_no_method_name_list_outside_the_registry() -> None:
    """No module outside explainers/methods spells out a list of several method names."""
    names = set(explainers.names())
    pattern = re.compile(r"[\[\(\{]\s*(\"\w+\"\s*,\s*){2,}")
    for folder in ("ui", "pages", "figures", "evaluation", "reports"):
        for path in (ROOT / folder).glob("*.py"):
            for match in pattern.finditer(path.read_text(encoding="utf-8")):
                listed = set(re.findall(r"\"(\w+)\"", match.group(0)))
                assert len(listed & names) < 2, f"{path.relative_to(ROOT)} lists methods {listed & names}"


def test_hooks_are_registered_in_one_place() -> None:
    for path in ROOT.glob("*/*.py"):
        if path.parts[-2] in ("tests", ".venv", "bench", "train") or path.name == "capture.py":
            continue
        text = path.read_text(encoding="utf-8")
        assert "register_forward" not in text and "register_full_backward" not in text, path


@pytest.mark.parametrize("name", ["eigen_cam", "score_cam", "ablation_cam", "hirescam", "layer_cam"])
def test_new_cam_methods_refuse_what_they_cannot_do(name: str) -> None:
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                                torch.nn.Flatten(), torch.nn.Linear(4, 3)).eval()
    x = torch.randn(1, 3, 8, 8)
    with pytest.raises(explainers.ExplainerError, match="Unknown option"):
        explainers.explain(model, x, name, 0, "1", no_such_option=1)
    if name == "eigen_cam":
        with pytest.raises(explainers.ExplainerError, match="more than one position"):
            explainers.explain(model, x, name, 0, "2")
    if name in ("score_cam", "ablation_cam"):
        with pytest.raises(explainers.ExplainerError, match="batch_size must be a whole number"):
            explainers.explain(model, x, name, 0, "1", batch_size=0)
    result = explainers.explain(model, x, name, 0, "1")
    assert result.maps.shape == (1, 8, 8) and torch.isfinite(result.maps).all()
    assert not model._forward_hooks and all(not m._forward_hooks for m in model.modules())
