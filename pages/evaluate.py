"""Evaluate page: faithfulness, sanity checks and agreement between methods."""

from pages.placeholder import notice


def run() -> None:
    notice("Evaluate", "deletion/insertion curves, randomisation sanity checks and method agreement.", 8)
