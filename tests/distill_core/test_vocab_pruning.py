"""student.prune_vocab: a transformer student keeps the train split's pieces only, reads the rest as [UNK]."""

from __future__ import annotations

import copy

import pytest
import torch

from distill_core.config import ExperimentConfig
from distill_core.distiller import run
from distill_core.errors import ConfigError
from distill_core.export import load_student
from distill_core.students import build_student
from distill_core.vocab_pruning import PrunedEmbedding, kept_ids, prune_student, pruned


class Tokenizer:
    unk_token_id, all_special_ids = 1, [0, 1, 2]


def transformer_options(teacher) -> dict:
    return {"preset": "custom", "layers": 1, "hidden": 32, "heads": 2, "ffn": 64, "init_from_teacher": str(teacher)}


def test_the_remapping_keeps_the_seen_and_special_pieces_and_sends_the_rest_to_unk():
    keep = kept_ids(torch.tensor([[5, 9, 0], [9, 7, 0]]), 12, [0, 1, 2, 40])
    assert keep.tolist() == [0, 1, 2, 5, 7, 9]  # an out-of-range special is ignored
    table = torch.nn.Embedding(12, 4, padding_idx=0)
    small = pruned(table, keep, unk_id=1)
    assert small.table.weight.shape == (6, 4) and small.table.padding_idx == 0
    assert small.id_map.tolist() == [0, 1, 2, 1, 1, 3, 1, 4, 1, 5, 1, 1]
    ids = torch.arange(12)
    expected = table(torch.where(torch.isin(ids, keep), ids, torch.tensor(1)))
    assert torch.equal(small(ids), expected)


def test_a_pruned_away_piece_can_read_its_nearest_kept_piece_instead_of_unk():
    table = torch.nn.Embedding(6, 2)
    with torch.no_grad():
        table.weight.copy_(torch.tensor([[0.0, 0.0], [1.0, 1.0], [1.0, 0.0], [0.0, 1.0], [0.9, 0.1], [0.2, 2.0]]))
    small = pruned(table, torch.tensor([0, 1, 2, 3]), unk_id=1, unseen="nearest")
    assert small.id_map.tolist() == [0, 1, 2, 3, 2, 3]  # 4 is nearest to 2, 5 to 3 (cosine)
    assert torch.equal(small(torch.tensor([4, 5])), table(torch.tensor([2, 3])))


def test_a_pruned_student_computes_the_unpruned_logits_on_kept_pieces(tiny_teacher):
    from transformers import AutoConfig

    vocab = AutoConfig.from_pretrained(tiny_teacher).vocab_size
    whole = build_student("transformer", vocab, 3, 128, transformer_options(tiny_teacher)).eval()
    student = copy.deepcopy(whole)  # the same random head
    train = torch.tensor([[0, 4, 5, 6, 2], [0, 6, 7, 8, 2]])
    info = prune_student(student, train, Tokenizer())
    assert info == {"kept": 8, "of": vocab, "unseen": "unk"}  # 0, 1, 2 and 4..8
    assert isinstance(student.bert.embeddings.word_embeddings, PrunedEmbedding)
    assert sum(p.numel() for p in student.parameters()) == sum(p.numel() for p in whole.parameters()) - (vocab - 8) * 32
    kept = torch.tensor([[0, 8, 4, 5, 2], [0, 7, 7, 6, 2]])
    torch.testing.assert_close(student(kept), whole(kept), rtol=0, atol=0)
    unseen = torch.tensor([[0, 9, 4, 2]])
    torch.testing.assert_close(student(unseen), whole(torch.tensor([[0, 1, 4, 2]])), rtol=0, atol=0)


def test_a_pruned_run_exports_a_pruned_student_that_reloads_and_classifies_like_the_test_report(make_config,
                                                                                               thucnews_slice,
                                                                                               tiny_teacher):
    raw = make_config(student={"type": "transformer", "vocab": "teacher", "prune_vocab": True,
                               "options": transformer_options(tiny_teacher)}, train={"epochs": 1})
    results = run(ExperimentConfig.from_dict(raw))
    pruned_info = results["embedding_init"]["pruned_vocab"]
    assert 0 < pruned_info["kept"] < pruned_info["of"]
    assert results["size"]["student"]["parameters"] < results["size"]["teacher"]["parameters"]
    predictor = load_student(results["export_dir"])
    assert predictor.model.bert.embeddings.word_embeddings.table.num_embeddings == pruned_info["kept"]
    rows = [line.split("\t") for line in thucnews_slice["test"].read_text(encoding="utf-8").splitlines()]
    predicted = predictor.predict([text for text, _ in rows])
    labels = predictor.labels  # the file holds label indices
    accuracy = sum(p["label"] == labels[int(i)] for p, (_, i) in zip(predicted, rows, strict=True)) / len(rows)
    assert accuracy == pytest.approx(results["student"]["accuracy"], abs=1e-9)


@pytest.mark.parametrize("student", [{"type": "textcnn", "vocab": "teacher"}, {"type": "transformer", "vocab": "char"}])
def test_pruning_is_refused_outside_a_transformer_on_the_teachers_pieces(make_config, student):
    with pytest.raises(ConfigError) as err:
        ExperimentConfig.from_dict(make_config(student={**student, "prune_vocab": True}))
    assert err.value.field == "student.prune_vocab"
