"""The streamed data path (token stores, mapped teacher logits) gives the tensors computed in memory, bitwise."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from distill_core import streaming
from distill_core.config import ExperimentConfig
from distill_core.distiller import build_encoder, load_splits, load_teachers
from distill_core.encoding import Encoded, label_tensor
from distill_core.teachers import label_order, teacher_logits


def _in_memory(config: ExperimentConfig, splits, encoder, teachers) -> dict[str, Encoded]:
    """Every split encoded and labelled straight from its texts in memory: what the stores must equal, bitwise."""
    labels, max_length = list(config.data.labels), config.data.max_length
    out = {}
    for name, split in splits.items():
        mean = None
        for t in teachers:
            logits = teacher_logits(t.model, t.tokenizer, split.texts, split.pairs, max_length,
                                    batch_size=max(64, config.train.batch_size), device=torch.device("cpu"))
            order = label_order(t.info["labels"], labels)
            logits = logits if order is None else logits[:, order]
            mean = logits * (t.weight / sum(m.weight for m in teachers)) + (0 if mean is None else mean)
        out[name] = Encoded(*encoder.encode(split.texts, split.pairs, max_length),
                            label_tensor(split.labels, len(labels), config.data.multi_label), mean)
    return out


def _both(config: ExperimentConfig, cache_dir=None):
    device = torch.device("cpu")
    teachers = load_teachers(config, device, config.data.labels)
    splits = load_splits(config)
    encoder = build_encoder(config, splits["train"], teachers[0].tokenizer)
    memory = _in_memory(config, splits, encoder, teachers)
    vocab_kind = None if config.student.vocab == "teacher" else config.student.vocab
    sources, vocab = streaming.plan_splits(config, vocab_kind)
    if vocab is not None:
        assert vocab.tokens == encoder.tokens  # the streamed vocabulary is Vocab.build's, in the same order
    stored = streaming.encode_sources(config, sources, vocab or encoder, teachers, device, cache_dir)
    return memory, stored


def _assert_same(memory, stored):
    assert memory.keys() == stored.keys()
    for name in memory:
        a, b = memory[name], stored[name]
        assert len(a) == len(b)
        assert torch.equal(a.lengths, torch.from_numpy(b.lengths()).long())
        index = torch.randperm(len(a), generator=torch.Generator().manual_seed(1))[:40]
        for x, y in zip(a.batch(index, torch.device("cpu")), b.batch(index, torch.device("cpu")), strict=True):
            assert torch.equal(x, y), name
        assert torch.equal(a.labels, b.labels) and torch.equal(a.teacher, b.teacher)


@pytest.mark.parametrize("vocab", ["char", "teacher"])
def test_streamed_splits_equal_the_in_memory_ones(make_config, vocab):
    config = ExperimentConfig.from_dict(make_config(student={"vocab": vocab}))
    _assert_same(*_both(config))


def test_a_held_out_dev_split_and_text_pairs_stream_the_same_rows(make_config, thucnews_slice, tmp_path):
    rows = thucnews_slice["train"].read_text(encoding="utf-8").splitlines()
    paired = tmp_path / "pairs.tsv"
    paired.write_text("".join(f"{line}\t{rows[-1 - i].split(chr(9))[0]}\n" for i, line in enumerate(rows)),
                      encoding="utf-8")
    config = ExperimentConfig.from_dict(make_config(data={"train": str(paired), "dev": None, "test": None,
                                                          "text_pair_column": 2}))
    memory, stored = _both(config, tmp_path / "cache")
    assert len(stored["dev"]) == len(rows) // 10 and len(stored["train"]) == len(rows) - len(rows) // 10
    _assert_same(memory, stored)
    sources, vocab = streaming.plan_splits(config, "char")
    again = streaming.encode_sources(config, sources, vocab, load_teachers(config, torch.device("cpu"),
                                                                           config.data.labels),
                                     torch.device("cpu"), tmp_path / "cache")
    _assert_same(memory, again)  # read back from the token and teacher caches


def test_stored_batches_give_back_their_pages(make_config):
    config = ExperimentConfig.from_dict(make_config())
    stored = _both(config)[1]["train"]
    index = torch.arange(len(stored))
    before = stored.batch(index, torch.device("cpu"))
    stored.release()  # drops the mapped pages; reading again faults them back in from the file
    after = stored.batch(index, torch.device("cpu"))
    assert all(torch.equal(x, y) for x, y in zip(before, after, strict=True))
    assert stored.lengths().dtype == np.int32 and stored.lengths().min() >= 1


def test_a_run_resumed_mid_epoch_from_cached_token_stores_equals_an_uninterrupted_one(make_config, tmp_path):
    from safetensors.torch import load_file

    from distill_core.distiller import run
    from distill_core.errors import RunCancelled
    from tests.distill_core.conftest import CancelAt, ListSink

    raw = make_config(data={"dev": None}, train={"epochs": 2, "checkpoint_every": 2})  # dev held out of train
    straight = ListSink()
    run(ExperimentConfig.from_dict({**raw, "output_dir": str(tmp_path / "a")}), sink=straight)
    cache = tmp_path / "cache"
    config_b = ExperimentConfig.from_dict({**raw, "output_dir": str(tmp_path / "b")})
    with pytest.raises(RunCancelled):
        cancel = CancelAt(4)  # mid-epoch (6 steps an epoch)
        run(config_b, sink=cancel, should_cancel=cancel.should_cancel, cache_dir=cache)
    stores = sorted(p.name for p in (cache / "tokens").iterdir())
    resumed = ListSink()
    results = run(config_b, sink=resumed, cache_dir=cache)  # token stores and teacher logits read back
    assert sorted(p.name for p in (cache / "tokens").iterdir()) == stores and len(stores) == 3
    assert results["resumed_from"] == 4
    assert [(p["step"], p["metrics"]) for p in resumed.of("step")] == [
        (p["step"], p["metrics"]) for p in straight.of("step") if p["step"] > 4]
    a, b = load_file(str(tmp_path / "a" / "model.safetensors")), load_file(str(tmp_path / "b" / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
