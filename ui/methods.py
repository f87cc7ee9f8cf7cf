"""What the pages show about a method, read from its registry record (no list of methods here)."""

from __future__ import annotations

import torch

import explainers
from explainers.precision import native_bfloat16


def label(name: str) -> str:
    """The method's user-facing name (its record's label); unknown names are shown as given."""
    try:
        return explainers.method(name).label
    except explainers.ExplainerError:
        return name


def caption(name: str) -> str:
    """Markdown: the label in bold, the one-sentence caption, and the record's further details."""
    record = explainers.method(name)
    return " ".join(part for part in (f"**{record.label}**:", record.caption, record.details) if part)


def signed(name: str) -> bool:
    """Whether the method's maps take both signs (drawn on a diverging scale centred on 0)."""
    return explainers.method(name).signed


def image_methods(net: torch.nn.Module | None = None) -> list[str]:
    """The registry's image methods; with ``net``, only those that apply to it (no attention maps for a CNN)."""
    return [m.name for m in explainers.methods("image") if net is None or m.supports_image_model(net)]


def not_offered(net: torch.nn.Module) -> str | None:
    """One sentence naming the image methods left out for ``net`` and why, or None when all apply."""
    left = [m.label for m in explainers.methods("image") if not m.supports_image_model(net)]
    if not left:
        return None
    names = ", ".join(left[:-1]) + f" and {left[-1]}" if len(left) > 1 else left[0]
    return (f"Not offered for this model: {names}. They read a vision transformer's attention from its class token "
            "to the image patches (ViT, DeiT, BEiT), and this model has no such attention.")


def slow(name: str) -> bool:
    return explainers.method(name).slow


def uses_layer(name: str) -> bool:
    return explainers.method(name).needs_layer


def in_shared_pass(name: str) -> bool:
    """Computed from the one shared layer pass (the CAM family without passes of its own, and the
    saliency-type methods riding on its backward)."""
    record = explainers.method(name)
    return record.shares_layer_pass or getattr(record, "uses_input_gradient", False)


def default_methods(kind: str = "image") -> list[str]:
    """The methods a page starts with (records flagged ``default``)."""
    return [m.name for m in explainers.methods(kind) if m.default]


PAGE_DEFAULTS: dict[str, object] = {
    "steps": 50, "baseline": "zero", "tolerance": 0.01, "max_steps": 400, "samples": 25, "noise_level": 0.15, "seed": 0,
}
"""The image pages' option widgets at their defaults (the Gallery uses them as they are, so the
Images page and the Gallery share cached maps)."""


def page_options(widgets: dict[str, object], kind: str = "image") -> dict[str, dict[str, object]]:
    """For every method, the page-level option values (``widgets``, by option name) that it takes.

    The pages' ``samples`` is the noisy methods' count of noisy copies: it goes only to methods
    that also take ``noise_level``; ``masks`` goes to the other methods' ``samples`` (perturbation
    masks or neighbours)."""
    out = {}
    for m in explainers.methods(kind):
        table = m.option_table(kind)
        chosen = {k: v for k, v in widgets.items() if k in table and k != "samples"}
        count = widgets.get("samples") if "noise_level" in table else widgets.get("masks")
        if "samples" in table and count is not None:
            chosen["samples"] = count
        out[m.name] = chosen
    return out


def fast_mode_note(device: torch.device | str = "cpu") -> str:
    """One sentence on whether fast mode helps on ``device``, for the UI."""
    if native_bfloat16(device):
        return "bfloat16 is native here: fast mode runs the gradient passes in bfloat16."
    capability = torch.backends.cpu.get_cpu_capability() if torch.device(device).type == "cpu" else str(device)
    return (f"This machine ({capability}) has no native bfloat16, where fast mode is slower than float32 "
            "(12-17x on an AVX2 CPU, measured): it is offered on GPUs and AVX512-BF16 / AMX CPUs. "
            "It is approximate: measured 0.3-0.7 relative L2 from float32 per pixel.")
