""""Clone": /experiments/new/?clone=<pk> pre-fills the new-experiment form from that experiment's config."""

from __future__ import annotations

import json
import re

import pytest

from webapp.experiments.clone import clone_initial
from webapp.experiments.models import Experiment


def field_value(html: str, name: str) -> str | None:
    match = re.search(rf'<input[^>]*name="{name}"[^>]*value="([^"]*)"', html)
    return match.group(1) if match else None


def selected(html: str, name: str) -> str | None:
    select = re.search(rf'<select name="{name}".*?</select>', html, re.S)
    match = re.search(r'<option value="([^"]*)" selected', select.group(0)) if select else None
    return match.group(1) if match else None


@pytest.fixture
def tuned(experiment):
    config = experiment.config
    config["kd"].update(temperature=4.5, alpha=0.25)
    config["train"].update(epochs=7, batch_size=16, learning_rate=0.0005)
    config["data"]["max_length"] = 24
    config["student"]["type"] = "bilstm"
    Experiment.objects.filter(pk=experiment.pk).update(config=config, student_type="bilstm")
    experiment.refresh_from_db()
    return experiment


def test_the_initial_values_come_from_the_config(tuned, checkpoint, dataset):
    initial = clone_initial(tuned)
    assert initial.items() >= {"team": tuned.team_id, "name": "tiny → textcnn (copy)", "teacher": checkpoint.pk,
                               "dataset": dataset.pk, "student_type": "bilstm", "temperature": 4.5, "alpha": 0.25,
                               "epochs": 7, "batch_size": 16, "learning_rate": 0.0005, "max_length": 24,
                               "priority": 0, "pool": "default"}.items()


def test_the_form_is_prefilled(alice_client, tuned, checkpoint, dataset):
    response = alice_client.get(f"/experiments/new/?clone={tuned.pk}")
    assert response.status_code == 200
    html = response.content.decode()
    assert field_value(html, "name") == "tiny → textcnn (copy)"
    assert field_value(html, "temperature") == "4.5" and field_value(html, "alpha") == "0.25"
    assert field_value(html, "epochs") == "7" and field_value(html, "batch_size") == "16"
    assert field_value(html, "max_length") == "24"
    assert selected(html, "student_type") == "bilstm"
    assert selected(html, "teacher") == str(checkpoint.pk) and selected(html, "dataset") == str(dataset.pk)
    assert "Pre-filled from" in html


def test_submitting_the_clone_creates_a_new_run_with_the_same_settings(alice_client, tuned, monkeypatch):
    monkeypatch.setattr("workers.dispatch.wake_workers", lambda pool: None)
    html = alice_client.get(f"/experiments/new/?clone={tuned.pk}").content.decode()
    fields = {name: field_value(html, name) for name in ("name", "temperature", "alpha", "epochs", "batch_size",
                                                         "learning_rate", "max_length")}
    fields.update(team=tuned.team_id, teacher=tuned.teacher_id, dataset=tuned.dataset_id, student_type="bilstm")
    response = alice_client.post(f"/experiments/new/?clone={tuned.pk}", fields)
    assert response.status_code == 302, response.content.decode()[:2000]
    copy = Experiment.objects.exclude(pk=tuned.pk).get()
    for section in ("kd", "train", "student", "data", "teacher"):
        assert copy.config[section] == tuned.config[section], section
    assert copy.name == "tiny → textcnn (copy)"


def test_a_long_name_stays_within_the_limit(make_experiment):
    assert len(clone_initial(make_experiment(name="x" * 200))["name"]) == 200


def test_a_config_missing_sections_still_clones(experiment):
    Experiment.objects.filter(pk=experiment.pk).update(config={"kd": "odd", "train": {"epochs": {"x": 1}}})
    experiment.refresh_from_db()
    initial = clone_initial(experiment)
    assert "temperature" not in initial and "epochs" not in initial and initial["teacher"] == experiment.teacher_id


def test_the_experiment_page_has_a_clone_button(alice_client, experiment):
    html = alice_client.get(f"/experiments/{experiment.pk}/").content.decode()
    assert f'href="/experiments/new/?clone={experiment.pk}"' in html


def test_another_teams_member_gets_404(charlie_client, experiment):
    assert charlie_client.get(f"/experiments/new/?clone={experiment.pk}").status_code == 404


@pytest.mark.parametrize("value", ["abc", "-1", "1.5", "99999999999999999999999", "%00", "<script>", "١"])
def test_a_malformed_clone_parameter_is_ignored(alice_client, experiment, value):
    response = alice_client.get(f"/experiments/new/?clone={value}")
    assert response.status_code == 200 and "Pre-filled" not in response.content.decode()


def test_a_missing_experiment_is_404(alice_client, experiment):
    assert alice_client.get("/experiments/new/?clone=987654").status_code == 404


FULL = {
    "max_length": "24", "multi_label": "on", "label_separator": "|", "student_type": "transformer",
    "student_vocab": "teacher", "tf_preset": "custom", "tf_layers": "2", "tf_hidden": "32", "tf_heads": "2",
    "tf_ffn": "64", "tf_dropout": "0.2", "tf_init_from_teacher": "on", "temperature": "3.5", "alpha": "0.3",
    "kd_loss": "bce", "t2_scaling": "false", "kd_weight": "0.9", "temperature_schedule": "cosine",
    "temperature_final": "1.5", "schedule_beta": "0.5", "schedule_gamma": "3", "kd_weight_schedule": "linear_decay",
    "hard_weight_schedule": "linear_growth", "lr_schedule": "cosine", "warmup_ratio": "0.1", "augment": "on",
    "augment_n_iter": "4", "augment_p_mask": "0.2", "augment_ngram_range": "2, 4", "epochs": "2",
    "batch_size": "16", "learning_rate": "0.0005", "optimizer": "sgd", "weight_decay": "0.01", "grad_clip": "0",
    "grad_accumulation": "2", "bucket_by_length": "off", "amp": "bf16", "max_steps": "50", "device": "cpu", "priority": "7", "pool": "a100",
    "seed": "1234", "teacher_weight": "2", "ensemble": "tiny-bert 0.5",
    "stages": '[{"name": "warm", "epochs": 1}, {"name": "kd", "epochs": 1, "temperature": 4}]',
    "matches_mode": "rows",
    "match_rows": '[{"layer_T": 2, "layer_S": 1, "feature": "attention", "loss": "attention_mse"}]',
}


def form_values(html: str) -> dict[str, str]:
    """What a browser would post for the page's form (inputs, checked boxes and radios, selects, textareas)."""
    import html as html_lib

    values: dict[str, str] = {}
    for tag in re.findall(r"<input[^>]*>", html):
        name = re.search(r'name="([^"]*)"', tag)
        kind = re.search(r'type="([^"]*)"', tag)
        value = re.search(r'value="([^"]*)"', tag)
        if not name or (kind and kind.group(1) in ("checkbox", "radio") and "checked" not in tag):
            continue
        values[name.group(1)] = html_lib.unescape(value.group(1)) if value else ("on" if kind and
                                                                                 kind.group(1) == "checkbox" else "")
    for name, body in re.findall(r'<textarea name="([^"]*)"[^>]*>(.*?)</textarea>', html, re.S):
        values[name] = html_lib.unescape(body.lstrip("\n"))
    for name, body in re.findall(r'<select name="([^"]*)"[^>]*>(.*?)</select>', html, re.S):
        chosen = re.search(r'<option value="([^"]*)"[^>]*selected', body)
        if chosen:
            values[name] = html_lib.unescape(chosen.group(1))
    return values


@pytest.fixture
def full(alice_client, form_data, monkeypatch):
    monkeypatch.setattr("workers.dispatch.wake_workers", lambda pool: None)
    response = alice_client.post("/experiments/new/", {**form_data, **FULL})
    assert response.status_code == 302, response.context["form"].errors
    return Experiment.objects.get()


def test_every_group_is_cloned(full, checkpoint):
    initial = clone_initial(full)
    assert initial.items() >= {
        "multi_label": True, "label_separator": "|", "student_vocab": "teacher", "tf_preset": "custom",
        "tf_layers": 2, "tf_hidden": 32, "tf_dropout": 0.2, "tf_init_from_teacher": True, "kd_loss": "bce",
        "t2_scaling": "false", "kd_weight": 0.9, "temperature_schedule": "cosine", "temperature_final": 1.5,
        "bucket_by_length": "off", "augment": True, "augment_ngram_range": "2, 4", "optimizer": "sgd", "grad_clip": 0, "amp": "bf16",
        "max_steps": 50, "device": "cpu", "priority": 7, "pool": "a100", "seed": 1234, "teacher_weight": 2.0,
        "ensemble": "tiny-bert 0.5", "matches_mode": "rows"}.items()
    assert json.loads(initial["stages"]) == full.config["stages"]
    assert json.loads(initial["match_rows"]) == full.config["matches"]


def test_resubmitting_a_clone_reproduces_every_option(alice_client, full):
    html = alice_client.get(f"/experiments/new/?clone={full.pk}").content.decode()
    response = alice_client.post(f"/experiments/new/?clone={full.pk}", form_values(html))
    assert response.status_code == 302, response.context["form"].errors
    copy = Experiment.objects.exclude(pk=full.pk).get()
    strip = lambda config: {k: v for k, v in config.items() if k not in ("name", "output_dir")}  # noqa: E731
    assert strip(copy.config) == strip(full.config)
    assert (copy.priority, copy.pool) == (7, "a100")


def test_a_preset_is_cloned_as_a_preset(experiment):
    config = {**experiment.config, "matches": "L4t_hidden_mse"}
    Experiment.objects.filter(pk=experiment.pk).update(config=config)
    experiment.refresh_from_db()
    initial = clone_initial(experiment)
    assert initial["matches_mode"] == "preset" and initial["matches_preset"] == "L4t_hidden_mse"


def test_an_ensemble_member_that_was_deleted_is_cloned_by_path(experiment):
    config = {**experiment.config}
    config["teacher"] = {**config["teacher"], "ensemble": [{"path": "/gone/bert", "weight": 2}, "junk"]}
    Experiment.objects.filter(pk=experiment.pk).update(config=config)
    experiment.refresh_from_db()
    assert clone_initial(experiment)["ensemble"] == "/gone/bert 2"
