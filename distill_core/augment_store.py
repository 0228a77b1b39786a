"""Augmented copies of a streamed train split, written to disk a chunk of rows at a time (augment.py's copies).

    copies = copies_source(config, sources["train"], teacher, root, progress)  # a SplitSource of the copies
    ... streaming.encode_sources tokenises and teacher-labels it like any split ...
    encoded["train"] = joined(encoded.pop("train"), encoded.pop("augmented"), multi_label)

The copies are a cache entry `<root>/augment/<key>/` (copies.jsonl, one JSON string a line, and
meta.json written last), keyed by the train rows' source (file contents, selection, columns),
the augmentation options, the seed and, for teacher_neighbours replacement, the teacher's
checkpoint. Building one reads the train split twice: once to count its units (the frequency
ranking, or the units the neighbour table needs) and digest its texts (8 bytes a row, for
"differs from every original"), once to write the copies. The "augmenting" phase counts both
passes (2 x train rows). The loop's train split is then a view over the original store and the
copies' store; the copies' hard labels are the teacher's predictions.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from distill_core.augment import Augmenter, Seen, augment_chunk, count_units, text_hashes
from distill_core.config import ExperimentConfig
from distill_core.progress import Phase
from distill_core.storage import NewEntry, writing
from distill_core.streaming import SplitSource, source_spec
from distill_core.teacher_outputs import LoadedTeacher, teacher_predictions
from distill_core.token_store import StoredSplit, lookup

log = logging.getLogger(__name__)
VERSION = 1
CHUNK_ROWS = 8192  # train rows augmented at a time (the copies do not depend on it)


class CopiesSource(SplitSource):
    """The copies as a split source: texts from copies.jsonl, no pairs, no gold labels (-1)."""

    def chunks(self, config: ExperimentConfig, rows: int = 8192) -> Iterator[tuple[list[str], None, list]]:
        texts: list[str] = []
        with open(self.path, encoding="utf-8") as fh:
            for line in fh:
                texts.append(json.loads(line))
                if len(texts) == rows:
                    yield texts, None, [-1] * len(texts)
                    texts = []
        if texts:
            yield texts, None, [-1] * len(texts)


def copies_key(config: ExperimentConfig, train: SplitSource, teacher: LoadedTeacher) -> str:
    aug = config.augment
    spec = {"v": VERSION, "train": source_spec(config, train), "seed": config.seed,
            "augment": {k: v for k, v in dataclasses.asdict(aug).items() if k != "enabled"}}
    if aug.replace == "teacher_neighbours":
        from distill_core.teacher_cache import checkpoint_digest

        spec["neighbours_from"] = checkpoint_digest(teacher.path)
    return hashlib.blake2b(json.dumps(spec, sort_keys=True, default=str).encode(), digest_size=16).hexdigest()


def copies_source(config: ExperimentConfig, train: SplitSource, teacher: LoadedTeacher, root: Path,
                  progress: Phase, rows: int = CHUNK_ROWS) -> CopiesSource:
    """The train split's copies: the entry under `root/augment` if built before, else built `rows` rows at a time."""
    key = copies_key(config, train, teacher)
    entry = lookup(root / "augment", key)
    if entry is None:
        entry = _build(config, train, teacher, root, key, progress, rows)
    else:
        log.info("Augmentation cache hit %s", entry)
    progress.update_to(2 * train.rows)
    meta = json.loads((entry / "meta.json").read_text())
    log.info("Augmentation made %d extra training texts", meta["rows"])
    return CopiesSource("augmented", str(entry / "copies.jsonl"), meta["rows"], "train")


def _build(config: ExperimentConfig, train: SplitSource, teacher: LoadedTeacher, root: Path, key: str,
           progress: Phase, rows: int) -> Path:
    cfg = config.augment
    counts: Counter = Counter()
    digests = []
    for texts, _, _ in train.chunks(config, rows):
        count_units(counts, texts)
        digests.append(text_hashes(texts))
        progress.advance(len(texts))
    seen = Seen(np.concatenate(digests) if digests else np.zeros(0, dtype=np.uint64))
    del digests
    neighbours = None
    if cfg.replace == "teacher_neighbours":  # seconds; the table is cached beside the teacher outputs
        from distill_core.augment_neighbours import teacher_neighbours

        neighbours = teacher_neighbours(list(counts), teacher.tokenizer, teacher.model, cfg.neighbours, root,
                                        teacher.path)
    augmenter = Augmenter(cfg, config.seed, counts, neighbours)
    del counts
    building = NewEntry(root / "augment", key, "augmentation cache")
    made, row = 0, 0
    try:
        with writing(root, "augmentation cache"), open(building.tmp / "copies.jsonl", "w", encoding="utf-8") as fh:
            for texts, _, _ in train.chunks(config, rows):
                if made < cfg.max_examples:
                    kept = augment_chunk(augmenter, seen, row, texts, cfg.max_examples - made)
                    fh.writelines(json.dumps(t, ensure_ascii=False) + "\n" for t in kept)
                    made += len(kept)
                row += len(texts)
                progress.advance(len(texts))
        if made >= cfg.max_examples:
            log.info("Augmentation stopped at max_examples=%d", cfg.max_examples)
        with writing(root, "augmentation cache"):
            (building.tmp / "meta.json").write_text(json.dumps({"version": VERSION, "rows": made}))
    except BaseException:
        building.discard()
        raise
    return building.commit()


class TeacherLabelled(StoredSplit):
    """The copies' store: its hard labels are the teacher's predictions (arg-max, or positive logits)."""

    def __init__(self, split: StoredSplit, multi_label: bool):
        super().__init__(split.store, split.teachers)
        self.multi_label = multi_label

    def label_rows(self, index: np.ndarray) -> torch.Tensor:
        return teacher_predictions(self.teacher_rows(index), self.multi_label)


class Joined:
    """The train split the loop sees with augmentation: the originals' rows, then the copies' rows.

    `batch` gathers each part's rows and lays them out in the order asked, padded to the batch's
    longest example (or `width`), exactly as one store holding both would.
    """

    def __init__(self, parts: list[StoredSplit]):
        self.parts = parts
        self.starts = np.cumsum([0] + [len(p) for p in parts])  # (P + 1,)

    def __len__(self) -> int:
        return int(self.starts[-1])

    def lengths(self) -> np.ndarray:
        """(N,) int32 example lengths, for a length-bucketing sampler."""
        return np.concatenate([p.lengths() for p in self.parts])

    def release(self) -> None:
        for part in self.parts:
            part.release()

    def batch(self, index: torch.Tensor, device: torch.device,
              width: int | None = None) -> tuple[torch.Tensor | None, ...]:
        rows = index.numpy().astype(np.int64)
        which = np.searchsorted(self.starts, rows, side="right") - 1  # (b,) the part of each row
        pieces = []
        for p, part in enumerate(self.parts):
            mask = which == p
            if mask.any():
                got = part.batch(torch.from_numpy(rows[mask] - self.starts[p]), torch.device("cpu"), width)
                pieces.append((torch.from_numpy(mask), got))
        width = max(got[0].size(1) for _, got in pieces)
        pad = self.parts[0].store.pad_id
        ids = torch.full((len(rows), width), pad, dtype=torch.long)
        out: list[Any] = [ids, None, None, None]
        for mask, got in pieces:
            ids[mask, : got[0].size(1)] = got[0]
            for k in (1, 2, 3):
                if got[k] is None:
                    continue
                if out[k] is None:
                    out[k] = torch.empty((len(rows), *got[k].shape[1:]), dtype=got[k].dtype)
                out[k][mask] = got[k]
        return tuple(None if t is None else t.to(device) for t in out)


def joined(train: StoredSplit, copies: StoredSplit, multi_label: bool) -> Joined:
    """The originals then their teacher-labelled copies, as one split."""
    return Joined([train, TeacherLabelled(copies, multi_label)])
