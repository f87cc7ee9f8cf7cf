"""Batch jobs (python -m jobs): Ray maps equal the in-process API, a killed job resumes without
redoing finished shards, unreadable images are recorded and the rest completes, and the Gallery
and Images pages read a job's output back."""

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image, ImageOps

import explainers
import models
from jobs import JobError, JobRequest, run_job
from jobs.engine import SLOW_SHARD_ENV
from jobs.output import open_job
from tests.apptest_util import no_exceptions, plotly_specs

ROOT = Path(__file__).resolve().parents[1]
METHODS = ["grad_cam", "grad_cam_plus_plus", "saliency"]
TOLERANCE = 5e-3
"""Of each map's peak: batched vs single-image float32 sums (3e-3, see test_page_gallery) plus
float16 storage (2^-11 relative)."""


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """16 photos (the 8 bundled samples and their mirror images, lossless PNG) and one corrupt JPEG."""
    root = tmp_path_factory.mktemp("photos")
    for name in models.sample_names():
        photo = models.load_sample(name)
        photo.save(root / f"{name}.png")
        ImageOps.mirror(photo).save(root / f"{name}_mirrored.png")
    good = (root / "cat.png").read_bytes()
    (root / "zz_corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0" + good[100:400])  # a JPEG header, then garbage
    assert len(list(root.iterdir())) == 17
    return root


@pytest.fixture(scope="module")
def model():
    return models.load_image_model()


@pytest.fixture(scope="module")
def ray_job(folder, tmp_path_factory):
    """The 17 files on a local Ray cluster, 2 actors, shards of 2 images, batches of 2."""
    import ray  # noqa: F401 - a test dependency (requirements-test.txt): a missing Ray fails, never skips
    out = tmp_path_factory.mktemp("ray-job") / "out"
    request = JobRequest(source=str(folder), out=str(out), methods=METHODS, engine="ray", actors=2, shard_size=2,
                         batch_size=2, object_store_mb=128)
    started = time.perf_counter()
    summary = run_job(request)
    return summary, open_job(out), time.perf_counter() - started


@pytest.mark.slow
def test_ray_job_maps_equal_the_in_process_api(ray_job, folder, model):
    summary, job, _ = ray_job
    assert summary.images == 17 and summary.failed == 1 and summary.shards == 9
    ok = job.rows[job.rows["status"] == "ok"]
    assert len(ok) == 16 * len(METHODS)
    assert ok["worker"].nunique() == 2  # both actors of the pool did work
    assert job.manifest["versions"]["ray"] and job.manifest["status"] == "finished"
    for name, rows in ok.groupby("name"):
        x = model.preprocess(Image.open(folder / name))
        target = int(model.net(x).argmax())
        alone = explainers.explain_many(model.net, x, METHODS, [target], model.default_layer)
        assert set(rows["method"]) == set(METHODS) and set(rows["target"]) == {target}
        assert (rows["predicted"] == target).all() and (rows["target_rank"] == 0).all()
        for _, row in rows.iterrows():
            got = job.map_of(row["shard"], row["index"], row["target"], row["method"])
            want = alone[row["method"]][0].maps[0].numpy()
            assert got.shape == want.shape == (224, 224)
            assert np.abs(got - want).max() <= TOLERANCE * np.abs(want).max(), (name, row["method"])
        assert rows["disagreement"].between(0, 2).all()


@pytest.mark.slow
def test_corrupt_image_is_reported_and_the_rest_completes(ray_job):
    summary, job, _ = ray_job
    failed = job.failures
    assert list(failed["name"]) == ["zz_corrupt.jpg"]
    assert "damaged" in failed["error"].iloc[0] or "not an image" in failed["error"].iloc[0]
    assert summary.failures == [("zz_corrupt.jpg", failed["error"].iloc[0])]
    assert job.rows.loc[job.rows["status"] == "ok", "name"].nunique() == 16


def _shards(out: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in sorted((out / "shards").glob("part-*.parquet"))}


@pytest.mark.slow
def test_killed_job_resumes_without_redoing_finished_shards(folder, tmp_path):
    out = tmp_path / "out"
    command = [sys.executable, "-m", "jobs", str(folder), "--methods", "grad_cam", "--out", str(out),
               "--engine", "local", "--shard-size", "2", "--batch-size", "2"]
    env = os.environ | {SLOW_SHARD_ENV: "1.5", "OMP_WAIT_POLICY": "PASSIVE"}
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 240
        while not (out / "shards").is_dir() or len(_shards(out)) < 3:
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "the job wrote no shards"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)  # half-way: no cleanup, no summary
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    before = _shards(out)
    assert 3 <= len(before) < 9 and "summary" not in open_job(out).manifest
    request = JobRequest(source=str(folder), out=str(out), methods=["grad_cam"], engine="local", shard_size=2,
                         batch_size=2)
    summary = run_job(request)
    after = _shards(out)
    assert summary.shards_done_before == len(before) and summary.shards_computed == 9 - len(before)
    assert all(after[name] == mtime for name, mtime in before.items())  # finished shards not rewritten
    assert summary.images == 17 and summary.failed == 1 and summary.images_computed == 17 - 2 * len(before)
    job = open_job(out)
    assert sorted(job.rows.loc[job.rows["status"] == "ok", "index"]) == list(range(16))
    again = run_job(request)  # everything finished: nothing computed
    assert again.shards_computed == 0 and _shards(out) == after
    retried = run_job(dataclasses.replace(request, retry_failed=True))  # only the corrupt image's shard
    assert retried.shards_computed == 1 and retried.failed == 1
    assert [n for n in after if _shards(out)[n] != after[n]] == ["part-00008.parquet"]
    with pytest.raises(JobError, match="holds another job"):
        run_job(JobRequest(source=str(folder), out=str(out), methods=["saliency"], engine="local", shard_size=2))


def test_table_of_paths_with_labels_top_k_and_scores(folder, tmp_path, model):
    table = tmp_path / "list.csv"
    pd.DataFrame({"path": [str(folder / "cat.png"), "missing.png", str(folder / "coffee.png")],
                  "label": ["tabby", "", "3"]}).to_csv(table, index=False)
    out = tmp_path / "out"
    request = JobRequest(source=str(table), out=str(out), methods=["grad_cam", "saliency"], targets="top-2,label",
                         engine="local", scores=True, score_steps=4, score_random_maps=1)
    summary = run_job(request)
    job = open_job(out)
    assert summary.images == 3 and list(job.failures["name"]) == ["missing.png"]
    cat = job.rows[job.rows["name"] == "cat.png"]
    tabby = model.labels.index("tabby")
    assert cat["label"].iloc[0] == tabby and {0, 1} <= set(cat["target_rank"])
    assert tabby in set(cat["target"]) and cat.loc[cat["target"] == tabby, "is_label"].all()
    coffee = job.rows[job.rows["name"] == "coffee.png"]
    assert 3 in set(coffee["target"]) and coffee.loc[coffee["target"] == 3, "is_label"].all()
    assert len(set(coffee["target"])) == 3  # top-2 and the label (not among them)
    ok = job.rows[job.rows["status"] == "ok"]
    assert ok["deletion_auc"].notna().all() and ok["insertion_auc"].between(0, 1).all()
    assert ok["random_deletion_auc"].notna().all()
    assert job.has_labels and job.has_scores

    from ui.job_results import order, select, table

    frame = table(job, "grad_cam")
    wrong, right = select(frame, "wrong"), select(frame, "right")
    assert len(wrong) + len(right) == len(frame) == len(ok) // 2
    assert (wrong["Predicted"] != wrong["Label"]).all() and (right["Predicted"] == right["Label"]).all()
    worst = order(frame, "deletion_auc")["Deletion AUC"].tolist()
    assert worst == sorted(worst, reverse=True)

    from jobs.output import input_hw
    from ui.job_results import _model_view

    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["model"]["input_size"] == [224, 224]
    manifest["model"]["input_size"] = 224  # one number, as manifests said it before (height, width)
    (out / "manifest.json").write_text(json.dumps(manifest))
    old = open_job(out)
    assert input_hw(old.manifest["model"]) == (224, 224) and input_hw({}) == (224, 224)
    assert _model_view(old, models.load_sample("cat")).shape == (224, 224, 3)
    assert run_job(request).shards_computed == 0  # an older manifest's job still resumes
    with pytest.raises(JobError, match="neither one number nor"):
        input_hw({"input_size": "big"})


@pytest.fixture(scope="module")
def non_square_job(tmp_path_factory):
    """A tiny Hugging Face ViT directory taking (height, width) = (48, 64), and a local job of 3 photos on it."""
    from transformers import ViTImageProcessor

    from tests.vit_support import tiny_hf_vit

    root = tmp_path_factory.mktemp("non-square")
    hf, photos = root / "hf", root / "photos"
    tiny_hf_vit(image_size=(48, 64)).save_pretrained(hf)
    ViTImageProcessor(size={"height": 48, "width": 64}).save_pretrained(hf)
    photos.mkdir()
    for name in models.sample_names()[:3]:
        models.load_sample(name).save(photos / f"{name}.png")
    request = JobRequest(source=str(photos), out=str(root / "out"), methods=["grad_cam", "saliency"],
                         model=str(hf), engine="local", shard_size=2, batch_size=2)
    return request, run_job(request), hf, photos


def test_a_non_square_hugging_face_vit_directory_runs_end_to_end(non_square_job):
    """The manifest stores [48, 64], every map is 48x64 and equals the in-process API's, the disagreement is
    :func:`evaluation.agreement.disagreement` of the maps, the photo is shown as the directory's processor
    resized it, and a rerun reuses the shards."""
    from evaluation.agreement import disagreement
    from ui.job_results import _model_view

    request, summary, hf, photos = non_square_job
    job = open_job(request.out)
    assert summary.images == 3 and summary.failed == 0 and job.manifest["model"]["input_size"] == [48, 64]
    loaded = models.load_image_model(str(hf))
    assert loaded.input_hw == (48, 64) and (job.rows["status"] == "ok").all() and len(job.rows) == 6
    for name, rows in job.rows.groupby("name"):
        image = Image.open(photos / name)
        x = loaded.preprocess(image)
        assert x.shape[2:] == (48, 64) and np.array_equal(_model_view(job, image), loaded.resize(image))
        target = int(rows["target"].iloc[0])
        alone = explainers.explain_many(loaded.net, x, request.methods, [target], job.manifest["layer"])
        maps = {m: alone[m][0].maps[0].numpy() for m in request.methods}
        for _, row in rows.iterrows():
            got = job.map_of(row["shard"], row["index"], row["target"], row["method"])
            want = maps[row["method"]]
            assert got.shape == want.shape == (48, 64) and (row["height"], row["width"]) == (48, 64)
            assert np.abs(got - want).max() <= TOLERANCE * np.abs(want).max(), (name, row["method"])
        assert rows["disagreement"].iloc[0] == pytest.approx(disagreement(maps), abs=0.02)
    assert run_job(request).shards_computed == 0  # the same job: every shard reused


def test_the_gallery_shows_a_non_square_job_over_its_photo(non_square_job):
    from streamlit.testing.v1 import AppTest

    request = non_square_job[0]
    at = AppTest.from_string(NAVIGATION, default_timeout=180)
    at.run()
    at.toggle(key="gal_job_on").set_value(True).run()
    at.text_input(key="gal_job_dir").input(request.out).run()
    assert no_exceptions(at) and not at.error
    assert not [c.value for c in at.caption if "Photo not shown" in c.value]
    import base64
    import io

    photo = next(t for t in plotly_specs(at)["gal_job_overlay"]["data"] if t["type"] == "image")
    shown = Image.open(io.BytesIO(base64.b64decode(photo["source"].split(",", 1)[1])))
    assert shown.size == (64, 48)  # (width, height): the directory processor's view, not a square crop


def test_mistakes_are_refused_with_the_library_message(folder, tmp_path):
    from jobs.__main__ import main

    with pytest.raises(JobError, match="no_such_method"):
        run_job(JobRequest(source=str(folder), out=str(tmp_path / "a"), methods=["no_such_method"], engine="local"))
    with pytest.raises(JobError, match="samples"):
        run_job(JobRequest(source=str(folder), out=str(tmp_path / "b"), methods=["grad_cam"],
                           options={"samples": 3}, engine="local"))
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    with pytest.raises(JobError, match="not empty"):
        run_job(JobRequest(source=str(folder), out=str(busy), methods=["grad_cam"], engine="local"))
    assert main([str(tmp_path / "nothing-here"), "--methods", "grad_cam", "--out", str(tmp_path / "c"),
                 "--engine", "local"]) == 2
    assert not (tmp_path / "a").exists() and (busy / "notes.txt").read_text() == "mine"


def test_hostile_job_directories_are_refused(tmp_path, ray_job):
    _, job, _ = ray_job
    for bad in ["", "/etc", str(tmp_path / "nope"), "\x00", str(job.root / "shards"), str(job.root / "manifest.json")]:
        with pytest.raises(JobError):
            open_job(bad)
    fake = tmp_path / "fake"
    fake.mkdir()
    (fake / "manifest.json").write_text('{"format": 99}')
    with pytest.raises(JobError, match="format"):
        open_job(fake)


NAVIGATION = """
import streamlit as st
from pages import gallery, images
st.navigation([st.Page(gallery.run, title="Gallery", url_path="gallery", default=True),
               st.Page(images.run, title="Images", url_path="images")]).run()
"""
"""The Gallery and the Images page under st.navigation, as in dashboard.py, so st.switch_page works."""


@pytest.mark.slow
def test_gallery_reads_a_job_and_opens_a_row_on_the_images_page(ray_job):
    from streamlit.testing.v1 import AppTest

    from ui.job_results import OPENED

    _, job, _ = ray_job
    at = AppTest.from_string(NAVIGATION, default_timeout=180)
    at.run()
    at.toggle(key="gal_job_on").set_value(True).run()
    at.text_input(key="gal_job_dir").input("/etc").run()
    assert no_exceptions(at) and "no manifest" in at.error[0].value
    at.text_input(key="gal_job_dir").input(str(job.root)).run()
    assert no_exceptions(at) and not at.error
    frames = {df.proto.id.rsplit("-", 1)[-1]: df.value for df in at.dataframe}
    table = frames["gal_job_table"]
    assert len(table) == 16 and set(table["Image"]) == set(job.rows.loc[job.rows["status"] == "ok", "name"])
    failures = [df.value for df in at.dataframe if "Reason" in df.value.columns]
    assert failures[0]["Image"].tolist() == ["zz_corrupt.jpg"]
    assert list(table["Disagreement"]) == sorted(table["Disagreement"], reverse=True)
    at.selectbox(key="gal_job_method").set_value("saliency").run()
    at.selectbox(key="gal_job_sort").set_value("confidence_low").run()
    at.selectbox(key="gal_job_filter").set_value("Confidence").run()
    low, high = at.slider(key="gal_job_range_Confidence").value
    at.slider(key="gal_job_range_Confidence").set_value((low, (low + high) / 2)).run()
    assert no_exceptions(at)
    shown = {df.proto.id.rsplit("-", 1)[-1]: df.value for df in at.dataframe}["gal_job_table"]
    assert 0 < len(shown) < 16 and list(shown["Confidence"]) == sorted(shown["Confidence"])
    assert shown["Confidence"].max() <= (low + high) / 2
    assert "gal_job_overlay" in plotly_specs(at)  # the first shown row's stored map over its photo

    # "Open on the Images page": the first shown row, with the job's settings.
    row = job.rows[(job.rows["method"] == "saliency") & (job.rows["name"] == shown["Image"].iloc[0])].iloc[0]
    at.button(key="gal_job_open").click().run()
    assert no_exceptions(at)
    assert at.title[0].value == "Images" and any(row["name"] in i.value for i in at.info)
    assert at.session_state[OPENED]["key"] == f"upload:{row['sha256']}"
    assert at.multiselect(key="img_methods").value == METHODS
    assert at.multiselect(key="img_targets").value == [int(row["target"])]
    assert at.selectbox(key="img_layer").value == job.manifest["layer"]
    # The Images page computed the job's maps again for this photo (its cache key) and target.
    store = at.session_state["image_maps"]
    again = {k[3]: store[k] for k in store if k[2] == f"upload:{row['sha256']}" and k[4] == int(row["target"])}
    assert set(again) == set(METHODS) and all(r.heat is not None and r.error is None for r in again.values())
    at.button(key="img_job_close").click().run()
    assert no_exceptions(at) and OPENED not in at.session_state


def test_the_dashboard_side_never_imports_ray():
    code = "import sys, jobs, jobs.output, ui.job_results, pages.gallery, pages.images\nassert 'ray' not in sys.modules\n"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "ray" not in (ROOT / "requirements.txt").read_text()
