"""The Presentation page through AppTest: the prediction, one large map per method with its record's caption,
nothing else; it starts from the Images page's choices; the report download holds the same view."""

import pytest

import explainers
from tests.apptest_util import no_exceptions, page_app, plotly_specs
from ui.image_results import LAST_IMAGES

pytestmark = pytest.mark.slow


def test_presentation_shows_prediction_maps_and_captions_only():
    app = page_app("present", timeout=600)
    app.session_state[LAST_IMAGES] = {"sample": "coffee", "methods": ["grad_cam", "integrated_gradients"]}
    app.run()
    assert no_exceptions(app)
    assert "espresso" in app.markdown[0].value and "sure" in app.markdown[0].value
    specs = plotly_specs(app)
    maps = [k for k in specs if k.startswith("present_map_")]
    assert len(maps) == 2 and "present_photo" in specs
    ig = specs["present_map_integrated_gradients"]
    axis = ig["layout"]["coloraxis"]
    assert axis["cmin"] == -axis["cmax"]  # IG's record is signed: diverging, centred on 0
    texts = [m.value for m in app.markdown]
    for name in ("grad_cam", "integrated_gradients"):
        assert explainers.method(name).caption in texts
    assert not app.dataframe and not app.expander  # nothing else: no tables, no expanders
    app.sidebar.multiselect(key="present_methods").set_value(["grad_cam"]).run()
    assert len([k for k in plotly_specs(app) if k.startswith("present_map_")]) == 1
