"""Command line: explain an image or a text without the UI (``python -m cli``; ``python -m
explainers`` still works, with a deprecation note: the library's core imports no model registry).

    python -m cli IMAGE --method grad_cam --out map.png [--model efficientnet_lite0]
                         [--target N] [--layer NAME] [--npz maps.npz]
    python -m cli --text "A warm, funny film." --method integrated_gradients --out scores.json
                         [--text-model minilm-sentiment] [--target N]

``--out`` for an image: ``.png`` (the map over the photo, matplotlib) or ``.html`` (interactive,
self-contained). For a text: ``.json`` (tokens, words and their raw scores). One line goes to
stdout saying what was explained; a user mistake exits with status 2 and a one-line message.
Models load from the bundled registry only (nothing is downloaded).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

import explainers
from explainers.errors import ExplainerError

IMAGE_SUFFIXES = (".png", ".html")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m cli", description="Explain an image or a text classifier's "
                                "prediction and write the attribution map or token scores.")
    p.add_argument("image", nargs="?", type=Path, help="image file to explain (PNG, JPEG, WebP, BMP)")
    p.add_argument("--text", help="explain this text instead of an image")
    p.add_argument("--method", required=True, help=f"image: one of {', '.join(explainers.names('image'))}; "
                   f"text: one of {', '.join(explainers.names('text'))}")
    p.add_argument("--out", required=True, type=Path, help="image: map.png or map.html; text: scores.json")
    p.add_argument("--model", default=None, help="bundled image model (default: the registry's default)")
    p.add_argument("--text-model", default=None, help="bundled text model name or a local Hugging Face directory")
    p.add_argument("--target", type=int, default=None, help="class index to explain (default: the predicted class)")
    p.add_argument("--layer", default=None, help="target layer for the CAM family (default: the model's)")
    p.add_argument("--npz", type=Path, default=None, help="image: also save the raw map (and its target) as NPZ")
    p.add_argument("--opacity", type=float, default=0.55, help="image: map opacity over the photo (0..1)")
    return p


def _plain(value: Any) -> Any:
    """JSON-ready copies of numpy / torch values."""
    if isinstance(value, (torch.Tensor, np.ndarray)):
        return np.asarray(value.detach().cpu() if isinstance(value, torch.Tensor) else value).tolist()
    if isinstance(value, (np.generic,)):
        return value.item()
    return value


def explain_image(args: argparse.Namespace) -> str:
    import models
    from figures.export import grid_png, maps_npz, to_html
    from figures.image import overlay_figure

    if args.out.suffix.lower() not in IMAGE_SUFFIXES:
        raise ExplainerError(f"--out must end in {' or '.join(IMAGE_SUFFIXES)} for an image, got {args.out.name}.")
    record = explainers.method(args.method, "image")
    try:
        data = args.image.read_bytes()
    except OSError as err:
        raise ExplainerError(f"Cannot read {args.image}: {err.strerror or err}.") from None
    model = models.load_image_model(args.model or models.DEFAULT_IMAGE_MODEL)
    rgb = model.resize(models.open_image(data))
    x = model.to_tensor(rgb)
    with torch.inference_mode():
        probs = model.net(x).softmax(-1)[0]
    attribution = explainers.explain(model.net, x, record.name, args.target, args.layer or model.default_layer)
    target = attribution.targets[0]
    heat = attribution.maps[0].numpy()
    title = f"{record.label} for {model.labels[target]}"
    if args.out.suffix.lower() == ".png":
        args.out.write_bytes(grid_png(rgb, [[heat]], [model.labels[target]], [record.label], opacity=args.opacity))
    else:
        args.out.write_text(to_html(overlay_figure(rgb, heat, opacity=args.opacity, title=title)), encoding="utf-8")
    if args.npz is not None:
        meta = {"method": args.method, "target": target, "label": model.labels[target], "layer": attribution.layer,
                "model": model.name, "image": str(args.image),
                "extras": {k: _plain(v[0]) for k, v in attribution.extras.items()
                           if isinstance(v, torch.Tensor) and v.ndim == 1}}
        args.npz.write_bytes(maps_npz({"map": heat}, meta))
    where = f" at layer {attribution.layer}" if attribution.layer else ""
    return f"{title} (class {target}, p={float(probs[target]):.3f}){where} -> {args.out}"


def explain_text_cli(args: argparse.Namespace) -> str:
    import models
    from explainers.text import explain_text, prepare_text, text_methods

    if args.out.suffix.lower() != ".json":
        raise ExplainerError(f"--out must end in .json for a text, got {args.out.name}.")
    model = models.load_text_model(args.text_model or models.DEFAULT_TEXT_MODEL)
    if args.method not in text_methods(model.net):
        raise ExplainerError(f"{args.method!r} does not apply to {model.name}; choose one of "
                             f"{', '.join(text_methods(model.net))}.")
    prepared = prepare_text(model.net, model.tokenizer, args.text, model.max_length)
    a = explain_text(model.net, model.tokenizer, prepared, args.method, args.target)
    probs = prepared.logits.softmax(-1)[0]
    out = {
        "text": args.text, "model": model.name, "method": a.method, "target": a.target,
        "label": model.labels[a.target], "probabilities": dict(zip(model.labels, probs.tolist())),
        "tokens": a.tokens, "special": a.special, "scores": _plain(a.scores), "layers": a.layers,
        "words": a.words, "word_scores": _plain(a.word_scores), "token_word": a.token_word,
        "extras": {k: _plain(v) for k, v in a.extras.items()},
    }
    args.out.write_text(json.dumps(out, indent=1, ensure_ascii=False), encoding="utf-8")
    return f"{a.method} for {model.labels[a.target]} (class {a.target}, p={float(probs[a.target]):.3f}) -> {args.out}"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 done, 2 a user mistake)."""
    p = parser()
    args = p.parse_args(argv)
    if (args.image is None) == (args.text is None):
        p.error("give either an IMAGE or --text (one of them).")
    try:
        print(explain_image(args) if args.image is not None else explain_text_cli(args))
    except ExplainerError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
