"""Augmented copies stream to disk: the same copies at any chunk size, cached by key, joined to the originals."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from distill_core import augment_store, streaming
from distill_core.augment import augment_texts
from distill_core.config import ExperimentConfig
from distill_core.distiller import load_teachers, run
from distill_core.errors import RunCancelled
from distill_core.progress import Phases
from distill_core.run_parts import NullSink
from distill_core.vocab_pruning import kept_ids, split_ids
from tests.distill_core.conftest import CancelAt, ListSink

AUGMENT = {"enabled": True, "n_iter": 3, "p_mask": 0.2, "p_replace": 0.2, "p_ng": 0.3}
CPU = torch.device("cpu")


def _copies(config: ExperimentConfig, root, rows: int) -> list[str]:
    sources, _ = streaming.plan_splits(config, None)
    teachers = load_teachers(config, CPU, config.data.labels)
    with Phases(NullSink()).phase("augmenting", total=2 * sources["train"].rows) as progress:
        source = augment_store.copies_source(config, sources["train"], teachers[0], root, progress, rows=rows)
        assert progress.done == 2 * sources["train"].rows
    return [text for texts, _, _ in source.chunks(config) for text in texts]


def _train_texts(config: ExperimentConfig) -> list[str]:
    sources, _ = streaming.plan_splits(config, None)
    return [text for texts, _, _ in sources["train"].chunks(config) for text in texts]


@pytest.mark.parametrize("data", [{}, {"dev": None}])  # a dev file, or dev held out of the train file
def test_the_copies_do_not_depend_on_the_chunk_size(make_config, tmp_path, data):
    config = ExperimentConfig.from_dict(make_config(augment={**AUGMENT, "max_examples": 400}, data=data))
    expected = augment_texts(_train_texts(config), config.augment, config.seed)
    assert 200 < len(expected) <= 400  # the cap cuts the last chunk's copies
    for rows in (7, 64, 5000):
        assert _copies(config, tmp_path / f"chunks-{rows}", rows) == expected, rows


def test_a_row_keeps_its_copies_when_other_rows_change():
    from distill_core.config import AugmentConfig

    cfg = AugmentConfig(enabled=True, n_iter=4, p_mask=0.3, p_replace=0.0, p_ng=0.0)
    texts = ["央行宣布降准", "国足客场逼平对手", "新款手机发布"]
    changed = ["股市收盘上涨", *texts[1:]]  # masking only: the ranking plays no part

    def copies_of_row(row_texts, row):
        return [c for c in augment_texts(row_texts, cfg, 1) if len(c.replace("[MASK]", "#")) == len(row_texts[row])
                and all(a in (b, "#") for a, b in zip(c.replace("[MASK]", "#"), row_texts[row], strict=True))]

    assert copies_of_row(texts, 1) == copies_of_row(changed, 1) and copies_of_row(texts, 1)


def test_the_copies_are_cached_by_source_options_and_seed(make_config, tmp_path, monkeypatch):
    config = ExperimentConfig.from_dict(make_config(augment=AUGMENT))
    first = _copies(config, tmp_path, 64)
    assert len(list((tmp_path / "augment").iterdir())) == 1
    monkeypatch.setattr(augment_store, "_build", lambda *a: pytest.fail("rebuilt despite the cache"))
    assert _copies(config, tmp_path, 5000) == first  # the chunk size is not part of the key
    monkeypatch.undo()
    _copies(ExperimentConfig.from_dict(make_config(augment=AUGMENT, seed=8)), tmp_path, 64)
    _copies(ExperimentConfig.from_dict(make_config(augment={**AUGMENT, "p_mask": 0.3})), tmp_path, 64)
    assert len(list((tmp_path / "augment").iterdir())) == 3


def test_the_joined_train_split_is_the_originals_then_their_teacher_labelled_copies(make_config, tmp_path):
    config = ExperimentConfig.from_dict(make_config(augment=AUGMENT))
    sources, vocab = streaming.plan_splits(config, "char")
    teachers = load_teachers(config, CPU, config.data.labels)
    with Phases(NullSink()).phase("augmenting") as progress:
        sources["augmented"] = augment_store.copies_source(config, sources["train"], teachers[0], tmp_path, progress)
    encoded = streaming.encode_sources(config, sources, vocab, teachers, CPU, tmp_path)
    train, copies = encoded["train"], encoded["augmented"]
    split = augment_store.joined(train, copies, multi_label=False)
    assert len(split) == len(train) + len(copies) and len(copies) > len(train)
    assert np.array_equal(split.lengths(), np.concatenate([train.lengths(), copies.lengths()]))
    index = torch.randperm(len(split), generator=torch.Generator().manual_seed(0))[:50]
    ids, lengths, y, z = split.batch(index, CPU)
    assert ids.size(1) == int(lengths.max())  # padded to the batch's longest example, like one store
    for k, i in enumerate(index.tolist()):
        part, row = (train, i) if i < len(train) else (copies, i - len(train))
        one = part.batch(torch.tensor([row]), CPU)
        assert torch.equal(ids[k, : lengths[k]], one[0][0, : lengths[k]]) and (ids[k, lengths[k]:] == 0).all()
        assert torch.equal(z[k], one[3][0])
        assert y[k] == (one[2][0] if part is train else one[3][0].argmax())  # a copy's label: the teacher's arg-max
    parts = split_ids(split)  # vocabulary pruning reads both stores' ids, a chunk at a time
    assert torch.equal(kept_ids(parts, vocab.vocab_size, []), kept_ids(np.concatenate(parts), vocab.vocab_size, []))


def test_an_augmented_run_resumed_mid_epoch_equals_an_uninterrupted_one(make_config, tmp_path):
    from safetensors.torch import load_file

    raw = make_config(augment={**AUGMENT, "n_iter": 1}, train={"epochs": 2, "checkpoint_every": 2})
    straight = ListSink()
    run(ExperimentConfig.from_dict({**raw, "output_dir": str(tmp_path / "a")}), sink=straight)
    config_b = ExperimentConfig.from_dict({**raw, "output_dir": str(tmp_path / "b")})
    steps_per_epoch = straight.of("start")[0]["steps_per_epoch"]
    with pytest.raises(RunCancelled):
        cancel = CancelAt(steps_per_epoch + 3)  # mid-way through the second epoch
        run(config_b, sink=cancel, should_cancel=cancel.should_cancel, cache_dir=tmp_path / "cache")
    resumed = ListSink()
    results = run(config_b, sink=resumed, cache_dir=tmp_path / "cache")  # copies, stores and logits read back
    assert results["resumed_from"] == steps_per_epoch + 3
    assert [(p["step"], p["metrics"]) for p in resumed.of("step")] == [
        (p["step"], p["metrics"]) for p in straight.of("step") if p["step"] > steps_per_epoch + 3]
    assert resumed.of("result")[0]["student"] == straight.of("result")[0]["student"]
    a, b = load_file(str(tmp_path / "a" / "model.safetensors")), load_file(str(tmp_path / "b" / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    meta = json.loads(next((tmp_path / "cache" / "augment").iterdir()).joinpath("meta.json").read_text())
    assert results["examples"]["train"] == 200 + meta["rows"]


def test_a_run_whose_augmentation_makes_no_copy_trains_on_the_originals(make_config, tmp_path):
    rows = open(make_config()["data"]["train"], encoding="utf-8").read().splitlines()
    train = tmp_path / "unspaced.tsv"  # no spaces: units are characters, and joined back they are the text again
    train.write_text("".join("".join(r.split("\t")[0].split()) + "\t" + r.split("\t")[1] + "\n" for r in rows),
                     encoding="utf-8")
    unchanged = {"enabled": True, "n_iter": 2, "p_mask": 0.0, "p_replace": 0.0, "p_ng": 0.0}  # copies = originals
    results = run(ExperimentConfig.from_dict(make_config(augment=unchanged, data={"train": str(train)},
                                                         train={"epochs": 1}, output_dir=None)))
    assert results["examples"]["train"] == len(rows) == 200


def test_multi_label_copies_are_labelled_with_the_teachers_positive_logits(make_config, tmp_path):
    from tests.conftest import demo_labels

    labels = demo_labels()
    rows = open(make_config()["data"]["train"], encoding="utf-8").read().splitlines()
    train = tmp_path / "ml.tsv"  # every row with its label and the next one
    train.write_text("".join(f"{r.split(chr(9))[0]}\t{labels[int(r.split(chr(9))[1])]},"
                             f"{labels[(int(r.split(chr(9))[1]) + 1) % 10]}\n" for r in rows), encoding="utf-8")
    config = ExperimentConfig.from_dict(make_config(augment=AUGMENT, data={
        "train": str(train), "dev": None, "test": None, "multi_label": True}))
    sources, vocab = streaming.plan_splits(config, "char")
    teachers = load_teachers(config, CPU, config.data.labels)
    with Phases(NullSink()).phase("augmenting") as progress:
        sources["augmented"] = augment_store.copies_source(config, sources["train"], teachers[0], tmp_path, progress)
    encoded = streaming.encode_sources(config, sources, vocab, teachers, CPU, tmp_path)
    split = augment_store.joined(encoded["train"], encoded["augmented"], multi_label=True)
    n = len(encoded["train"])
    _, _, y, z = split.batch(torch.tensor([0, n, 1, n + 1]), CPU)
    assert y.dtype == torch.float32 and y.shape == (4, 10)
    assert (y[[0, 2]].sum(dim=1) == 2).all()  # the originals' two gold labels
    assert torch.equal(y[[1, 3]], (z[[1, 3]] > 0).float())  # the copies': the teacher's positive logits
