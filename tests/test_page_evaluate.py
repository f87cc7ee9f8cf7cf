"""The Evaluate page through AppTest on the bundled model: nothing runs until Compute, the job's results
land in the tables, a new method computes only that method, tabs and display changes compute nothing."""

import time

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

from tests.apptest_util import no_exceptions, plotly_specs

pytestmark = pytest.mark.slow


SCRIPT = """
from pages import evaluate
evaluate.run()
import streamlit as st
from ui.resources import image_model
st.session_state["test_net"] = image_model().model.net  # the app's cached network, as its script sees it
"""


class Forwards:
    """Counts the rows that networks of the bundled model's class see, in any thread (a global forward
    hook: the app's cached copy, the test's, the randomisation check's deep copies and the folded
    copies (fx GraphModules) that deletion/insertion and ROAD run on alike)."""

    def __init__(self, module):
        self.rows = 0
        kind = type(module)

        def count(m, inputs, _output):
            if type(m) is kind or isinstance(m, torch.fx.GraphModule):
                self.rows += len(inputs[0])

        self.handle = torch.nn.modules.module.register_module_forward_hook(count)

    def __enter__(self):
        return self

    def __exit__(self, *_):
        self.handle.remove()


def frame(at, column):
    """The first dataframe on the page that has ``column``."""
    return next(d.value for d in at.dataframe if column in d.value.columns)


def wait(at, seconds=900):
    """Rerun until the background job is done (AppTest does not poll the progress fragment)."""
    deadline = time.time() + seconds
    at.run()
    while at.session_state["ev_job"].running:
        assert time.time() < deadline, "the evaluation job did not finish"
        time.sleep(0.5)
    at.run()
    at.run()
    assert no_exceptions(at)
    return at


@pytest.fixture(scope="module")
def at():
    app = AppTest.from_string(SCRIPT, default_timeout=600)
    app.run()
    assert no_exceptions(app)
    with Forwards(app.session_state["test_net"]) as counter:  # a cheap setting for the module: two methods, k = 5, 5 random maps
        app.multiselect(key="ev_methods").set_value(["grad_cam", "saliency"])
        app.slider(key="ev_steps").set_value(5)
        app.slider(key="ev_random_maps").set_value(5)
        app.run()
    assert no_exceptions(app) and counter.rows == 0  # nothing is computed until asked
    assert "ev_job" not in app.session_state
    assert app.button(key="ev_compute").label == "Compute: 2 maps, 4 deletion / insertion scores, 3 sanity checks"
    return app


def test_compute_fills_the_scores_and_sanity_tables_with_verdicts_in_words(at):
    at.button(key="ev_compute").click()
    wait(at)
    job = at.session_state["ev_job"]
    assert not job.errors and job.first_result is not None
    table = frame(at, "deletion AUC")
    assert list(table["map"])[:4] == ["Grad-CAM", "Saliency", "Sobel edges (control)", "Centred gaussian (control)"]
    assert table["map"].str.startswith("Random maps, median").sum() == 2  # a 7x7 floor (Grad-CAM) and a pixel floor
    verdicts = set(table["deletion"][:4]) | set(table["insertion"][:4])
    assert verdicts <= {"beats random", "no better than random", "no verdict"}
    sanity = frame(at, "rho at full randomisation")
    assert list(sanity["map"]) == ["Grad-CAM", "Saliency", "Sobel edges (control)"]
    assert sanity["verdict"].iloc[2] == "fails"  # the edge map ignores the model
    specs = plotly_specs(at)
    names = [t["name"] for t in specs["ev_deletion"]["data"]]
    assert names[0].startswith("Grad-CAM (AUC") and sum(n.startswith("random, median") for n in names) == 2
    markdown = " ".join(m.value for m in at.markdown)
    assert "Deletion: " in markdown and "It cannot be trusted to show what this model uses." in markdown
    assert "ev_agree_rho" in specs


def test_maps_scores_show_while_their_random_floor_is_still_computed(at):
    """The job writes each map's deletion/insertion curves before the floors' (score_maps' ``partial``):
    with only those in the cache the table shows the AUCs and says, in words, that the verdicts wait for
    the random maps; the curves are drawn without random lines; nothing fails."""
    from pages.evaluate import WAITING
    from ui import evaluation_results as results

    cache = at.session_state["evaluation_results"]
    final = {k: v for k, v in cache.items() if k[0] == "faithfulness"}
    early = {k: v for k, v in cache.items() if k[0] == results.PARTIAL}
    assert {k[3] for k in early} == {k[3] for k in final}, "the job wrote no early scores"
    for k in final:
        del cache[k]
    try:
        at.run()
        assert no_exceptions(at)
        table = frame(at, "deletion AUC")
        assert not table["map"].str.startswith("Random maps").any()
        assert set(table["deletion"]) == set(table["insertion"]) == {WAITING}
        np.testing.assert_allclose(sorted(table["deletion AUC"]), sorted(s.deletion_auc for s in final.values()))
        names = [t["name"] for t in plotly_specs(at)["ev_deletion"]["data"]]
        assert names[0].startswith("Grad-CAM (AUC") and not any(n.startswith("random") for n in names)
    finally:
        cache.update(final)
        at.run()


def test_adding_a_method_computes_only_that_method_and_tabs_compute_nothing(at):
    with Forwards(at.session_state["test_net"]) as counter:
        at.multiselect(key="ev_ig_steps").set_value([8, 16])  # a display-only change in another tab
        at.run()
    assert no_exceptions(at) and counter.rows == 0
    at.multiselect(key="ev_methods").set_value(["grad_cam", "saliency", "grad_cam_plus_plus"])
    at.run()
    assert at.button(key="ev_compute").label == "Compute: 1 maps, 1 deletion / insertion scores, 1 sanity checks"
    with Forwards(at.session_state["test_net"]) as counter:
        at.button(key="ev_compute").click()
        wait(at)
    # Grad-CAM++ only: its map (1 row), its deletion/insertion rows (3 + 2 x 4; the 7x7 floor is reused, not
    # recomputed), the sanity check's probe of the parameter groups (1) and its map on each of the two
    # randomised copies (2); its trained map is not recomputed
    assert counter.rows == 1 + (3 + 2 * 4) + 1 + 2
    sanity = frame(at, "rho at full randomisation")
    assert "Grad-CAM++" in list(sanity["map"])
    assert sanity.set_index("map").loc["Grad-CAM++", "verdict"] == "fails"  # the Adebayo failure on this model


def test_cascade_leaves_the_cached_model_bit_for_bit(at):
    model = at.session_state["test_net"]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    at.slider(key="ev_depth").set_value(2)
    at.run()
    at.button(key="ev_run_cascade").click()
    at.run()
    assert no_exceptions(at)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    spec = plotly_specs(at)["ev_cascade_corr"]
    assert [t["name"] for t in spec["data"]] == ["Grad-CAM", "Saliency", "Grad-CAM++"]


def test_ig_convergence_has_readable_log_ticks(at):
    at.multiselect(key="ev_ig_steps").set_value([8, 16])
    at.run()
    at.button(key="ev_run_ig").click()
    at.run()
    assert no_exceptions(at)
    table = frame(at, "relative")
    assert list(table["steps"]) == [8, 16] and np.isfinite(table["relative"]).all()
    axis = plotly_specs(at)["ev_ig"]["layout"]["xaxis"]
    assert axis["type"] == "log" and axis["ticktext"] == ["8", "16"]
