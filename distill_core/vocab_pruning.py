"""Keep only the teacher's word pieces that the train split uses: a transformer student's smaller input table.

    student.prune_vocab: true        (a transformer student on the teacher's pieces)

A teacher's vocabulary is mostly pieces a task never sees: all-MiniLM-L6-v2's 30,522 x 384 table is
11.7 M of its 22.7 M parameters, and TREC's train questions use about 8,000 of those pieces. Pruning
keeps the rows of the pieces that occur in the train split (augmented copies included) plus the
tokenizer's special tokens, in teacher-id order, and reads them through an id map: the student still
takes the teacher's ids, so the token stores, the teacher's cache and its live pass on the student's
tokens (intermediate matches) are untouched. A piece the train split never used reads [UNK]'s row, or
(student.prune_unseen "nearest") the kept row nearest to its own in the teacher's embeddings: on TREC
46 % of the test questions hold a piece the train questions never use.
The map is a buffer, saved in the export with the rows, so Try-it and the size report see the pruned
model (its int32 map adds 4 bytes per teacher piece and no parameters).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from distill_core.errors import ConfigError

log = logging.getLogger(__name__)
FIELD = "student.prune_vocab"


class PrunedEmbedding(nn.Module):
    """`table` holds the kept pieces' rows; `id_map[teacher id]` is the row a piece reads (unseen: [UNK]'s)."""

    def __init__(self, full_size: int, kept: int, dim: int, padding_idx: int | None = None):
        super().__init__()
        self.register_buffer("id_map", torch.zeros(full_size, dtype=torch.int32))
        self.table = nn.Embedding(kept, dim, padding_idx=padding_idx)
        self.num_embeddings, self.embedding_dim = full_size, dim

    @property
    def weight(self) -> torch.Tensor:
        return self.table.weight

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.table(self.id_map[input_ids])  # (B, T, D)


def kept_ids(train_ids: Any, vocab_size: int, special_ids: list[int]) -> torch.Tensor:
    """Sorted teacher ids (long) that occur in `train_ids` (a tensor or numpy array of any shape, or a list of them)
    or are special."""
    seen = np.zeros(vocab_size, dtype=bool)
    for part in train_ids if isinstance(train_ids, list) else [train_ids]:  # an augmented split: its two stores
        flat = part.numpy() if isinstance(part, torch.Tensor) else np.asarray(part)
        for start in range(0, flat.size, 1 << 22):  # a streamed split's ids are a mapped file: a chunk at a time
            seen[flat.reshape(-1)[start: start + (1 << 22)]] = True
    seen[[i for i in special_ids if 0 <= i < vocab_size]] = True
    return torch.from_numpy(np.flatnonzero(seen)).long()


def pruned(embedding: nn.Embedding, keep: torch.Tensor, unk_id: int, unseen: str = "unk") -> PrunedEmbedding:
    """A PrunedEmbedding computing exactly `embedding` on the kept ids; the others read [UNK]'s row, or with
    unseen="nearest" the kept row nearest to their own (cosine)."""
    assert bool((keep == unk_id).any()), "[UNK] must be kept"
    full, dim = embedding.weight.shape
    pad = embedding.padding_idx
    new_pad = int((keep == pad).nonzero()[0, 0]) if pad is not None and bool((keep == pad).any()) else None
    out = PrunedEmbedding(full, len(keep), dim, new_pad).to(embedding.weight.device)
    with torch.no_grad():
        out.table.weight.copy_(embedding.weight[keep.to(embedding.weight.device)])
        unk_row = int((keep == unk_id).nonzero()[0, 0])
        id_map = torch.full((full,), unk_row, dtype=torch.int32)
        if unseen == "nearest":
            id_map = nearest_kept(embedding.weight.detach().float().cpu(), keep)
        id_map[keep] = torch.arange(len(keep), dtype=torch.int32)
        out.id_map.copy_(id_map)
    return out


def nearest_kept(table: torch.Tensor, keep: torch.Tensor, chunk: int = 2048) -> torch.Tensor:
    """(V,) int32: for every row of `table`, the position in `keep` of the kept row with the highest cosine."""
    unit = torch.nn.functional.normalize(table, dim=1)  # (V, D)
    kept = unit[keep]  # (K, D)
    out = torch.empty(len(table), dtype=torch.int32)
    for start in range(0, len(table), chunk):
        out[start: start + chunk] = (unit[start: start + chunk] @ kept.T).argmax(dim=1).to(torch.int32)
    return out


def _slot(student: nn.Module) -> tuple[nn.Module, str]:
    """(module, attribute) holding the student's input piece table; only transformer students are pruned."""
    bert = getattr(student, "bert", None)
    if bert is None:
        raise ConfigError("student.prune_vocab is for transformer students.", field=FIELD)
    return bert.embeddings, "word_embeddings"


def prune_student(student: nn.Module, train_ids: Any, tokenizer: Any, unseen: str = "unk") -> dict[str, Any]:
    """Replace the student's input table by the rows of the pieces in `train_ids`; returns what was kept."""
    owner, name = _slot(student)
    table = getattr(owner, name)
    if tokenizer.unk_token_id is None:
        raise ConfigError("student.prune_vocab needs a teacher tokenizer with an [UNK] token.", field=FIELD)
    keep = kept_ids(train_ids, table.num_embeddings, list(tokenizer.all_special_ids))
    setattr(owner, name, pruned(table, keep, tokenizer.unk_token_id, unseen))
    info = {"kept": len(keep), "of": table.num_embeddings, "unseen": unseen}
    log.info("Pruned the student's vocabulary to the train split's pieces: %s", info)
    return info


def pruned_shape(student: nn.Module, kept: int) -> None:
    """Give a freshly built student the pruned table's shape, so an export's state dict loads into it."""
    owner, name = _slot(student)
    table = getattr(owner, name)
    setattr(owner, name, PrunedEmbedding(table.num_embeddings, kept, table.embedding_dim))


def pruned_rows(student: nn.Module) -> int | None:
    """How many pieces a pruned student kept; None when its table is whole."""
    found = [m.table.num_embeddings for m in student.modules() if isinstance(m, PrunedEmbedding)]
    return found[0] if found else None


def split_ids(split: Any) -> Any:
    """Every token id of a train split: an in-memory distiller.Encoded's tensor, a streamed split's mapped file,
    or a list of those for an augmented split (augment_store.Joined)."""
    if hasattr(split, "parts"):
        return [split_ids(part) for part in split.parts]
    return split.ids if isinstance(getattr(split, "ids", None), torch.Tensor) else split.store.ids.array
