"""Raw attention of the class token in one layer and head (Dosovitskiy et al. 2021, figure 6)."""

from typing import Any, ClassVar

from explainers.attention import attention_maps, class_token_map, image_attribution
from explainers.errors import ExplainerError
from explainers.options import Option, count
from explainers.registry import Method, register


def check_head(value: Any) -> None:
    if value is not None:
        count("head", 0, 1024)(value)


@register
class AttentionMap(Method):
    """map = A_l[head, 0, patches]: the class token's attention probabilities over the patch tokens in
    layer ``block`` (negative: from the end; -1 the last), one ``head`` or their mean (head=None)."""

    name = "attention_map"
    label = "Attention (one layer)"
    caption = "Bright patches are those the class token attends to in the chosen layer (and head)."
    details = "Raw attention probabilities, the same for every class; the last layer by default, mean over heads."
    source = "Dosovitskiy et al. 2021, An Image is Worth 16x16 Words: Transformers for Image Recognition at Scale (ICLR)"
    family = "attention"
    needs_gradients = False
    target_independent = True
    options: ClassVar = {
        "block": Option(-1, count("block", -1024, 1023), "the attention layer (0 = first, -1 = last)"),
        "head": Option(None, check_head, "one head's attention, or None for the mean over heads"),
    }

    def explain_image(self, model, x, target, options):
        probs, _, targets, (prefix, height, width) = attention_maps(model, x, target, gradients=False)
        block, head = options["block"], options["head"]
        if not -len(probs) <= block < len(probs):
            raise ExplainerError(f"block must be between {-len(probs)} and {len(probs) - 1}: the model has "
                                 f"{len(probs)} attention layers.")
        chosen = probs[block]
        if head is not None and head >= chosen.shape[1]:
            raise ExplainerError(f"head must be below {chosen.shape[1]}: the layer has {chosen.shape[1]} heads.")
        relevance = chosen.mean(dim=1) if head is None else chosen[:, head]
        raw = class_token_map(relevance, prefix, height, width)
        return image_attribution(self.name, raw, targets, x, target_independent=True, block=block, head=head)
