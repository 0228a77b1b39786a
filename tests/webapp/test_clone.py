""""Clone": /experiments/new/?clone=<pk> pre-fills the new-experiment form from that experiment's config."""

from __future__ import annotations

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
    assert initial == {"team": tuned.team_id, "name": "tiny → textcnn (copy)", "teacher": checkpoint.pk,
                       "dataset": dataset.pk, "student_type": "bilstm", "temperature": 4.5, "alpha": 0.25,
                       "epochs": 7, "batch_size": 16, "learning_rate": 0.0005, "max_length": 24}


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
