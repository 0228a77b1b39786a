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
Deterministic: one random.Random(seed) walks the examples in order.
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from collections.abc import Callable

from distill_core.config import AugmentConfig
from distill_core.vocab import MASK

log = logging.getLogger(__name__)


def units(text: str) -> tuple[list[str], str]:
    """Split into words (joined back with spaces) or characters (joined with nothing)."""
    if any(ch.isspace() for ch in text.strip()):
        return text.split(), " "
    return list(text), ""


def augment_texts(texts: list[str], cfg: AugmentConfig, seed: int,
                  progress: Callable[[int], None] | None = None,
                  neighbours: dict[str, list[str]] | None = None) -> list[str]:
    """Augmented copies of `texts`, distinct from each other and from the originals, in a fixed order.

    `progress(1)` is called after each original text. `neighbours` ({unit: replacements}) is the
    table replacement draws from when cfg.replace is "teacher_neighbours".
    """
    by_neighbour = cfg.replace == "teacher_neighbours"
    assert not by_neighbour or neighbours is not None, "teacher_neighbours replacement needs the neighbour table"
    rng = random.Random(seed)
    counts = Counter(u for text in texts for u in units(text)[0])
    ranked = [u for u, _ in counts.most_common()]
    rank = {u: i for i, u in enumerate(ranked)}
    seen = set(texts)
    out: list[str] = []
    for text in texts:
        if progress is not None:
            progress(1)
        tokens, joiner = units(text)
        if not tokens:
            continue
        for _ in range(cfg.n_iter):
            new = []
            for tok in tokens:
                r = rng.random()
                if r < cfg.p_mask:
                    new.append(MASK)
                elif r < cfg.p_mask + cfg.p_replace and by_neighbour:
                    options = neighbours.get(tok)
                    new.append(options[rng.randrange(len(options))] if options else tok)
                elif r < cfg.p_mask + cfg.p_replace and tok in rank:
                    lo = max(0, rank[tok] - cfg.replace_window)
                    hi = min(len(ranked) - 1, rank[tok] + cfg.replace_window)
                    new.append(ranked[rng.randint(lo, hi)])
                else:
                    new.append(tok)
            if rng.random() < cfg.p_ng and len(new) > 1:
                n = rng.randint(cfg.ngram_range[0], min(cfg.ngram_range[1], len(new)))
                start = rng.randint(0, len(new) - n)
                new = new[start: start + n]
            candidate = joiner.join(new)
            if candidate not in seen:
                seen.add(candidate)
                out.append(candidate)
                if len(out) >= cfg.max_examples:
                    log.info("Augmentation stopped at max_examples=%d", cfg.max_examples)
                    return out
    return out
