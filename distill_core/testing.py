"""Tiny random teachers for tests and smoke runs: written with save_pretrained, never downloaded."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from distill_core.teacher_training import bert_config, char_pieces, save_char_tokenizer


def make_tiny_teacher(path: str | Path, labels: list[str], chars: Iterable[str] | str, *, layers: int = 2,
                      hidden: int = 32, heads: int = 2, intermediate: int | None = None, seed: int = 0,
                      dtype: str = "float32") -> Path:
    """Write a random char-level BertForSequenceClassification and its tokenizer into `path`.

    `chars` is the text (or characters) whose characters make the vocabulary; words of ASCII
    letters also get word pieces. The weights are random (seeded): a teacher for plumbing, not quality.
    `dtype` is the precision the weights are saved in ("float16" and "bfloat16" as real checkpoints often are).
    """
    import torch
    from transformers import BertForSequenceClassification

    path = Path(path)
    text = chars if isinstance(chars, str) else "".join(chars)
    tokenizer = save_char_tokenizer(char_pieces([text]), path)
    torch.manual_seed(seed)
    config = bert_config(len(tokenizer), list(labels), hidden, layers, heads, intermediate or hidden * 2,
                         max_position_embeddings=128)
    BertForSequenceClassification(config).to(getattr(torch, dtype)).save_pretrained(path)
    return path
