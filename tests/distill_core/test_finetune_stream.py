"""Fine-tuning a teacher streams its splits from token stores: the in-memory encoding's batches, bitwise,
exact resume, cancel while tokenising."""

from __future__ import annotations

import tempfile

import pytest
import torch
from transformers import AutoTokenizer

from distill_core import streaming
from distill_core.config import ExperimentConfig
from distill_core.distiller import run
from distill_core.encoding import Encoded, label_tensor, load_splits
from distill_core.errors import RunCancelled
from distill_core.finetune import tokenise_splits
from distill_core.progress import Phases
from distill_core.run_parts import NullSink
from distill_core.vocab import TeacherPieces
from tests.distill_core.conftest import CancelAt, ListSink
from tests.distill_core.test_multilabel import multilabel_files  # noqa: F401 (a fixture)

CPU = torch.device("cpu")


def in_memory(config: ExperimentConfig, tokenizer) -> dict[str, Encoded]:
    """The splits as fine-tuning encoded them before it streamed: whole splits, zero soft targets."""
    out = {}
    for name, split in load_splits(config).items():
        ids, lengths = TeacherPieces(tokenizer).encode(split.texts, split.pairs, config.data.max_length)
        y = label_tensor(split.labels, len(config.data.labels), config.data.multi_label)
        out[name] = Encoded(ids, lengths, y, torch.zeros(len(y), len(config.data.labels)))
    return out


def assert_same_batches(config: ExperimentConfig, cache_dir=None) -> dict:
    tokenizer = AutoTokenizer.from_pretrained(config.teacher.path)
    sources, _ = streaming.plan_splits(config, None)
    stored = tokenise_splits(config, sources, TeacherPieces(tokenizer), cache_dir, Phases(NullSink()))
    memory = in_memory(config, tokenizer)
    assert memory.keys() == stored.keys()
    for name, a in memory.items():
        b = stored[name]
        assert len(a) == len(b) and torch.equal(a.labels, b.labels), name
        order = torch.randperm(len(a), generator=torch.Generator().manual_seed(3))
        for index in order.split(16):  # every example, in batches of mixed lengths
            for x, y in zip(a.batch(index, CPU), b.batch(index, CPU), strict=True):
                assert x.dtype == y.dtype and torch.equal(x, y), name
    return stored


def test_streamed_batches_equal_the_in_memory_encoding(make_config):
    stored = assert_same_batches(ExperimentConfig.from_dict(make_config(kind="finetune_teacher")))
    assert {name: len(split) for name, split in stored.items()} == {"train": 200, "dev": 60, "test": 60}


def test_a_held_out_dev_split_and_text_pairs_stream_the_same_rows(make_config, thucnews_slice, tmp_path):
    rows = thucnews_slice["train"].read_text(encoding="utf-8").splitlines()
    paired = tmp_path / "pairs.tsv"
    paired.write_text("".join(f"{line}\t{rows[-1 - i].split(chr(9))[0]}\n" for i, line in enumerate(rows)),
                      encoding="utf-8")
    config = ExperimentConfig.from_dict(make_config(kind="finetune_teacher", data={
        "train": str(paired), "dev": None, "test": None, "text_pair_column": 2}))
    stored = assert_same_batches(config, tmp_path / "cache")
    assert (len(stored["train"]), len(stored["dev"])) == (180, 20)
    assert len(list((tmp_path / "cache" / "tokens").iterdir())) == 2  # kept for the next run


def test_multi_label_rows_stream_the_same_multi_hot_labels(make_config, multilabel_files):  # noqa: F811
    config = ExperimentConfig.from_dict(make_config(kind="finetune_teacher", data={
        **{name: str(path) for name, path in multilabel_files.items()}, "multi_label": True}))
    stored = assert_same_batches(config)
    assert stored["train"].labels.dtype == torch.float32 and stored["train"].labels.sum(dim=1).max() == 2


def test_a_fine_tune_resumed_mid_epoch_equals_an_uninterrupted_one(make_config, tmp_path):
    from safetensors.torch import load_file

    raw = make_config(kind="finetune_teacher", data={"dev": None},
                      train={"epochs": 2, "checkpoint_every": 2, "learning_rate": 1e-3})
    straight = ListSink()
    run(ExperimentConfig.from_dict({**raw, "output_dir": str(tmp_path / "a")}), sink=straight)
    cache = tmp_path / "cache"
    config_b = ExperimentConfig.from_dict({**raw, "output_dir": str(tmp_path / "b")})
    cancel = CancelAt(3)  # mid-epoch (6 steps an epoch); the checkpoint is saved at the cancel
    with pytest.raises(RunCancelled):
        run(config_b, sink=cancel, should_cancel=cancel.should_cancel, cache_dir=cache)
    stores = sorted((cache / "tokens").iterdir())
    resumed = ListSink()
    results = run(config_b, sink=resumed, cache_dir=cache)
    assert sorted((cache / "tokens").iterdir()) == stores and len(stores) == 3  # read back, not re-tokenised
    assert results["resumed_from"] == 3 and results["steps"] == straight.of("result")[0]["steps"] == 12
    assert [(p["step"], p["metrics"]) for p in resumed.of("step")] == [
        (p["step"], p["metrics"]) for p in straight.of("step") if p["step"] > 3]
    assert resumed.of("result")[0]["student"] == straight.of("result")[0]["student"]
    a, b = load_file(str(tmp_path / "a" / "model.safetensors")), load_file(str(tmp_path / "b" / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_cancelling_while_tokenising_stops_before_training_and_leaves_no_scratch(make_config, tmp_path,
                                                                                 monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    sink = ListSink()

    def should_cancel() -> bool:  # true once the tokenising phase has started
        return any(p["name"] == "tokenising" for p in sink.of("phase"))

    with pytest.raises(RunCancelled, match="tokenis"):
        run(ExperimentConfig.from_dict(make_config(kind="finetune_teacher")), sink=sink, should_cancel=should_cancel)
    assert [p["name"] for p in sink.of("phase") if not p["finished"]][-1] == "tokenising"
    assert not sink.of("start") and list((tmp_path / "tmp").iterdir()) == []


def test_every_phase_reports_progress(make_config):
    sink = ListSink()
    run(ExperimentConfig.from_dict(make_config(kind="finetune_teacher", train={"epochs": 1})), sink=sink)
    ended = {p["name"]: p for p in sink.of("phase") if p["finished"]}
    assert list(ended) == ["reading", "tokenising", "training", "evaluating", "export", "size"]
    assert ended["reading"]["done"] == ended["reading"]["total"] == 4
    assert ended["tokenising"]["done"] == ended["tokenising"]["total"] == 320
    assert ended["training"]["total"] == 7 and ended["evaluating"]["total"] == 60
