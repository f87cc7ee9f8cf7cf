"""Pure Plotly figure builders: arrays in, ``go.Figure`` (or bytes for downloads) out; no Streamlit.

Modules: ``scales`` (colour-scale rules), ``image`` (photo, overlays, map grid, top-k bars),
``text`` (token heatmaps, layers x tokens, attention), ``evaluation`` (curves, agreement,
randomisation cascade), ``export`` (HTML, PNG, NPZ downloads), ``style`` (the house look).
"""
