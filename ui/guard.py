"""One place that turns failures into a message in the panel concerned, never a traceback."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import streamlit as st

from explainers.errors import ExplainerError

log = logging.getLogger("dashboard")


@contextmanager
def panel(what: str) -> Iterator[None]:
    """Run a panel's body; show an ExplainerError as its message, anything else as a short error.

    Streamlit's own control flow (``st.stop``, reruns) derives from BaseException and passes through.
    """
    try:
        yield
    except ExplainerError as err:
        st.error(f"{what}: {err}", icon=":material/error:")
    except Exception as err:  # a bug or an unforeseen input: say so plainly, log the details
        log.exception("%s failed", what)
        st.error(
            f"{what} failed unexpectedly ({type(err).__name__}: {err}). "
            "The rest of the page keeps working.",
            icon=":material/error:",
        )
