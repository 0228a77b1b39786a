"""The API's experiments: list, create (the web form's validation), get, cancel, metrics, results."""

from __future__ import annotations

import json
from unittest import mock

import pytest

from tests.webapp.factories import add_points, sample_results
from webapp.experiments.models import Experiment

S = Experiment.Status


@pytest.fixture(autouse=True)
def wake():
    with mock.patch("workers.dispatch.wake_workers") as wake:
        yield wake


def post_json(client, url: str, body) -> object:
    return client.post(url, json.dumps(body), content_type="application/json")


def test_it_lists_the_teams_experiments_newest_first_with_paging(api, make_experiment):
    older, newer = make_experiment(name="older"), make_experiment(name="newer", status=S.RUNNING)
    body = api.get("/api/experiments/", {"limit": 1}).json()
    assert [e["id"] for e in body["results"]] == [newer.pk] and body["next_offset"] == 1
    assert body["results"][0]["teacher"]["name"] == "tiny-bert" and "config" not in body["results"][0]
    assert api.get("/api/experiments/", {"offset": 1}).json()["results"][0]["id"] == older.pk
    assert [e["id"] for e in api.get("/api/experiments/", {"status": "running"}).json()["results"]] == [newer.pk]


def test_the_list_takes_the_experiment_pages_filters_and_sort_orders(api, make_experiment):
    from webapp.experiments import listing

    beta = make_experiment(name="beta", status=S.SUCCEEDED, best={"dev/accuracy": 0.9})
    alpha = make_experiment(name="alpha", status=S.SUCCEEDED, best={"dev/accuracy": 0.7}, notes="needle")
    make_experiment(name="gamma")
    by_name = api.get("/api/experiments/", {"sort": "name", "status": "succeeded"}).json()["results"]
    assert [e["id"] for e in by_name] == [alpha.pk, beta.pk]
    by_score = api.get("/api/experiments/", {"sort": "-best_dev"}).json()["results"]
    assert [e["id"] for e in by_score][:2] == [beta.pk, alpha.pk]
    assert [e["id"] for e in api.get("/api/experiments/", {"q": "NEEDLE"}).json()["results"]] == [alpha.pk]
    refused = api.get("/api/experiments/", {"sort": "price"})
    assert refused.status_code == 400 and "sort must be one of" in refused.json()["error"]
    documented = next(p for p in api.get("/api/schema.json").json()["paths"]["/api/experiments/"]["get"]["parameters"]
                      if p["name"] == "sort")
    assert set(documented["schema"]["enum"]) == {s for name in listing.SORTS for s in (name, f"-{name}")}


def test_another_teams_experiments_are_invisible(charlie_api, experiment):
    assert charlie_api.get("/api/experiments/").json()["results"] == []
    for suffix in ("", "metrics/", "results/"):
        response = charlie_api.get(f"/api/experiments/{experiment.pk}/{suffix}")
        assert response.status_code == 404 and response.json() == {"error": "Not found.", "fields": {}}
    assert charlie_api.post(f"/api/experiments/{experiment.pk}/cancel/").status_code == 404
    experiment.refresh_from_db()
    assert experiment.status == S.QUEUED


def test_it_creates_an_experiment_with_the_forms_defaults(api, alice, checkpoint, dataset, wake):
    response = post_json(api, "/api/experiments/", {"name": "sweep T=4", "teacher": checkpoint.pk,
                                                    "dataset": dataset.pk, "temperature": 4})
    assert response.status_code == 201, response.json()
    body = response.json()
    experiment = Experiment.objects.get(pk=body["id"])
    assert experiment.owner == alice and experiment.status == S.QUEUED
    assert experiment.config["kd"]["temperature"] == 4.0 and experiment.config["train"]["epochs"] == 3
    assert body["config"]["output_dir"].endswith(f"/experiments/{experiment.pk}/student")
    wake.assert_called_once_with("default")


def test_create_reports_the_forms_messages_on_their_fields(api, checkpoint, dataset):
    response = post_json(api, "/api/experiments/", {"name": "x", "teacher": checkpoint.pk, "dataset": dataset.pk,
                                                    "alpha": 3, "epochs": 0})
    assert response.status_code == 400
    fields = response.json()["fields"]
    assert "between 0 and 1" in fields["alpha"][0] and "epochs" in fields
    assert Experiment.objects.count() == 0


def test_create_refuses_another_teams_teacher(charlie_api, checkpoint, dataset):
    response = post_json(charlie_api, "/api/experiments/", {"name": "x", "teacher": checkpoint.pk,
                                                            "dataset": dataset.pk})
    assert response.status_code == 400 and set(response.json()["fields"]) >= {"teacher", "dataset"}


def test_get_returns_the_experiment_with_its_config(api, experiment):
    body = api.get(f"/api/experiments/{experiment.pk}/").json()
    assert body["id"] == experiment.pk and body["status"] == "QUEUED" and body["config"]["student"]["type"] == "textcnn"


def test_cancel_stops_a_queued_run_and_flags_a_running_one(api, make_experiment):
    queued, running, done = make_experiment(), make_experiment(S.RUNNING), make_experiment(S.SUCCEEDED)
    assert api.post(f"/api/experiments/{queued.pk}/cancel/").json()["outcome"] == "cancelled"
    body = api.post(f"/api/experiments/{running.pk}/cancel/").json()
    assert body["outcome"] == "cancel_requested" and body["experiment"]["cancel_requested"] is True
    response = api.post(f"/api/experiments/{done.pk}/cancel/")
    assert response.status_code == 409 and "already succeeded" in response.json()["error"]
    assert api.get(f"/api/experiments/{queued.pk}/cancel/").status_code == 405


def test_a_run_cancelled_through_the_api_is_killed_when_it_ignores_the_flag(api, make_experiment, settings):
    from datetime import timedelta

    from django.utils import timezone

    from workers.revoke import kill_hung_cancels

    running = make_experiment(S.RUNNING)
    Experiment.objects.filter(pk=running.pk).update(task_id="job-1")
    before = timezone.now()
    assert api.post(f"/api/experiments/{running.pk}/cancel/").json()["outcome"] == "cancel_requested"
    running.refresh_from_db()
    assert running.cancel_requested_at is not None and running.cancel_requested_at >= before
    later = running.cancel_requested_at + timedelta(seconds=2 * settings.LEASE_SECONDS + 1)
    with mock.patch("workers.celery.app.control.revoke") as revoke:  # the broker: a boundary
        assert kill_hung_cancels(now=later) == [running.pk]
    revoke.assert_called_once_with("job-1", terminate=True, signal="SIGKILL")


def test_metrics_take_the_pages_parameters(api, experiment):
    add_points(experiment, "train/loss", {step: 1.0 / (step + 1) for step in range(5000)})
    body = api.get(f"/api/experiments/{experiment.pk}/metrics/", {"points": 100}).json()
    assert body["downsampled"] and len(body["series"]["train/loss"]["steps"]) <= 100
    zoom = api.get(f"/api/experiments/{experiment.pk}/metrics/", {"from": 10, "to": 19}).json()
    assert zoom["series"]["train/loss"]["steps"] == list(range(10, 20))
    bad = api.get(f"/api/experiments/{experiment.pk}/metrics/", {"from": -5})
    assert bad.status_code == 400 and "from must be between" in bad.json()["error"]


def test_results_are_null_until_finished(api, make_experiment):
    running = make_experiment(S.RUNNING)
    assert api.get(f"/api/experiments/{running.pk}/results/").json()["results"] is None
    done = make_experiment(S.SUCCEEDED, results=sample_results(), best={"dev/accuracy": 0.9})
    body = api.get(f"/api/experiments/{done.pk}/results/").json()
    assert body["finished"] and body["results"] == sample_results() and body["best"] == {"dev/accuracy": 0.9}
    assert body["summary"] is not None


def test_non_finite_numbers_become_null_at_any_depth():
    from webapp.api.serialize import finite_deep

    assert finite_deep({"a": [float("nan"), 1.5, {"b": float("inf")}], 2: "x"}) == {"a": [None, 1.5, {"b": None}],
                                                                                   "2": "x"}


def test_a_sweep_posted_to_the_api_queues_every_combination(api, acme, checkpoint, dataset, wake):
    response = api.post("/api/experiments/", {"name": "sweep", "teacher": checkpoint.pk, "dataset": dataset.pk,
                                              "sweep_temperature": "1, 4", "sweep_alpha": "0.2, 0.8"},
                        content_type="application/json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["sweep"].startswith("sweep-") and len(body["experiments"]) == 4
    temps = sorted((e["config"]["kd"]["temperature"], e["config"]["kd"]["alpha"]) for e in body["experiments"])
    assert temps == [(1.0, 0.2), (1.0, 0.8), (4.0, 0.2), (4.0, 0.8)]
    assert wake.call_count == 4


def test_json_booleans_set_checkboxes_and_yes_no_choices_alike(api, checkpoint, dataset, wake):
    response = post_json(api, "/api/experiments/", {"name": "no T²", "teacher": checkpoint.pk,
                                                    "dataset": dataset.pk, "t2_scaling": False, "augment": True,
                                                    "multi_label": False})
    assert response.status_code == 201, response.json()
    config = response.json()["config"]
    assert config["kd"]["t2_scaling"] is False and config["augment"]["enabled"] is True
    assert config["data"]["multi_label"] is False
