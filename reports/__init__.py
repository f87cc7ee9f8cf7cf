"""Self-contained HTML reports of computed explanations (pure Python + Plotly, no Streamlit).

``build_report(title, sections) -> str``: one HTML file, plotly.js inlined once, that opens
offline. Build sections with :func:`image_section`, :func:`text_section`, or :class:`Section`
directly (any titled Plotly figures plus :class:`MapFacts`).
"""

from reports.document import MapFacts, Section, build_report, light_markdown
from reports.image import image_section, scale_text
from reports.text import text_section
from reports.versions import git_commit, versions

__all__ = ["MapFacts", "Section", "build_report", "git_commit", "image_section", "light_markdown", "scale_text",
           "text_section", "versions"]
