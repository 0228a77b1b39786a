"""Batches of similar length: a seeded, resumable bucketing batch sampler.

Each epoch the examples are shuffled, cut into pools of `batch_size * pool_batches` examples,
each pool is sorted by width class (the length rounded up to `width_step` tokens; inside a class
the shuffled order stays) and cut into batches, and the batches of all pools are shuffled. A
batch then holds examples of about the same length, so padding to its own longest example
(`Encoded.batch` trims every batch that way) wastes little, while every batch is still drawn
from a random pool and the batches come in random order.

Why classes rather than an exact sort: on the demo titles' augmented copies, batches sorted by
exact length (or by 4-token classes) cost the quality test's student 5-6 points (0.57-0.59 against
0.63-0.65 unbucketed, seeds 3-5), 8-token classes 1-2 points and 16-token ones under 1 (0.627 and
0.627 against 0.632 and 0.637; docs/BENCHMARKS.md, "Bucketing by length"). Ties broken at random
mix lengths, labels and augmented copies inside a batch.

An epoch's batches depend only on (seed, epoch), so resuming needs no random-generator state:
the epoch and the position inside it (`state_dict`) rebuild the same batches.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

POOL_BATCHES = 50  # batches per sorted pool: larger pools pad less and shuffle less
WIDTH_STEP = 16  # tokens per width class (see above): wider classes pad more and mix more
# "auto" buckets only when random batches would be at least this much padding. Below it the saving is small
# (THUCNews titles, 29 % padding: 1.03x per CPU-second) and, where length predicts the class, batches of one
# length are batches of mostly one class, which cost accuracy (74.0 against 83.5 %; docs/BENCHMARKS.md).
AUTO_MIN_PADDING = 0.4


def example_lengths(split: Any) -> np.ndarray:
    """Per-example token counts of an encoded split, as int64 (the one place the sampler reads a split).

    Today a split is `distiller.Encoded` (a `lengths` tensor); a store that keeps its lengths in
    a numpy array or memmap is read the same way.
    """
    lengths = split.lengths
    if callable(lengths):  # a token store (token_store.StoredSplit) reads them from its offsets
        lengths = lengths()
    if hasattr(lengths, "numpy"):
        lengths = lengths.cpu().numpy()
    return np.asarray(lengths, dtype=np.int64)


class BucketBatchSampler:
    """Yield index arrays of `batch_size` examples of similar length; seeded per epoch, resumable mid-epoch.

    Every epoch yields ceil(N / batch_size) batches that cover each example once; only one batch
    (from the last pool) may be short.
    """

    def __init__(self, lengths: np.ndarray, batch_size: int, seed: int, pool_batches: int = POOL_BATCHES,
                 width_step: int = WIDTH_STEP):
        assert min(batch_size, pool_batches, width_step) >= 1, "batch_size, pool_batches and width_step must be >= 1"
        self.lengths = np.asarray(lengths, dtype=np.int64)  # (N,)
        self.batch_size, self.seed, self.pool_batches, self.width_step = batch_size, seed, pool_batches, width_step
        self.epoch, self.position = 0, 0  # what __iter__ yields next

    def __len__(self) -> int:
        return -(-len(self.lengths) // self.batch_size)

    def epoch_batches(self, epoch: int) -> list[np.ndarray]:
        """The batches of `epoch`, in training order (the same for the same seed and epoch)."""
        rng = np.random.default_rng([self.seed, epoch])
        order = rng.permutation(len(self.lengths))  # (N,)
        pool = self.batch_size * self.pool_batches
        classes = -(-self.lengths // self.width_step)  # (N,) width class: length rounded up to the step
        batches = []
        for start in range(0, len(order), pool):
            members = order[start: start + pool]
            members = members[np.argsort(classes[members], kind="stable")]  # ties keep the random order
            batches += [members[i: i + self.batch_size] for i in range(0, len(members), self.batch_size)]
        return [batches[i] for i in rng.permutation(len(batches))]

    def __iter__(self) -> Iterator[np.ndarray]:
        """The rest of the current epoch from the saved position, then the next epoch starts."""
        batches = self.epoch_batches(self.epoch)
        while self.position < len(batches):
            self.position += 1
            yield batches[self.position - 1]
        self.epoch, self.position = self.epoch + 1, 0

    def state_dict(self) -> dict[str, int]:
        return {"seed": self.seed, "epoch": self.epoch, "position": self.position, "batch_size": self.batch_size,
                "pool_batches": self.pool_batches, "width_step": self.width_step, "examples": len(self.lengths)}

    def load_state_dict(self, state: dict[str, int]) -> None:
        mine = self.state_dict()
        for key in ("seed", "batch_size", "pool_batches", "width_step", "examples"):
            if state[key] != mine[key]:
                raise ValueError(f"The sampler state is for {key}={state[key]}, this sampler has {mine[key]}.")
        self.epoch, self.position = state["epoch"], state["position"]


def padding_fraction(lengths: np.ndarray, batches: list[np.ndarray]) -> float:
    """Share of the padded (batch x its longest example) cells that are padding."""
    cells = sum(len(b) * int(lengths[b].max()) for b in batches)
    return 1.0 - float(sum(int(lengths[b].sum()) for b in batches)) / max(1, cells)


def sampler_for(mode: str, lengths: np.ndarray, batch_size: int, seed: int) -> BucketBatchSampler | None:
    """The train loop's sampler for `train.bucket_by_length` (auto | on | off); None: plain random batches."""
    if mode == "off":
        return None
    sampler = BucketBatchSampler(lengths, batch_size, seed)
    if mode == "auto":
        order = np.random.default_rng(seed).permutation(len(sampler.lengths))
        random_padding = padding_fraction(sampler.lengths, [order[i: i + batch_size]
                                                            for i in range(0, len(order), batch_size)])
        if random_padding < AUTO_MIN_PADDING:
            log.info("Random batches: %.0f %% padding, under %.0f %%: not bucketing by length", 100 * random_padding,
                     100 * AUTO_MIN_PADDING)
            return None
        log.info("Random batches: %.0f %% padding: bucketing by length", 100 * random_padding)
    return sampler
