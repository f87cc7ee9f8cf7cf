"""Helpers for driving pages through streamlit.testing.v1.AppTest."""

from streamlit.testing.v1 import AppTest


def page_app(module: str, timeout: float = 120) -> AppTest:
    """An AppTest that runs ``pages.<module>.run()``, as the navigation would."""
    return AppTest.from_string(
        f"from pages import {module}\n{module}.run()\n", default_timeout=timeout
    )


def no_exceptions(at: AppTest) -> bool:
    """True when the run showed no exception element (a traceback) anywhere."""
    return len(at.exception) == 0


def plotly_specs(at: AppTest) -> dict[str, dict]:
    """Plotly figures on the page as parsed JSON, by widget key (the part after the last '-')."""
    import json

    return {
        chart.proto.id.rsplit("-", 1)[-1]: json.loads(chart.proto.spec)
        for chart in at.get("plotly_chart")
    }


def plotly_array(value):
    """A Plotly JSON array as numpy: plain lists, or plotly 6+'s base64 ``{"dtype", "bdata"}``."""
    import base64

    import numpy as np

    if isinstance(value, dict) and "bdata" in value:
        array = np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
        shape = value.get("shape")
        if isinstance(shape, str):
            shape = [int(n) for n in shape.split(",")]
        return array.reshape(shape) if shape else array
    return np.asarray(value)
