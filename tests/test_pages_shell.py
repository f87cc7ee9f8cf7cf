"""Every page renders through AppTest without a traceback; the dashboard navigates to them."""


import pytest
from streamlit.testing.v1 import AppTest

from tests.apptest_util import no_exceptions, page_app, plotly_array, plotly_specs


@pytest.mark.parametrize("page", ["text", "bert_layers", "gallery", "evaluate", "filters"])
def test_pages_render(page):
    at = page_app(page).run()
    assert no_exceptions(at)
    assert at.title[0].value


def test_dashboard_entry_runs_default_page():
    at = AppTest.from_file("../dashboard.py", default_timeout=120).run()
    assert no_exceptions(at)
    assert at.title[0].value == "Images"


def test_images_page_shows_top5_for_sample():
    at = page_app("images").run()
    assert no_exceptions(at)
    at.selectbox(key="img_sample").select("coffee").run()
    assert no_exceptions(at)
    specs = plotly_specs(at)
    assert {"img_photo", "img_topk"} <= set(specs)
    bars = specs["img_topk"]["data"][0]
    probs = plotly_array(bars["x"])
    assert bars["type"] == "bar" and len(probs) == 5
    assert bars["customdata"][0] == "espresso" and probs[0] > 0.9
