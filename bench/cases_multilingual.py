"""The bundled multilingual sentiment model (12-layer e5-small BERT) on a 32-token Chinese review.

Cases for ``python -m bench`` (see :mod:`bench.harness`):

- per-layer Grad-CAM **from raw text** (tokenising, the target forward and the one forward +
  ``autograd.grad`` of every layer) against one ordinary forward + backward (goal <= 1.1x);
- Integrated Gradients with the default options (adaptive where the explainer has it) from
  raw text, against the same reference; goal: <= 3 s on this 2-core machine.

``python -m bench.cases_multilingual`` runs just these and prints the load average.
"""

from __future__ import annotations

import os

import torch

from bench.harness import Case

SENTENCE = "这家酒店的服务非常好，房间也很干净，早餐丰富，前台的工作人员热情又耐心，下次出差还会再来住，推荐。"
TOKENS = 32


def cases(quick: bool) -> list[Case]:
    from explainers.text import explain_text, prepare_text
    from models.text import MULTILINGUAL, load_text_model

    model = load_text_model(MULTILINGUAL)
    net, tokenizer = model.net, model.tokenizer
    net.requires_grad_(True)  # the merged adapter loads frozen; the reference needs parameter gradients
    prepared = prepare_text(net, tokenizer, SENTENCE)
    target = int(prepared.logits.argmax())
    size = f"{net.config.num_hidden_layers} layers x {net.config.hidden_size}, {len(prepared.tokens)} tokens"

    def forward_backward():
        net(**prepared.inputs).logits[0, target].backward()
        net.zero_grad(set_to_none=True)

    def layers_from_text():
        explain_text(net, tokenizer, SENTENCE, "layer_grad_cam", target=target)

    def ig_from_text():
        explain_text(net, tokenizer, SENTENCE, "integrated_gradients", target=target)

    reference = "one forward + backward (parameter grads)"
    return [
        Case(
            f"{MULTILINGUAL}: per-layer Grad-CAM from raw text, {size}",
            {reference: forward_backward, "ours: layer_grad_cam from raw text": layers_from_text},
            reference=reference, reps=5 if quick else 11,
            goals={"ours: layer_grad_cam from raw text": "<= 1.1x one forward+backward"},
            note="from raw text: tokenising and the prediction forward are inside the timed call.",
        ),
        Case(
            f"{MULTILINGUAL}: Integrated Gradients (default options) from raw text, {size}",
            {reference: forward_backward, "ours: integrated_gradients from raw text": ig_from_text},
            reference=reference, reps=3 if quick else 5,
            goals={"ours: integrated_gradients from raw text": "<= 3 s"},
        ),
    ]


def main() -> None:
    """Run these cases and write ``bench/results/multilingual.md`` (table, load average, notes)."""
    import time
    from pathlib import Path

    from bench.harness import markdown, run_case

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    torch.set_num_threads(2)
    started = time.time()
    before = os.getloadavg()
    rows, notes = [], []
    for case in cases(quick=False):
        print(f"== {case.name}", flush=True)
        for row in run_case(case):
            rows.append(row)
            print(f"   {row.label:<48} {1000 * row.median_s:9.1f} ms  x{row.ratio:.2f} "
                  f"[{row.ratio_min:.2f}-{row.ratio_max:.2f}]", flush=True)
        if case.note:
            notes.append(f"- {case.name}: {case.note}")
    after = os.getloadavg()
    header = (f"# {Path(__file__).stem}\n\ntorch {torch.__version__}, 2 threads, {os.cpu_count()} CPUs, "
              f"load average {before[0]:.1f} before / {after[0]:.1f} after, {time.time() - started:.0f} s. "
              "Same process, variants alternated.")
    out = Path(__file__).resolve().parent / "results" / "multilingual.md"
    out.write_text(markdown(rows, header, notes))
    print(f"wrote {out}; load average {after[0]:.1f}/{after[1]:.1f}/{after[2]:.1f}")


if __name__ == "__main__":
    main()
