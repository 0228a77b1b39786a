"""A run's data path without holding its data: files -> token stores -> memory-mapped teacher logits.

    sources, vocab = plan_splits(config, vocab_kind, progress)    # counts rows, builds the vocabulary
    encoded = encode_sources(config, sources, encoder, teachers, ...)  # {split: token_store.StoredSplit}

Every pass streams the files a chunk of rows at a time (readers.iter_chunks): counting and
checking rows, the student vocabulary (a Counter, in the same order as Vocab.build), tokenising
into a token store (token_store.py, keyed like the teacher cache: file contents, selection,
columns, labels, tokenisation), and the teacher pass, whose logits go chunk by chunk into the
fp32 teacher cache (teacher_cache.get_or_write). Without a cache directory, stores and logits are
built in a scratch directory that is removed as soon as they are mapped (the mappings keep them
readable until the run ends; nothing is left behind; data_root). The results equal what encoding
the texts and running the teacher in memory gives, bitwise; tested. Augmented copies are one more
source (augment_store.CopiesSource), encoded like the others.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from distill_core import teacher_cache
from distill_core.config import ExperimentConfig
from distill_core.errors import ConfigError
from distill_core.progress import Phase, Phases
from distill_core.readers import count_rows, iter_chunks, source_digest
from distill_core.teachers import label_order, teacher_logits
from distill_core.token_store import Mapped, StoredSplit, StoreWriter, TokenStore, lookup
from distill_core.vocab import SEP, Encoder, TeacherPieces, Vocab, split_tokens

log = logging.getLogger(__name__)
TEACHER_CHUNK = 65_536  # rows the teacher pass sorts by length at a time (teachers.teacher_logits)


@dataclass
class SplitSource:
    """One split as rows of a file: all of them, or those `keep` selects (a held-out dev split)."""

    name: str
    path: str
    rows: int
    file_split: str  # the split whose file this is, for messages ("train" for a held-out dev)
    keep: np.ndarray | None = None  # bool per file row
    selection: str = "all"

    def chunks(self, config: ExperimentConfig, rows: int = 8192) -> Iterator[tuple[list[str], list[str] | None, list]]:
        return iter_chunks(self.path, config.data, list(config.data.labels), self.file_split, rows, self.keep)


def plan_splits(config: ExperimentConfig, vocab_kind: str | None,
                progress: Phase | None = None) -> tuple[dict[str, SplitSource], Vocab | None]:
    """Train, dev and test sources (rows counted, every row checked) and the train split's vocabulary.

    Without a dev file a seeded 10% of train is held out as dev, the rows encoding.load_splits holds
    out. `progress` advances by one per file read.
    """
    data = config.data
    labels = list(data.labels)
    if not data.labels:
        raise ConfigError("data.labels is empty: list the class names in index order.", field="data.labels")
    advance = progress.advance if progress is not None else (lambda n=1: None)
    sources, vocab = {}, None
    if data.dev:
        train = SplitSource("train", data.train, 0, "train")
        counts: tuple[Counter, Counter] = (Counter(), Counter())
        for texts, pairs, _ in train.chunks(config):
            train.rows += len(texts)
            _count_tokens(counts, texts, pairs, vocab_kind)
        advance()
        sources["train"] = train
        sources["dev"] = SplitSource("dev", data.dev, count_rows(data.dev, data, labels, "dev"), "dev")
        advance()
    else:
        n = count_rows(data.train, data, labels, "train")
        advance()
        if n < 2:
            raise ConfigError("Without a dev file the train split needs at least 2 examples to hold one out.",
                              field="data.dev")
        order = torch.randperm(n, generator=torch.Generator().manual_seed(config.seed))
        held = max(1, n // 10)
        mask = np.zeros(n, dtype=bool)
        mask[order[:held].numpy()] = True
        del order
        sources["train"] = SplitSource("train", data.train, n - held, "train", ~mask, f"rest-of-dev:{config.seed}")
        sources["dev"] = SplitSource("dev", data.train, held, "train", mask, f"held-out:{config.seed}")
        counts = (Counter(), Counter())
        if vocab_kind is not None:
            for texts, pairs, _ in sources["train"].chunks(config):
                _count_tokens(counts, texts, pairs, vocab_kind)
    if data.test:
        sources["test"] = SplitSource("test", data.test, count_rows(data.test, data, labels, "test"), "test")
        advance()
    if vocab_kind is not None:
        texts_counts, pair_counts = counts
        texts_counts.update(pair_counts)  # Vocab.build counts texts then pairs: the same first-seen order
        vocab = Vocab.from_counts(texts_counts, vocab_kind)
    return sources, vocab


def _count_tokens(counts: tuple[Counter, Counter], texts: list[str], pairs: list[str] | None,
                  kind: str | None) -> None:
    if kind is None:
        return
    for text in texts:
        counts[0].update(split_tokens(text, kind))
    for pair in pairs or ():
        counts[1].update(split_tokens(pair, kind))


def encode_rows(encoder: Encoder, texts: list[str], pairs: list[str] | None, max_length: int) -> list[list[int]]:
    """Unpadded student ids of each example, exactly the rows of encoder.encode without its padding."""
    if isinstance(encoder, TeacherPieces):
        return list(encoder.tokenizer(texts, pairs, truncation=True, max_length=max_length)["input_ids"])
    sep = encoder.index[SEP]
    return [((encoder.ids(t) + [sep] + encoder.ids(pairs[i])) if pairs is not None else encoder.ids(t))[:max_length]
            for i, t in enumerate(texts)]


def pad_id(encoder: Encoder) -> int:
    """What encoder.encode pads with."""
    return getattr(getattr(encoder, "tokenizer", None), "pad_token_id", None) or 0


def encoder_identity(encoder: Encoder, teacher_path: str) -> dict[str, Any]:
    if isinstance(encoder, Vocab):
        tokens = json.dumps(encoder.tokens, ensure_ascii=False).encode()
        return {"kind": encoder.kind, "vocab": hashlib.blake2b(tokens, digest_size=16).hexdigest()}
    return {"kind": encoder.kind, "tokenizer": teacher_cache.checkpoint_digest(teacher_path)}


def source_spec(config: ExperimentConfig, source: SplitSource) -> dict[str, Any]:
    """What a split's rows are made of (file contents, selection, columns, labels): part of every key built on them."""
    data = config.data
    keep = None if source.keep is None else hashlib.blake2b(np.packbits(source.keep).tobytes(),
                                                            digest_size=16).hexdigest()
    return {"source": source_digest(source.path), "keep": keep, "selection": source.selection,
            "format": data.format, "has_header": data.has_header, "columns": [data.text_column, data.label_column,
                                                                               data.text_pair_column],
            "labels": list(data.labels), "multi_label": data.multi_label, "separator": data.label_separator}


def store_key(config: ExperimentConfig, source: SplitSource, encoder_id: dict[str, Any], pad: int) -> str:
    spec = {**source_spec(config, source), "max_length": config.data.max_length, "encoder": encoder_id, "pad": pad}
    return hashlib.blake2b(json.dumps(spec, sort_keys=True, default=str).encode(), digest_size=16).hexdigest()


@contextlib.contextmanager
def data_root(cache_dir: str | Path | None) -> Iterator[Path]:
    """Where a run's stores, copies and logits go: the cache directory, else a scratch directory removed on
    exit (the mappings keep what was mapped readable until the run ends; nothing is left behind)."""
    if cache_dir is not None:
        yield Path(cache_dir)
        return
    scratch = Path(tempfile.mkdtemp(prefix="distillery-data-"))
    try:
        yield scratch
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def tokenise(config: ExperimentConfig, source: SplitSource, encoder: Encoder, encoder_id: dict[str, Any],
             root: Path, progress: Phase) -> TokenStore:
    """The split's token store: found under its key in `root`, else built chunk by chunk."""
    pad = pad_id(encoder)
    key = store_key(config, source, encoder_id, pad)
    entry = lookup(root, key)
    if entry is not None:
        log.info("Token store hit %s", entry)
        progress.advance(source.rows)
        return TokenStore(entry)
    writer = StoreWriter(root, key, pad, len(config.data.labels), config.data.multi_label)
    examples = teacher_cache.ExamplesDigest()
    try:
        for texts, pairs, ys in source.chunks(config):
            writer.append(encode_rows(encoder, texts, pairs, config.data.max_length), ys)
            examples.update(texts, pairs)
            progress.advance(len(texts))
        entry = writer.finish(examples=examples.hexdigest(), split=source.name)
    except BaseException:
        writer.abort()
        raise
    log.info("Tokenised %d %s examples into %s", source.rows, source.name, entry)
    return TokenStore(entry)


def encode_sources(config: ExperimentConfig, sources: dict[str, SplitSource], encoder: Encoder, teachers: list,
                   device: torch.device, cache_dir: str | Path | None, on_batch: Callable[[], None] | None = None,
                   without_logits: set[str] = frozenset(), phases: Phases | None = None) -> dict[str, StoredSplit]:
    """Student ids of every split and the teachers' (weighted mean) logits, computed once or read from the cache
    under `cache_dir`: {split: StoredSplit}, read batch by batch. Splits in `without_logits` get none."""
    from distill_core.run_parts import NullSink

    phases = phases or Phases(NullSink())
    with data_root(cache_dir) as root:
        encoder_id = encoder_identity(encoder, teachers[0].path)
        stores = {}
        with phases.phase("tokenising", total=sum(s.rows for s in sources.values()), poll_cancel=True) as progress:
            for name, source in sources.items():
                stores[name] = tokenise(config, source, encoder, encoder_id, root / "tokens", progress)
        labels = list(config.data.labels)
        total_weight = sum(t.weight for t in teachers)
        labelled = [name for name in sources if name not in without_logits]
        encoded = {}
        with phases.phase("teacher", total=sum(sources[n].rows for n in labelled) * len(teachers)) as progress:
            for name, source in sources.items():
                members = []
                for t in teachers if name in labelled else ():
                    done = progress.done + source.rows
                    entry = teacher_entry(config, source, stores[name], t, device, root, on_batch, progress)
                    progress.update_to(done)  # a cache hit counts as labelled at once
                    members.append((Mapped.npy(entry / "logits.npy"), label_order(t.info["labels"], labels),
                                    t.weight / total_weight))
                encoded[name] = StoredSplit(stores[name], members if name in labelled else None)
        return encoded


def teacher_entry(config: ExperimentConfig, source: SplitSource, store: TokenStore, teacher: Any,
                  device: torch.device, root: Path, on_batch: Callable[[], None] | None, progress: Phase) -> Path:
    """The teacher cache entry of this split's logits, computed TEACHER_CHUNK rows at a time on a miss."""
    max_length = config.data.max_length
    extra = {"sort_chunk": TEACHER_CHUNK} if source.rows > TEACHER_CHUNK else {}  # else: one global sort
    extra.update(teacher.cache_extra())
    key = teacher_cache.key_for_examples(teacher.path, store.meta["examples"], max_length, ("logits",), extra)

    def chunks() -> Iterator[torch.Tensor]:
        for texts, pairs, _ in source.chunks(config, rows=TEACHER_CHUNK):
            yield teacher_logits(teacher.model, teacher.tokenizer, texts, pairs, max_length,
                                 batch_size=max(64, config.train.batch_size), device=device, on_batch=on_batch,
                                 progress=progress.advance)

    return teacher_cache.get_or_write(root, key, source.rows, chunks)
