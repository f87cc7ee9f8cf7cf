"""Entry point: ``streamlit run dashboard.py``. Navigation only; each page lives in ``pages/``."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import streamlit as st  # noqa: E402

from pages import bert_layers, evaluate, filters, gallery, images, present, text  # noqa: E402

st.set_page_config(page_title="Inside the classifier", page_icon=":material/visibility:", layout="wide")

PAGES = [
    st.Page(images.run, title="Images", icon=":material/image:", url_path="images", default=True),
    st.Page(text.run, title="Text", icon=":material/notes:", url_path="text"),
    st.Page(bert_layers.run, title="BERT layers", icon=":material/layers:", url_path="bert-layers"),
    st.Page(gallery.run, title="Gallery", icon=":material/photo_library:", url_path="gallery"),
    st.Page(evaluate.run, title="Evaluate", icon=":material/fact_check:", url_path="evaluate"),
    st.Page(filters.run, title="Filters", icon=":material/filter:", url_path="filters"),
    st.Page(present.run, title="Presentation", icon=":material/slideshow:", url_path="present"),
]

st.navigation(PAGES).run()
