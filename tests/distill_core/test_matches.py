"""Matches: JSON round-trip, TextBrewer presets, layer maps, validation messages and the MatchLoss terms."""

from __future__ import annotations

import json

import pytest
import torch

from distill_core.errors import ConfigError, UnknownNameError
from distill_core.matches import (
    MatchConfig,
    MatchLoss,
    generate,
    layer_map,
    parse_matches,
    preset,
    presets,
    validate_matches,
)
from distill_core.students import build_student

BERT_BASE = {"num_layers": 12, "hidden_size": 768, "num_heads": 12}  # what inspect_checkpoint says of a BERT-base
# The student each TextBrewer preset was written for (T3-small serves L3 attention maps: 3 layers, 12 heads).
PRESET_STUDENT = {
    "L3_attention_mse": "T3-small", "L3_attention_mse_sum": "T3-small", "L3_attention_ce": "T3-small",
    "L3_attention_ce_mean": "T3-small", "L3_hidden_mse": "T3", "L3n_hidden_mse": "T3-small",
    "L3_hidden_smmd": "T3-small", "L4_attention_mse": "T4-tiny", "L4_attention_mse_sum": "T4-tiny",
    "L4_attention_ce": "T4-tiny", "L4_attention_ce_mean": "T4-tiny", "L4t_hidden_mse": "T4-tiny",
    "L4_hidden_smmd": "T4-tiny", "L4t_hidden_smmd": "T4-tiny", "L4t_hidden_sgram": "T4-tiny",
    "L6_hidden_mse": "T6", "L6_hidden_smmd": "T6", "small_hidden_mse": "T12-nano", "small_hidden_smmd": "T12-nano",
}
_built: dict[tuple[str, bool], torch.nn.Module] = {}


def transformer(name: str, real: bool = False) -> torch.nn.Module:
    """A preset-sized transformer student over a 30-token vocabulary; on the meta device unless `real`."""
    if (name, real) not in _built:
        torch.manual_seed(0)
        with torch.device("cpu" if real else "meta"):
            _built[name, real] = build_student("transformer", 30, 2, 128, {"preset": name, "dropout": 0.0}).eval()
    return _built[name, real]


def tiny(name: str, **options) -> torch.nn.Module:
    sizes = {"bilstm": {"hidden_size": 150, "fc_size": 8}, "textcnn": {"num_filters": 4},
             "transformer": {"preset": "custom", "layers": 2, "hidden": 16, "heads": 2, "ffn": 32}}
    torch.manual_seed(0)
    return build_student(name, 30, 2, 128, {**sizes[name], **options})


def match(layer_T=0, layer_S=0, feature="hidden", loss="hidden_mse", **extra) -> MatchConfig:
    return MatchConfig(layer_T, layer_S, feature, loss, **extra)


def test_every_textbrewer_preset_is_registered_with_its_student():
    assert sorted(PRESET_STUDENT) == presets.names()


@pytest.mark.parametrize("name", sorted(PRESET_STUDENT))
def test_every_preset_validates_against_a_bert_base_teacher_and_its_student(name):
    validate_matches(preset(name), BERT_BASE, transformer(PRESET_STUDENT[name]), student_vocab="teacher")


def test_presets_translate_textbrewer_layers_to_hugging_face_indices():
    l3 = preset("L3_attention_mse")
    assert [(m.layer_T, m.layer_S) for m in l3] == [(3, 0), (7, 1), (11, 2)]  # TextBrewer: (4,1) (8,2) (12,3)
    l4t = preset("L4t_hidden_mse")
    assert [(m.layer_T, m.layer_S) for m in l4t] == [(0, 0), (3, 1), (6, 2), (9, 3), (12, 4)]
    assert all(m.proj == ["linear", 312, 768] and m.loss == "hidden_mse" for m in l4t)
    assert [m.loss for m in preset("L6_hidden_smmd")] == ["mmd"] * 7
    assert {m.proj[1] for m in preset("small_hidden_mse")} == {256}


@pytest.mark.parametrize("name", [n for n, s in sorted(PRESET_STUDENT.items()) if s not in ("T3", "T6")])
def test_every_preset_with_a_small_student_computes_one_finite_term_per_match(name):
    student, matches = transformer(PRESET_STUDENT[name], real=True), preset(name)
    ids, lengths = torch.randint(3, 30, (2, 6)), torch.tensor([6, 4])
    out = student.features(ids, lengths)
    torch.manual_seed(1)
    hidden = tuple(torch.randn(2, 6, 768) for _ in range(13))
    attn = tuple(torch.softmax(torch.randn(2, 12, 6, 6), dim=-1) for _ in range(12))
    terms = MatchLoss(matches, student.hidden_size(), 768)(out, hidden, attn, out.attention_mask)
    assert list(terms) == [f"match{i}_{m.loss}_T{m.layer_T}_S{m.layer_S}" for i, m in enumerate(matches)]
    assert all(t.dim() == 0 and torch.isfinite(t) for t in terms.values())


def test_an_unknown_preset_names_the_field():
    with pytest.raises(UnknownNameError, match="Unknown match preset 'L5_hidden_mse'") as err:
        preset("L5_hidden_mse")
    assert err.value.field == "matches.preset"


def test_a_match_round_trips_through_json():
    original = [match(4, 1, proj=["linear", 312, 768, "tanh"], weight=0.5), match(3, 0, "attention", "attention_ce")]
    again = parse_matches(json.loads(json.dumps([m.to_dict() for m in original])))
    assert again == original
    assert parse_matches("L4t_hidden_mse") == preset("L4t_hidden_mse")


@pytest.mark.parametrize("raw, field, message", [
    ({"layer_T": 1, "layer_S": 1, "feature": "hidden", "loss": "cos", "layers": 2}, "matches.0.layers", "unknown key"),
    ({"layer_T": 1, "feature": "hidden", "loss": "cos"}, "matches.0.layer_S", "layer_S is missing"),
    ({"layer_T": True, "layer_S": 1, "feature": "hidden", "loss": "cos"}, "matches.0.layer_T", "layer index"),
    ({"layer_T": -1, "layer_S": 1, "feature": "hidden", "loss": "cos"}, "matches.0.layer_T", "layer index"),
    ({"layer_T": 1, "layer_S": 1, "feature": "logits", "loss": "cos"}, "matches.0.feature", "feature 'logits'"),
    ({"layer_T": 1, "layer_S": 1, "feature": "hidden", "loss": "cos", "weight": -1}, "matches.0.weight", "weight"),
    ({"layer_T": 1, "layer_S": 1, "feature": "hidden", "loss": "cos", "proj": ["conv", 3, 4]}, "matches.0.proj",
     "proj must be"),
    ({"layer_T": 1, "layer_S": 1, "feature": "hidden", "loss": "cos", "proj": ["linear", 3]}, "matches.0.proj",
     "proj must be"),
    ({"layer_T": 1, "layer_S": 1, "feature": "hidden", "loss": "cos", "proj": ["linear", 3, 4, "gelu"]},
     "matches.0.proj", "proj must be"),
])
def test_a_bad_match_dict_names_the_key(raw, field, message):
    with pytest.raises(ConfigError, match=message) as err:
        parse_matches([raw])
    assert err.value.field == field and err.value.message.startswith("match 0:")


def test_parse_matches_wants_a_list_or_a_preset_name():
    with pytest.raises(ConfigError) as err:
        parse_matches({"layer_T": 1})
    assert err.value.field == "matches"


@pytest.mark.parametrize("strategy, teacher, student, expected", [
    ("uniform", 12, 4, [(3, 1), (6, 2), (9, 3), (12, 4)]),
    ("uniform", 12, 3, [(4, 1), (8, 2), (12, 3)]),
    ("uniform", 12, 5, [(2, 1), (4, 2), (7, 3), (9, 4), (12, 5)]),
    ("top", 12, 3, [(10, 1), (11, 2), (12, 3)]),
    ("bottom", 12, 3, [(1, 1), (2, 2), (3, 3)]),
    ("uniform", 4, 4, [(1, 1), (2, 2), (3, 3), (4, 4)]),
])
def test_layer_maps_pair_every_student_layer_with_a_teacher_layer(strategy, teacher, student, expected):
    assert layer_map(strategy, teacher, student) == expected


def test_layer_maps_refuse_deeper_students_and_unknown_strategies():
    with pytest.raises(ConfigError, match="student has 13 layers and the teacher 12"):
        layer_map("uniform", 12, 13)
    with pytest.raises(ConfigError, match="'middle' is not one of"):
        layer_map("middle", 12, 4)


def test_generated_matches_equal_the_presets_they_generalise():
    assert generate("uniform", "hidden", "hidden_mse", 12, 4, proj=["linear", 312, 768]) == preset("L4t_hidden_mse")
    assert generate("uniform", "attention", "attention_ce", 12, 3) == preset("L3_attention_ce")
    assert generate("uniform", "hidden", "mmd", 12, 6) == preset("L6_hidden_smmd")
    assert generate("top", "embedding", "embedding_mse", 12, 4) == [match(0, 0, "embedding", "embedding_mse")]
    assert [(m.layer_T, m.layer_S) for m in generate("top", "hidden", "cos", 6, 2, include_embeddings=False)] == [
        (5, 1), (6, 2)]


T4_TINY_OK = match(0, 0, proj=["linear", 312, 768])


@pytest.mark.parametrize("student, matches, field, message", [
    ("T4-tiny", [T4_TINY_OK] * 3 + [match(13, 4, proj=["linear", 312, 768])], "matches.3.layer_T",
     "match 3: layer_T=13 but the teacher has hidden states 0..12"),
    ("T4-tiny", [match(3, 5, proj=["linear", 312, 768])], "matches.0.layer_S",
     "match 0: layer_S=5 but the student transformer has hidden states 0..4"),
    ("T4-tiny", [match(12, 4, "attention", "attention_mse")], "matches.0.layer_T",
     "match 0: layer_T=12 but the teacher has attentions 0..11"),
    ("T4-tiny", [match(11, 4, "attention", "attention_mse")], "matches.0.layer_S",
     "match 0: layer_S=4 but the student transformer has attentions 0..3"),
    ("T4-tiny", [match(4, 1)], "matches.0.proj",
     "match 0: hidden sizes differ \\(student 312, teacher 768\\): add proj \\[\"linear\", 312, 768\\]"),
    ("T4-tiny", [match(4, 1, proj=["linear", 312, 512])], "matches.0.proj",
     "proj maps 312 -> 512 but the teacher's hidden size is 768"),
    ("T4-tiny", [match(4, 1, loss="hidden_l2")], "matches.0.loss", "match 0: unknown intermediate loss 'hidden_l2'"),
    ("T4-tiny", [match(4, 1, loss="attention_mse")], "matches.0.loss", "does not fit feature 'hidden'"),
    ("T4-tiny", [match(3, 0, "attention", "cos")], "matches.0.loss", "does not fit feature 'attention'"),
    ("T4-tiny", [match(3, 0, "attention", "attention_mse", proj=["linear", 312, 768])], "matches.0.proj",
     "proj applies to hidden states"),
    ("T4-tiny", [match(2, 0, "embedding", "embedding_mse", proj=["linear", 312, 768])], "matches.0.layer_T",
     "feature 'embedding' reads hidden state 0"),
    ("T12-nano", [match(3, 0, "attention", "attention_mse")], "matches.0.loss",
     "attention_mse needs equal head counts \\(student 4, teacher 12\\); use attention_mse_sum"),
    ("T12-nano", [match(3, 0, "attention", "attention_ce")], "matches.0.loss", "use attention_ce_mean"),
])
def test_validation_names_the_match_and_the_key_at_fault(student, matches, field, message):
    with pytest.raises(ConfigError, match=message) as err:
        validate_matches(matches, BERT_BASE, transformer(student))
    assert err.value.field == field


def test_head_reduced_attention_losses_accept_a_student_with_fewer_heads():
    validate_matches([match(3, 0, "attention", "attention_mse_sum"), match(11, 11, "attention", "attention_ce_mean")],
                     BERT_BASE, transformer("T12-nano"))


def test_rnn_and_cnn_students_offer_hidden_states_but_no_attentions():
    bilstm = tiny("bilstm")
    validate_matches([match(0, 0, "embedding", "embedding_mse", proj=["linear", 128, 768]),
                      match(12, 1, proj=["linear", 300, 768]), match(12, 1, loss="mmd")], BERT_BASE, bilstm)
    with pytest.raises(ConfigError, match="match 1: feature 'attention' but the student bilstm has no attentions") as e:
        validate_matches([match(12, 1, loss="mmd"), match(3, 0, "attention", "attention_mse")], BERT_BASE, bilstm)
    assert e.value.field == "matches.1.feature"
    with pytest.raises(ConfigError, match="match 2: proj maps 128 -> 768 but the student's hidden size is 300") as e:
        validate_matches([match(12, 1, loss="mmd")] * 2 + [match(12, 1, proj=["linear", 128, 768])], BERT_BASE, bilstm)
    assert e.value.field == "matches.2.proj"
    with pytest.raises(ConfigError, match="layer_S=1 but the student textcnn has hidden states 0..0"):
        validate_matches([match(4, 1, loss="mmd")], BERT_BASE, tiny("textcnn"))
    with pytest.raises(ConfigError, match="the student bilstm has no hidden states"):
        validate_matches([match(4, 1, loss="mmd")], BERT_BASE, tiny("bilstm", siamese=True))


def test_matches_need_the_teachers_tokenisation_and_a_teacher_with_attentions():
    with pytest.raises(ConfigError, match="set student.vocab to 'teacher'") as err:
        validate_matches(preset("L4t_hidden_mse"), BERT_BASE, transformer("T4-tiny"), student_vocab="char")
    assert err.value.field == "student.vocab"
    validate_matches([], BERT_BASE, transformer("T4-tiny"), student_vocab="char")  # no matches, no constraint
    with pytest.raises(ConfigError, match="the teacher has no attentions"):
        validate_matches(preset("L4_attention_mse"), {**BERT_BASE, "has_attentions": False}, transformer("T4-tiny"))


def test_match_loss_refuses_sequences_of_different_lengths():
    student = tiny("transformer").eval()
    out = student.features(torch.randint(3, 30, (2, 5)), torch.tensor([5, 3]))
    teacher_hidden = tuple(torch.randn(2, 7, 16) for _ in range(3))
    with pytest.raises(ConfigError, match="student's sequence has 5 tokens and the teacher's 7") as err:
        MatchLoss([match(2, 2)], 16, 16)(out, teacher_hidden, None, None)
    assert err.value.field == "student.vocab"


def test_match_loss_weights_each_term_and_trains_the_projection_not_the_teacher():
    student = tiny("transformer").eval()
    out = student.features(torch.randint(3, 30, (2, 5)), torch.tensor([5, 3]))
    teacher_hidden = tuple(torch.randn(2, 5, 24, requires_grad=True) for _ in range(5))
    matches = [match(4, 2, proj=["linear", 16, 24, "relu"]), match(4, 2, proj=["linear", 16, 24, "relu"], weight=2.0)]
    loss = MatchLoss(matches, 16, 24)
    loss.projections["1"].load_state_dict(loss.projections["0"].state_dict())
    terms = loss(out, teacher_hidden, None, None)
    assert list(terms) == ["match0_hidden_mse_T4_S2", "match1_hidden_mse_T4_S2"]
    assert float(terms["match1_hidden_mse_T4_S2"].detach()) == pytest.approx(2 * float(terms["match0_hidden_mse_T4_S2"].detach()))
    sum(terms.values()).backward()
    assert loss.projections["0"].linear.weight.grad is not None
    assert student.bert.encoder.layer[1].output.dense.weight.grad is not None
    assert teacher_hidden[4].grad is None


def test_a_tiny_teacher_and_student_distil_hidden_states_and_attentions_end_to_end(tmp_path):
    from distill_core.teachers import inspect_checkpoint, load_teacher
    from distill_core.testing import make_tiny_teacher
    from distill_core.vocab import TeacherPieces

    path = make_tiny_teacher(tmp_path / "t", ["a", "b"], "the cat sat on a mat", layers=4, hidden=32, heads=2)
    teacher, tokenizer = load_teacher(path, attn_implementation="eager")
    encoder = TeacherPieces(tokenizer)
    ids, lengths = encoder.encode(["the cat", "a mat sat on"], None, 16)
    mask = (torch.arange(ids.size(1))[None] < lengths[:, None]).long()
    with torch.no_grad():
        t_out = teacher(input_ids=ids, attention_mask=mask, output_hidden_states=True, output_attentions=True)
    student = build_student("transformer", encoder.vocab_size, 2, 128,
                            {"preset": "custom", "layers": 2, "hidden": 16, "heads": 2, "ffn": 32})
    matches = (generate("uniform", "hidden", "hidden_mse", 4, 2, proj=["linear", 16, 32])
               + generate("uniform", "attention", "attention_mse", 4, 2))
    validate_matches(matches, inspect_checkpoint(path), student, student_vocab="teacher")
    loss = MatchLoss(matches, student.hidden_size(), 32)
    terms = loss(student.features(ids, lengths), t_out.hidden_states, t_out.attentions, None)
    assert list(terms) == ["match0_hidden_mse_T0_S0", "match1_hidden_mse_T2_S1", "match2_hidden_mse_T4_S2",
                           "match3_attention_mse_T1_S0", "match4_attention_mse_T3_S1"]
    sum(terms.values()).backward()
    assert all(p.grad is not None for p in loss.parameters())


def test_a_teacher_that_does_not_say_its_depth_cannot_take_matches():
    with pytest.raises(ConfigError, match="does not give its layer count and hidden size") as err:
        validate_matches(preset("L4_hidden_smmd"), {"num_layers": None, "hidden_size": 768}, transformer("T4-tiny"))
    assert err.value.field == "matches"


def test_a_preset_hands_out_copies_so_editing_one_leaves_the_registry_alone():
    mine = preset("L4t_hidden_mse")
    mine[0].proj[2] = 1024
    mine[1].weight = 9.0
    assert presets.get("L4t_hidden_mse")[0].proj == ["linear", 312, 768]
    assert presets.get("L4t_hidden_mse")[1].weight == 1.0


def test_a_list_may_combine_presets_and_match_objects():
    from distill_core.matches import parse_matches, preset

    combined = parse_matches(["L4t_hidden_mse", "L4_hidden_smmd",
                              {"layer_T": 1, "layer_S": 1, "feature": "hidden", "loss": "cos"}])
    assert combined[:5] == preset("L4t_hidden_mse") and combined[5:10] == preset("L4_hidden_smmd")
    assert combined[10].loss == "cos" and len(combined) == 11
