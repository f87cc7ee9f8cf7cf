"""The Images, Gallery and Evaluate pages in Chromium on a user's vision transformers, both saved here
as small random-init models: a local Hugging Face ViT directory and a torchvision ViT checkpoint
upload. Each page draws its maps on the token layer without an error or a traceback; the time from
the user's action (Enter in the directory box, the upload) to the first map drawn is written to
test-artifacts/vit-latency.json with the load average."""

from __future__ import annotations

import json
import os
import re
import time
from contextlib import contextmanager

import pytest

from tests.conftest import ARTIFACTS
from tests.vit_support import save_hf_vit, save_user_vit_checkpoint

pytestmark = pytest.mark.browser

GRID = "[class*='st-key-img_grid'] .js-plotly-plot"
HEATMAPS = ("() => [...document.querySelectorAll(\"" + GRID + "\")].map(p => p.data ? p.data.filter("
            "t => t.type === 'heatmap').length : 0).reduce((a, b) => Math.max(a, b), 0)")
DIRECTORY = "Directory (config.json, weights, preprocessor_config.json)"
TIMES: dict[str, float] = {}


@pytest.fixture(scope="module")
def user_models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("user_vits")
    (folder / "hf").mkdir()
    save_hf_vit(folder / "hf")
    save_user_vit_checkpoint(folder / "vit.safetensors")
    yield folder / "hf", folder / "vit.safetensors"
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "vit-latency.json").write_text(json.dumps({"seconds": TIMES, "load_average": os.getloadavg()}))


def no_traceback(page) -> None:
    assert page.locator("[data-testid='stException']").count() == 0
    errors = page.locator("[data-testid='stAlertContentError']").all_inner_texts()
    assert not errors, errors


@pytest.fixture(autouse=True)
def patient(page):
    """Loading a user's model probes its layers (a forward and a backward): on a loaded 2-core machine a
    step can take minutes."""
    page.set_default_timeout(300_000)


@contextmanager
def screenshot_on_failure(page, name: str):
    """Keep what the page showed when a step fails (test-artifacts/NAME-failed.png)."""
    try:
        yield
    except Exception:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{name}-failed.png"), full_page=True)
        raise


def wait_until_shown(page, key: str, text: str) -> None:
    """Wait until the widget with key ``key`` shows ``text`` (as text or as an input's value; runs of
    spaces count as one)."""
    page.wait_for_function(
        "([key, text]) => [...document.querySelectorAll(`[class*='st-key-${key}'] *`)]"
        ".some(e => ((e.value || '') + ' ' + (e.innerText || '')).replace(/\\s+/g, ' ').includes(text))",
        arg=[key, " ".join(text.split())])


def source(page, name: str) -> None:
    page.get_by_role("radiogroup", name="Model source").get_by_text(name, exact=True).click()


def type_directory(page, folder) -> float:
    box = page.get_by_label(DIRECTORY, exact=True)
    box.fill(str(folder))
    started = time.perf_counter()
    box.press("Enter")
    return started


def wait_for_maps(page, count: int) -> None:
    page.wait_for_function(f"({HEATMAPS})() >= {count}")
    page.wait_for_function("() => !document.querySelector('[data-stale=\"true\"]')")


def choose_methods(page, key: str, wanted: list[str]) -> None:
    """Keep only ``wanted`` (labels) in the multiselect with widget key ``key``."""
    box = page.locator(f"[class*='st-key-{key}']")
    while True:
        names = [c.get_attribute("aria-label").removeprefix("Remove ")
                 for c in box.get_by_role("button", name=re.compile(r"^Remove ")).all()]
        extra = [name for name in names if name not in wanted]
        if not extra:
            return
        box.get_by_role("button", name=f"Remove {extra[0]}", exact=True).click()
        page.wait_for_function("() => !document.querySelector('[data-stale=\"true\"]')")


def test_images_page_on_a_hugging_face_vit_directory(page, app_url, user_models):
    hf, _ = user_models
    page.goto(app_url)
    page.get_by_role("heading", name="Images").wait_for()
    source(page, "Your Hugging Face directory")
    choose_methods(page, "img_methods", ["Grad-CAM", "Grad-CAM++", "Saliency"])
    started = type_directory(page, hf)
    wait_for_maps(page, 3)
    TIMES["images: directory typed -> maps drawn"] = time.perf_counter() - started
    wait_until_shown(page, "img_layer", "layernorm_before  (32 x 6x6 (tokens, 1 non-patch token dropped))")
    page.get_by_text(re.compile(r"kind \d")).first.wait_for()  # the directory's own labels
    no_traceback(page)
    page.screenshot(path=str(ARTIFACTS / "vit-images-hf.png"), full_page=True)


def test_images_page_on_a_torchvision_vit_checkpoint(page, app_url, user_models):
    with screenshot_on_failure(page, "vit-images-checkpoint"):
        images_on_checkpoint(page, app_url, user_models[1])


def images_on_checkpoint(page, app_url, checkpoint):
    page.goto(app_url)
    page.get_by_role("heading", name="Images").wait_for()
    source(page, "Your torchvision checkpoint")
    arch = page.get_by_label("Architecture", exact=True)
    arch.click()
    page.keyboard.type("vit_b_16")
    page.get_by_role("option", name="vit_b_16", exact=True).click()
    wait_for_maps(page, 3)  # the bundled model's maps meanwhile: the page is idle before the upload
    upload = page.locator("[class*='st-key-img_checkpoint'] input[type='file']")
    started = time.perf_counter()
    upload.set_input_files(str(checkpoint))
    page.get_by_text(re.compile(r"class \d \(")).first.wait_for()  # the checkpoint's own classes (target chip)
    wait_for_maps(page, 3)  # the default methods but CAM, which says why it cannot run on a ViT block
    TIMES["images: checkpoint uploaded -> maps drawn"] = time.perf_counter() - started
    wait_until_shown(page, "img_layer", "encoder.layers.encoder_layer_1.ln_1  (64 x 4x4 (tokens")
    no_traceback(page)
    page.screenshot(path=str(ARTIFACTS / "vit-images-checkpoint.png"), full_page=True)


def test_gallery_on_a_hugging_face_vit_directory(page, app_url, user_models):
    hf, _ = user_models
    page.goto(f"{app_url}/gallery")
    page.get_by_role("heading", name="Gallery").wait_for()
    source(page, "Your Hugging Face directory")
    type_directory(page, hf)
    page.get_by_text(re.compile(r"model .*hf")).first.wait_for()  # the caption names the directory model
    button = page.get_by_role("button", name="Explain all")
    started = time.perf_counter()
    button.click()
    page.locator("[class*='st-key-gal_grid_'] .js-plotly-plot").first.wait_for()
    TIMES["gallery: Explain all -> first grid drawn"] = time.perf_counter() - started
    page.locator("[data-testid='stDataFrame']").first.wait_for()
    no_traceback(page)
    page.screenshot(path=str(ARTIFACTS / "vit-gallery-hf.png"), full_page=True)


def test_evaluate_on_a_hugging_face_vit_directory(page, app_url, user_models):
    with screenshot_on_failure(page, "vit-evaluate-hf"):
        evaluate_on_directory(page, app_url, user_models[0])


def evaluate_on_directory(page, app_url, hf):
    page.goto(f"{app_url}/evaluate")
    page.get_by_role("heading", name="Evaluate").wait_for()
    source(page, "Your Hugging Face directory")
    type_directory(page, hf)
    wait_until_shown(page, "ev_target", "kind ")  # the class to explain, from the directory's labels
    choose_methods(page, "ev_methods", ["Grad-CAM", "Saliency"])
    compute = page.get_by_role("button", name=re.compile(r"^Compute"))
    started = time.perf_counter()
    if compute.count():  # the page computes on demand
        compute.first.click()
    page.locator("[data-testid='stDataFrame']").first.wait_for(timeout=600_000)
    TIMES["evaluate: Compute -> first table drawn"] = time.perf_counter() - started
    no_traceback(page)
    page.screenshot(path=str(ARTIFACTS / "vit-evaluate-hf.png"), full_page=True)
