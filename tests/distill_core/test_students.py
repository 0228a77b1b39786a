"""Students: logits and features for single texts and pairs, options, init_from_teacher and export."""

from __future__ import annotations

import pytest
import torch

from distill_core.errors import ConfigError, UnknownNameError
from distill_core.export import load_student, save_student
from distill_core.students import StudentOutput, build_student, student_options, students
from distill_core.students_rnn import split_at
from distill_core.vocab import Vocab

VOCAB, LABELS, EMB = 40, 3, 12
TINY = {
    "textcnn": {"num_filters": 4},
    "bilstm": {"hidden_size": 8, "fc_size": 6},
    "bigru": {"hidden_size": 8, "fc_size": 6},
    "transformer": {"preset": "custom", "layers": 2, "hidden": 16, "heads": 2, "ffn": 32},
}
# (hidden states, their last width, attentions)
FEATURES = {"textcnn": (1, EMB, 0), "bilstm": (2, 16, 0), "bigru": (2, 16, 0), "transformer": (3, 16, 2)}


@pytest.fixture
def batch():
    torch.manual_seed(0)
    ids = torch.randint(3, VOCAB, (3, 7))
    lengths = torch.tensor([7, 5, 2])
    ids[1, 5:], ids[2, 2:] = 0, 0
    pair_ids = torch.randint(3, VOCAB, (3, 4))
    pair_lengths = torch.tensor([4, 1, 3])
    return ids, lengths, pair_ids, pair_lengths


def test_every_registered_student_is_covered_here():
    assert students.names() == sorted(TINY)


@pytest.mark.parametrize("name", sorted(TINY))
def test_every_student_gives_logits_and_features_of_the_announced_shapes(name, batch):
    ids, lengths, _, _ = batch
    torch.manual_seed(0)
    model = build_student(name, VOCAB, LABELS, EMB, TINY[name]).eval()
    out = model.features(ids, lengths)
    n_hidden, width, n_attn = FEATURES[name]
    assert isinstance(out, StudentOutput) and out.logits.shape == (3, LABELS)
    assert torch.allclose(model(ids, lengths), out.logits, atol=1e-6)
    assert (model.num_hidden_states(), model.hidden_size(), model.num_attentions()) == (n_hidden, width, n_attn)
    assert len(out.hidden_states) == n_hidden and out.hidden_states[-1].shape == (3, 7, width)
    assert out.hidden_states[0].shape[:2] == (3, 7)
    assert out.attention_mask.tolist() == [[1] * 7, [1] * 5 + [0] * 2, [1] * 2 + [0] * 5]
    assert model.has_attentions == (n_attn > 0)
    if n_attn:
        assert len(out.attentions) == n_attn and out.attentions[0].shape == (3, model.num_heads(), 7, 7)
    else:
        assert out.attentions is None and model.num_heads() is None


@pytest.mark.parametrize("name", sorted(TINY))
def test_every_student_reads_a_text_pair(name, batch):
    ids, lengths, pair_ids, pair_lengths = batch
    model = build_student(name, VOCAB, LABELS, EMB, TINY[name]).eval()
    out = model.features(ids, lengths, pair_ids, pair_lengths)
    assert out.logits.shape == (3, LABELS)
    assert out.attention_mask.sum(dim=1).tolist() == [11, 6, 5]  # text and pair joined
    assert model(ids, lengths, pair_ids, pair_lengths).shape == (3, LABELS)


@pytest.mark.parametrize("name", ["bilstm", "bigru"])
def test_a_siamese_rnn_compares_both_encodings_and_splits_a_joined_pair_at_sep(name, batch):
    _, _, pair_ids, pair_lengths = batch
    torch.manual_seed(0)
    model = build_student(name, VOCAB, LABELS, EMB, {**TINY[name], "siamese": True}).eval()
    assert model.fc.in_features == 8 * 8  # [h1, h2, h1*h2, |h1-h2|], each 2H
    assert model.num_hidden_states() == 0 and model.hidden_size() is None
    text = torch.tensor([[5, 6, 7], [8, 9, 10], [11, 12, 13]])
    separate = model(text, torch.tensor([3, 2, 1]), pair_ids, pair_lengths)
    joined = torch.zeros(3, 8, dtype=torch.long)
    for b, (n, m) in enumerate([(3, 4), (2, 1), (1, 3)]):
        joined[b, :n + 1 + m] = torch.cat([text[b, :n], torch.tensor([2]), pair_ids[b, :m]])
    assert torch.allclose(model(joined, torch.tensor([8, 4, 5])), separate, atol=1e-6)


def test_split_at_sep_gives_an_empty_pair_when_there_is_no_separator():
    a, la, b, lb = split_at(torch.tensor([[4, 2, 5, 6], [4, 5, 0, 0]]), torch.tensor([4, 2]), 2)
    assert a.tolist() == [[4, 0], [4, 5]] and la.tolist() == [1, 2]
    assert b.tolist() == [[5, 6], [0, 0]] and lb.tolist() == [2, 1]


@pytest.mark.parametrize("preset, sizes", [("T3", (3, 768, 12, 3072)), ("T3-small", (3, 384, 12, 1536)),
                                           ("T4-tiny", (4, 312, 12, 1200)), ("T6", (6, 768, 12, 3072)),
                                           ("T12-nano", (12, 256, 4, 1024))])
def test_transformer_presets_have_the_published_sizes(preset, sizes):
    with torch.device("meta"):  # shapes only
        model = build_student("transformer", 100, 2, 128, {"preset": preset})
    c = model.config
    assert (c.num_hidden_layers, c.hidden_size, c.num_attention_heads, c.intermediate_size) == sizes
    assert model.num_hidden_states() == sizes[0] + 1 and model.num_attentions() == sizes[0]


@pytest.mark.parametrize("name, options, field", [
    ("transformer", {"preset": "T5"}, "student.options.preset"),
    ("transformer", {"preset": "custom", "layers": 2}, "student.options.hidden"),
    ("transformer", {"preset": "custom", "layers": 2, "hidden": 10, "heads": 3, "ffn": 8}, "student.options.heads"),
    ("transformer", {"init_from_teacher": 3}, "student.options.init_from_teacher"),
    ("bigru", {"siamese": "yes"}, "student.options.siamese"),
    ("bilstm", {"sep_id": 99}, "student.options.sep_id"),
    ("bilstm", {"hidden": 8}, "student.options.hidden"),
])
def test_bad_student_options_name_the_option(name, options, field):
    with pytest.raises(ConfigError) as err:
        build_student(name, VOCAB, LABELS, EMB, options)
    assert err.value.field == field and field.split(".")[-1] in err.value.message


def test_an_unknown_student_names_the_field_and_the_choices():
    with pytest.raises(UnknownNameError, match="Unknown student 'lstm'; known: bigru, bilstm, textcnn, transformer"):
        build_student("lstm", VOCAB, LABELS, EMB)


@pytest.fixture(scope="module")
def bert_teacher(tmp_path_factory):
    from distill_core.testing import make_tiny_teacher

    return make_tiny_teacher(tmp_path_factory.mktemp("init") / "t4", ["a", "b", "c"], "abcdefgh", layers=4,
                             hidden=32, heads=2)


def teacher_base(path):
    from transformers import AutoModelForSequenceClassification

    return AutoModelForSequenceClassification.from_pretrained(path).bert


def test_init_from_teacher_copies_embeddings_pooler_and_a_uniform_pick_of_layers(bert_teacher):
    base = teacher_base(bert_teacher)
    student = build_student("transformer", base.config.vocab_size, 3, 128, {
        "preset": "custom", "layers": 2, "hidden": 32, "heads": 2, "ffn": 64, "init_from_teacher": str(bert_teacher)})
    assert student.copied_layers == [(2, 1), (4, 2)]
    mine = student.bert.state_dict()
    for prefix, theirs in [("embeddings.", base.embeddings), ("pooler.", base.pooler),
                           ("encoder.layer.0.", base.encoder.layer[1]), ("encoder.layer.1.", base.encoder.layer[3])]:
        for key, value in theirs.state_dict().items():
            assert torch.equal(mine[prefix + key], value), prefix + key
    assert student.options.max_position_embeddings == base.config.max_position_embeddings
    assert student_options(student)["init_from_teacher"] is None  # the export rebuilds without the teacher


@pytest.mark.parametrize("change, message", [({"hidden": 16}, "hidden size is 16 but the teacher's is 32"),
                                             ({"ffn": 48}, "FFN size is 48 but the teacher's is 64"),
                                             ({"layers": 5}, "5 layers but the teacher only 4")])
def test_init_from_teacher_refuses_widths_and_depths_that_do_not_fit(bert_teacher, change, message):
    options = {"preset": "custom", "layers": 2, "hidden": 32, "heads": 2, "ffn": 64, **change,
               "init_from_teacher": str(bert_teacher)}
    with pytest.raises(ConfigError, match=message) as err:
        build_student("transformer", teacher_base(bert_teacher).config.vocab_size, 3, 128, options)
    assert err.value.field == "student.options.init_from_teacher"


def test_init_from_teacher_needs_the_teachers_vocabulary_and_an_existing_checkpoint(bert_teacher, tmp_path):
    options = {"preset": "custom", "layers": 2, "hidden": 32, "heads": 2, "ffn": 64}
    with pytest.raises(ConfigError, match="vocabulary size is 7 .*student.vocab 'teacher'"):
        build_student("transformer", 7, 3, 128, {**options, "init_from_teacher": str(bert_teacher)})
    with pytest.raises(ConfigError, match="init_from_teacher: cannot read") as err:
        build_student("transformer", 7, 3, 128, {**options, "init_from_teacher": str(tmp_path / "missing")})
    assert err.value.field == "student.options.init_from_teacher"


@pytest.mark.parametrize("name, options", [("transformer", TINY["transformer"]),
                                           ("bilstm", {**TINY["bilstm"], "siamese": True})])
def test_new_students_export_and_predict_like_the_old_ones(name, options, tmp_path):
    vocab = Vocab.build(["abc def", "ghi"], "char")
    torch.manual_seed(0)
    model = build_student(name, vocab.vocab_size, 2, EMB, options).eval()
    save_student(model, vocab, student_type=name, embedding_dim=EMB, labels=["x", "y"], max_length=16,
                 output_dir=tmp_path)
    predictor = load_student(tmp_path)
    ids, lengths = vocab.encode(["abc", "dd"], ["gh", "i"], 16)
    assert torch.allclose(predictor.model(ids, lengths), model(ids, lengths), atol=1e-6)
    assert [p["label"] for p in predictor.predict(["abc"], ["gh"])][0] in ("x", "y")
