"""VarGrad (Adebayo et al. 2018)."""

from typing import ClassVar

from explainers import gradients
from explainers.options import NOISY, PRECISION, SCORE
from explainers.registry import Method, register


@register
class VarGrad(Method):
    """``pixel`` = Var over n noisy copies of d score / d x (per channel; captum NoiseTunnel
    ``nt_type="vargrad"`` on Saliency with abs=False); map = max over channels. SmoothGrad's noise."""

    name = "vargrad"
    label = "VarGrad"
    caption = "Bright pixels are those whose gradient changes most between noisy copies of the photo."
    source = "Adebayo et al. 2018, Local Explanation Methods for Deep Neural Networks Lack Sensitivity to Parameter Values (ICLR-W)"
    family = "gradient"
    slow = True
    noisy = True
    options: ClassVar = {"score": SCORE, **NOISY, "precision": PRECISION}

    def explain_image(self, model, x, target, options):
        return self.from_moments(gradients.noisy_moments(model, x, target, options))

    def from_moments(self, moments):
        return gradients.vargrad(moments)
