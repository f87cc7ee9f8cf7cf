"""Attention rollout (Abnar & Zuidema 2020)."""

from typing import ClassVar

from explainers.options import Option, count
from explainers.registry import Method, register


@register
class AttentionRollout(Method):
    """R = prod_l rownorm(mean_heads(A_l) + I) (first layer rightmost); scores = row ``row`` of R
    (default 0, the [CLS] token). Class-independent; needs eager attention weights.
    Images (a ViT): the class token's row over the patch tokens, on the patch grid
    (:mod:`explainers.attention`)."""

    name = "attention_rollout"
    label = "Attention rollout"
    caption = ("Bright tokens (or image patches) are those the first (class) token's representation draws on most, "
               "through all layers' attention.")
    details = "The same for every class: it shows where information flows, not what pushes the prediction."
    source = "Abnar & Zuidema 2020, Quantifying Attention Flow in Transformers (ACL)"
    family = "attention"
    kinds = ("text", "image")
    needs_gradients = False
    target_independent = True
    text_options: ClassVar = {"row": Option(0, count("row", 0, 100_000), "the query token whose row is shown")}

    def supports_text_model(self, model) -> bool:
        from explainers.text import is_transformer

        return is_transformer(model)

    def explain_text(self, model, tokenizer, prepared, target, options):
        from explainers.text import attention_weights, rollout

        return rollout(list(attention_weights(model, prepared)))[options["row"]], {"target_independent": True}

    def explain_image(self, model, x, target, options):
        from explainers.attention import attention_maps, class_token_map, image_attribution, rollout

        probs, _, targets, (prefix, height, width) = attention_maps(model, x, target, gradients=False)
        raw = class_token_map(rollout(probs), prefix, height, width)
        return image_attribution(self.name, raw, targets, x, target_independent=True)
