"""Dashboard pages: one module each, with a ``run()`` that lays the page out."""

import runpy
from pathlib import Path

ENTRY = Path(__file__).resolve().parents[1] / "dashboard.py"


def serve_from_entry() -> None:
    """Run the dashboard's navigation when Streamlit executes a page file itself.

    Opening ``/text`` directly makes Streamlit run ``pages/text.py`` as a legacy page script
    before ``st.navigation`` has been seen; handing over to the entry point routes the URL to
    the right page, with the navigation and page config in place.
    """
    runpy.run_path(str(ENTRY), run_name="__main__")
