"""Entry point: ``streamlit run dashboard.py``. Navigation only; each page lives in ``pages/``.

The navigation is registered before any page module is imported (they import torch and the model
code: seconds on a cold server), so a click on another page while the first one is still loading,
or a first visit straight to a page's URL, finds its page (seen in Chromium: a click on "BERT
layers" during the cold first run left the Images page showing)."""

import importlib
import os
from collections.abc import Callable

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import streamlit as st  # noqa: E402

st.set_page_config(page_title="Inside the classifier", page_icon=":material/visibility:", layout="wide")


def page(module: str) -> Callable[[], None]:
    """A page's ``run``, importing ``pages.<module>`` when the page is first shown."""

    def run() -> None:
        importlib.import_module(f"pages.{module}").run()

    run.__name__ = run.__qualname__ = module
    return run


PAGES = [
    st.Page(page("images"), title="Images", icon=":material/image:", url_path="images", default=True),
    st.Page(page("text"), title="Text", icon=":material/notes:", url_path="text"),
    st.Page(page("bert_layers"), title="BERT layers", icon=":material/layers:", url_path="bert-layers"),
    st.Page(page("gallery"), title="Gallery", icon=":material/photo_library:", url_path="gallery"),
    st.Page(page("evaluate"), title="Evaluate", icon=":material/fact_check:", url_path="evaluate"),
    st.Page(page("filters"), title="Filters", icon=":material/filter:", url_path="filters"),
    st.Page(page("present"), title="Presentation", icon=":material/slideshow:", url_path="present"),
]

st.navigation(PAGES).run()
