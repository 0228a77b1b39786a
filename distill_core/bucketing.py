"""Batches of similar length: a seeded, resumable bucketing batch sampler.

Each epoch the examples are shuffled, cut into pools of `batch_size * pool_batches` examples,
each pool is sorted by width class (the length rounded up to `width_step` tokens; inside a class
the shuffled order stays) and cut into batches; the pools come in random order and each pool's
batches in random order. A batch then holds examples of about the same length, so padding to its
own longest example (`Encoded.batch` trims every batch that way) wastes little, while every batch
is still drawn from a random pool.

Memory does not grow with the split beyond its lengths (4 bytes a row): the shuffle is a seeded
permutation computed position by position (`SeededPermutation`), so the loop builds one pool at a
time; a materialised permutation and the epoch's list of batches cost 16+ bytes a row (80 MB at
5M rows).

Why classes rather than an exact sort: on the demo titles' augmented copies, batches sorted by
exact length (or by 4-token classes) cost the quality test's student 5-6 points (0.57-0.59 against
0.63-0.65 unbucketed, seeds 3-5), 8-token classes 1-2 points and 16-token ones about 1 (mean 0.628
against 0.639; docs/BENCHMARKS.md, "Bucketing by length"). Ties broken at random mix lengths,
labels and augmented copies inside a batch.

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
# "auto" buckets only where it cuts the padded cells (batch x its longest example) by at least this factor:
# TREC's questions (13-196 characters) 1.93x, at no accuracy cost. Below it the saving is small (the THUCNews
# titles 1.09x, the demo's augmented titles 1.19x) and, where length predicts the class, batches of one length
# are batches of mostly one class, which cost accuracy (about 1 point on the demo; docs/BENCHMARKS.md).
AUTO_MIN_SAVING = 1.5
AUTO_SAMPLE = 100_000  # examples whose random batches "auto" measures


def example_lengths(split: Any) -> np.ndarray:
    """Per-example token counts of an encoded split, as int32 (the one place the sampler reads a split).

    Today a split is `encoding.Encoded` (a `lengths` tensor); a store that keeps its lengths in
    a numpy array or memmap is read the same way.
    """
    lengths = split.lengths
    if callable(lengths):  # a token store (token_store.StoredSplit) reads them from its offsets
        lengths = lengths()
    if hasattr(lengths, "numpy"):
        lengths = lengths.cpu().numpy()
    return np.asarray(lengths, dtype=np.int32)


class SeededPermutation:
    """A pseudo-random permutation of range(n), computed for any slice of positions without the rest.

    A 4-round Feistel network on the smallest even number of bits that holds n, with cycle walking
    (a value >= n is enciphered again until it falls below n): a bijection of range(n) that depends
    only on `seed`. Good enough to shuffle training examples; not a cryptographic construction.
    """

    ROUNDS = 4

    def __init__(self, n: int, seed: int | list[int]):
        self.n = n
        self.half = max(1, (max(1, n - 1).bit_length() + 1) // 2)  # bits of each Feistel half
        self.mask = np.uint64((1 << self.half) - 1)
        self.keys = np.random.default_rng(seed).integers(0, 2 ** 63, size=self.ROUNDS, dtype=np.uint64)

    def __getitem__(self, positions: slice) -> np.ndarray:
        """The permuted values at positions[start:stop] (int64)."""
        start, stop, _ = positions.indices(self.n)
        out = self._encipher(np.arange(start, stop, dtype=np.uint64))
        outside = out >= self.n
        while outside.any():  # cycle walking: at most a few rounds, the domain is under 4n
            out[outside] = self._encipher(out[outside])
            outside = out >= self.n
        return out.astype(np.int64)

    def _encipher(self, x: np.ndarray) -> np.ndarray:
        left, right = x >> np.uint64(self.half), x & self.mask
        for key in self.keys:
            left, right = right, left ^ (_mix(right ^ key) & self.mask)
        return (left << np.uint64(self.half)) | right


def _mix(z: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: every output bit depends on every input bit (uint64 arithmetic wraps)."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


class BucketBatchSampler:
    """Yield index arrays of `batch_size` examples of similar length; seeded per epoch, resumable mid-epoch.

    Every epoch yields ceil(N / batch_size) batches that cover each example once; only one batch
    (from the last pool) may be short.
    """

    def __init__(self, lengths: np.ndarray, batch_size: int, seed: int, pool_batches: int = POOL_BATCHES,
                 width_step: int = WIDTH_STEP):
        assert min(batch_size, pool_batches, width_step) >= 1, "batch_size, pool_batches and width_step must be >= 1"
        self.lengths = np.asarray(lengths, dtype=np.int32)  # (N,)
        self.batch_size, self.seed, self.pool_batches, self.width_step = batch_size, seed, pool_batches, width_step
        self.pool_size = batch_size * pool_batches
        self.epoch, self.position = 0, 0  # what __iter__ yields next
        self._pools: tuple[int, np.ndarray, np.ndarray] | None = None  # (epoch, pool order, first batch of each)
        self._pool: tuple[int, int, list[np.ndarray]] | None = None  # (epoch, pool, its batches): the one in use

    def __len__(self) -> int:
        return -(-len(self.lengths) // self.batch_size)

    def batch(self, epoch: int, i: int) -> np.ndarray:
        """The i-th batch of `epoch` (the same for the same seed and epoch); builds one pool at a time."""
        if self._pools is None or self._pools[0] != epoch:
            n_pools = -(-len(self.lengths) // self.pool_size)
            order = np.random.default_rng([self.seed, epoch]).permutation(n_pools)  # (P,) pools in random order
            last = len(self.lengths) - (n_pools - 1) * self.pool_size  # examples of the last pool
            counts = np.where(order == n_pools - 1, -(-last // self.batch_size), self.pool_batches)
            self._pools = (epoch, order, np.cumsum(counts) - counts)
        _, order, firsts = self._pools
        at = int(np.searchsorted(firsts, i, side="right")) - 1
        pool = int(order[at])
        if self._pool is None or self._pool[:2] != (epoch, pool):
            self._pool = (epoch, pool, self._pool_batches(epoch, pool))
        return self._pool[2][i - int(firsts[at])]

    def _pool_batches(self, epoch: int, pool: int) -> list[np.ndarray]:
        """One pool's batches in random order: its examples sorted by width class (ties keep the random order)."""
        members = SeededPermutation(len(self.lengths), [self.seed, epoch])[pool * self.pool_size:
                                                                           (pool + 1) * self.pool_size]
        classes = -(-self.lengths[members] // self.width_step)  # length rounded up to the step
        members = members[np.argsort(classes, kind="stable")]
        batches = [members[i: i + self.batch_size] for i in range(0, len(members), self.batch_size)]
        return [batches[k] for k in np.random.default_rng([self.seed, epoch, pool]).permutation(len(batches))]

    def epoch_batches(self, epoch: int) -> list[np.ndarray]:
        """All batches of `epoch` in training order (the loop asks for them one at a time with `batch`)."""
        return [self.batch(epoch, i) for i in range(len(self))]

    def __iter__(self) -> Iterator[np.ndarray]:
        """The rest of the current epoch from the saved position, then the next epoch starts."""
        while self.position < len(self):
            self.position += 1
            yield self.batch(self.epoch, self.position - 1)
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
    return 1.0 - float(sum(int(lengths[b].sum()) for b in batches)) / max(1, cells(lengths, batches))


def cells(lengths: np.ndarray, batches: list[np.ndarray]) -> int:
    """Token cells the batches cost once each is padded to its longest example."""
    return sum(len(b) * int(lengths[b].max()) for b in batches)


def sampler_for(mode: str, lengths: np.ndarray, batch_size: int, seed: int) -> BucketBatchSampler | None:
    """The train loop's sampler for `train.bucket_by_length` (auto | on | off); None: plain random batches."""
    if mode == "off":
        return None
    sampler = BucketBatchSampler(lengths, batch_size, seed)
    if mode == "auto":  # measured on a random sample: random batches against this sampler's
        sample = sampler.lengths[SeededPermutation(len(sampler.lengths), seed)[:AUTO_SAMPLE]]
        plain = [np.arange(i, min(i + batch_size, len(sample))) for i in range(0, len(sample), batch_size)]
        bucketed = BucketBatchSampler(sample, batch_size, seed).epoch_batches(0)
        saving = cells(sample, plain) / max(1, cells(sample, bucketed))
        log.info("Random batches: %.0f %% padding, bucketed %.0f %% (%.2fx fewer cells): %s",
                 100 * padding_fraction(sample, plain), 100 * padding_fraction(sample, bucketed), saving,
                 "bucketing by length" if saving >= AUTO_MIN_SAVING else
                 f"not bucketing (under {AUTO_MIN_SAVING}x)")
        if saving < AUTO_MIN_SAVING:
            return None
    return sampler
