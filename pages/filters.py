"""Filters page: feature maps and activation maximisation."""

from pages.placeholder import notice


def run() -> None:
    notice("Filters", "feature maps of a layer and the patterns its channels respond to most.", 11)
