"""Text explainers against one forward+backward, captum per layer, and fixed IG chunking.

Models are BERT-base-sized random classifiers (12 layers, 768 hidden, 12 heads, eager
attention; quick mode: 4 layers, 256 hidden): speed does not depend on the weight values.
Cases for ``python -m bench`` (see :mod:`bench.harness`):

- per-layer Grad-CAM at 128 tokens: all layers from one forward + one ``autograd.grad``, against
  one ordinary forward + backward (goal <= 1.1x) and captum's ``LayerGradCam`` looped over the
  layers (goal >= 4x ours);
- Integrated Gradients at 512 tokens: automatic chunking (``memory_mb`` default) against fixed
  chunks of 2 and 4 steps (goal <= 1.1x the faster). 50 steps in one batch would need ~30 GB
  at 512 tokens (one step's graph is ~310 MB), hence fixed chunks as the "unchunked" runs.

Peak memory needs a process per configuration: ``python -m bench.cases_text [--quick]`` runs IG
in subprocesses and prints each one's time and peak resident memory (``ru_maxrss``: the whole
process, weights and interpreter included; goal < 4 GB for the automatic chunking).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

import torch

from bench.harness import Case

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def bert_base(small: bool = False, seed: int = 0):
    """A randomly initialised BERT-base-sized classifier (eval, eager attention); ``small``: 4 x 256."""
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(seed)
    size = dict(num_hidden_layers=4, hidden_size=256, num_attention_heads=4, intermediate_size=1024) if small else {}
    return BertForSequenceClassification(BertConfig(num_labels=2, attn_implementation="eager", **size)).eval()


class _Tokenizer:
    """The few tokenizer calls the text explainers make, over fixed random ids (no vocab file)."""

    pad_token_id, mask_token_id, model_max_length = 0, 103, 512
    backend_tokenizer = None

    def __init__(self, length: int, seed: int = 0) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.ids = torch.randint(1000, 30000, (1, length), generator=generator)
        self.ids[0, 0], self.ids[0, -1] = 101, 102

    def __call__(self, text, return_tensors=None, return_special_tokens_mask=False, **_):
        special = torch.zeros_like(self.ids)
        special[0, [0, -1]] = 1
        out = {"input_ids": self.ids, "attention_mask": torch.ones_like(self.ids),
               "token_type_ids": torch.zeros_like(self.ids)}
        if return_special_tokens_mask:
            out["special_tokens_mask"] = special
        return out if return_tensors else {"input_ids": self.ids[0].tolist()}

    def convert_ids_to_tokens(self, ids):
        return [f"t{i}" for i in ids]

    def convert_tokens_to_string(self, tokens):
        return " ".join(tokens)


def layer_grad_cam_cases(quick: bool) -> list[Case]:
    """All-layer Grad-CAM vs one forward+backward, and captum LayerGradCam looped over the layers."""
    from captum.attr import LayerGradCam

    from explainers.capture import capture
    from explainers.text import explain_text, prepare_text

    model = bert_base(small=quick)
    tokenizer = _Tokenizer(64 if quick else 128)
    prepared = prepare_text(model, tokenizer, "random ids")
    ids, target = tokenizer.ids, 1
    size = f"{model.config.num_hidden_layers} layers x {model.config.hidden_size}, {ids.shape[1]} tokens"

    def ours():
        explain_text(model, tokenizer, prepared, "layer_grad_cam", target=target)

    def forward_backward():
        model(**prepared.inputs).logits[0, target].backward()
        model.zero_grad(set_to_none=True)

    def gradient_to_embeddings():
        with capture(model, ["bert.embeddings.word_embeddings"], detach=True) as captured:
            logits = model(**prepared.inputs).logits
            torch.autograd.grad(logits[0, target], captured["bert.embeddings.word_embeddings"])

    def forward(i):
        return model(input_ids=i, attention_mask=torch.ones_like(i), token_type_ids=torch.zeros_like(i)).logits

    def captum_loop():
        for layer in model.bert.encoder.layer:
            LayerGradCam(forward, layer).attribute(ids, target=target)

    ours_label = "ours: layer_grad_cam, all layers"
    return [
        Case(
            f"Per-layer Grad-CAM vs forward+backward, BERT {size}",
            {
                "one forward + backward (parameter grads)": forward_backward,
                "one forward + grad to embeddings (frozen)": gradient_to_embeddings,
                ours_label: ours,
            },
            reference="one forward + backward (parameter grads)",
            reps=5 if quick else 11,
            goals={ours_label: "<= 1.1x one forward+backward"},
            note="the frozen row is the least any gradient method does (no parameter gradients).",
        ),
        Case(
            f"Per-layer Grad-CAM vs captum LayerGradCam per layer, BERT {size}",
            {ours_label: ours, "captum LayerGradCam looped over layers": captum_loop},
            reference=ours_label,
            reps=3 if quick else 5,
            goals={"captum LayerGradCam looped over layers": ">= 4x ours"},
        ),
    ]


def ig_chunking_case(quick: bool) -> Case:
    """IG timed with automatic chunking and with fixed chunks of 2 and 4 steps, in this process."""
    from explainers.text import explain_text, prepare_text

    model = bert_base(small=quick)
    tokenizer = _Tokenizer(128 if quick else 512)
    prepared = prepare_text(model, tokenizer, "random ids")
    steps = 4 if quick else 16
    graph = step_graph_mb(model, prepared)

    def run(memory_mb: float | None):
        options = {} if memory_mb is None else {"memory_mb": memory_mb}
        return lambda: explain_text(model, tokenizer, prepared, "integrated_gradients", target=1,
                                    n_steps=steps, **options)

    return Case(
        f"Integrated Gradients chunking, BERT {model.config.num_hidden_layers} layers x "
        f"{model.config.hidden_size}, {tokenizer.ids.shape[1]} tokens, {steps} steps",
        {
            "fixed: 4 steps per chunk": run(fixed_chunk_budget(graph, 4)),
            "fixed: 2 steps per chunk": run(fixed_chunk_budget(graph, 2)),
            "ours: automatic chunks (memory_mb=1024)": run(None),
        },
        reference="fixed: 4 steps per chunk",
        reps=2 if quick else 3,
        warmup=0 if quick else 1,
        goals={"ours: automatic chunks (memory_mb=1024)": "<= 1.1x the faster fixed row"},
        note=f"one step's graph is {graph:.0f} MB; peak memory per configuration: python -m bench.cases_text.",
    )


def cases(quick: bool) -> list[Case]:
    return [*layer_grad_cam_cases(quick), ig_chunking_case(quick)]


def fixed_chunk_budget(graph_mb: float, chunk: int) -> float:
    """The ``memory_mb`` that makes :mod:`explainers.engine` run ``chunk`` steps per chunk
    (its rule: chunk = budget // (2 x one step's graph); the first step always runs alone)."""
    return 2 * graph_mb * (chunk + 0.5)


def step_graph_mb(model, prepared) -> float:
    """What autograd saves for one IG step (MB), measured as :mod:`explainers.engine` does."""
    from explainers.capture import capture
    from explainers.engine import saved_bytes

    with capture(model, ["bert.embeddings.word_embeddings"], detach=True), saved_bytes(model) as saved:
        model(**prepared.inputs)
    return saved[0] / 2**20


def ig_run(tokens: int, steps: int, chunk: int | None) -> dict:
    """One IG run in this process: seconds and peak resident memory (MB).

    ``chunk=None``: the library's automatic chunking (default ``memory_mb``); an int k: chunks
    of k steps (:func:`fixed_chunk_budget`)."""
    from explainers.text import explain_text, prepare_text

    model = bert_base()
    tokenizer = _Tokenizer(tokens)
    prepared = prepare_text(model, tokenizer, "random ids")
    options = {} if chunk is None else {"memory_mb": fixed_chunk_budget(step_graph_mb(model, prepared), chunk)}
    start = time.perf_counter()
    result = explain_text(model, tokenizer, prepared, "integrated_gradients", target=1, n_steps=steps, **options)
    seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    return {"seconds": seconds, "peak_mb": peak_mb, "delta": result.extras["delta"]}


def _ig_subprocess(tokens: int, steps: int, chunk: int | None) -> dict:
    code = f"import json; from bench.cases_text import ig_run; print(json.dumps(ig_run({tokens}, {steps}, {chunk})))"
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "PYTHONPATH": root}
    out = subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def ig_peak_memory(quick: bool = False, steps: int | None = None) -> dict:
    """IG at 512 tokens, each configuration in its own subprocess: seconds and peak memory (MB)."""
    steps = steps or (6 if quick else 50)
    configs: dict[str, int | None] = {"auto": None, "chunk_2": 2, "chunk_4": 4}
    rounds = 1 if quick else 2
    results: dict[str, list[dict]] = {name: [] for name in configs}
    for _ in range(rounds):
        for name, chunk in configs.items():
            results[name].append(_ig_subprocess(512, steps, chunk))
    summary = {name: {"median_s": statistics.median(r["seconds"] for r in runs),
                      "peak_mb": max(r["peak_mb"] for r in runs)} for name, runs in results.items()}
    best_fixed = min(summary[name]["median_s"] for name in configs if name != "auto")
    return {"case": "ig_peak_memory", "tokens": 512, "steps": steps, "rounds": rounds, "runs": summary,
            "auto_over_best_fixed": summary["auto"]["median_s"] / best_fixed}


def main() -> None:
    parser = argparse.ArgumentParser(description="IG peak memory per chunking configuration")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--ig-steps", type=int, default=None, help="IG steps (default 50, quick 6)")
    args = parser.parse_args()
    print(json.dumps(ig_peak_memory(quick=args.quick, steps=args.ig_steps), indent=1), flush=True)


if __name__ == "__main__":
    main()
