"""Per-layer Grad-CAM for text encoders: a layers x tokens view (Selvaraju et al. 2017, per layer)."""

from typing import ClassVar

from explainers.options import LAYERS, SCORE, Option, flag
from explainers.registry import Method, register


@register
class LayerGradCAM(Method):
    """For each layer l with output H_l (T, D): w_l = mean_t d s / d H_l, row_l = ReLU(H_l w_l); all
    layers from one forward and one ``autograd.grad`` call (tokens as a (T, 1) map, D as channels)."""

    name = "layer_grad_cam"
    label = "Per-layer Grad-CAM"
    caption = "Each row is one layer; bright tokens are those whose features at that layer raise the class score."
    source = "Selvaraju et al. 2017 (Grad-CAM), applied to each encoder layer's token states"
    family = "cam"
    kinds = ("text",)
    needs_layer = True
    per_layer = True
    own_forward = True
    text_options: ClassVar = {
        "score": SCORE,
        "include_embeddings": Option(False, flag("include_embeddings"), "add the embeddings output as row 0"),
        "signed": Option(False, flag("signed"), "drop the ReLU"),
        "layers": LAYERS,
    }

    def explain_text(self, model, tokenizer, prepared, target, options):
        from explainers.text import layer_grad_cam

        return layer_grad_cam(model, prepared, target, **options)
