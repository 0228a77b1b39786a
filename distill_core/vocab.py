"""Turn texts into student input ids: a char/word vocabulary from the train split, or the teacher's pieces."""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch

PAD, UNK, SEP, MASK = "[PAD]", "[UNK]", "[SEP]", "[MASK]"
# ids 0..3; SEP joins a text pair into one student sequence; MASK comes from augmentation
SPECIALS = (PAD, UNK, SEP, MASK)
_MASK_SPLIT = re.compile(r"(\[MASK\])")


class Encoder(Protocol):
    """What the student side needs: a vocabulary size and texts -> padded ids + lengths."""

    kind: str

    @property
    def vocab_size(self) -> int: ...

    def encode(self, texts: list[str], pairs: list[str] | None, max_length: int) -> tuple[torch.Tensor, torch.Tensor]:
        ...


@dataclass
class Vocab:
    """A char vocabulary (every character; suits Chinese) or a word one (whitespace split)."""

    kind: str  # "char" | "word"
    tokens: list[str]

    def __post_init__(self) -> None:
        assert self.kind in ("char", "word"), self.kind
        assert tuple(self.tokens[: len(SPECIALS)]) == SPECIALS, "specials must come first"
        self.index = {tok: i for i, tok in enumerate(self.tokens)}

    @classmethod
    def build(cls, texts: list[str], kind: str, max_size: int = 50_000, min_count: int = 1) -> Vocab:
        """Count tokens of `texts`; keep the `max_size` most frequent (ties by first appearance)."""
        return cls.from_counts(Counter(tok for text in texts for tok in split_tokens(text, kind)), kind, max_size,
                               min_count)

    @classmethod
    def from_counts(cls, counts: Counter, kind: str, max_size: int = 50_000, min_count: int = 1) -> Vocab:
        """Vocab.build from token counts already made (in first-seen order: ties keep it)."""
        kept = [tok for tok, n in counts.most_common(max_size - len(SPECIALS)) if n >= min_count]
        return cls(kind, [*SPECIALS, *kept])

    @property
    def vocab_size(self) -> int:
        return len(self.tokens)

    def ids(self, text: str) -> list[int]:
        unk = self.index[UNK]
        return [self.index.get(tok, unk) for tok in split_tokens(text, self.kind)]

    def encode(self, texts: list[str], pairs: list[str] | None, max_length: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode to (ids (N, L) long, lengths (N,) long), L <= max_length; empty texts get one [PAD]."""
        seqs = []
        for i, text in enumerate(texts):
            ids = self.ids(text)
            if pairs is not None:
                ids = ids + [self.index[SEP]] + self.ids(pairs[i])
            seqs.append(ids[:max_length])
        return pad(seqs)

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "tokens": self.tokens}

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Vocab:
        return cls(obj["kind"], list(obj["tokens"]))

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json(), ensure_ascii=False), encoding="utf-8")


def split_tokens(text: str, kind: str) -> list[str]:
    """Characters or whitespace words; "[MASK]" (from augmentation) is always one token."""
    if MASK in text:
        return [tok for part in _MASK_SPLIT.split(text) for tok in
                ([part] if part == MASK else split_tokens(part, kind))]
    if kind == "char":
        return [ch for ch in text if not ch.isspace()]
    return text.split()


def pad(seqs: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad with 0 ([PAD]) to the longest sequence; lengths are at least 1 (pack_padded needs it)."""
    lengths = torch.tensor([max(1, len(s)) for s in seqs], dtype=torch.long)  # (N,)
    ids = torch.zeros(len(seqs), int(lengths.max()) if seqs else 1, dtype=torch.long)  # (N, L)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(s, dtype=torch.long)
    return ids, lengths


class TeacherPieces:
    """The teacher's own tokenizer as the student vocabulary ([CLS] a [SEP] b [SEP] word pieces)."""

    kind = "teacher"

    def __init__(self, tokenizer: Any):
        self.tokenizer = tokenizer

    @property
    def vocab_size(self) -> int:
        return len(self.tokenizer)

    def encode(self, texts: list[str], pairs: list[str] | None, max_length: int) -> tuple[torch.Tensor, torch.Tensor]:
        enc = self.tokenizer(texts, pairs, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
        ids = enc["input_ids"]  # (N, L)
        lengths = enc["attention_mask"].sum(dim=1).clamp(min=1)  # (N,)
        if self.tokenizer.padding_side == "left":  # students read ids[:length]; move padding to the right
            ids = torch.stack([torch.cat([row[row_mask.bool()], row[~row_mask.bool()]])
                               for row, row_mask in zip(ids, enc["attention_mask"], strict=True)])
        return ids, lengths
