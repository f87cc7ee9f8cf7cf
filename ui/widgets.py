"""Keyed widgets that keep their value when the browser re-creates them.

Seen in Chromium (Streamlit 1.67, tests/test_browser_vit.py): after a checkpoint upload in the
sidebar, the Images page's methods box sometimes came back empty, the browser reporting ``[]`` as a
user change. It had re-created the widget from its proto's default, which is empty when the value
lives only in Session State. Passing the current value as the default (or index) on every run
means a re-created widget comes back as it was. A value written through Session State for this
run (a button's callback, a job opened from the Gallery, a layer the new model lacks) goes through
:func:`write` and gets no default, because Streamlit warns when a widget gets both.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import streamlit as st

WRITTEN = "_widget_values_written"
"""Session key: the widget keys whose value was written through Session State for the next run."""


def write(key: str, value: Any) -> None:
    """Set widget ``key``'s value through Session State (it shows in the browser on the next run)."""
    st.session_state[key] = value
    st.session_state.setdefault(WRITTEN, set()).add(key)


def kept(key: str, fallback: Any, options: Sequence[Any], many: bool = False) -> dict[str, Any]:
    """Keyword arguments for widget ``key``: ``index=`` of its current value (else of ``fallback``) in
    ``options``, or for a multiselect (``many``) ``default=`` the values of it still in ``options``;
    none when :func:`write` set the value for this run."""
    written = st.session_state.get(WRITTEN, set())
    if key in written:
        written.discard(key)
        return {}
    value = st.session_state.get(key, fallback)
    if many:
        return {"default": [v for v in value if v in options]}
    return {"index": list(options).index(value)} if value in options else {}
