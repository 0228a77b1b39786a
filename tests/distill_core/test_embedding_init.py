"""Students start from the teacher's input embeddings or a word-vector file; widths bridged by a folded projection."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from distill_core.config import ExperimentConfig, StudentConfig
from distill_core.distiller import run
from distill_core.embedding_init import ProjectedEmbedding, fold_embeddings, initialise_embeddings, resolve_source
from distill_core.errors import ConfigError
from distill_core.export import load_student
from distill_core.students import build_student
from distill_core.teachers import load_teacher


def word_teacher(path: Path, words: list[str], hidden: int = 16, seed: int = 0) -> Path:
    """A tiny random English BERT whose vocabulary holds `words` whole, saved with save_pretrained."""
    from transformers import BertForSequenceClassification

    from distill_core.teacher_training import BERT_SPECIALS, bert_config, save_char_tokenizer

    letters = "abcdefghijklmnopqrstuvwxyz"
    tokens = [*BERT_SPECIALS, *words, *letters, *(f"##{c}" for c in letters), "?"]
    tokenizer = save_char_tokenizer(tokens, path)
    torch.manual_seed(seed)
    config = bert_config(len(tokenizer), ["a", "b"], hidden, 1, 2, hidden * 2, max_position_embeddings=64)
    BertForSequenceClassification(config).save_pretrained(path)
    return path


def test_teacher_rows_are_copied_when_the_widths_match(tmp_path):
    teacher, tokenizer = load_teacher(word_teacher(tmp_path / "t", ["city", "town"], hidden=16), "cpu")
    student = build_student("bilstm", len(tokenizer), 2, 16, {"hidden_size": 8, "fc_size": 8})
    info = initialise_embeddings(student, StudentConfig(type="bilstm", vocab="teacher", embedding_dim=16,
                                                        embedding_init="teacher"), teacher=teacher)
    source = teacher.get_input_embeddings().weight.detach()
    expected = (source - source.mean(dim=0)) / (source - source.mean(dim=0)).std()
    assert isinstance(student.embedding, torch.nn.Embedding)
    assert torch.allclose(student.embedding.weight, expected, atol=1e-5)
    assert info == {"source": "teacher", "source_dim": 16, "embedding_dim": 16, "projected": False, "projection": None,
                    "covered": len(tokenizer), "vocab_size": len(tokenizer)}


def test_other_widths_train_through_a_projection_that_folds_into_a_plain_table(tmp_path):
    teacher, tokenizer = load_teacher(word_teacher(tmp_path / "t", ["city", "town"], hidden=32), "cpu")
    student = build_student("textcnn", len(tokenizer), 2, 8, {"num_filters": 4})
    plain_parameters = sum(p.numel() for p in student.parameters())
    info = initialise_embeddings(student, StudentConfig(vocab="teacher", embedding_dim=8, embedding_init="teacher",
                                                        embedding_projection="learned"), teacher=teacher)
    assert info["projected"] and info["source_dim"] == 32
    assert isinstance(student.embedding, ProjectedEmbedding)
    assert student.embedding.table.weight.shape == (len(tokenizer), 32)
    assert student.embedding.proj.weight.shape == (8, 32)
    ids = torch.tensor([[5, 6, 7, 0]])
    student.eval()
    before = student(ids)
    with torch.no_grad():  # the scale of a random start: unit std over the vocabulary
        assert float(student.embedding(torch.arange(len(tokenizer))).std()) == pytest.approx(1.0, abs=0.05)
    fold_embeddings(student)
    assert isinstance(student.embedding, torch.nn.Embedding) and student.embedding.weight.shape == (len(tokenizer), 8)
    assert torch.allclose(student(ids), before, atol=1e-5)
    assert sum(p.numel() for p in student.parameters()) == plain_parameters


def test_a_projection_once_is_the_folded_start_and_a_frozen_one_trains_the_projection_only(tmp_path):
    teacher, tokenizer = load_teacher(word_teacher(tmp_path / "t", ["city", "town"], hidden=32), "cpu")
    starts = {}
    for projection in ("once", "frozen", "learned"):
        student = build_student("textcnn", len(tokenizer), 2, 8, {"num_filters": 4})
        info = initialise_embeddings(student, StudentConfig(vocab="teacher", embedding_dim=8, embedding_init="teacher",
                                                            embedding_projection=projection), teacher=teacher)
        assert info["projection"] == projection
        trained = {name for name, p in student.named_parameters() if p.requires_grad and name.startswith("embedding")}
        starts[projection] = trained
        if projection != "once":
            fold_embeddings(student)
        starts[projection, "table"] = student.embedding.weight.detach()
    assert starts["once"] == {"embedding.weight"}  # a plain table: nothing else to train
    assert starts["frozen"] == {"embedding.proj.weight"}
    assert starts["learned"] == {"embedding.table.weight", "embedding.proj.weight"}
    assert torch.allclose(starts["once", "table"], starts["learned", "table"], atol=1e-5)  # the same start
    assert torch.allclose(starts["frozen", "table"], starts["learned", "table"], atol=1e-5)


def test_auto_picks_the_teacher_for_classic_students_on_its_pieces():
    assert resolve_source(StudentConfig(type="bigru", vocab="teacher", embedding_init="auto")) == "teacher"
    assert resolve_source(StudentConfig(type="transformer", vocab="teacher", embedding_init="auto")) == "random"
    assert resolve_source(StudentConfig(type="textcnn", vocab="word", embedding_init="auto")) == "random"
    assert resolve_source(StudentConfig(type="textcnn", vocab="word", embedding_init="auto",
                                        embedding_file="v.txt")) == "file"


def test_a_word_vector_file_fills_the_words_it_has(tmp_path):
    vectors = tmp_path / "vectors.txt"
    vectors.write_text("3 4\ncity 1 0 0 0\ntown 0 1 0 0\nunused 9 9 9 9\n", encoding="utf-8")
    tokens = ["[PAD]", "[UNK]", "[SEP]", "[MASK]", "city", "Town", "absent"]
    student = build_student("textcnn", len(tokens), 2, 4, {"num_filters": 2})
    random_rows = student.embedding.weight.detach().clone()
    info = initialise_embeddings(student, StudentConfig(vocab="word", embedding_dim=4, embedding_init="file",
                                                        embedding_file=str(vectors)), tokens=tokens, seed=3)
    weight = student.embedding.weight.detach()
    assert info["covered"] == 2 and not info["projected"]  # "Town" found through its lower-cased form
    city, town = weight[4], weight[5]
    assert torch.argmax(city) == 0 and torch.argmax(town) == 1
    assert torch.allclose(weight[0], torch.zeros(4))
    assert not torch.allclose(weight[6], random_rows[6])  # a fresh seeded random row, not a vector


def test_config_refuses_inits_that_cannot_apply(make_config):
    with pytest.raises(ConfigError, match="needs the teacher's word pieces") as err:
        ExperimentConfig.from_dict(make_config(student={"vocab": "word", "embedding_init": "teacher"}))
    assert err.value.field == "student.embedding_init"
    with pytest.raises(ConfigError, match="Choose a word-vector file"):
        ExperimentConfig.from_dict(make_config(student={"vocab": "word", "embedding_init": "file"}))
    with pytest.raises(ConfigError, match="TextCNN, BiLSTM and BiGRU"):
        ExperimentConfig.from_dict(make_config(student={"type": "transformer", "vocab": "teacher",
                                                        "embedding_init": "teacher"}))
    with pytest.raises(ConfigError, match="only read with embedding_init"):
        ExperimentConfig.from_dict(make_config(student={"embedding_file": "/x.txt", "embedding_init": "random"}))
    with pytest.raises(ConfigError, match="student.embedding_init='glove' is not one of"):
        ExperimentConfig.from_dict(make_config(student={"embedding_init": "glove"}))


def test_a_run_from_the_teacher_exports_a_plain_student(make_config, tmp_path):
    raw = make_config(student={"type": "bigru", "vocab": "teacher", "embedding_dim": 12, "embedding_init": "teacher",
                               "options": {"hidden_size": 8, "fc_size": 8}}, train={"epochs": 1})
    results = run(ExperimentConfig.from_dict(raw))
    assert results["embedding_init"]["source"] == "teacher" and results["embedding_init"]["projected"]
    predictor = load_student(raw["output_dir"])
    assert isinstance(predictor.model.embedding, torch.nn.Embedding)
    assert predictor.model.embedding.weight.shape[1] == 12
    assert json.loads((Path(raw["output_dir"]) / "student.json").read_text())["embedding_dim"] == 12
