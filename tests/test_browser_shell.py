"""The running dashboard in Chromium: pick a sample, see the top-5 chart, keep a screenshot."""

import pytest

from tests.conftest import ARTIFACTS

pytestmark = pytest.mark.browser


def select_option(page, label: str, option: str) -> None:
    """Choose ``option`` in the Streamlit selectbox labelled ``label``."""
    box = page.get_by_label(label, exact=True)
    box.click()
    page.get_by_role("option", name=option, exact=True).click()


def test_pick_sample_and_see_top5(page, app_url):
    page.goto(app_url)
    page.get_by_role("heading", name="Images").wait_for()
    select_option(page, "Sample photo", "cat")
    chart = page.locator(".stPlotlyChart").nth(1)
    chart.locator(".js-plotly-plot").wait_for()
    page.get_by_text("Top-5 classes").wait_for()
    page.wait_for_function(
        "() => [...document.querySelectorAll('.js-plotly-plot')].some("
        "p => (p.data || []).some(t => t.type === 'bar' && (t.customdata || []).includes('tiger cat')))"
    )
    page.screenshot(path=str(ARTIFACTS / "images-top5.png"), full_page=True)
