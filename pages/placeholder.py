"""A plain notice for pages whose features have not been built yet."""

import streamlit as st


def notice(title: str, what: str, issue: int) -> None:
    st.title(title)
    st.info(f"Not built yet: {what} This page arrives with issue #{issue}.", icon=":material/construction:")
