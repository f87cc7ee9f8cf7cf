"""Gradient-weighted attention rollout (Chefer, Gur & Wolf 2021)."""

from typing import ClassVar

from explainers.attention import attention_maps, class_token_map, gradient_rollout, image_attribution
from explainers.options import SCORE
from explainers.registry import Method, register


@register
class GradientRollout(Method):
    """A-bar_l = mean_heads((dY^c/dA_l * A_l)^+), R = I, R <- R + A-bar_l R over the layers (eq. 5-6);
    map = the class token's row of R over the patch tokens. One forward and one backward."""

    name = "gradient_rollout"
    label = "Gradient-weighted rollout"
    caption = ("Bright patches are those the class token draws on through attention that, weighted by its "
               "gradient, raises the class score.")
    details = "For vision transformers (ViT, DeiT, BEiT); class-specific, unlike plain attention rollout."
    source = ("Chefer, Gur & Wolf 2021, Generic Attention-model Explainability for Interpreting Bi-Modal and "
              "Encoder-Decoder Transformers (ICCV)")
    family = "attention"
    options: ClassVar = {"score": SCORE}

    def explain_image(self, model, x, target, options):
        probs, grads, targets, (prefix, height, width) = attention_maps(
            model, x, target, gradients=True, score=options["score"])
        raw = class_token_map(gradient_rollout(probs, grads), prefix, height, width)
        return image_attribution(self.name, raw, targets, x)
