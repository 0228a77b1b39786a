"""POST /api/experiments/from-config/: a page's config.json queued again, validated by the form."""

from __future__ import annotations

import json

from webapp.experiments.models import Experiment

S = Experiment.Status


def post_json(client, url: str, body) -> object:
    return client.post(url, json.dumps(body), content_type="application/json")


def test_a_downloaded_config_is_queued_again_with_the_teams_teacher_and_dataset(api, alice, wake, make_experiment):
    original = make_experiment(S.SUCCEEDED)
    config = json.loads(api.get(f"/api/experiments/{original.pk}/").content)["config"]
    config["kd"]["temperature"] = 4.0
    response = post_json(api, "/api/experiments/from-config/", {"config": config, "name": "again", "priority": 2})
    assert response.status_code == 201, response.content
    created = Experiment.objects.get(pk=response.json()["id"])
    assert (created.name, created.status, created.priority, created.owner) == ("again", S.QUEUED, 2, alice)
    assert (created.teacher, created.dataset) == (original.teacher, original.dataset)
    assert created.config["kd"]["temperature"] == 4.0
    for section in ("data", "student", "train"):
        assert created.config[section] == original.config[section], section
    assert wake == ["default"]


def test_an_unregistered_teacher_or_dataset_is_named(api, experiment):
    config = json.loads(json.dumps(experiment.config))
    config["teacher"]["path"] = "/nowhere/bert"
    response = post_json(api, "/api/experiments/from-config/", {"config": config})
    assert response.status_code == 400 and "config.teacher.path" in response.json()["fields"]
    config = json.loads(json.dumps(experiment.config))
    config["data"]["train"] = "/nowhere/train.tsv"
    response = post_json(api, "/api/experiments/from-config/", {"config": config})
    assert response.status_code == 400 and "config.data.train" in response.json()["fields"]


def test_another_team_cannot_queue_with_acmes_teacher(charlie_api, experiment):
    response = post_json(charlie_api, "/api/experiments/from-config/", {"config": experiment.config})
    assert response.status_code == 400 and "config.teacher.path" in response.json()["fields"]
    assert Experiment.objects.count() == 1


def test_form_errors_come_back_on_their_fields(api, experiment):
    config = json.loads(json.dumps(experiment.config))
    config["kd"]["alpha"] = 3
    response = post_json(api, "/api/experiments/from-config/", {"config": config})
    assert response.status_code == 400 and "alpha" in response.json()["fields"]
