"""Augmentation by nearest neighbours in the teacher's embedding space: right neighbours, seeded, cached."""

from __future__ import annotations

import json

import torch

from distill_core.augment import augment_texts
from distill_core.augment_neighbours import candidate_ids, compute_neighbours, teacher_neighbours
from distill_core.config import AugmentConfig, ExperimentConfig
from distill_core.distiller import run
from distill_core.teachers import load_teacher
from tests.distill_core.test_embedding_init import word_teacher

WORDS = ["city", "town", "village", "river", "lake", "who", "what"]
TEXTS = ["What city is on the river ?", "Who lives in the town ?", "What lake is near the village ?"]


def placed_teacher(tmp_path):
    """A tiny English teacher whose embeddings put city/town/village together and river/lake together."""
    path = word_teacher(tmp_path / "teacher", WORDS, hidden=8)
    teacher, tokenizer = load_teacher(path, "cpu")
    weight = teacher.get_input_embeddings().weight
    with torch.no_grad():
        weight.mul_(0.01)
        for word, direction in {"city": 0, "town": 0, "village": 0, "river": 1, "lake": 1}.items():
            weight[tokenizer.convert_tokens_to_ids(word), direction] = 1.0 + 0.01 * len(word)
    return path, teacher, tokenizer


def test_neighbours_are_whole_word_pieces_nearest_first(tmp_path):
    _, teacher, tokenizer = placed_teacher(tmp_path)
    pieces = tokenizer.convert_ids_to_tokens(candidate_ids(tokenizer))
    assert "city" in pieces and "##a" not in pieces and "[MASK]" not in pieces and "?" not in pieces
    table = compute_neighbours(["city", "River", "unknownword", "?"], tokenizer,
                               teacher.get_input_embeddings().weight, k=2)
    assert set(table["city"]) == {"town", "village"}
    assert table["River"][0] == "Lake"  # capitalised like the word it replaces
    assert "unknownword" not in table and "?" not in table  # several pieces, or no whole-word piece


def test_neighbour_augmentation_is_deterministic_per_seed_and_draws_from_the_table():
    cfg = AugmentConfig(enabled=True, n_iter=6, p_mask=0.0, p_replace=0.6, p_ng=0.0, replace="teacher_neighbours")
    table = {"city": ["town"], "river": ["lake"], "town": ["village"], "village": ["city"], "lake": ["river"]}
    first, again, other = (augment_texts(TEXTS, cfg, s, neighbours=table) for s in (1, 1, 2))
    assert first == again and first != other and first
    for text in first:  # only words with neighbours change, each to one of its neighbours
        assert any(len(t.split()) == len(text.split()) and all(
            a == b or b in table.get(a, ()) for a, b in zip(t.split(), text.split(), strict=True)) for t in TEXTS)


def test_the_neighbour_table_is_cached_by_teacher_and_k(tmp_path, monkeypatch):
    path, teacher, tokenizer = placed_teacher(tmp_path)
    cache = tmp_path / "cache"
    words = [w for t in TEXTS for w in t.split()]
    first = teacher_neighbours(words, tokenizer, teacher, 2, cache, path)
    assert len(list(cache.glob("neighbours-*.json"))) == 1

    def fail(*args, **kwargs):
        raise AssertionError("recomputed despite the cache")

    monkeypatch.setattr("distill_core.augment_neighbours.compute_neighbours", fail)
    assert teacher_neighbours(words, tokenizer, teacher, 2, cache, path) == first
    monkeypatch.undo()
    teacher_neighbours(words, tokenizer, teacher, 3, cache, path)
    assert len(list(cache.glob("neighbours-*.json"))) == 2
    assert json.loads(next(cache.glob("neighbours-*.json")).read_text())


def test_a_run_with_neighbour_augmentation_labels_its_copies_with_the_teacher(tmp_path):
    path, _, _ = placed_teacher(tmp_path)
    data = tmp_path / "train.tsv"
    data.write_text("".join(f"{t}\t{'a' if i % 2 else 'b'}\n" for i, t in enumerate(TEXTS * 4)), encoding="utf-8")
    raw = {"name": "nn", "seed": 3, "data": {"train": str(data), "dev": str(data), "labels": ["a", "b"],
                                              "max_length": 16},
           "teacher": {"path": str(path)},
           "student": {"type": "textcnn", "vocab": "teacher", "embedding_dim": 8, "embedding_init": "teacher",
                       "options": {"num_filters": 4}},
           "augment": {"enabled": True, "n_iter": 4, "p_replace": 0.5, "replace": "teacher_neighbours",
                       "neighbours": 2},
           "train": {"epochs": 1, "batch_size": 8, "device": "cpu"}}
    cache = tmp_path / "teacher-cache"
    results = run(ExperimentConfig.from_dict(raw), cache_dir=cache)
    assert results["examples"]["train"] > 12  # the originals and their teacher-labelled copies
    assert list(cache.glob("neighbours-*.json"))
    again = run(ExperimentConfig.from_dict(raw), cache_dir=cache)
    assert again["examples"] == results["examples"] and again["student"]["accuracy"] == results["student"]["accuracy"]
