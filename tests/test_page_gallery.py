"""Gallery: batched maps equal one-at-a-time maps, hostile uploads are refused item by item, the page runs."""

import io
import threading
import zipfile

import numpy as np
import pytest
import scipy.stats
from PIL import Image, ImageOps

import explainers
import models
from tests.apptest_util import no_exceptions, page_app, plotly_specs
from ui.gallery_inputs import read_uploads
from ui.gallery_results import Item, disagreement, gallery_maps, spearman
from ui.resources import Shared

VARIANTS_TESTED = ["cam", "grad_cam", "grad_cam_negative", "grad_cam_plus_plus", "saliency"]
OPTIONS = {"smoothgrad": {"samples": 2, "noise_level": 0.15, "seed": 3}}
FLOAT_NOISE = 3e-3
"""Batched and single-image convolutions sum in different orders (float32): maps agree to about
1e-3 of their peak, not bit for bit (saliency: 1.8e-3 of the peak, 1.0e-3 relative L2 at worst seen)."""


@pytest.fixture(scope="module")
def shared():
    return Shared(models.load_image_model(), threading.Lock())


def twenty(model) -> list[Item]:
    """The 8 samples, their mirror images, and 4 upside down: 20 distinct inputs."""
    photos = [(n, models.load_sample(n)) for n in models.sample_names()]
    photos += [(f"{n} mirrored", ImageOps.mirror(p)) for n, p in photos[:8]]
    photos += [(f"{n} flipped", ImageOps.flip(p)) for n, p in photos[:4]]
    items = []
    for name, image in photos:
        rgb = model.resize(image)
        items.append(Item(name, (model.name, "test", name), rgb, model.to_tensor(rgb)))
    return items


def same_maps(got, alone, what: str) -> None:
    peak = np.abs(alone).max()
    assert np.abs(got - alone).max() <= FLOAT_NOISE * peak, what
    assert np.linalg.norm(got - alone) <= 5e-3 * np.linalg.norm(alone), what


@pytest.mark.slow
def test_twenty_images_in_batches_equal_one_at_a_time(shared):
    net = shared.model.net
    items = twenty(shared.model)
    assert len(items) == 20
    targets = [int(net(i.x).argmax()) for i in items]
    batches = []
    hook = net.register_forward_hook(lambda _m, args, _o: batches.append(args[0].shape[0]))
    try:
        store = {}
        found = gallery_maps(shared, items, targets, VARIANTS_TESTED, "_head_act", OPTIONS, store, batch_size=8)
        assert max(batches) == 8  # the deterministic methods really ran on batches of 8
        calls = len(batches)
        again = gallery_maps(shared, items, targets, VARIANTS_TESTED, "_head_act", OPTIONS, store, batch_size=8)
        assert len(batches) == calls and again == found  # cached: no model pass the second time
    finally:
        hook.remove()
    for item, target, results in zip(items, targets, found):
        alone = explainers.explain_many(net, item.x, ["cam", "grad_cam", "grad_cam_plus_plus"], [target], "_head_act")
        alone = {v: a[0] for v, a in alone.items()}
        alone["grad_cam_negative"] = explainers.explain(net, item.x, "grad_cam", target, "_head_act", counterfactual=True)
        alone["saliency"] = explainers.explain(net, item.x, "saliency", target)
        for variant in VARIANTS_TESTED:
            got = results[variant]
            assert got.error is None and got.target == target
            same_maps(got.heat, alone[variant].maps[0].numpy(), f"{item.name} {variant}")


def test_noisy_methods_run_per_image_with_their_seed(shared):
    net = shared.model.net
    items = twenty(shared.model)[:3]
    targets = [int(net(i.x).argmax()) for i in items]
    found = gallery_maps(shared, items, targets, ["smoothgrad"], "_head_act", OPTIONS, {}, batch_size=8)
    for item, target, results in zip(items, targets, found):
        alone = explainers.explain(net, item.x, "smoothgrad", target, **OPTIONS["smoothgrad"]).maps[0].numpy()
        same_maps(results["smoothgrad"].heat, alone, item.name)


def test_disagreement_is_one_minus_mean_agreement_without_negative_maps():
    rng = np.random.default_rng(0)
    a = rng.random((16, 16)) - 0.5
    assert spearman(a, a * 3 + 1) == pytest.approx(scipy.stats.spearmanr(np.abs(a).ravel(), np.abs(a * 3 + 1).ravel()).statistic)
    assert spearman(a, -a) == pytest.approx(1.0)  # magnitudes: unless both maps are signed
    assert spearman(a, -a, both_signed=True) == pytest.approx(-1.0)
    assert np.isnan(spearman(a, np.zeros_like(a)))

    class R:
        def __init__(self, heat):
            self.heat = heat

    # two signed methods that disagree in sign, and Grad-CAM's own negative map, which is left out
    score, pair = disagreement({"input_x_gradient": R(a), "integrated_gradients": R(-a), "grad_cam_negative": R(a)})
    assert score == pytest.approx(2.0)
    assert pair.startswith("Input x gradient vs Integrated Gradients") or pair.startswith("Input")
    same, _ = disagreement({"cam": R(np.abs(a)), "saliency": R(np.abs(a) * 2)})
    assert same == pytest.approx(0.0)


def _png(colour=(200, 30, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (20, 16), colour).save(buf, format="PNG")
    return buf.getvalue()


def _zip(entries) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries:
            archive.writestr(name, data)
    return buf.getvalue()


def test_hostile_uploads_are_skipped_with_reasons():
    bomb = _zip([("zeros.png", b"\0" * (40 * 2**20))])  # 40 MB of zeros in about 40 kB
    assert len(bomb) < 200_000
    archive = _zip([("../../etc/evil.png", _png()), ("notes.txt", b"hello"), ("inner.zip", _zip([("a.png", _png())])),
                    ("dir/", b""), ("/abs/ok.png", _png((0, 0, 255)))])
    intake = read_uploads([("a.png", _png()), ("bomb.zip", bomb), ("photos.zip", archive), ("empty.jpg", b""),
                           ("broken.zip", b"PK\x03\x04 not really")])
    names = [i.name for i in intake.images]
    assert names == ["a.png", "photos.zip/evil.png", "photos.zip/ok.png"]
    assert intake.images[0].key == intake.images[1].key  # same bytes, same cache key
    reasons = {s.name: s.reason for s in intake.skipped}
    assert "zip bomb" in reasons["bomb.zip/zeros.png"]
    assert "not an image" in reasons["photos.zip/notes.txt"]
    assert "archives inside archives" in reasons["photos.zip/inner.zip"]
    assert "empty" in reasons["empty.jpg"]
    assert "not a readable zip" in reasons["broken.zip"]


def test_too_many_files_are_capped_with_a_message():
    intake = read_uploads([(f"{k}.png", _png((k, 0, 0))) for k in range(5)], max_images=3)
    assert len(intake.images) == 3
    assert intake.notes == ["Only the first 3 images are used; 2 more file(s) were not read."]


def test_page_runs_sorts_and_offers_exports():
    at = page_app("gallery", timeout=600).run()
    assert no_exceptions(at)
    assert at.info and "Explain all" in at.info[0].value
    at.button(key="gal_run").click().run()
    assert no_exceptions(at), [e.value for e in at.exception]
    frame = at.dataframe[0].value
    assert len(frame) == len(models.sample_names())
    assert list(frame["Disagreement"]) == sorted(frame["Disagreement"], reverse=True)
    grids = [k for k in plotly_specs(at) if k.startswith("gal_grid_")]
    assert len(grids) == 8
    at.selectbox(key="gal_sort").set_value("confidence_low").run()
    frame = at.dataframe[0].value
    assert list(frame["Confidence"]) == sorted(frame["Confidence"])
    labels = [b.label for b in at.get("download_button")]
    assert "Export report (HTML)" in labels and "All maps as NPZ (raw values)" in labels
