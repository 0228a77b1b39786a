"""Replacement words for augmentation: nearest neighbours in the teacher's input-embedding space.

TinyBERT (Jiao et al. 2020, section 3.3) replaces a word by one the teacher's masked LM predicts, or
by a GloVe neighbour; this asks the teacher's own word-piece embeddings instead, so it needs no
external vectors and works for any teacher with a word-piece vocabulary. For every unit of the
train split that the teacher's tokenizer reads as one piece, the candidates are the `k` whole-word
pieces (no "##" continuation, no special or [unusedN] piece, letters or digits only) with the
highest cosine similarity to it. Units of several pieces get none and are never replaced this way.
A capitalised unit gets capitalised neighbours (an uncased teacher's pieces are lower-case).

The table is deterministic (no sampling here: augment.py draws from it with its seeded generator)
and cached in the teacher cache directory, keyed by the checkpoint's contents, k and the units.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import torch

from distill_core.storage import writing

log = logging.getLogger(__name__)
_UNUSED = re.compile(r"^\[[^\]]*\]$|^<[^>]*>$")  # [unused12], [CLS], <s>, ...


def candidate_ids(tokenizer: Any) -> list[int]:
    """Ids of whole-word pieces: alphanumeric, no continuation marker, not special."""
    special = set(tokenizer.all_special_ids)
    out = []
    for i, piece in enumerate(tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))):
        if i in special or piece is None or piece.startswith("##") or _UNUSED.match(piece):
            continue
        word = piece.lstrip("\u0120\u2581")  # GPT-2/SentencePiece word-start markers
        if word and word.isalnum():
            out.append(i)
    return out


def single_piece(tokenizer: Any, units: list[str]) -> dict[str, int]:
    """{unit: piece id} for the units the tokenizer reads as exactly one piece."""
    out = {}
    for unit, ids in zip(units, tokenizer(units, add_special_tokens=False)["input_ids"], strict=True):
        if len(ids) == 1:
            out[unit] = ids[0]
    return out


def compute_neighbours(units: list[str], tokenizer: Any, embeddings: torch.Tensor, k: int,
                       chunk: int = 1024) -> dict[str, list[str]]:
    """{unit: its k nearest whole-word pieces (cosine, nearest first, itself excluded)} for single-piece units."""
    allowed = candidate_ids(tokenizer)
    whole = set(allowed)
    # punctuation, [UNK] and continuation pieces are never replaced, nor used as replacements
    pieces = {unit: i for unit, i in single_piece(tokenizer, units).items() if i in whole}
    candidates = torch.tensor(allowed, dtype=torch.long)
    if not pieces or not len(candidates):
        return {}
    table = torch.nn.functional.normalize(embeddings.detach().float().cpu(), dim=1)  # (V, H)
    cand = table[candidates]  # (Nc, H)
    names = tokenizer.convert_ids_to_tokens(candidates.tolist())
    words = list(pieces)
    out: dict[str, list[str]] = {}
    for start in range(0, len(words), chunk):
        batch = words[start: start + chunk]
        ids = torch.tensor([pieces[w] for w in batch])
        sims = table[ids] @ cand.T  # (b, Nc)
        sims[candidates[None, :] == ids[:, None]] = -2.0  # never the unit's own piece
        top = sims.topk(min(k, len(candidates) - 1 or 1), dim=1).indices  # (b, k)
        for word, row in zip(batch, top.tolist(), strict=True):
            found = [names[j] for j in row if names[j].lower() != word.lower()]
            if found:
                out[word] = [n.capitalize() for n in found] if word[:1].isupper() else found
    return out


def teacher_neighbours(units: list[str], tokenizer: Any, teacher: torch.nn.Module, k: int,
                       cache_dir: str | Path | None = None, checkpoint: str | Path | None = None
                       ) -> dict[str, list[str]]:
    """compute_neighbours with the teacher's input embeddings, read from / written to the cache when given."""
    units = sorted(set(units))
    embeddings = teacher.get_input_embeddings().weight
    if cache_dir is None or checkpoint is None:
        return compute_neighbours(units, tokenizer, embeddings, k)
    from distill_core.teacher_cache import checkpoint_digest

    h = hashlib.blake2b(digest_size=16)
    key = {"what": "neighbours", "checkpoint": checkpoint_digest(checkpoint), "k": k}
    if embeddings.dtype != torch.float32:  # teacher.precision bfloat16: rounded embeddings, maybe other neighbours
        key["dtype"] = str(embeddings.dtype)
    h.update(json.dumps(key).encode())
    h.update("\x1f".join(units).encode())
    entry = Path(cache_dir) / f"neighbours-{h.hexdigest()}.json"
    if entry.is_file():
        log.info("Neighbour table cache hit %s", entry)
        return json.loads(entry.read_text(encoding="utf-8"))
    table = compute_neighbours(units, tokenizer, embeddings, k)
    with writing(cache_dir, "teacher cache"):
        Path(cache_dir).mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=cache_dir, prefix=".tmp-neighbours-")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(table, fh, ensure_ascii=False)
        os.replace(tmp, entry)  # atomic: a concurrent builder wrote the same table
    return table
