"""Train a small char-level BERT teacher from scratch (the demo's teacher; also handy for experiments).

Real projects bring a fine-tuned checkpoint; this exists so a fresh clone can distil something
without downloading one. The demo (4 layers x 256, ~6,000 THUCNews titles, 4 epochs) trains in about
two minutes on 2 CPU cores and reaches ~0.80 dev accuracy.
"""

from __future__ import annotations

import logging
import math
import string
import time
import unicodedata
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch

from distill_core.config import DataConfig
from distill_core.data import read_split
from distill_core.seeding import seed_everything

log = logging.getLogger(__name__)

BERT_SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def char_pieces(texts: Iterable[str], max_size: int = 30_000) -> list[str]:
    """A BERT vocabulary of single characters (lower-cased, as the tokenizer sees them).

    Chinese characters become whole tokens; other words are split into word pieces, so every
    non-CJK character also gets a "##c" continuation piece, and ASCII letters and digits always do.
    """
    seen: dict[str, None] = {}
    for text in texts:
        for ch in text.lower():
            if not ch.isspace() and unicodedata.category(ch)[0] != "C":
                seen.setdefault(ch, None)
    chars = list(seen)[: max_size]
    ascii_alnum = string.ascii_lowercase + string.digits
    pieces = [f"##{ch}" for ch in dict.fromkeys([*ascii_alnum, *chars]) if not _is_cjk(ch)]
    return [*BERT_SPECIALS, *dict.fromkeys([*ascii_alnum, *chars]), *pieces]


def save_char_tokenizer(tokens: list[str], output_dir: str | Path, model_max_length: int = 512) -> Any:
    """Write vocab.txt and the tokenizer files into `output_dir`; return the BertTokenizer."""
    from transformers import BertTokenizer

    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "vocab.txt").write_text("\n".join(tokens) + "\n", encoding="utf-8")
    tokenizer = BertTokenizer(vocab=str(output_dir / "vocab.txt"), model_max_length=model_max_length)
    tokenizer.save_pretrained(output_dir)
    return tokenizer


def bert_config(vocab_size: int, labels: list[str], hidden_size: int, num_layers: int, heads: int,
                intermediate: int, max_position_embeddings: int = 512) -> Any:
    from transformers import BertConfig

    return BertConfig(
        vocab_size=vocab_size, hidden_size=hidden_size, num_hidden_layers=num_layers, num_attention_heads=heads,
        intermediate_size=intermediate, max_position_embeddings=max_position_embeddings, num_labels=len(labels),
        id2label=dict(enumerate(labels)), label2id={label: i for i, label in enumerate(labels)},
    )


def train_teacher(train_file: str | Path, dev_file: str | Path, labels: list[str] | str | Path,
                  output_dir: str | Path, *, format: str = "tsv", has_header: bool = False,
                  text_column: int | str = 0, text_pair_column: int | str | None = None,
                  label_column: int | str = 1, hidden_size: int = 128, num_layers: int = 2, heads: int = 4,
                  intermediate: int = 256, max_length: int = 32, epochs: int = 3, batch_size: int = 32,
                  lr: float = 1e-3, warmup: float = 0.1, weight_decay: float = 0.01, seed: int = 13,
                  progress: Callable[[str], None] | None = None) -> float:
    """Train a char-level BertForSequenceClassification on hard labels; save it; return dev accuracy.

    `labels` is the list of class names in index order, or a file with one name per line.
    The model and tokenizer are saved with save_pretrained (id2label/label2id set) into `output_dir`.
    """
    if isinstance(labels, (str, Path)):
        labels = Path(labels).read_text(encoding="utf-8").split()
    labels = list(labels)
    data = DataConfig(train=str(train_file), dev=str(dev_file), format=format, has_header=has_header,
                      text_column=text_column, text_pair_column=text_pair_column, label_column=label_column,
                      labels=labels, max_length=max_length)
    train = read_split(train_file, data, labels, "train")
    dev = read_split(dev_file, data, labels, "dev")
    seed_everything(seed)
    tokenizer, model = _initial_model(train.texts + (train.pairs or []), labels, output_dir, hidden_size, num_layers,
                                      heads, intermediate)

    enc = tokenizer(train.texts, train.pairs, padding=True, truncation=True, max_length=max_length,
                    return_tensors="pt")
    y = torch.tensor(train.labels)  # (N,)
    steps_per_epoch = math.ceil(len(y) / batch_size)
    total = steps_per_epoch * epochs
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    warmup_steps = max(1, int(warmup * total))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warmup_steps, max(0.0, (total - s) / max(1, total - warmup_steps))))
    generator = torch.Generator().manual_seed(seed)
    started = time.monotonic()
    accuracy = 0.0
    for epoch in range(1, epochs + 1):
        model.train()
        order = torch.randperm(len(y), generator=generator)
        running = 0.0
        for start in range(0, len(y), batch_size):
            idx = order[start: start + batch_size]
            batch = _trim({k: v[idx] for k, v in enc.items()})
            loss = model(**batch, labels=y[idx]).loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            running += loss.item()
        accuracy = evaluate_teacher(model, tokenizer, dev.texts, dev.pairs, dev.labels, max_length)
        message = (f"epoch {epoch}/{epochs}: train loss {running / steps_per_epoch:.3f}, dev accuracy "
                   f"{accuracy:.3f} ({time.monotonic() - started:.0f} s)")
        log.info(message)
        if progress is not None:
            progress(message)
    model.save_pretrained(output_dir)
    return accuracy


def save_initial_teacher(train_file: str | Path, labels: list[str], output_dir: str | Path, *, format: str = "tsv",
                         has_header: bool = False, text_column: int | str = 0, text_pair_column: int | str | None = None,
                         label_column: int | str = 1, hidden_size: int = 128, num_layers: int = 2, heads: int = 4,
                         intermediate: int = 256, seed: int = 13) -> None:
    """Save an untrained char-level BERT (random weights, vocabulary from the train split) into `output_dir`.

    A "finetune_teacher" run trains it like any other base checkpoint; this is how the dashboard
    trains the demo teacher as a queued job instead of inside `manage.py demo_setup`.
    """
    labels = list(labels)
    data = DataConfig(train=str(train_file), format=format, has_header=has_header, text_column=text_column,
                      text_pair_column=text_pair_column, label_column=label_column, labels=labels)
    train = read_split(train_file, data, labels, "train")
    seed_everything(seed)
    _, model = _initial_model(train.texts + (train.pairs or []), labels, output_dir, hidden_size, num_layers, heads,
                              intermediate)
    model.save_pretrained(output_dir)


def _initial_model(texts: list[str], labels: list[str], output_dir: str | Path, hidden_size: int, num_layers: int,
                   heads: int, intermediate: int) -> tuple[Any, Any]:
    """Write the tokenizer files of a char vocabulary over `texts`; return it and a freshly initialised model."""
    from transformers import BertForSequenceClassification

    tokenizer = save_char_tokenizer(char_pieces(texts), output_dir)
    model = BertForSequenceClassification(bert_config(len(tokenizer), labels, hidden_size, num_layers, heads,
                                                      intermediate))
    return tokenizer, model


@torch.no_grad()
def evaluate_teacher(model: Any, tokenizer: Any, texts: list[str], pairs: list[str] | None, labels: list[int],
                     max_length: int, batch_size: int = 128) -> float:
    model.eval()
    correct = 0
    for start in range(0, len(texts), batch_size):
        end = start + batch_size
        batch = tokenizer(texts[start:end], pairs[start:end] if pairs else None, padding=True, truncation=True,
                          max_length=max_length, return_tensors="pt")
        pred = model(**batch).logits.argmax(dim=-1)  # (b,)
        correct += int((pred == torch.tensor(labels[start:end])).sum())
    return correct / max(1, len(texts))


def _trim(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Cut the batch's columns to its longest example (the whole split was padded together)."""
    width = int(batch["attention_mask"].sum(dim=1).max())
    return {k: v[:, :width] for k, v in batch.items()}


def _is_cjk(ch: str) -> bool:
    cp = ord(ch)
    return (0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x2A6DF or 0x2A700 <= cp <= 0x2CEAF
            or 0xF900 <= cp <= 0xFAFF or 0x2F800 <= cp <= 0x2FA1F)
