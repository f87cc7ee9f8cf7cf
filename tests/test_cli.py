"""``python -m cli``: an image map as PNG + NPZ, token scores as JSON, user mistakes as exit 2."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import explainers
import models
from cli import main
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def cat_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "cat.png"
    models.load_sample("cat").save(path)
    return path


def test_image_map_png_and_npz_match_the_library(cat_file, tmp_path, capsys):
    out, npz = tmp_path / "map.png", tmp_path / "map.npz"
    assert main([str(cat_file), "--method", "grad_cam", "--target", "285", "--out", str(out), "--npz", str(npz)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Grad-CAM for Egyptian cat (class 285" in capsys.readouterr().out
    saved = np.load(npz)
    meta = json.loads(str(saved["meta"]))
    assert (meta["target"], meta["layer"], meta["method"]) == (285, "_head_act", "grad_cam")
    model = models.load_image_model()
    x = model.preprocess(models.open_image(cat_file.read_bytes()))
    expected = explainers.explain(model.net, x, "grad_cam", 285, "_head_act").maps[0].numpy()
    np.testing.assert_allclose(saved["map"], expected, rtol=1e-5, atol=1e-6)


def test_text_scores_json(tmp_path, capsys):
    out = tmp_path / "scores.json"
    args = ["--text", "A warm, funny film.", "--method", "saliency", "--text-model", "textcnn-sentiment",
            "--out", str(out)]
    assert main(args) == 0
    found = json.loads(out.read_text())
    model = models.load_text_model("textcnn-sentiment")
    expected = explainers.explain_text(model.net, model.tokenizer, "A warm, funny film.", "saliency")
    assert found["tokens"] == expected.tokens and found["label"] == model.labels[expected.target]
    np.testing.assert_allclose(found["scores"], expected.scores, rtol=1e-5, atol=1e-7)
    assert abs(sum(found["probabilities"].values()) - 1) < 1e-5
    assert "saliency for" in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    (["missing.png", "--method", "grad_cam", "--out", "m.png"], "Cannot read"),
    (["{cat}", "--method", "nope", "--out", "m.png"], "Unknown method 'nope'"),
    (["{cat}", "--method", "grad_cam", "--out", "m.json"], "--out must end in .png or .html"),
    (["{cat}", "--method", "grad_cam", "--target", "5000", "--out", "m.png"], "out of range"),
    (["{cat}", "--method", "grad_cam", "--layer", "no.such", "--out", "m.png"], "no.such"),
])
def test_user_mistakes_exit_2_with_one_line(args, message, cat_file, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main([a.replace("{cat}", str(cat_file)) for a in args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err


def test_image_and_text_together_is_refused(cat_file):
    with pytest.raises(SystemExit) as stop:
        main([str(cat_file), "--text", "hi", "--method", "saliency", "--out", "x.json"])
    assert stop.value.code == 2


@pytest.mark.slow
def test_module_entry_point(cat_file, tmp_path):
    out = tmp_path / "map.html"
    done = subprocess.run([sys.executable, "-m", "explainers", str(cat_file), "--method", "cam", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert done.returncode == 0, done.stderr
    page = out.read_text()
    assert "CAM for" in done.stdout and "Plotly.newPlot" in page and page.count("<script") >= 2
