"""Integrated Gradients (Sundararajan et al. 2017)."""

from typing import ClassVar

from explainers import gradients, text
from explainers.options import (
    MEMORY,
    PRECISION,
    PROGRESS,
    SCORE,
    SEED,
    Option,
    baseline_check,
    check_black,
    choice,
    count,
    number,
)
from explainers.quadrature import RULES
from explainers.registry import Method, register

PATH = {
    "steps": Option(50, count("steps"), "quadrature nodes (tolerance=0)"),
    "tolerance": Option(0.01, number("tolerance", 0.0, True), "adaptive: stop at |delta| <= tolerance x |f(x) - f(x')|; 0 = fixed steps"),
    "max_steps": Option(800, count("max_steps"), "adaptive: most passes"),
    "rule": Option("gauss_legendre", choice("rule", tuple(RULES)), "quadrature rule (tolerance=0)"),
}


@register
class IntegratedGradients(Method):
    """attr = (x - x') * integral_0^1 d score / d x (x' + a (x - x')) da (eq. 1), by quadrature or
    adaptive panels; ``extras["delta"]`` = sum(attr) - (f(x) - f(x')), the completeness error.
    Images: the path runs over pixels; text: over word embeddings (baselines pad / mask / zero)."""

    name = "integrated_gradients"
    label = "Integrated Gradients"
    caption = "Red pixels raise the score relative to the baseline image, blue ones lower it; they add up to the score difference."
    details = "The 'delta' says how closely the attributions add up (the path integral's error)."
    source = "Sundararajan et al. 2017, Axiomatic Attribution for Deep Networks (ICML)"
    family = "gradient"
    kinds = ("image", "text")
    signed = True
    has_delta = True
    slow = True
    options: ClassVar = {
        "score": SCORE, **PATH,
        "baseline": Option("zero", baseline_check(gradients.BASELINES), "zero, black, blur, uniform, or a tensor"),
        "black": Option(None, check_black, "per-channel value of a black pixel after preprocessing"),
        "blur_sigma": Option(10.0, number("blur_sigma", 0.0, False), "blur baseline's Gaussian sigma, pixels"),
        "seed": SEED, "memory_mb": MEMORY, "progress": PROGRESS, "precision": PRECISION,
    }
    text_options: ClassVar = {
        "score": SCORE, **PATH,
        "baseline": Option("pad", choice("baseline", ("pad", "mask", "zero")), "every non-special token -> [PAD] / [MASK], or zero embeddings"),
        "memory_mb": MEMORY, "progress": PROGRESS,
    }

    def explain_image(self, model, x, target, options):
        return gradients.integrated_gradients(model, x, target, options)

    def explain_text(self, model, tokenizer, prepared, target, options):
        return text.integrated_gradients(model, tokenizer, prepared, target, options)
