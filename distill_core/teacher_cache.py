"""A disk cache of teacher outputs, shared by every experiment with the same teacher and data.

Entries live in `<cache_dir>/<key>/` as fp32 `.npy` files (read memory-mapped) plus `meta.json`:
exactly the values the teacher produced, so a run that reads the cache computes bitwise what a run
without one does (an fp16 copy would change the KD targets, and so the results, whenever a cache
existed).
The key hashes the checkpoint's file contents, the examples themselves, the tokenisation and the
features cached, so a changed file can never be served stale. Two workers building one entry at
once are safe: each builds a private temp directory and renames it into place (storage.NewEntry).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from distill_core.storage import NewEntry, writing

log = logging.getLogger(__name__)
VERSION = 2  # 1 stored fp16; its entries are never read again (the key hashes VERSION)
_content_hashes: dict[tuple[str, int, int], str] = {}


def file_digest(path: Path) -> str:
    """blake2b of a file's bytes, memoised in-process by (path, size, mtime)."""
    stat = path.stat()
    memo_key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if memo_key not in _content_hashes:
        h = hashlib.blake2b(digest_size=16)
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        _content_hashes[memo_key] = h.hexdigest()
    return _content_hashes[memo_key]


def checkpoint_digest(checkpoint_dir: str | Path) -> str:
    """A hash of every file of a checkpoint directory (weights, config, tokenizer), by content."""
    root = Path(checkpoint_dir)
    h = hashlib.blake2b(digest_size=16)
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(root)).encode())
        h.update(file_digest(path).encode())
    return h.hexdigest()


class ExamplesDigest:
    """A running hash of a split's texts and pairs, fed a chunk of rows at a time."""

    def __init__(self) -> None:
        self.h = hashlib.blake2b(digest_size=16)

    def update(self, texts: list[str], pairs: list[str] | None) -> None:
        for i, text in enumerate(texts):
            self.h.update(text.encode())
            self.h.update(b"\x1f" + (pairs[i].encode() if pairs is not None else b"") + b"\x1e")

    def hexdigest(self) -> str:
        return self.h.hexdigest()


def key_for_examples(checkpoint_dir: str | Path, examples: str, max_length: int,
                     features: Iterable[str] = ("logits",), extra: dict[str, Any] | None = None) -> str:
    """The entry name for the teacher's outputs on a split, given its ExamplesDigest (computed as the split
    streams by: it is never held to hash it again)."""
    h = hashlib.blake2b(digest_size=16)
    h.update(json.dumps({"v": VERSION, "checkpoint": checkpoint_digest(checkpoint_dir), "max_length": max_length,
                         "features": sorted(features), "extra": extra or {}}, sort_keys=True).encode())
    h.update(examples.encode())
    return h.hexdigest()


def get_or_write(cache_dir: str | Path, key: str, rows: int, compute: Callable[[], Iterator[torch.Tensor]]) -> Path:
    """The entry directory for `key`; on a miss `compute()` yields (b, C) logits in row order, written
    to `logits.npy` as they come (never all in memory). Read it with token_store.Mapped.npy."""
    entry = Path(cache_dir) / key
    if (entry / "meta.json").is_file():
        log.info("Teacher cache hit %s", entry)
        return entry
    log.info("Teacher cache miss %s: running the teacher", entry)
    with writing(cache_dir, "teacher cache"), NewEntry(cache_dir, key, "teacher cache") as tmp:
        written, width = 0, None
        with open(tmp / "logits.npy", "wb") as fh:
            for part in compute():
                values = part.detach().cpu().float().numpy()  # (b, C)
                if width is None:
                    width = values.shape[1]
                    np.lib.format.write_array_header_1_0(fh, {"descr": np.lib.format.dtype_to_descr(values.dtype),
                                                              "fortran_order": False, "shape": (rows, width)})
                fh.write(np.ascontiguousarray(values).tobytes())
                written += len(values)
        if written != rows:
            raise RuntimeError(f"the teacher pass gave {written} rows for {rows} examples")
        (tmp / "meta.json").write_text(json.dumps({"version": VERSION, "shape": [rows, width]}))
    return entry
