"""LIME: Local Interpretable Model-agnostic Explanations (Ribeiro et al. 2016), over superpixels and words."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch

from explainers import perturbation as pert
from explainers.attribution import Attribution
from explainers.errors import ExplainerError
from explainers.options import MEMORY, PROGRESS, SEED, Option, choice, count, number
from explainers.registry import Method, register

RIDGE_ALPHA = 1.0
"""The surrogate's ridge penalty (the ``lime`` package's ``Ridge(alpha=1)``)."""


def superpixels(image: torch.Tensor, options: dict[str, Any]) -> np.ndarray:
    """Superpixel labels (H, W), 0..F-1, of one preprocessed image (C, H, W): scikit-image's SLIC
    (``segments`` wanted, compactness 10) or quickshift (kernel 4, max_dist 200, ratio 0.2: the ``lime``
    package's), on the image min-max scaled to [0, 1]."""
    from skimage.segmentation import quickshift, slic

    rgb = image.detach().double().cpu().permute(1, 2, 0).numpy()
    rgb = (rgb - rgb.min()) / max(float(rgb.max() - rgb.min()), 1e-12)
    if rgb.shape[2] != 3:
        rgb = rgb.mean(axis=2, keepdims=True).repeat(3, axis=2)
    if options["superpixels"] == "quickshift":
        labels = quickshift(rgb, kernel_size=4, max_dist=200, ratio=0.2, rng=options["seed"])
    else:
        labels = slic(rgb, n_segments=options["segments"], compactness=10, start_label=0)
    return np.unique(labels, return_inverse=True)[1].reshape(labels.shape)


def image_samples(rng: np.random.RandomState, samples: int, features: int) -> np.ndarray:
    """Binary rows (N, F): each superpixel kept with probability 1/2, row 0 the image itself (all kept),
    drawn as the ``lime`` package's image explainer does (``randint(0, 2, N * F)``)."""
    z = rng.randint(0, 2, samples * features).reshape(samples, features)
    z[0, :] = 1
    return z


def text_samples(rng: np.random.RandomState, samples: int, features: int) -> np.ndarray:
    """Binary rows (N, d): row i > 0 hides k ~ U{1..d} words chosen at random, row 0 is the text itself;
    drawn as the ``lime`` package's text explainer does (all k first, then the words of each row)."""
    z = np.ones((samples, features))
    sizes = rng.randint(1, features + 1, samples - 1)
    for i, size in enumerate(sizes, start=1):
        z[i, rng.choice(features, size, replace=False)] = 0
    return z


def surrogate(z: np.ndarray, y: np.ndarray, width: float, scale: float) -> tuple[np.ndarray, dict[str, Any]]:
    """The weighted linear fit of the scores ``y`` on the rows ``z``: weights = LIME's kernel of the cosine
    distance to the original (times ``scale``: 1 for images, 100 for text, as the package)."""
    weights = pert.lime_kernel(scale * pert.cosine_distance_to_ones(z), width)
    beta, intercept, r2 = pert.weighted_ridge(z, y, weights, RIDGE_ALPHA)
    return beta, {"r2": r2, "intercept": intercept}


@register
class LIME(Method):
    """Sample N binary vectors z over the features (superpixels or words; row 0 keeps all), score each
    copy (hidden features filled / removed), weight it by pi(z) = sqrt(exp(-D(z)^2 / width^2)), D = cosine
    distance to the original, and fit s ~ b + z beta by weighted ridge regression (alpha = 1): attr = beta of
    a pixel's superpixel / spread over a word's pieces. ``extras["r2"]`` is the surrogate's weighted R^2 (how
    well the straight line explains the samples). Sampling, kernel and fit follow the ``lime`` package."""

    name = "lime"
    label = "LIME"
    caption = "Red regions (or words) push the class score up and blue ones down, in a straight-line fit to how the score changes when they are hidden."
    details = ("Model-agnostic: it hides random sets of superpixels (or words), one forward each, and fits a weighted "
               "linear model; its R^2 (under the map) says how well that straight line fits the samples.")
    source = "Ribeiro, Singh & Guestrin 2016, \"Why Should I Trust You?\": Explaining the Predictions of Any Classifier (KDD)"
    family = "perturbation"
    kinds = ("image", "text")
    needs_gradients = False
    model_agnostic = True
    signed = True
    has_delta = False
    slow = True
    options: ClassVar = {
        "samples": Option(1000, count("samples"), "perturbed copies (forwards per image)"),
        "superpixels": Option("slic", choice("superpixels", ("slic", "quickshift")), "scikit-image segmentation"),
        "segments": Option(50, count("segments", 2, 2000), "SLIC: superpixels wanted"),
        "kernel_width": Option(0.25, number("kernel_width", 0.0, False), "width of the sample-weight kernel"),
        "score": pert.PROBABILITY, **pert.FILL, **pert.RUN,
    }
    text_options: ClassVar = {
        "samples": Option(200, count("samples"), "perturbed copies (forwards per text)"),
        "unit": pert.UNIT, "baseline": pert.TEXT_FILL,
        "kernel_width": Option(25.0, number("kernel_width", 0.0, False), "width of the sample-weight kernel"),
        "score": pert.PROBABILITY, "seed": SEED, "memory_mb": MEMORY, "batch_size": pert.BATCH_SIZE,
        "progress": PROGRESS,
    }

    def forwards(self, shape, options=None, kind="image"):
        samples = pert.with_defaults(self.option_table(kind), options)["samples"]
        return samples if kind == "text" else int(shape[0]) * samples

    def explain_image(self, model, x, target, options):
        if options["samples"] < 2:
            raise ExplainerError("LIME needs at least 2 samples (the image itself and one perturbed copy).")
        targets, _ = pert.item_targets(model, x, target)
        seed = pert.seed_for(options["seed"])
        fill = pert.fill_of(x, options, seed)
        rng = np.random.RandomState(seed)
        maps, fits = [], []
        for item in range(x.shape[0]):
            labels = superpixels(x[item], {**options, "seed": seed})
            segments = torch.as_tensor(labels, device=x.device)
            if labels.max() < 1:
                raise ExplainerError("LIME found a single superpixel in this image, so there is nothing to compare; "
                                     "ask for more segments or use superpixels='quickshift'.")
            z = image_samples(rng, options["samples"], int(labels.max()) + 1)
            keep = torch.as_tensor(z, device=x.device, dtype=x.dtype)

            def make(start: int, stop: int, item: int = item, keep: torch.Tensor = keep,
                     segments: torch.Tensor = segments) -> torch.Tensor:
                masks = keep[start:stop][:, segments][:, None]  # (n, 1, H, W): 1 where the superpixel is kept
                return fill[item] + (x[item] - fill[item]) * masks

            scores = pert.image_scores(model, make, len(z), int(targets[item]), options, ("lime", tuple(x.shape[1:])),
                                       pert.item_progress(options, item, x.shape[0]))
            beta, fit = surrogate(z, scores.double().cpu().numpy(), options["kernel_width"], 1.0)
            maps.append(torch.as_tensor(beta, dtype=x.dtype, device=x.device)[segments])
            fits.append({**fit, "segments": len(beta)})
        extras = {name: torch.tensor([f[name] for f in fits], dtype=torch.float64) for name in ("r2", "intercept")}
        extras["segments"] = torch.tensor([f["segments"] for f in fits])
        return Attribution(torch.stack(maps), targets.tolist(), self.name,
                           extras={**extras, "seed": seed, "forwards": options["samples"]})

    def explain_text(self, model, tokenizer, prepared, target, options):
        if options["samples"] < 2:
            raise ExplainerError("LIME needs at least 2 samples (the text itself and one perturbed copy).")
        units = pert.text_units(tokenizer, prepared, options["unit"])
        pert.check_text_units(units)
        seed = pert.seed_for(options["seed"])
        z = text_samples(np.random.RandomState(seed), options["samples"], len(units))
        keep = torch.as_tensor(z > 0)
        key = ("text_lime", tuple(prepared.inputs["input_ids"].shape), options["baseline"])
        scores = pert.text_scores(model, tokenizer, prepared, units, keep, target, options, key)
        beta, fit = surrogate(z, scores.double().cpu().numpy(), options["kernel_width"], 100.0)
        return pert.spread_over_tokens(beta, units, len(prepared.tokens)), {**fit, "seed": seed, "forwards": len(z)}
