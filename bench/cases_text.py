"""Text benchmarks: per-layer Grad-CAM in one pass, and Integrated Gradients' memory at 512 tokens.

Both run on a BERT-base-sized random model (12 layers, 768 hidden, 12 heads, eager attention):
speed does not depend on the weights. Timings alternate A and B inside one process at the same
thread count and report the median ratio with its spread (min..max over rounds).

- ``layer_grad_cam``: all 12 layers from one forward + one ``autograd.grad``, against (a) one
  forward + one gradient to the word-embedding output (the least any gradient method does)
  and (b) captum's ``LayerGradCam`` looped over the 12 layers. Claim: ratio (a) <= 1.1, (b) >= 4.
- ``ig_memory``: IG at 512 tokens, each configuration in its own subprocess so that its peak
  resident memory (``ru_maxrss``, the whole process: weights and interpreter included) is its
  own. Automatic chunking (``memory_mb`` default) against fixed chunks of 2 and 4 steps, which
  is what "unchunked" can mean on a 2-core, 23 GB machine: one step's graph at 512 tokens is
  ~310 MB, so 50 steps in one batch would need ~30 GB. Claim: auto peak < 4 GB, time <= 1.1x
  the best fixed-chunk run.

Run: ``python -m bench.cases_text [--quick]`` (quick: fewer rounds, IG with 6 steps).
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
from collections.abc import Callable

import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def bert_base(seed: int = 0):
    """A randomly initialised BERT-base-sized classifier (eval, eager attention)."""
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(seed)
    return BertForSequenceClassification(BertConfig(num_labels=2, attn_implementation="eager")).eval()


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


def alternate(runs: dict[str, Callable[[], object]], rounds: int) -> dict[str, list[float]]:
    """Seconds per run, interleaved round by round in alternating order (A B, B A, ...), one
    warm-up round not counted."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    for r in range(rounds + 1):
        order = list(runs.items()) if r % 2 else list(runs.items())[::-1]
        for name, run in order:
            start = time.perf_counter()
            run()
            if r:
                times[name].append(time.perf_counter() - start)
    return times


def ratio(times: dict[str, list[float]], a: str, b: str) -> dict[str, float]:
    """Median and spread of the per-round ratios a / b."""
    per_round = [x / y for x, y in zip(times[a], times[b], strict=True)]
    return {"median": statistics.median(per_round), "min": min(per_round), "max": max(per_round)}


def case_layer_grad_cam(quick: bool = False, tokens: int = 128) -> dict:
    """All-layer Grad-CAM vs one forward+backward and vs captum LayerGradCam per layer."""
    from captum.attr import LayerGradCam

    from explainers.capture import capture
    from explainers.text import explain_text, prepare_text

    model = bert_base()
    tokenizer = _Tokenizer(tokens)
    prepared = prepare_text(model, tokenizer, "random ids")
    ids = tokenizer.ids
    embedding = "bert.embeddings.word_embeddings"

    def forward_backward():
        with capture(model, [embedding], detach=True) as captured:
            logits = model(**prepared.inputs).logits
            torch.autograd.grad(logits[0, 1], captured[embedding])

    def forward(i):
        return model(input_ids=i, attention_mask=torch.ones_like(i), token_type_ids=torch.zeros_like(i)).logits

    def captum_loop():
        for layer in model.bert.encoder.layer:
            LayerGradCam(forward, layer).attribute(ids, target=1)

    def ours():
        explain_text(model, tokenizer, prepared, "layer_grad_cam", target=1)

    pair = alternate({"ours_all_layers": ours, "one_forward_backward": forward_backward}, 4 if quick else 12)
    loop = alternate({"ours_all_layers": ours, "captum_per_layer_loop": captum_loop}, 2 if quick else 5)
    return {
        "case": "layer_grad_cam",
        "tokens": tokens,
        "threads": torch.get_num_threads(),
        "median_s": {k: statistics.median(v) for k, v in (pair | loop).items()},
        "ours_over_forward_backward": ratio(pair, "ours_all_layers", "one_forward_backward"),
        "captum_loop_over_ours": ratio(loop, "captum_per_layer_loop", "ours_all_layers"),
    }


def step_graph_mb(model, prepared) -> float:
    """What autograd saves for one IG step (MB), measured as :mod:`explainers.engine` does."""
    from explainers.capture import capture
    from explainers.engine import saved_bytes

    with capture(model, ["bert.embeddings.word_embeddings"], detach=True), saved_bytes(model) as saved:
        model(**prepared.inputs)
    return saved[0] / 2**20


def ig_run(tokens: int, steps: int, chunk: int | None) -> dict:
    """One IG run in this process: seconds and peak resident memory (MB).

    ``chunk=None``: the library's automatic chunking (default ``memory_mb``). An int k forces
    chunks of k steps through a budget of 2 x (k + 1/2) step graphs, the engine's sizing rule
    (its first step always runs alone: it measures the step graph)."""
    from explainers.text import explain_text, prepare_text

    model = bert_base()
    tokenizer = _Tokenizer(tokens)
    prepared = prepare_text(model, tokenizer, "random ids")
    options = {} if chunk is None else {"memory_mb": 2 * step_graph_mb(model, prepared) * (chunk + 0.5)}
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


def case_ig_memory(quick: bool = False, tokens: int = 512, steps: int | None = None) -> dict:
    """IG at 512 tokens: automatic chunking vs fixed chunks of 2 and 4 steps, one subprocess each.

    Rounds alternate the configurations; time is the median, peak memory the maximum."""
    steps = steps or (6 if quick else 50)
    configs: dict[str, int | None] = {"auto": None, "chunk_2": 2, "chunk_4": 4}
    rounds = 1 if quick else 2
    results: dict[str, list[dict]] = {name: [] for name in configs}
    for _ in range(rounds):
        for name, chunk in configs.items():
            results[name].append(_ig_subprocess(tokens, steps, chunk))
    summary = {name: {"median_s": statistics.median(r["seconds"] for r in runs),
                      "peak_mb": max(r["peak_mb"] for r in runs)} for name, runs in results.items()}
    best_fixed = min(summary[name]["median_s"] for name in configs if name != "auto")
    return {"case": "ig_memory", "tokens": tokens, "steps": steps, "rounds": rounds, "runs": summary,
            "auto_over_best_fixed": summary["auto"]["median_s"] / best_fixed}


CASES = [case_layer_grad_cam, case_ig_memory]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--ig-steps", type=int, default=None, help="IG steps (default 50, quick 6)")
    args = parser.parse_args()
    print(json.dumps(case_layer_grad_cam(quick=args.quick), indent=1), flush=True)
    print(json.dumps(case_ig_memory(quick=args.quick, steps=args.ig_steps), indent=1), flush=True)


if __name__ == "__main__":
    main()
