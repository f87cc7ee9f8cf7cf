"""Input x gradient (Shrikumar et al. 2016)."""

from typing import ClassVar

import torch

from explainers import gradients, text
from explainers.attribution import Attribution
from explainers.options import PRECISION, SCORE
from explainers.registry import Method, register


@register
class InputXGradient(Method):
    """attr = x * d score / d x (captum ``InputXGradient``); map = sum over channels. Text: sum_d e_t,d (d s / d e_t)_d.

    A first-order estimate of each input's contribution: equals IG with a zero baseline on a linear model.
    """

    name = "input_x_gradient"
    label = "Input x gradient"
    caption = "Red pixels raise the class score and blue ones lower it, to a first approximation (value times gradient)."
    source = "Shrikumar et al. 2016, Not Just a Black Box: Learning Important Features Through Propagating Activation Differences (arXiv:1605.01713)"
    family = "gradient"
    kinds = ("image", "text")
    signed = True
    uses_input_gradient = True
    options: ClassVar = {"score": SCORE, "precision": PRECISION}
    text_options: ClassVar = {"score": SCORE}

    def from_input_gradient(self, x: torch.Tensor, grads: torch.Tensor, targets: list[int]) -> Attribution:
        attr = x.detach() * grads
        return Attribution(attr.sum(dim=1), targets, self.name, pixel=attr)

    def explain_image(self, model, x, target, options):
        grads, targets = gradients.input_gradient(model, x, target, options)
        return self.from_input_gradient(x, grads, targets)

    def explain_text(self, model, tokenizer, prepared, target, options):
        embeds, grad = text.input_gradient(model, prepared, target, options["score"])
        return (grad * embeds).sum(dim=-1), {}
