"""The bucketing sampler: similar lengths per batch, every example once an epoch, seeded and resumable."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from distill_core.bucketing import (
    AUTO_MIN_SAVING,
    BucketBatchSampler,
    SeededPermutation,
    example_lengths,
    padding_fraction,
    sampler_for,
)
from distill_core.config import ExperimentConfig
from distill_core.distiller import Encoded, run
from distill_core.errors import ConfigError, RunCancelled
from tests.distill_core.conftest import CancelAt, ListSink


def mixed_lengths(n: int = 1000, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(3, 120, size=n)


def test_every_epoch_covers_each_example_once_in_ceil_n_over_b_batches():
    sampler = BucketBatchSampler(mixed_lengths(1003), batch_size=32, seed=1, pool_batches=4)
    for epoch in range(3):
        batches = sampler.epoch_batches(epoch)
        assert len(batches) == len(sampler) == 32  # ceil(1003 / 32)
        assert sorted(np.concatenate(batches).tolist()) == list(range(1003))
        assert sorted(len(b) for b in batches)[1:] == [32] * 31  # only one batch may be short


def test_batches_pad_far_less_than_random_batches():
    lengths = mixed_lengths()
    bucketed = BucketBatchSampler(lengths, batch_size=32, seed=1).epoch_batches(0)
    order = np.random.default_rng(1).permutation(len(lengths))
    random_batches = [order[i: i + 32] for i in range(0, len(order), 32)]
    assert padding_fraction(lengths, bucketed) < 0.15 < 0.4 < padding_fraction(lengths, random_batches)


def test_a_batch_mixes_the_lengths_of_its_width_class():
    """Exact-length batches cost accuracy where length predicts the class (bucketing.py): batches are cut from
    16-token width classes in random order, so a batch spans at most two classes but many lengths."""
    lengths = mixed_lengths()
    batches = BucketBatchSampler(lengths, batch_size=32, seed=1, width_step=16).epoch_batches(0)
    assert max(len(set((-(-lengths[b] // 16)).tolist())) for b in batches) <= 2
    assert np.mean([len(set(lengths[b].tolist())) for b in batches]) > 8


def test_the_same_seed_and_epoch_give_the_same_batches_and_others_differ():
    lengths = mixed_lengths()
    a, b = BucketBatchSampler(lengths, 32, seed=5), BucketBatchSampler(lengths, 32, seed=5)
    assert all(np.array_equal(x, y) for x, y in zip(a.epoch_batches(2), b.epoch_batches(2), strict=True))
    first = [x.tolist() for x in a.epoch_batches(0)]
    assert first != [x.tolist() for x in a.epoch_batches(1)]
    assert first != [x.tolist() for x in BucketBatchSampler(lengths, 32, seed=6).epoch_batches(0)]


def test_a_restored_state_yields_the_rest_of_the_epoch_then_the_next():
    lengths = mixed_lengths(300)
    straight = BucketBatchSampler(lengths, 16, seed=3)
    expected = [b.tolist() for _ in range(2) for b in straight]  # two whole epochs
    first = BucketBatchSampler(lengths, 16, seed=3)
    seen = []
    for batch in first:
        seen.append(batch.tolist())
        if len(seen) == 7:
            break
    resumed = BucketBatchSampler(lengths, 16, seed=3)
    resumed.load_state_dict(first.state_dict())
    seen += [b.tolist() for b in resumed]  # the rest of epoch 0
    assert resumed.state_dict()["epoch"] == 1 and len(seen) == len(straight)
    seen += [b.tolist() for b in resumed]  # epoch 1
    assert seen == expected


def test_a_state_of_another_split_is_refused():
    state = BucketBatchSampler(mixed_lengths(300), 16, seed=3).state_dict()
    with pytest.raises(ValueError, match="examples=300"):
        BucketBatchSampler(mixed_lengths(301), 16, seed=3).load_state_dict(state)


def test_lengths_come_from_an_encoded_split():
    split = Encoded(torch.zeros(3, 9, dtype=torch.long), torch.tensor([9, 2, 5]), torch.zeros(3, dtype=torch.long),
                    None)
    lengths = example_lengths(split)
    assert lengths.dtype == np.int32 and lengths.tolist() == [9, 2, 5]  # 4 bytes a row


def test_the_trainer_draws_the_samplers_batches(make_config, monkeypatch):
    from distill_core.token_store import StoredSplit  # without augmentation the splits are token stores

    used, train_lengths = [], []
    original = StoredSplit.batch

    def spy(self, index, device, width=None):
        if len(self) == 200:  # the train split (dev and test have 60)
            used.append(index.tolist())
            train_lengths[:] = [example_lengths(self)]
        return original(self, index, device, width)

    monkeypatch.setattr(StoredSplit, "batch", spy)
    config = ExperimentConfig.from_dict(make_config(train={"epochs": 2, "bucket_by_length": "on"}, output_dir=None))
    run(config)
    sampler = BucketBatchSampler(train_lengths[0], 32, seed=config.seed)
    assert used == [b.tolist() for epoch in (1, 2) for b in sampler.epoch_batches(epoch)]


def test_auto_buckets_only_where_it_cuts_the_padded_cells_enough():
    mixed = mixed_lengths()  # 3 to 119 tokens: random batches are about half padding
    narrow = np.random.default_rng(0).integers(17, 21, size=1000)  # like news titles: a few percent
    assert isinstance(sampler_for("auto", mixed, 32, seed=1), BucketBatchSampler)
    assert sampler_for("auto", narrow, 32, seed=1) is None
    assert isinstance(sampler_for("on", narrow, 32, seed=1), BucketBatchSampler)
    assert sampler_for("off", mixed, 32, seed=1) is None
    assert AUTO_MIN_SAVING > 1.0
    # The demo's augmented titles: 40 % padding, but bucketed batches would save only 1.2x: not bucketed.
    titles = np.random.default_rng(0).integers(6, 33, size=6000)
    assert sampler_for("auto", titles, 64, seed=3) is None


def test_the_default_is_auto_and_bad_values_are_refused(make_config):
    assert ExperimentConfig().train.bucket_by_length == "auto"  # on where random batches are mostly padding
    on = run(ExperimentConfig.from_dict(make_config(train={"epochs": 1, "bucket_by_length": "on"},
                                                    output_dir=None)))
    assert 0.0 <= on["student"]["accuracy"] <= 1.0
    with pytest.raises(ConfigError, match="is not one of: auto, on, off") as err:
        ExperimentConfig.from_dict(make_config(train={"bucket_by_length": "yes"}))
    assert err.value.field == "train.bucket_by_length"


@pytest.mark.parametrize("student", ["textcnn", "bigru"])
def test_a_bucketed_run_resumed_mid_epoch_matches_an_uninterrupted_one_bitwise(make_config, tmp_path, student):
    raw = make_config(train={"epochs": 2, "checkpoint_every": 3, "bucket_by_length": "on"},
                      student={"type": student, "embedding_dim": 16, "options": {}})
    straight = ListSink()
    run(ExperimentConfig.from_dict({**raw, "output_dir": str(tmp_path / "a")}), sink=straight)
    config_b = ExperimentConfig.from_dict({**raw, "output_dir": str(tmp_path / "b")})
    with pytest.raises(RunCancelled):
        cancel = CancelAt(5)  # mid-epoch: 7 batches of 32 an epoch
        run(config_b, sink=cancel, should_cancel=cancel.should_cancel)
    resumed = ListSink()
    results = run(config_b, sink=resumed)
    assert results["resumed_from"] == 5
    after = [(p["step"], p["metrics"]) for p in resumed.of("step")]
    assert after == [(p["step"], p["metrics"]) for p in straight.of("step") if p["step"] > 5]
    a, b = load_file(str(tmp_path / "a" / "model.safetensors")), load_file(str(tmp_path / "b" / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_textcnn_example_gives_the_same_logits_in_a_narrow_batch_and_a_wide_one():
    """Bucketed training sees narrow batches, evaluation wide ones: padding must not change an example's output."""
    from distill_core.students import TextCNN

    torch.manual_seed(0)
    model = TextCNN(50, 3, 8, filter_sizes=[2, 4], num_filters=4).eval()
    ids = torch.randint(1, 50, (3, 6))  # (3, 6): lengths 6, 3 and 1 (shorter than the widest filter)
    lengths = torch.tensor([6, 3, 1])
    ids[1, 3:], ids[2, 1:] = 0, 0
    wide = torch.nn.functional.pad(ids, (0, 10))  # (3, 16): ten more padding positions
    narrow = model(ids, lengths)
    assert torch.allclose(model(wide, lengths), narrow, atol=1e-6)
    assert torch.allclose(model(ids[1:2, :3], lengths[1:2]), narrow[1:2], atol=1e-6)


@pytest.mark.parametrize("n", [1, 2, 7, 1003, 65_537])
def test_the_seeded_permutation_is_a_permutation_computed_slice_by_slice(n):
    whole = SeededPermutation(n, [4, 1])[:]
    assert sorted(whole.tolist()) == list(range(n))
    assert np.array_equal(np.concatenate([SeededPermutation(n, [4, 1])[i: i + 100] for i in range(0, n, 100)]), whole)
    if n > 1000:  # shuffled, and another seed shuffles differently
        assert abs(np.corrcoef(np.arange(n), whole)[0, 1]) < 0.1
        assert not np.array_equal(SeededPermutation(n, [4, 2])[:], whole)
