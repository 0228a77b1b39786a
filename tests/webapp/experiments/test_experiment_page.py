"""The experiment page, its JSON endpoints (status, metrics with a cursor), cancel and config download."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.webapp.factories import add_points, sample_results
from webapp.experiments.models import Experiment

S = Experiment.Status


def page(client, experiment):
    response = client.get(f"/experiments/{experiment.pk}/")
    assert response.status_code == 200
    return response.content.decode()


def test_a_running_experiment_has_live_charts(alice_client, make_experiment):
    experiment = make_experiment(S.RUNNING, total_steps=200, current_step=50, progress=0.25,
                                 started_at=timezone.now() - timedelta(seconds=60),
                                 latest={"train/loss": 0.5, "train/lr": 0.001}, best={"dev/accuracy": 0.7})
    html = page(alice_client, experiment)
    assert 'data-active="1"' in html
    for chart in ("chart-loss", "chart-lr", "chart-dev"):
        assert f'id="{chart}"' in html
    assert "/static/vendor/plotly.min.js" in html and "/static/js/experiment.js" in html
    assert "cdn" not in html.lower()
    assert 'id="progress-step">50<' in html and 'id="progress-total">200<' in html
    assert "Cancel run" in html and "70.0%" in html
    assert 'id="experiment-status"' in html and 'id="results"' not in html


def test_the_list_shows_status_progress_and_scores(alice_client, make_experiment):
    make_experiment(S.RUNNING, name="live one", progress=0.4)
    make_experiment(S.SUCCEEDED, name="done one", progress=1.0, best={"dev/accuracy": 0.834},
                    results=sample_results())
    html = alice_client.get("/").content.decode()
    assert "live one" in html and "done one" in html
    assert "badge-running" in html and "badge-succeeded" in html
    assert "83.4%" in html and "81.0%" in html  # best dev accuracy, student test accuracy
    assert "tiny-bert" in html and "headlines" in html and "alice" in html


def test_an_empty_list_offers_a_first_experiment(alice_client, acme):
    assert b"Create your first experiment" in alice_client.get("/").content


def test_a_failed_experiment_shows_its_error_escaped(alice_client, make_experiment):
    experiment = make_experiment(S.FAILED, error="TrainingError: NaN at step 3\n<script>alert('x')</script>")
    html = page(alice_client, experiment)
    assert "The run failed" in html
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html
    assert "<script>alert" not in html
    assert 'class="error-box"' in html and "Cancel run" not in html


def test_a_succeeded_experiment_shows_its_results(alice_client, make_experiment):
    experiment = make_experiment(S.SUCCEEDED, progress=1.0, results=sample_results())
    html = page(alice_client, experiment)
    assert 'data-active="0"' in html
    for text in ("81.0%", "86.0%", "79.0%", "85.0×", "24.0×", "Confusion matrices", "Row-normalised",
                 "Per class", "Teacher vs student", "1.2M", "102.0M", "4.8 MB", "409.0 MB", "0.80 ms", "60.00 ms",
                 "/artifacts/experiments/1/student", 'id="results-charts"', 'id="cm-student"', 'id="cm-teacher"',
                 'id="size-chart"'):
        assert text in html, text
    charts = json.loads(html.split('id="results-charts" type="application/json">')[1].split("</script>")[0])
    assert charts["labels"] == ["finance", "sports", "tech"]
    assert charts["confusion"]["student"][0] == [8, 1, 1]


@pytest.mark.parametrize("results", [
    {},
    {"student": {}},
    {"labels": "x", "student": [1], "teacher": None, "size": 5, "best_dev": "?"},
    {"labels": ["a", "b"], "student": {"accuracy": "high", "confusion_matrix": [[1, 2]],
                                       "per_class": [{"label": "a"}, "junk"]},
     "size": {"student": {"parameters": 0}, "teacher": {"parameters": 10}}},
    {"labels": ["a"], "student": {"accuracy": "Infinity"}, "export_dir": 5, "test_split": "<b>"},
])
def test_partial_or_odd_results_render_dashes_not_500s(alice_client, make_experiment, results):
    experiment = make_experiment(S.SUCCEEDED, results=results)
    html = page(alice_client, experiment)
    if results:
        assert "—" in html


def test_distill_core_size_key_spellings_are_understood(alice_client, make_experiment):
    results = sample_results()
    for role in ("student", "teacher"):
        size = results["size"][role]
        size["latency_ms_batch_1"] = size.pop("latency_ms_b1")
        size["latency_ms_batch_32"] = size.pop("latency_ms_b32")
    html = page(alice_client, make_experiment(S.SUCCEEDED, results=results))
    assert "0.80 ms" in html and "60.00 ms" in html


def test_the_status_endpoint(alice_client, make_experiment):
    experiment = make_experiment(S.RUNNING, total_steps=100, current_step=25, progress=0.25,
                                 started_at=timezone.now() - timedelta(seconds=30),
                                 latest={"train/loss": 0.4, "train/lr": None}, best={"dev/accuracy": 0.6})
    response = alice_client.get(f"/experiments/{experiment.pk}/status.json")
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    body = response.json()
    assert body["status"] == "RUNNING" and body["finished"] is False
    assert body["progress"] == 0.25 and body["current_step"] == 25 and body["total_steps"] == 100
    assert body["latest"] == {"train/loss": 0.4, "train/lr": None}  # the sink stores NaN as null
    assert body["best"] == {"dev/accuracy": 0.6} and body["error"] == ""
    assert 85 <= body["eta_seconds"] <= 95  # 30 s for 25% -> about 90 s left


def test_a_finished_status_has_no_eta(alice_client, make_experiment):
    experiment = make_experiment(S.FAILED, error="boom", progress=0.5, started_at=timezone.now())
    body = alice_client.get(f"/experiments/{experiment.pk}/status.json").json()
    assert body["finished"] is True and body["eta_seconds"] is None and body["error"] == "boom"


def test_metrics_come_after_the_cursor_in_step_order(alice_client, experiment):
    add_points(experiment, "train/loss", {5: 0.5, 1: 0.9, 3: 0.7, 2: 0.8, 4: 0.6})
    add_points(experiment, "dev/accuracy", {2: 0.5, 4: 0.6})
    url = f"/experiments/{experiment.pk}/metrics.json"

    everything = alice_client.get(url).json()
    assert everything["series"]["train/loss"] == {"steps": [1, 2, 3, 4, 5], "values": [0.9, 0.8, 0.7, 0.6, 0.5]}
    assert everything["cursor"] == 5 and everything["more"] is False

    after = alice_client.get(url, {"after": 2}).json()
    assert after["series"] == {"train/loss": {"steps": [3, 4, 5], "values": [0.7, 0.6, 0.5]},
                               "dev/accuracy": {"steps": [4], "values": [0.6]}}
    assert after["cursor"] == 5

    nothing = alice_client.get(url, {"after": 5}).json()
    assert nothing["series"] == {} and nothing["cursor"] == 5 and nothing["more"] is False


def test_metrics_answer_everything_at_once_as_downsampling_bounds_the_size(alice_client, experiment):
    add_points(experiment, "train/loss", {1: 1.0, 2: 0.9, 3: 0.8})
    add_points(experiment, "train/lr", {1: 0.1, 2: 0.1, 3: 0.1})
    first = alice_client.get(f"/experiments/{experiment.pk}/metrics.json").json()
    assert first["cursor"] == 3 and first["more"] is False and first["downsampled"] is False
    assert first["series"]["train/lr"]["steps"] == [1, 2, 3]


def test_metrics_turn_nan_into_null(alice_client, experiment):
    from django.db import connection

    if connection.vendor == "sqlite":
        pytest.skip("SQLite stores NaN as NULL, which the column refuses; Postgres keeps it")
    add_points(experiment, "train/loss", {1: float("nan")})
    body = alice_client.get(f"/experiments/{experiment.pk}/metrics.json").json()
    assert body["series"]["train/loss"]["values"] == [None]


@pytest.mark.parametrize("after", ["abc", "1.5", "", "-2", str(2**40), "9" * 5000])
def test_a_bad_cursor_is_a_json_400(alice_client, experiment, after):
    response = alice_client.get(f"/experiments/{experiment.pk}/metrics.json", {"after": after})
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json" and "after must be" in response.json()["error"]


def test_cancelling_a_queued_experiment_stops_it_at_once(alice_client, experiment):
    response = alice_client.post(f"/experiments/{experiment.pk}/cancel/")
    assert response["Location"] == f"/experiments/{experiment.pk}/"
    experiment.refresh_from_db()
    assert experiment.status == S.CANCELLED and experiment.finished_at is not None
    assert "Cancelled before it started" in alice_client.get(response["Location"]).content.decode()


@pytest.mark.parametrize("status", [S.CLAIMED, S.RUNNING])
def test_cancelling_a_running_experiment_asks_the_worker(alice_client, make_experiment, status):
    experiment = make_experiment(status)
    alice_client.post(f"/experiments/{experiment.pk}/cancel/")
    experiment.refresh_from_db()
    assert experiment.status == status and experiment.cancel_requested is True
    html = page(alice_client, experiment)
    assert "Cancelling" in html and "Cancel run" not in html


def test_cancelling_a_finished_experiment_changes_nothing(alice_client, make_experiment):
    experiment = make_experiment(S.SUCCEEDED)
    response = alice_client.post(f"/experiments/{experiment.pk}/cancel/", follow=True)
    experiment.refresh_from_db()
    assert experiment.status == S.SUCCEEDED and experiment.cancel_requested is False
    assert b"Nothing to cancel" in response.content


def test_cancel_needs_a_post(alice_client, experiment):
    assert alice_client.get(f"/experiments/{experiment.pk}/cancel/").status_code == 405


def test_a_teammate_can_cancel(client, bob, experiment):
    client.force_login(bob)
    client.post(f"/experiments/{experiment.pk}/cancel/")
    experiment.refresh_from_db()
    assert experiment.status == S.CANCELLED


def test_the_config_downloads_as_json(alice_client, experiment):
    response = alice_client.get(f"/experiments/{experiment.pk}/config.json")
    assert response.status_code == 200
    assert response["Content-Disposition"] == f'attachment; filename="experiment-{experiment.pk}-config.json"'
    assert json.loads(response.content) == experiment.config
    assert f'href="/experiments/{experiment.pk}/config.json"' in page(alice_client, experiment)


def test_each_intermediate_match_gets_a_live_series(alice_client, make_experiment):
    experiment = make_experiment(S.RUNNING)
    matches = [{"layer_T": 2, "layer_S": 1, "feature": "hidden", "loss": "hidden_mse", "proj": ["linear", 16, 32]},
               {"layer_T": 1, "layer_S": 0, "feature": "attention", "loss": "attention_mse"}]
    experiment.config = {**experiment.config, "matches": matches}
    experiment.save(update_fields=["config"])
    html = page(alice_client, experiment)
    charts = json.loads(html.split('id="live-charts" type="application/json">')[1].split("</script>")[0])
    by_id = {c["id"]: c["keys"] for c in charts}
    assert by_id["chart-matches"] == ["train/match0_hidden_mse_T2_S1", "train/match1_attention_mse_T1_S0"]
    assert "train/intermediate_loss" in by_id["chart-loss"] and "train/temperature" in by_id["chart-schedule"]


def test_a_config_that_no_longer_parses_still_renders(alice_client, make_experiment):
    experiment = make_experiment(S.RUNNING)
    experiment.config = {**experiment.config, "matches": "no-such-preset"}
    experiment.save(update_fields=["config"])
    assert 'id="chart-loss"' in page(alice_client, experiment)


def test_the_run_log_is_shown_escaped_and_polled(alice_client, make_experiment):
    experiment = make_experiment(S.RUNNING, log_tail="09:00:00 INFO distill_core: Epoch 1 <script>alert(1)</script>")
    html = page(alice_client, experiment)
    assert 'id="log-tail"' in html and "Epoch 1 &lt;script&gt;" in html and "<script>alert(1)" not in html
    assert "Epoch 1" in alice_client.get(f"/experiments/{experiment.pk}/status.json").json()["log_tail"]


def test_a_queued_experiment_shows_its_place_in_the_queue(alice_client, make_experiment):
    make_experiment(S.QUEUED, name="first")
    second = make_experiment(S.QUEUED, name="second")
    html = page(alice_client, second)
    assert "#2 in pool “default”" in html
    body = alice_client.get(f"/experiments/{second.pk}/status.json").json()
    assert body["queue"]["position"] == 2 and body["queue"]["note"].startswith("waiting")
    running = make_experiment(S.RUNNING, name="running")
    assert alice_client.get(f"/experiments/{running.pk}/status.json").json()["queue"] == {}
