"""The teacher-output cache: a hit skips the teacher, a changed input misses, concurrent builds are safe."""

from __future__ import annotations

import multiprocessing
from types import SimpleNamespace

import pytest
import torch

from distill_core import teacher_cache
from distill_core.config import ExperimentConfig
from distill_core.distiller import run


def split(texts, pairs=None):
    return SimpleNamespace(texts=texts, pairs=pairs)


def cache_key(checkpoint, split, max_length, extra=None) -> str:
    """The key a streamed split's entry gets: its ExamplesDigest, as streaming.py computes it chunk by chunk."""
    examples = teacher_cache.ExamplesDigest()
    examples.update(split.texts, split.pairs)
    return teacher_cache.key_for_examples(checkpoint, examples.hexdigest(), max_length, ("logits",), extra)


def get_or_compute(cache_dir, key, rows, compute) -> torch.Tensor:
    """get_or_write with the values in two parts, read back as a run reads them (memory-mapped fp32)."""
    from distill_core.token_store import Mapped

    def parts():
        values = compute()
        yield values[:1]
        yield values[1:]

    entry = teacher_cache.get_or_write(cache_dir, key, rows, parts)
    return torch.from_numpy(Mapped.npy(entry / "logits.npy").array.copy())


def test_a_second_run_reads_the_cache_and_runs_no_teacher_forward(make_config, tmp_path, monkeypatch):
    config = ExperimentConfig.from_dict(make_config(train={"epochs": 1}, output_dir=None))
    first = run(config, cache_dir=tmp_path / "cache")
    entries = [p for p in (tmp_path / "cache").iterdir() if not p.name.startswith(".") and p.name != "tokens"]
    assert len(entries) == 2  # train and test (dev is judged on gold labels: no teacher pass)
    assert len(list((tmp_path / "cache" / "tokens").iterdir())) == 3  # the token stores of train, dev, test

    def no_teacher(*args, **kwargs):
        raise AssertionError("the teacher ran although its outputs were cached")

    monkeypatch.setattr("distill_core.streaming.teacher_logits", no_teacher)
    second = run(config, cache_dir=tmp_path / "cache")
    assert second["teacher"] == first["teacher"] and second["student"] == first["student"]


def test_the_key_changes_with_the_texts_the_length_and_the_checkpoint(tiny_teacher, tmp_path):
    base = cache_key(tiny_teacher, split(["a", "b"]), 16)
    assert base == cache_key(tiny_teacher, split(["a", "b"]), 16)
    assert base != cache_key(tiny_teacher, split(["a", "c"]), 16)
    assert base != cache_key(tiny_teacher, split(["a", "b"], ["x", "y"]), 16)
    assert base != cache_key(tiny_teacher, split(["a", "b"]), 32)
    assert base != cache_key(tiny_teacher, split(["a", "b"]), 16, extra={"augment": 1})
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(tiny_teacher, copy)
    assert cache_key(copy, split(["a", "b"]), 16) == base  # same content, other path
    (copy / "config.json").write_text((copy / "config.json").read_text().replace("}", ', "x": 1}', 1))
    assert cache_key(copy, split(["a", "b"]), 16) != base


def test_values_come_back_bitwise_unchanged_on_a_miss_and_a_hit(tmp_path):
    values = torch.tensor([[0.1234567, -3.3333333], [7.0, 1e-3]])
    miss = get_or_compute(tmp_path, "k", 2, lambda: values)
    hit = get_or_compute(tmp_path, "k", 2, lambda: pytest.fail("computed twice"))
    assert miss.dtype == hit.dtype == torch.float32
    assert torch.equal(miss, values) and torch.equal(hit, values)  # fp32 on disk: not rounded to fp16


def test_a_run_gives_the_same_losses_and_metrics_without_the_cache_on_a_miss_and_on_a_hit(make_config, tmp_path):
    from tests.distill_core.conftest import ListSink

    config = ExperimentConfig.from_dict(make_config(train={"epochs": 1}, output_dir=None))

    def losses_and_results(cache_dir):
        sink = ListSink()
        results = run(config, sink=sink, cache_dir=cache_dir)
        steps = [(p["step"], p["metrics"]) for kind, p in sink.events if kind in ("step", "eval")]
        return steps, {k: results[k] for k in ("student", "teacher", "best_dev")}

    uncached = losses_and_results(None)
    assert uncached == losses_and_results(tmp_path / "cache")  # a miss: computed, stored, read back
    assert uncached == losses_and_results(tmp_path / "cache")  # a hit: read only
    assert len(uncached[0]) > 5


def _build(args):
    cache_dir, value = args
    import time

    def slow():
        time.sleep(0.3)
        return torch.full((4, 2), float(value))

    return get_or_compute(cache_dir, "shared", 4, slow).tolist()


def test_two_processes_building_one_entry_agree_on_one_copy(tmp_path):
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        a, b = pool.map(_build, [(str(tmp_path), 1), (str(tmp_path), 2)])
    assert a == b  # both read the entry that won the rename
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shared"]  # no temp directories left


def test_teacher_logits_batch_by_length_but_return_input_order(tiny_teacher):
    from distill_core.teachers import load_teacher, teacher_logits

    model, tokenizer = load_teacher(tiny_teacher)
    texts = ["央行宣布降准0.5个百分点" * 3, "股市", "房价上涨", "足球比赛今晚开始", "游戏", "新电影上映了"]
    batched = teacher_logits(model, tokenizer, texts, None, 32, batch_size=2)
    one_by_one = torch.cat([teacher_logits(model, tokenizer, [t], None, 32, batch_size=1) for t in texts])
    assert batched.shape == (6, one_by_one.size(1))
    assert torch.allclose(batched, one_by_one, atol=1e-5)
    assert teacher_logits(model, tokenizer, [], None, 32).shape[0] == 0
