"""Augmentation (Tang et al.) is deterministic and labelled by the teacher; ensembles average teachers."""

from __future__ import annotations

import pytest
import torch

from distill_core.augment import augment_texts
from distill_core.config import AugmentConfig, ExperimentConfig
from distill_core.distiller import run
from distill_core.errors import CheckpointError, ConfigError
from distill_core.vocab import MASK
from tests.conftest import demo_labels

TEXTS = ["央行宣布降准", "国足客场逼平对手", "新款手机发布", "the market closes higher"]


def test_augmentation_is_deterministic_by_seed_and_distinct():
    cfg = AugmentConfig(enabled=True, n_iter=5, p_mask=0.2, p_replace=0.2, p_ng=0.5)
    first, again, other = augment_texts(TEXTS, cfg, 1), augment_texts(TEXTS, cfg, 1), augment_texts(TEXTS, cfg, 2)
    assert first == again and first != other
    assert len(set(first)) == len(first) and not set(first) & set(TEXTS)
    assert any(MASK in t for t in first)


def test_only_masking_keeps_the_length_and_replaces_with_corpus_units():
    cfg = AugmentConfig(enabled=True, n_iter=3, p_mask=0.5, p_replace=0.0, p_ng=0.0)
    for text in augment_texts(TEXTS[:1], cfg, 0):
        assert len(text.replace(MASK, "#")) == len(TEXTS[0])
    cfg = AugmentConfig(enabled=True, n_iter=3, p_mask=0.0, p_replace=1.0, p_ng=0.0, replace_window=100)
    corpus_chars = set("".join(TEXTS[:3]))
    assert all(set(t) <= corpus_chars for t in augment_texts(TEXTS[:3], cfg, 0))


def test_an_augmented_run_trains_on_teacher_labelled_copies(make_config):
    raw = make_config(augment={"enabled": True, "n_iter": 2}, train={"epochs": 1}, output_dir=None)
    results = run(ExperimentConfig.from_dict(raw))
    assert 200 < results["examples"]["train"] <= 600  # originals + up to 2 distinct copies each


def test_an_ensemble_averages_its_teachers_logits(make_config, tmp_path):
    from distill_core import streaming
    from distill_core.distiller import load_teachers
    from distill_core.testing import make_tiny_teacher

    text = "".join(open(p, encoding="utf-8").read() for p in make_config()["data"].values()
                   if isinstance(p, str) and p.endswith(".tsv"))
    second = make_tiny_teacher(tmp_path / "second", demo_labels(), text, layers=1, hidden=16, seed=5)
    config = ExperimentConfig.from_dict(make_config(teacher={"ensemble": [{"path": str(second), "weight": 3.0}]}))
    sources, encoder = streaming.plan_splits(config, "char")
    teachers = load_teachers(config, torch.device("cpu"), demo_labels())
    duo = streaming.encode_sources(config, sources, encoder, teachers, torch.device("cpu"), None)
    one = [streaming.encode_sources(config, sources, encoder, [t], torch.device("cpu"), None) for t in teachers]
    expected = one[0]["dev"].teacher * 0.25 + one[1]["dev"].teacher * 0.75
    assert torch.allclose(duo["dev"].teacher, expected, atol=1e-6)
    assert not torch.allclose(one[0]["dev"].teacher, one[1]["dev"].teacher)
    results = run(ExperimentConfig.from_dict(make_config(
        teacher={"ensemble": [{"path": str(second), "weight": 3.0}]}, train={"epochs": 1}, output_dir=None)))
    assert results["size"]["teachers"] == 2


def test_ensemble_members_are_checked(make_config, tmp_path):
    with pytest.raises(ConfigError, match=r"teacher.ensemble.0.weight must be greater than 0"):
        ExperimentConfig.from_dict(make_config(teacher={"ensemble": [{"path": "x", "weight": -1}]}))
    with pytest.raises(ConfigError, match=r"teacher.ensemble.0 must be"):
        ExperimentConfig.from_dict(make_config(teacher={"ensemble": [{"file": "x"}]}))
    config = ExperimentConfig.from_dict(make_config(teacher={"ensemble": [{"path": str(tmp_path / "gone")}]}))
    with pytest.raises(CheckpointError, match="Ensemble teacher 1") as err:
        run(config)
    assert err.value.field == "teacher.ensemble.0.path"


def test_augmenting_pairs_is_refused_with_a_reason(make_config):
    raw = make_config(augment={"enabled": True})
    raw["data"]["text_pair_column"] = 0
    with pytest.raises(ConfigError, match="sentence pairs is not supported"):
        ExperimentConfig.from_dict(raw)
