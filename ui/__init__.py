"""Streamlit glue shared by the pages: cached resources and error panels (no computation here)."""
