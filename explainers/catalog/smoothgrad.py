"""SmoothGrad (Smilkov et al. 2017)."""

from typing import ClassVar

from explainers import gradients
from explainers.options import NOISY, PRECISION, SCORE
from explainers.registry import Method, register


@register
class SmoothGrad(Method):
    """map = mean over n noisy copies of max_c |d score / d x_c|; ``pixel`` = mean of the signed
    gradients. Noise N(0, sigma^2), sigma = noise_level * (max - min) of each item."""

    name = "smoothgrad"
    label = "SmoothGrad"
    caption = "Bright pixels are consistently sensitive: saliency averaged over noisy copies, so speckle cancels."
    source = "Smilkov et al. 2017, SmoothGrad: removing noise by adding noise (arXiv:1706.03825)"
    family = "gradient"
    slow = True
    noisy = True
    options: ClassVar = {"score": SCORE, **NOISY, "precision": PRECISION}

    def explain_image(self, model, x, target, options):
        return self.from_moments(gradients.noisy_moments(model, x, target, options))

    def from_moments(self, moments):
        return gradients.smoothgrad(moments)
