"""Data augmentation for distillation (Tang et al. 2019, section 3.3; TinyBERT's augmentation in spirit).

Each training text yields up to `n_iter` distinct copies. Per unit (a word when the text has
spaces, else a character — Chinese titles have no spaces):
  - with p_mask it becomes [MASK];
  - else with p_replace it becomes a random unit of similar corpus frequency (within
    `replace_window` frequency ranks; Tang et al. use a POS tagger, which we do not ship), or with
    `replace: "teacher_neighbours"` one of its nearest neighbours in the teacher's input-embedding
    space (augment_neighbours.py; a unit without neighbours stays as it is);
then, with p_ng, only a random n-gram of the result is kept (n uniform in ngram_range).
The teacher labels the copies (its logits are the soft targets; its arg-max is the hard label).

Deterministic and independent of how the rows are chunked: row i's candidates come from its own
generator, seeded by (seed, i), so a streamed run (augment_store.py) that reads the split a chunk
at a time makes the copies augment_texts makes. A candidate is kept when it differs from every
original text and from every copy kept before it (row order), until max_examples copies.
"""

from __future__ import annotations

import hashlib
import logging
import random
from collections import Counter
from collections.abc import Callable, Iterable

import numpy as np

from distill_core.config import AugmentConfig
from distill_core.vocab import MASK

log = logging.getLogger(__name__)


def units(text: str) -> tuple[list[str], str]:
    """Split into words (joined back with spaces) or characters (joined with nothing)."""
    if any(ch.isspace() for ch in text.strip()):
        return text.split(), " "
    return list(text), ""


def count_units(counts: Counter, texts: Iterable[str]) -> None:
    """Add the texts' units to `counts`, in the order augment_texts counts them (ties keep first-seen order)."""
    for text in texts:
        counts.update(units(text)[0])


class Augmenter:
    """The candidate copies of one row; `counts` ranks units for frequency replacement (count_units)."""

    def __init__(self, cfg: AugmentConfig, seed: int, counts: Counter,
                 neighbours: dict[str, list[str]] | None = None):
        self.cfg, self.seed, self.neighbours = cfg, seed, neighbours
        self.by_neighbour = cfg.replace == "teacher_neighbours"
        assert not self.by_neighbour or neighbours is not None, "teacher_neighbours replacement needs the table"
        self.ranked = [u for u, _ in counts.most_common()]
        self.rank = {u: i for i, u in enumerate(self.ranked)}
        self.rng = random.Random()

    def candidates(self, row: int, text: str) -> list[str]:
        """Up to n_iter copies of `text`, distinct from it and each other, drawn from the generator of (seed, row)."""
        cfg, rng = self.cfg, self.rng
        rng.seed(self.seed * (1 << 32) + row)  # one stream per row: no row's copies depend on the chunking
        tokens, joiner = units(text)
        out: list[str] = []
        if not tokens:
            return out
        for _ in range(cfg.n_iter):
            new = [self._unit(tok, rng.random()) for tok in tokens]
            if rng.random() < cfg.p_ng and len(new) > 1:
                n = rng.randint(cfg.ngram_range[0], min(cfg.ngram_range[1], len(new)))
                start = rng.randint(0, len(new) - n)
                new = new[start: start + n]
            candidate = joiner.join(new)
            if candidate != text and candidate not in out:
                out.append(candidate)
        return out

    def _unit(self, tok: str, r: float) -> str:
        cfg, rng = self.cfg, self.rng
        if r < cfg.p_mask:
            return MASK
        if r < cfg.p_mask + cfg.p_replace and self.by_neighbour:
            options = self.neighbours.get(tok)
            return options[rng.randrange(len(options))] if options else tok
        if r < cfg.p_mask + cfg.p_replace and tok in self.rank:
            lo = max(0, self.rank[tok] - cfg.replace_window)
            hi = min(len(self.ranked) - 1, self.rank[tok] + cfg.replace_window)
            return self.ranked[rng.randint(lo, hi)]
        return tok


def text_hashes(texts: list[str]) -> np.ndarray:
    """(N,) uint64 digests of the texts: 8 bytes a text instead of the text itself."""
    return np.fromiter((int.from_bytes(hashlib.blake2b(t.encode(), digest_size=8).digest(), "little")
                        for t in texts), dtype=np.uint64, count=len(texts))


class Seen:
    """The texts a copy must differ from (every original, every copy kept so far), as sorted digests."""

    def __init__(self, originals: np.ndarray):
        originals.sort()  # in place: no second copy of 8 bytes a row (repeated texts may stay repeated)
        self.originals = originals
        self.copies = np.zeros(0, dtype=np.uint64)

    def keep(self, candidates: list[str], room: int) -> list[str]:
        """The candidates (in order) that are new, at most `room` of them; remembers the kept ones."""
        digests = text_hashes(candidates)
        known = _contains(self.originals, digests) | _contains(self.copies, digests)
        kept, new = [], set()
        for text, digest, old in zip(candidates, digests.tolist(), known.tolist(), strict=True):
            if len(kept) == room:
                break
            if not old and digest not in new:
                new.add(digest)
                kept.append(text)
        merged = np.concatenate([self.copies, np.fromiter(new, dtype=np.uint64, count=len(new))])
        merged.sort()  # every new digest is unseen: no unique pass needed
        self.copies = merged
        return kept


def _contains(sorted_values: np.ndarray, values: np.ndarray) -> np.ndarray:
    if not len(sorted_values):
        return np.zeros(len(values), dtype=bool)
    at = np.searchsorted(sorted_values, values)
    return (at < len(sorted_values)) & (sorted_values[np.minimum(at, len(sorted_values) - 1)] == values)


def augment_chunk(augmenter: Augmenter, seen: Seen, first_row: int, texts: list[str], room: int) -> list[str]:
    """The kept copies of rows first_row.. (the texts of one chunk), at most `room`."""
    candidates = [c for i, text in enumerate(texts) for c in augmenter.candidates(first_row + i, text)]
    return seen.keep(candidates, room)


def augment_texts(texts: list[str], cfg: AugmentConfig, seed: int,
                  progress: Callable[[int], None] | None = None,
                  neighbours: dict[str, list[str]] | None = None) -> list[str]:
    """Augmented copies of `texts` held in memory (small lists, tests): what augment_store streams.

    `progress(n)` is called after each original text. `neighbours` ({unit: replacements}) is the
    table replacement draws from when cfg.replace is "teacher_neighbours".
    """
    counts: Counter = Counter()
    count_units(counts, texts)
    augmenter, seen = Augmenter(cfg, seed, counts, neighbours), Seen(text_hashes(texts))
    out = augment_chunk(augmenter, seen, 0, texts, cfg.max_examples)
    if progress is not None:
        progress(len(texts))
    if len(out) >= cfg.max_examples:
        log.info("Augmentation stopped at max_examples=%d", cfg.max_examples)
    return out
