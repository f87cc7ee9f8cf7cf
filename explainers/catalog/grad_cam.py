"""Grad-CAM and its counterfactual (negative) map (Selvaraju et al. 2017)."""

from typing import ClassVar

import torch

from explainers.cam import LayerMaps, LayerMethod
from explainers.options import LAYERS, SCORE, Option, flag
from explainers.registry import register

SOURCE = "Selvaraju et al. 2017, Grad-CAM: Visual Explanations from Deep Networks via Gradient-based Localization (ICCV)"


@register
class GradCAM(LayerMethod):
    """w_k = mean_ij dY^c / dA_k[i, j] (eq. 1); M = ReLU(sum_k w_k A_k) (eq. 2).

    ``counterfactual=True`` uses -G (section 5), as the ``grad_cam_negative`` record does.
    """

    name = "grad_cam"
    label = "Grad-CAM"
    caption = "Bright regions are where the features that raise the class score sit."
    details = "Coarse (the layer's grid), class-specific, and sensitive to the layer you pick."
    source = SOURCE
    kinds = ("image", "text")
    default = True
    options: ClassVar = {"score": SCORE, "counterfactual": Option(False, flag("counterfactual"))}
    text_options: ClassVar = {"score": SCORE, "signed": Option(False, flag("signed"), "drop the ReLU"), "layers": LAYERS}
    own_forward = True  # text: the text CNN's Grad-CAM pass gives the prediction too

    def weights(self, p: LayerMaps) -> torch.Tensor:
        grads = -p.gradients if p.options.get("counterfactual") else p.gradients
        return grads.mean(dim=(2, 3))

    def supports_text_model(self, model) -> bool:
        from explainers.text import is_transformer

        return not is_transformer(model)

    def explain_text(self, model, tokenizer, prepared, target, options):
        from explainers.text import text_cnn_grad_cam

        return text_cnn_grad_cam(model, prepared, target, **options)


@register
class GradCAMNegative(GradCAM):
    """Grad-CAM of -Y^c (section 5, "counterfactual explanations"): w_k = mean_ij -dY^c / dA_k[i, j]."""

    name = "grad_cam_negative"
    label = "Grad-CAM (negative)"
    caption = "Bright regions argue against the class: the model would be surer of it with less of them."
    details = "The same recipe as Grad-CAM with the gradient's sign flipped."
    kinds = ("image",)
    evidence_against = True
    default = False
    options: ClassVar = {"score": SCORE}

    def weights(self, p: LayerMaps) -> torch.Tensor:
        return (-p.gradients).mean(dim=(2, 3))
