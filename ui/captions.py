"""Plain-language captions for people who never wrote a line of torch: what the colours mean."""

METHOD_CAPTIONS: dict[str, str] = {
    "cam": (
        "**CAM** weighs the last feature maps by the classifier's own weights for the class. "
        "Bright = regions whose features the final layer counts toward this class. Coarse (7x7 here) "
        "but read straight off the model; only works for networks that end in average pooling + one "
        "linear layer."
    ),
    "grad_cam": (
        "**Grad-CAM** asks how much each feature map would raise the class score, and paints the "
        "maps that help. Bright = regions that push the model toward the class. Coarse, "
        "class-specific, and sensitive to the layer you pick."
    ),
    "grad_cam_negative": (
        "**Grad-CAM (negative)** is the same recipe with the sign flipped: bright = regions that "
        "argue *against* the class (what the model would need less of to be surer)."
    ),
    "grad_cam_plus_plus": (
        "**Grad-CAM++** refines Grad-CAM's weighting so several separate objects of the class all "
        "light up, not only the most obvious one. Bright = supports the class."
    ),
    "smooth_grad_cam_plus_plus": (
        "**Smooth Grad-CAM++** averages Grad-CAM++ over noisy copies of the photo, giving steadier, "
        "less speckled maps. Slower: one pass per noisy copy. On a layer followed only by global "
        "pooling and a linear head (such as the bundled model's default layer) the layer's gradients do "
        "not depend on the photo, so it equals Grad-CAM++ exactly there."
    ),
    "saliency": (
        "**Saliency** shows, pixel by pixel, how much a tiny change in that pixel would change the "
        "class score. Bright = sensitive pixels. Sharp but noisy; shows sensitivity, not contribution."
    ),
    "smoothgrad": (
        "**SmoothGrad** averages saliency over many noisy copies of the photo, so the speckle cancels "
        "and object outlines remain. Bright = consistently sensitive pixels."
    ),
    "integrated_gradients": (
        "**Integrated Gradients** adds up the gradients along a path from a baseline image (e.g. "
        "all-grey or black) to the photo. Red = pixels that raise the score relative to the baseline, "
        "blue = pixels that lower it; the totals add up to the score difference (the 'delta' says how "
        "closely)."
    ),
}
