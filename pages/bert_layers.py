"""BERT layers page: per-layer Grad-CAM as a layers x tokens heatmap."""

from pages.placeholder import notice


def run() -> None:
    notice("BERT layers", "the layers x tokens Grad-CAM heatmap and attention views.", 7)
