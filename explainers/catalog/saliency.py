"""Saliency (Simonyan et al. 2014)."""

from typing import ClassVar

import torch

from explainers import gradients, text
from explainers.attribution import Attribution
from explainers.options import PRECISION, SCORE
from explainers.registry import Method, register


@register
class Saliency(Method):
    """map = max_c |d score / d x_c| (section 3.1); ``pixel`` = the signed gradient. Text: ||d s / d e_t||_2.

    One forward + backward; when a CAM-family method runs for the same target, the input gradient
    comes from that method's pass instead (:func:`explainers.cam.layer_pass`, ``input_gradients``).
    """

    name = "saliency"
    label = "Saliency"
    caption = "Bright pixels are those where a tiny change would change the class score most."
    details = "Sharp but noisy; it shows sensitivity, not contribution."
    source = "Simonyan et al. 2014, Deep Inside Convolutional Networks: Visualising Image Classification Models and Saliency Maps (ICLR-W)"
    family = "gradient"
    kinds = ("image", "text")
    uses_input_gradient = True
    default = True
    options: ClassVar = {"score": SCORE, "precision": PRECISION}
    text_options: ClassVar = {"score": SCORE}

    def from_input_gradient(self, x: torch.Tensor, grads: torch.Tensor, targets: list[int]) -> Attribution:
        return Attribution(grads.abs().amax(dim=1), targets, self.name, pixel=grads)

    def explain_image(self, model, x, target, options):
        grads, targets = gradients.input_gradient(model, x, target, options)
        return self.from_input_gradient(x, grads, targets)

    def explain_text(self, model, tokenizer, prepared, target, options):
        _, grad = text.input_gradient(model, prepared, target, options["score"])
        return grad.norm(dim=-1), {}
