"""The Filters page through AppTest: the channel grid, sorting and paging without extra model
passes, activation maximisation cached per channel, and bad input answered in the panel."""

import numpy as np
import pytest
import torch

from models.efficientnet_lite import EfficientNetLite
from tests.apptest_util import no_exceptions, page_app, plotly_array, plotly_specs

pytestmark = pytest.mark.slow


class BatchSizes:
    """Batch sizes of every EfficientNet-Lite forward in this process (the app's cached model too)."""

    def __init__(self):
        self.sizes: list[int] = []
        self.handle = torch.nn.modules.module.register_module_forward_pre_hook(self.hook)

    def hook(self, module, inputs):
        if isinstance(module, EfficientNetLite):
            self.sizes.append(inputs[0].shape[0])

    def __enter__(self):
        return self

    def __exit__(self, *_):
        self.handle.remove()


@pytest.fixture(scope="module")
def at():
    app = page_app("filters", timeout=600)
    app.run()
    assert no_exceptions(app)
    return app


def maps(app) -> list[dict]:
    return [t for t in plotly_specs(app)["flt_maps"]["data"] if t["type"] == "heatmap"]


def runs(app) -> int:
    return app.session_state["filter_runs"]


def test_default_grid_shows_a_page_of_channels_highest_mean_first(at):
    cells = maps(at)
    assert len(cells) == 32
    assert "channel" in cells[0]["hovertemplate"] and "%{z" in cells[0]["hovertemplate"]
    titles = [a["text"] for a in plotly_specs(at)["flt_maps"]["layout"]["annotations"]]
    means = [float(t.split("mean ")[1].rstrip(")")) for t in titles]
    assert means == sorted(means, reverse=True)
    first = plotly_array(cells[0]["z"])
    assert first.shape == (7, 7) and np.isclose(first.mean(), means[0], rtol=1e-3)
    assert any("1280 channels of 7x7" in c.value for c in at.caption)


def test_display_and_paging_run_no_model_pass(at):
    before = runs(at)
    first_page = titles_of(at)
    with BatchSizes() as seen:
        at.selectbox(key="flt_colorscale").select("Greys").run()
        at.checkbox(key="flt_shared_scale").check().run()
        at.number_input(key="flt_page__head_act_32").set_value(2).run()
    assert no_exceptions(at)
    assert seen.sizes == [] and runs(at) == before
    assert titles_of(at) != first_page
    assert maps(at)[0]["colorscale"][0][1] != maps(at)[0]["colorscale"][-1][1]
    at.number_input(key="flt_page__head_act_32").set_value(1).run()


def titles_of(app) -> list[str]:
    return [a["text"] for a in plotly_specs(app)["flt_maps"]["layout"]["annotations"]]


def test_grad_cam_sort_reorders_for_the_class(at):
    by_mean = titles_of(at)
    at.radio(key="flt_sort").set_value("grad_cam").run()
    assert no_exceptions(at)
    by_weight = titles_of(at)
    assert by_weight != by_mean and all(" (w " in t for t in by_weight)
    assert any("Grad-CAM weight for *tiger cat*" in c.value for c in at.caption)
    at.radio(key="flt_sort").set_value("mean").run()


def test_activation_maximisation_runs_in_batches_and_caches_per_channel(at):
    at.radio(key="flt_units_source").set_value("numbers").run()
    at.text_input(key="flt_channels").set_value("0-2").run()
    at.select_slider(key="flt_size").set_value(64).run()
    at.slider(key="flt_steps").set_value(8).run()
    assert any("0 of 3 already optimised" in i.value for i in at.info)
    with BatchSizes() as seen:
        at.button(key="flt_run").click().run()
    assert no_exceptions(at) and not at.error
    assert set(seen.sizes[:8]) == {3}, "three channels optimised together, one batch per step"
    grid = plotly_specs(at)["flt_optimised"]
    assert [t["type"] for t in grid["data"]] == ["image"] * 3
    titles = [a["text"] for a in grid["layout"]["annotations"]]
    assert [t.split(":")[0] for t in titles] == ["#0", "#1", "#2"]
    with BatchSizes() as seen:
        at.text_input(key="flt_channels").set_value("0-3").run()
        at.button(key="flt_run").click().run()
    assert set(seen.sizes[:8]) == {1}, "only the new channel is optimised"
    again = [a["text"] for a in plotly_specs(at)["flt_optimised"]["layout"]["annotations"]]
    assert again[:3] == titles and again[3].startswith("#3")
    with BatchSizes() as seen:
        at.slider(key="flt_rotate").set_value(6.0).run()
    assert seen.sizes == [] and "flt_optimised" not in plotly_specs(at), "new options: wait for the button"


def test_too_many_channels_are_capped_with_a_message(at):
    at.radio(key="flt_units_source").set_value("numbers").run()
    at.text_input(key="flt_channels").set_value("0-39").run()
    assert no_exceptions(at)
    assert any("At most 16 channels per run" in w.value and "40 asked" in w.value for w in at.warning)
    assert any("Optimise 16 channels" in b.label for b in at.button)


def test_layer_without_channel_maps_is_refused_in_the_panel(at):
    at.checkbox(key="flt_all_layers").check().run()
    at.selectbox(key="flt_layer").select("_fc").run()
    assert no_exceptions(at)
    assert any("not a (B, C, H, W) feature map" in e.value for e in at.error)
    assert any("Pick a layer with channel maps first" in i.value for i in at.info)
    at.selectbox(key="flt_layer").select("_avg_pooling").run()
    assert no_exceptions(at) and not at.error
    assert any("1x1" in c.value for c in at.caption)
    assert len(maps(at)) == 32
