"""Perturbation methods against captum's Occlusion and against the bare no-grad forwards they need.

- Occlusion, resnet50 (random weights: speed does not depend on them), window 16, stride 8 (27 x 27 = 729
  windows): captum at its default ``perturbations_per_eval=1`` and at the other values of a sweep, all as
  variants of the case (alternated with ours, incremental and whole forwards), so its best is read from
  the same reps.
- RISE, 2,000 masks, the bundled EfficientNet-Lite0: the 2,000 no-grad forwards of the same image at
  several batch sizes, as variants (the masks' construction and the weighted sum are what ours adds).
- Text leave-one-out per token on a 32-token sentence, MiniLM: the forwards it needs (one batch of the
  30 copies, prepared beforehand).
- Occlusion at the Images page's defaults on the bundled model: incremental against whole forwards.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torchvision
from captum.attr import Occlusion

import explainers
from bench.harness import Case
from explainers.folded import gradient_net
from explainers.text import prepare_text

SENTENCE = ("The film's first hour is a warm, funny and sharply observed portrait of a family, "
            "but the last act collapses into cheap melodrama.")


def occlusion_case(quick: bool) -> Case:
    torch.manual_seed(0)
    model = torchvision.models.resnet50(weights=None).eval()
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        target = int(model(x).argmax())
    occlusion = Occlusion(model)

    def captum(per_eval: int) -> Callable[[], object]:
        return lambda: occlusion.attribute(x, sliding_window_shapes=(3, 16, 16), strides=(3, 8, 8), target=target,
                                           baselines=0, perturbations_per_eval=per_eval)

    gradient_net(model)  # our folded copy is built once per weights (0.2 s), outside the timings
    default = "captum Occlusion, default (perturbations_per_eval=1)"
    sweep = {f"captum Occlusion, perturbations_per_eval={n}": captum(n) for n in ((8, 32) if quick else (4, 8, 16, 32))}
    return Case(
        "Occlusion, resnet50, window 16, stride 8 (729 windows), B=1, 224x224",
        {
            default: captum(1),
            **sweep,
            "ours: occlusion (default memory_mb)": lambda: explainers.explain(model, x, "occlusion", target, window=16,
                                                                             stride=8, score="logit"),
            "ours: occlusion, incremental=False (a whole forward per window)": lambda: explainers.explain(
                model, x, "occlusion", target, window=16, stride=8, score="logit", incremental=False),
        },
        reference=default,
        reps=1 if quick else 3,
        warmup=0,
        goals={"ours: occlusion (default memory_mb)": "<= 0.5x captum's default, <= 0.9x its best"},
        note="captum's sweep runs as variants of the case (alternated with ours); its best = the fastest of them, and "
             "ours / captum's best = the ratio of the two rows. Ours batches the 729 windows into chunks sized to "
             "memory_mb on the folded channels_last copy (explainers.folded), and by default recomputes only the "
             "part of each convolutional stage a window changes (explainers.incremental; incremental=False: "
             "whole forwards).",
    )


def rise_case(quick: bool) -> Case:
    import models

    lite = models.load_image_model()
    x = lite.preprocess(models.load_sample("cat"))
    samples = 2000
    net = lite.net

    def forwards(batch: int) -> Callable[[], object]:
        copies = x.expand(batch, -1, -1, -1).contiguous()

        def run() -> None:
            with torch.no_grad():
                for _ in range(samples // batch):
                    net(copies)
        return run

    gradient_net(net)
    sweep = {f"{samples} no-grad forwards, batch {b}": forwards(b) for b in ((25, 100) if quick else (10, 25, 50, 100))}
    return Case(
        f"RISE, {samples} masks, EfficientNet-Lite0 (bundled), cat photo, B=1",
        {
            **sweep,
            "ours: rise (default memory_mb)": lambda: explainers.explain(net, x, "rise", None, samples=samples, seed=0),
        },
        reference=next(iter(sweep)),
        reps=1 if quick else 3,
        warmup=0,
        goals={"ours: rise (default memory_mb)": "<= 1.1x the forwards it needs (its fastest batch size)"},
        note="ours / the forwards' best batch size = the ratio of the two rows. Ours includes the prediction forward, "
             "drawing and up-sampling the 2,000 masks and the weighted sum; it runs on the folded channels_last copy, "
             "the reference on the network as given.",
    )


def text_case(quick: bool) -> Case:
    import models

    minilm = models.load_text_model("minilm-sentiment")
    net, tok = minilm.net, minilm.tokenizer
    prepared = prepare_text(net, tok, SENTENCE)
    tokens = prepared.inputs["input_ids"].shape[1]
    ids = prepared.inputs["input_ids"][0]
    inner = [i for i in range(tokens) if not prepared.special[i]]
    copies = torch.stack([torch.cat([ids[:i], ids[i + 1:], ids[:1] * 0]) for i in inner])
    mask = torch.ones_like(copies)
    mask[:, -1] = 0
    target = int(prepared.logits.argmax())

    def needed() -> None:
        with torch.no_grad():
            net(input_ids=copies, attention_mask=mask, token_type_ids=torch.zeros_like(copies))

    return Case(
        f"Text leave-one-out per token, MiniLM, {tokens} tokens ({len(inner)} copies)",
        {
            f"the {len(inner)} forwards it needs (one prepared batch)": needed,
            "ours: occlusion unit=token, baseline=remove": lambda: explainers.explain_text(
                net, tok, prepared, "occlusion", target, unit="token"),
        },
        reference=f"the {len(inner)} forwards it needs (one prepared batch)",
        reps=7 if quick else 15,
        warmup=1,
        goals={"ours: occlusion unit=token, baseline=remove": "<= 1.2x the forwards it needs"},
    )


def occlusion_bundled_case(quick: bool) -> Case:
    """What the Images page runs: occlusion at its defaults on the bundled model and a bundled photo."""
    import models

    lite = models.load_image_model()
    x = lite.preprocess(models.load_sample("cat"))
    gradient_net(lite.net)
    whole = "occlusion, incremental=False (a whole forward per window)"
    return Case(
        "Occlusion, EfficientNet-Lite0 (bundled), cat photo, window 16, stride 8 (729 windows)",
        {
            whole: lambda: explainers.explain(lite.net, x, "occlusion", None, incremental=False),
            "ours: occlusion (incremental, the default)": lambda: explainers.explain(lite.net, x, "occlusion", None),
        },
        reference=whole,
        reps=1 if quick else 3,
        warmup=0,
        note="Both run on the folded channels_last copy in chunks of the same size; the incremental one recomputes "
             "each convolutional stage only on a crop around what the window changed (explainers.incremental).",
    )


def cases(quick: bool) -> list[Case]:
    return [text_case(quick), rise_case(quick), occlusion_case(quick), occlusion_bundled_case(quick)]
