"""Intermediate matches from the form: a preset, generated rows or edited rows, checked against the real
(tiny) teacher and a student built on CPU before anything is queued; errors name the row."""

from __future__ import annotations

import html
import json
import re

import pytest

from webapp.experiments.models import Experiment

URL = "/experiments/new/"
# The 2-layer, 32-wide tiny teacher; a BiLSTM whose RNN outputs are 2 × 16 = 32 wide reads its tokens.
BILSTM = {"student_type": "bilstm", "student_vocab": "teacher", "embedding_dim": "32", "rnn_hidden_size": "16"}
TINY_TRANSFORMER = {"student_type": "transformer", "student_vocab": "teacher", "tf_preset": "custom", "tf_layers": "3",
                    "tf_hidden": "16", "tf_heads": "2", "tf_ffn": "32"}


def row(layer_t: int, layer_s: int, feature: str = "hidden", loss: str = "hidden_mse", **extra) -> dict:
    return {"layer_T": layer_t, "layer_S": layer_s, "feature": feature, "loss": loss, "weight": 1, **extra}


def post_rows(client, form_data, rows, **changes):
    return client.post(URL, {**form_data, **BILSTM, "matches_mode": "rows", "match_rows": json.dumps(rows), **changes})


def refused(response, field: str, text: str) -> None:
    assert response.status_code == 400, response.status_code
    errors = response.context["form"].errors
    assert field in errors, errors
    assert any(text in e for e in errors[field]), errors[field]
    assert text in html.unescape(response.content.decode())
    assert Experiment.objects.count() == 0


def test_edited_rows_that_fit_are_stored(alice_client, form_data, wake):
    rows = [row(0, 0), row(2, 1, weight=0.5)]
    response = post_rows(alice_client, form_data, rows)
    assert response.status_code == 302, response.context["form"].errors
    stored = Experiment.objects.get().config["matches"]
    assert stored == [{**r, "weight": float(r["weight"]), "proj": None} for r in rows]


def test_an_out_of_range_teacher_layer_is_refused_naming_the_row(alice_client, form_data, wake):
    refused(post_rows(alice_client, form_data, [row(0, 0), row(5, 1)]), "match_rows",
            "match 1: layer_T=5 but the teacher has hidden states 0..2")


def test_an_out_of_range_student_layer_is_refused(alice_client, form_data, wake):
    refused(post_rows(alice_client, form_data, [row(1, 2)]), "match_rows",
            "match 0: layer_S=2 but the student bilstm has hidden states 0..1")


def test_attention_on_a_bilstm_is_refused(alice_client, form_data, wake):
    refused(post_rows(alice_client, form_data, [row(1, 0, "attention", "attention_mse")]), "match_rows",
            "match 0: feature 'attention' but the student bilstm has no attentions")


def test_a_projection_of_the_wrong_width_is_refused(alice_client, form_data, wake):
    refused(post_rows(alice_client, form_data, [row(1, 1, proj=["linear", 20, 32])]), "match_rows",
            "match 0: proj maps 20 -> 32 but the student's hidden size is 32")


def test_different_widths_without_a_projection_are_refused(alice_client, form_data, wake):
    refused(post_rows(alice_client, form_data, [row(1, 1)], rnn_hidden_size="8"), "match_rows",
            "hidden sizes differ (student 16, teacher 32): add proj [\"linear\", 16, 32]")


def test_matches_need_the_teachers_vocabulary(alice_client, form_data, wake):
    refused(post_rows(alice_client, form_data, [row(1, 1)], student_vocab="char"), "student_vocab",
            "set student.vocab to 'teacher' (not 'char')")


@pytest.mark.parametrize(("rows", "message"), [
    ("[{", "The match rows: not valid JSON"),
    ('{"layer_T": 1}', "a JSON list of objects"),
    (json.dumps([{"layer_T": 1, "layer_S": 1, "feature": "hidden"}]), "match 0: loss is missing"),
    (json.dumps([row(-1, 0)]), "match 0: layer_T must be a layer index"),
    (json.dumps([row(1, 1, loss="<b>nope</b>")]), "unknown intermediate loss '<b>nope</b>'"),
    (json.dumps([row(1, 1, weight=float("inf"))]).replace("Infinity", "1e999"),
     "match_rows[0].weight: Infinity is not a number JSON allows"),
    (json.dumps([row(1, 1)] * 65), "At most 64 match rows"),
    ("", "Add at least one row"),
])
def test_malformed_rows_get_a_message(alice_client, form_data, wake, rows, message):
    response = alice_client.post(URL, {**form_data, **BILSTM, "matches_mode": "rows", "match_rows": rows})
    refused(response, "match_rows", message)
    assert "&lt;b&gt;nope" in response.content.decode() or "<b>" not in message


def test_a_preset_for_bert_base_is_refused_for_a_two_layer_teacher(alice_client, form_data, wake):
    response = alice_client.post(URL, {**form_data, **TINY_TRANSFORMER, "matches_mode": "preset",
                                       "matches_preset": "L3_hidden_smmd"})
    refused(response, "match_rows", "match 1: layer_T=4 but the teacher has hidden states 0..2")


def test_a_preset_that_fits_is_stored_by_name(alice_client, form_data, deep_checkpoint, wake):
    response = alice_client.post(URL, {**form_data, **TINY_TRANSFORMER, "teacher": deep_checkpoint.pk,
                                       "matches_mode": "preset", "matches_preset": "L3_hidden_smmd"})
    assert response.status_code == 302, response.context["form"].errors
    assert Experiment.objects.get().config["matches"] == "L3_hidden_smmd"


def test_an_attention_preset_needs_equal_head_counts(alice_client, form_data, deep_checkpoint, wake):
    response = alice_client.post(URL, {**form_data, **TINY_TRANSFORMER, "tf_heads": "4", "teacher": deep_checkpoint.pk,
                                       "matches_mode": "preset", "matches_preset": "L3_attention_mse"})
    refused(response, "match_rows", "match 0: attention_mse needs equal head counts (student 4, teacher 2)")


def test_an_unknown_preset_is_not_a_choice(alice_client, form_data, wake):
    response = alice_client.post(URL, {**form_data, "matches_mode": "preset", "matches_preset": "L99"})
    refused(response, "matches_preset", "Select a valid choice")


def test_choosing_preset_mode_without_a_preset_is_refused(alice_client, form_data, wake):
    refused(alice_client.post(URL, {**form_data, "matches_mode": "preset"}), "match_rows", "Choose a preset")


def test_generated_rows_get_projections_where_the_widths_differ(alice_client, form_data, wake):
    response = alice_client.post(URL, {**form_data, **TINY_TRANSFORMER, "tf_layers": "2", "matches_mode": "generate",
                                       "generate_strategy": "uniform", "generate_feature": "hidden",
                                       "generate_loss": "hidden_mse", "generate_weight": "2"})
    assert response.status_code == 302, response.context["form"].errors
    proj = ["linear", 16, 32]
    assert Experiment.objects.get().config["matches"] == [
        row(0, 0, weight=2.0, proj=proj), row(1, 1, weight=2.0, proj=proj), row(2, 2, weight=2.0, proj=proj)]


def test_generated_attention_rows_follow_the_layer_map(alice_client, form_data, deep_checkpoint, wake):
    response = alice_client.post(URL, {**form_data, **TINY_TRANSFORMER, "teacher": deep_checkpoint.pk,
                                       "matches_mode": "generate", "generate_strategy": "top",
                                       "generate_feature": "attention", "generate_loss": "attention_mse_sum"})
    assert response.status_code == 302, response.context["form"].errors
    pairs = [(m["layer_T"], m["layer_S"]) for m in Experiment.objects.get().config["matches"]]
    assert pairs == [(9, 0), (10, 1), (11, 2)]


def test_generating_for_a_student_deeper_than_the_teacher_is_refused(alice_client, form_data, wake):
    response = alice_client.post(URL, {**form_data, **TINY_TRANSFORMER, "matches_mode": "generate"})
    refused(response, "match_rows", "The student has 3 layers and the teacher 2")


def test_generating_hidden_rows_for_a_textcnn_is_refused(alice_client, form_data, wake):
    response = alice_client.post(URL, {**form_data, "student_vocab": "teacher", "matches_mode": "generate"})
    refused(response, "match_rows", "The textcnn student has no layers above its embeddings")


def test_stage_matches_are_checked_and_name_the_stage(alice_client, form_data, wake):
    stages = [{"name": "intermediate", "epochs": 1, "matches": [row(0, 0), row(7, 1)]}, {"name": "kd", "epochs": 1}]
    response = alice_client.post(URL, {**form_data, **BILSTM, "stages": json.dumps(stages)})
    refused(response, "stages", "intermediate: match 1: layer_T=7 but the teacher has hidden states 0..2")


def test_a_two_stage_tinybert_run_with_matches_is_queued(alice_client, form_data, deep_checkpoint, wake):
    stages = [{"name": "intermediate", "epochs": 1, "alpha": 0, "kd_weight": 0, "matches": "L3_hidden_smmd"},
              {"name": "prediction", "epochs": 1, "alpha": 0, "temperature": 1}]
    response = alice_client.post(URL, {**form_data, **TINY_TRANSFORMER, "teacher": deep_checkpoint.pk,
                                       "stages": json.dumps(stages)})
    assert response.status_code == 302, response.context["form"].errors
    assert Experiment.objects.get().config["stages"] == stages


def test_stale_rows_are_ignored_when_another_mode_is_chosen(alice_client, form_data, wake):
    response = alice_client.post(URL, {**form_data, "matches_mode": "none", "match_rows": "[{"})
    assert response.status_code == 302, response.context["form"].errors
    assert Experiment.objects.get().config["matches"] == []


def test_a_plain_dict_may_post_rows_without_a_mode(alice, form_data):
    from webapp.experiments.experiment_form import ExperimentForm

    # The REST API fills missing fields with each field's initial value: the mode has none to fill.
    assert ExperimentForm.base_fields["matches_mode"].initial is None
    form = ExperimentForm(data={**form_data, **BILSTM, "match_rows": json.dumps([row(1, 1)])}, user=alice)
    assert form.is_valid(), form.errors
    assert form.config["matches"][0]["layer_T"] == 1


def test_a_fresh_form_starts_with_no_matches(alice_client, checkpoint, dataset):
    html = alice_client.get(URL).content.decode()
    assert re.search(r'<input type="radio" name="matches_mode" value="none"[^>]*checked', html)


def test_the_editor_offers_every_preset_and_loss(alice_client, checkpoint, dataset):
    from distill_core.intermediate import intermediate_losses
    from distill_core.matches import presets

    response = alice_client.get(URL)
    html = response.content.decode()
    assert all(f'<option value="{name}">' in html for name in presets.names())
    choices = json.loads(html.split('<script id="match-choices" type="application/json">')[1].split("</script>")[0])
    assert choices == {"features": ["hidden", "attention", "embedding"], "losses": intermediate_losses.names()}
