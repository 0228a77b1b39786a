"""Tracked runs through the API: create, ingest (idempotent), finish, student zip, list filters; team checks."""

from __future__ import annotations

import json
from datetime import timedelta

from django.utils import timezone

from webapp.experiments.models import Experiment
from webapp.metrics.models import MetricPoint

S = Experiment.Status


def post_json(client, url: str, body) -> object:
    return client.post(url, json.dumps(body), content_type="application/json")


def tracked_run(client, experiment, **extra) -> dict:
    response = post_json(client, "/api/tracked/", {"name": "laptop run", "config": experiment.config, **extra})
    assert response.status_code == 201, response.content
    return response.json()


def test_it_creates_a_tracked_run_of_the_users_team_running_and_never_queued(api, acme, experiment):
    run = tracked_run(api, experiment, environment={"python": "3.11.7", "host": {"hostname": "laptop"}})
    row = Experiment.objects.get(pk=run["id"])
    assert (row.team, row.status, row.tracked, row.teacher, row.dataset) == (acme, S.RUNNING, True, None, None)
    assert run["tracked"] and run["teacher"] is None and run["environment"]["python"] == "3.11.7"
    assert row.worker_name == "tracked:laptop" and row.student_type == "textcnn"


def test_ingest_is_idempotent_on_key_and_step(api, experiment):
    run = tracked_run(api, experiment)
    batch = {"points": [["train/loss", 1, 0.9], ["train/loss", 2, 0.7], ["dev/accuracy", 2, 0.5]],
             "step": 2, "total_steps": 10,
             "phase": {"name": "training", "label": "Training", "done": 2, "total": 10, "unit": "step",
                       "rate": 1.0, "eta_seconds": 8.0, "elapsed_seconds": 2.0, "finished": False},
             "log_tail": "12:00:00 INFO distill_core: hello"}
    url = f"/api/experiments/{run['id']}/ingest/"
    first, again = post_json(api, url, batch), post_json(api, url, batch)
    assert first.json() == again.json() == {"id": run["id"], "accepted": 3, "status": "RUNNING",
                                           "cancel_requested": False}
    post_json(api, url, {"points": [["dev/accuracy", 4, 0.4]], "step": 4})
    points = sorted(MetricPoint.objects.filter(experiment_id=run["id"]).values_list("key", "step", "value"))
    assert points == [("dev/accuracy", 2, 0.5), ("dev/accuracy", 4, 0.4), ("train/loss", 1, 0.9),
                      ("train/loss", 2, 0.7)]
    row = Experiment.objects.get(pk=run["id"])
    assert row.best == {"dev/accuracy": 0.5} and row.latest["dev/accuracy"] == 0.4
    assert (row.current_step, row.total_steps, row.progress) == (4, 10, 0.4)
    assert row.phase["name"] == "training" and row.log_tail.endswith("hello")


def test_ingest_answers_the_cancel_flag_and_refuses_points_once_ended(api, experiment):
    run = tracked_run(api, experiment)
    assert api.post(f"/api/experiments/{run['id']}/cancel/").json()["outcome"] == "cancel_requested"
    answer = post_json(api, f"/api/experiments/{run['id']}/ingest/", {"points": []}).json()
    assert answer["cancel_requested"] is True
    ended = post_json(api, f"/api/experiments/{run['id']}/finish/", {"status": "CANCELLED", "error": "Cancelled"})
    assert ended.json()["status"] == "CANCELLED"
    late = post_json(api, f"/api/experiments/{run['id']}/ingest/", {"points": [["train/loss", 9, 0.1]]})
    assert late.status_code == 409 and not MetricPoint.objects.filter(experiment_id=run["id"]).exists()


def test_finish_stores_the_results_and_a_repeated_finish_is_harmless(api, experiment):
    from tests.webapp.factories import sample_results

    run = tracked_run(api, experiment)
    url = f"/api/experiments/{run['id']}/finish/"
    results = {**sample_results(), "export_dir": None}
    done = post_json(api, url, {"status": "SUCCEEDED", "results": results})
    assert done.status_code == 200 and done.json()["status"] == "SUCCEEDED" and done.json()["progress"] == 1.0
    row = Experiment.objects.get(pk=run["id"])
    assert row.results["student"]["confusion_matrix"] == results["student"]["confusion_matrix"]
    assert row.results["size"] == results["size"]
    assert post_json(api, url, {"status": "SUCCEEDED", "results": results}).status_code == 200
    assert post_json(api, url, {"status": "FAILED"}).status_code == 409
    assert api.get(f"/api/experiments/{run['id']}/student.zip").status_code == 404  # the export stayed local


def test_points_and_finish_refuse_a_run_of_the_dashboards_workers(api, make_experiment):
    queued = make_experiment(S.RUNNING)
    assert post_json(api, f"/api/experiments/{queued.pk}/ingest/", {"points": []}).status_code == 409
    assert post_json(api, f"/api/experiments/{queued.pk}/finish/", {"status": "FAILED"}).status_code == 409


def test_bad_points_are_refused_with_the_field_to_blame(api, experiment):
    run = tracked_run(api, experiment)
    url = f"/api/experiments/{run['id']}/ingest/"
    for bad in (["train/loss", 1], ["", 1, 0.5], ["train/loss", -1, 0.5], ["train/loss", 1, "x"],
                ["train/loss", True, 0.5]):
        response = post_json(api, url, {"points": [bad]})
        assert response.status_code == 400 and "points.0" in response.json()["fields"]
    assert post_json(api, url, {"points": [], "bogus": 1}).status_code == 400
    too_many = post_json(api, url, {"points": [["k", i, 0.0] for i in range(10_001)]})
    assert too_many.status_code == 413


def test_a_tracked_run_needs_a_valid_config_and_one_of_your_teams(api, experiment, other):
    assert post_json(api, "/api/tracked/", {"name": "x", "config": {"student": {"type": "nope"}}}).status_code == 400
    assert post_json(api, "/api/tracked/", {"name": "x"}).status_code == 400
    refused = post_json(api, "/api/tracked/", {"name": "x", "config": experiment.config, "team": other.slug})
    assert refused.status_code == 400 and "team" in refused.json()["fields"]


def test_a_tracked_run_body_is_refused_with_the_reason_not_a_parse_error(api, experiment):
    nul = api.post("/api/tracked/", '{"name": "x", "config": {}, "environment": {"\\u0000": 1}}',
                   content_type="application/json")
    assert nul.status_code == 400 and "NUL" in nul.json()["error"] and nul.json()["fields"]
    as_text = api.post("/api/tracked/", json.dumps({"name": "x", "config": experiment.config}), content_type="text/plain")
    assert as_text.status_code == 415 and "application/json" in as_text.json()["error"]


def test_other_teams_are_refused_on_every_tracking_endpoint(client, alice, charlie, experiment, finished_experiment):
    from webapp.api.models import ApiToken

    _, alice_token = ApiToken.issue(alice, "t")
    _, charlie_token = ApiToken.issue(charlie, "t")
    client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {alice_token}"
    run = tracked_run(client, experiment)
    client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {charlie_token}"
    for pk in (run["id"], finished_experiment.pk):
        assert post_json(client, f"/api/experiments/{pk}/ingest/", {"points": [["k", 1, 1.0]]}).status_code == 404
        assert post_json(client, f"/api/experiments/{pk}/finish/", {"status": "FAILED"}).status_code == 404
        assert client.get(f"/api/experiments/{pk}/student.zip").status_code == 404
    assert Experiment.objects.get(pk=run["id"]).status == S.RUNNING
    assert not MetricPoint.objects.filter(experiment_id=run["id"]).exists()


def test_the_api_streams_a_finished_runs_student(api, finished_experiment):
    import io
    import zipfile

    response = api.get(f"/api/experiments/{finished_experiment.pk}/student.zip")
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    names = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content))).namelist()
    assert f"experiment-{finished_experiment.pk}-student/student.pt" in names or any(
        n.startswith(f"experiment-{finished_experiment.pk}-student/") for n in names)


def test_the_list_filters_by_team_name_owner_and_tracked(api, acme, experiment, make_experiment):
    run = tracked_run(api, experiment)
    make_experiment(name="other name")

    def ids(query: str) -> list[int]:
        response = api.get(f"/api/experiments/?{query}")
        assert response.status_code == 200, response.content
        return [row["id"] for row in response.json()["results"]]

    assert ids("tracked=true") == [run["id"]]
    assert run["id"] not in ids("tracked=false") and experiment.pk in ids("tracked=false")
    assert ids("name=LAPTOP") == [run["id"]]
    assert len(ids(f"team={acme.slug}")) == len(ids(f"team={acme.pk}")) == 3
    assert ids("team=other") == [] and ids("owner=nobody") == []
    assert api.get("/api/experiments/?tracked=maybe").status_code == 400


def test_housekeeping_leaves_a_quiet_tracked_run_to_its_client(api, experiment, settings):
    from webapp.gpuqueue.queue import recover_lost_runs

    run = tracked_run(api, experiment)
    Experiment.objects.filter(pk=run["id"]).update(heartbeat_at=timezone.now() - timedelta(days=1))
    recover_lost_runs()
    assert Experiment.objects.get(pk=run["id"]).status == S.RUNNING


def test_the_pages_show_a_tracked_run_without_a_teacher_or_dataset(api, alice_client, experiment):
    run = tracked_run(api, experiment)
    post_json(api, f"/api/experiments/{run['id']}/ingest/", {"points": [["train/loss", 1, 0.5]], "step": 1})
    detail = alice_client.get(f"/experiments/{run['id']}/")
    assert detail.status_code == 200 and "Tracked" in detail.content.decode()
    listing = alice_client.get("/")
    assert listing.status_code == 200 and "tracked run" in listing.content.decode()
    assert alice_client.get(f"/compare/?ids={run['id']},{experiment.pk}").status_code == 200
    assert alice_client.get(f"/experiments/new/?clone={run['id']}").status_code == 200
    assert alice_client.get("/queue/").status_code == 200
    assert alice_client.get(f"/experiments/{run['id']}/metrics.json").json()["series"]["train/loss"]["steps"] == [1]


def test_a_tracked_run_whose_client_is_gone_ends_with_cancel(api, experiment, settings):
    from workers.revoke import kill_hung_cancels

    run = tracked_run(api, experiment)
    api.post(f"/api/experiments/{run['id']}/cancel/")
    later = timezone.now() + timedelta(seconds=3 * settings.LEASE_SECONDS)
    assert kill_hung_cancels(now=later) == [run["id"]]
    assert Experiment.objects.get(pk=run["id"]).status == S.CANCELLED
