"""The Evaluate page through AppTest: curves, AUC table, agreement, randomisation and IG on the bundled model."""

import numpy as np
import pytest
import torch

from tests.apptest_util import no_exceptions, page_app, plotly_array, plotly_specs

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def at():
    app = page_app("evaluate", timeout=600)
    app.run()
    assert no_exceptions(app)
    # smaller and faster for the rest of the module: two methods, k = 6, one random map
    app.multiselect(key="ev_methods").set_value(["grad_cam", "saliency"])
    app.slider(key="ev_steps").set_value(6)
    app.slider(key="ev_random_maps").set_value(1)
    app.run()
    assert no_exceptions(app)
    return app


def net():
    from ui.resources import image_model

    return image_model().model.net


class Forwards:
    def __init__(self, module):
        self.calls = 0
        self.handle = module.register_forward_hook(lambda *_: setattr(self, "calls", self.calls + 1))

    def __enter__(self):
        return self

    def __exit__(self, *_):
        self.handle.remove()


def test_curves_table_and_agreement(at):
    specs = plotly_specs(at)
    for kind in ("deletion", "insertion"):
        names = [t["name"] for t in specs[f"ev_{kind}"]["data"]]
        assert len(names) == 3 and names[0].startswith("Grad-CAM (AUC") and names[-1].startswith("random (AUC")
        assert plotly_array(specs[f"ev_{kind}"]["data"][0]["x"]).tolist() == pytest.approx(np.arange(7) / 6, abs=1e-3)
    table = at.dataframe[0].value
    assert list(table["method"]) == ["Grad-CAM", "Saliency", "random floor"]
    assert table["deletion AUC"].between(0, 1).all() and table["insertion AUC"].between(0, 1).all()
    assert "ev_agree_rho" in specs and "ev_agree_iou" in specs
    labels = [b.proto.label for b in at.get("download_button")]
    assert {"AUC table as CSV", "Figure as HTML", "Figure as PNG", "Agreement matrices as CSV"} <= set(labels)


def test_display_only_reruns_run_no_model(at):
    with Forwards(net()) as counter:
        at.multiselect(key="ev_ig_steps").set_value([8, 16])
        at.run()
    assert no_exceptions(at) and counter.calls == 0


def test_randomisation_leaves_the_cached_model_bit_for_bit(at):
    model = net()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    at.slider(key="ev_depth").set_value(2)
    at.run()
    with Forwards(model) as counter:
        at.button(key="ev_run_cascade").click()
        at.run()
    assert no_exceptions(at) and counter.calls > 0  # the app ran this very model (the original maps)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    spec = plotly_specs(at)["ev_cascade_corr"]
    assert [t["name"] for t in spec["data"]] == ["Grad-CAM", "Saliency"]
    assert "ev_cascade_maps" in plotly_specs(at)


def test_ig_convergence(at):
    at.multiselect(key="ev_ig_steps").set_value([8, 16])
    at.run()
    at.button(key="ev_run_ig").click()
    at.run()
    assert no_exceptions(at)
    table = at.dataframe[-1].value
    assert list(table["steps"]) == [8, 16] and np.isfinite(table["relative"]).all()
