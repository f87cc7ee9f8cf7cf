"""Text page: token heatmaps for the bundled sentiment model and your own."""

from pages.placeholder import notice


def run() -> None:
    notice("Text", "token heatmaps (Integrated Gradients, saliency, gradient x input, attention rollout).", 7)
