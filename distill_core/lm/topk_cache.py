"""The offline teacher: its top-k logits per response token, computed once and memory-mapped from disk.

An entry `<cache_dir>/<key>/` holds, for a split of N examples with R response tokens in all:

    values.npy   (R, k) float16  the teacher's k largest logits per response token, descending
    ids.npy      (R, k) int32    their token ids
    offsets.npy  (N + 1,) int64  example i's rows are offsets[i]:offsets[i + 1], in position order

The key hashes the checkpoint's files, the token ids and k, so every experiment with the same teacher,
data and k shares one entry (like teacher_cache.py for classifiers). Entries are built in a temp
directory and renamed into place (storage.NewEntry), so concurrent writers are safe. Without a cache directory the same
fp16/int32 arrays are kept in memory: a run computes the same targets with a cache or without.
The loss renormalises over the k ids (losses.py); the truncated mass is dropped.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from distill_core.lm.data import LMSplit, collate
from distill_core.storage import NewEntry, writing
from distill_core.teacher_cache import checkpoint_digest

log = logging.getLogger(__name__)
VERSION = 1


class TopK:
    """A split's teacher top-k targets; `rows(indices)` gathers a batch's in loss-mask order."""

    def __init__(self, values: np.ndarray, ids: np.ndarray, offsets: np.ndarray):
        self.values, self.ids, self.offsets = values, ids, offsets

    def rows(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """(n, k) float32 logits and (n, k) long ids for examples `indices`, concatenated in that order."""
        spans = [(int(self.offsets[i]), int(self.offsets[i + 1])) for i in indices]
        values = np.concatenate([self.values[a:b] for a, b in spans])
        ids = np.concatenate([self.ids[a:b] for a, b in spans])
        return torch.from_numpy(values.astype(np.float32)), torch.from_numpy(ids.astype(np.int64))


def key(checkpoint_dir: str | Path, split: LMSplit, k: int) -> str:
    h = hashlib.blake2b(digest_size=16)
    h.update(json.dumps({"v": VERSION, "kind": "lm-topk", "checkpoint": checkpoint_digest(checkpoint_dir), "k": k,
                         "data": split.digest()}, sort_keys=True).encode())
    return h.hexdigest()


@torch.no_grad()
def compute(teacher: torch.nn.Module, split: LMSplit, k: int, pad: int, device: torch.device, batch_size: int,
            advance: Callable[[int], None] = lambda n: None) -> TopK:
    """Run the teacher over `split` and keep its top-k logits at every response position."""
    values, ids, counts = [], [], []
    for start in range(0, len(split), batch_size):
        index = list(range(start, min(start + batch_size, len(split))))
        input_ids, attention, mask = collate([split.ids[i] for i in index], [split.starts[i] for i in index], pad)
        logits = teacher(input_ids=input_ids.to(device), attention_mask=attention.to(device)).logits  # (B, T, V)
        picked = logits[:, :-1][mask.to(device)].float()  # (n, V), response positions in row-major order
        top = picked.topk(min(k, picked.size(-1)), dim=-1)  # sorted, largest first
        values.append(top.values.half().cpu().numpy())
        ids.append(top.indices.int().cpu().numpy())
        counts.extend(mask.sum(1).tolist())
        advance(len(index))
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return TopK(np.concatenate(values), np.concatenate(ids), offsets)


def get_or_compute(cache_dir: str | Path | None, entry_key: str, make: Callable[[], TopK]) -> tuple[TopK, bool]:
    """The entry memory-mapped from `cache_dir` (computed and stored on a miss), and whether it was a hit."""
    if cache_dir is None:
        return make(), False
    entry = Path(cache_dir) / entry_key
    if (entry / "meta.json").is_file():
        log.info("LM teacher cache hit %s", entry)
        return _read(entry), True
    log.info("LM teacher cache miss %s: running the teacher", entry)
    topk = make()
    with writing(cache_dir, "teacher cache"), NewEntry(cache_dir, entry_key, "teacher cache") as tmp:
        np.save(tmp / "values.npy", topk.values)
        np.save(tmp / "ids.npy", topk.ids)
        np.save(tmp / "offsets.npy", topk.offsets)
        (tmp / "meta.json").write_text(json.dumps({"version": VERSION, "kind": "lm-topk",
                                                   "shape": list(topk.values.shape)}))
    return _read(entry), False


def _read(entry: Path) -> TopK:
    return TopK(np.load(entry / "values.npy", mmap_mode="r"), np.load(entry / "ids.npy", mmap_mode="r"),
                np.load(entry / "offsets.npy"))
