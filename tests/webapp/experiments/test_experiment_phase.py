"""A running experiment's current phase: on its page (own bar), in status.json, the list and the API."""

from __future__ import annotations

from webapp.experiments.models import Experiment

S = Experiment.Status
TEACHER = {"name": "teacher", "label": "Teacher labelling", "done": 1200, "total": 12000, "unit": "example",
           "rate": 40.0, "eta_seconds": 270.0, "elapsed_seconds": 30.0, "finished": False}


def test_status_json_returns_the_current_phase(alice_client, make_experiment):
    experiment = make_experiment(S.RUNNING, phase=TEACHER)
    body = alice_client.get(f"/experiments/{experiment.pk}/status.json").json()
    assert body["phase"] == TEACHER and body["progress"] == 0.0


def test_status_json_has_no_phase_before_the_run_reports_one(alice_client, make_experiment):
    experiment = make_experiment(S.QUEUED)
    assert alice_client.get(f"/experiments/{experiment.pk}/status.json").json()["phase"] is None


def test_the_page_shows_the_phase_with_its_own_bar(alice_client, make_experiment):
    experiment = make_experiment(S.RUNNING, phase=TEACHER)
    html = alice_client.get(f"/experiments/{experiment.pk}/").content.decode()
    assert '<div class="phase" id="phase">' in html  # not hidden
    assert 'id="phase-label">Teacher labelling 1,200 / 12,000 examples<' in html
    assert 'id="phase-fill" style="width: 10.0%"' in html


def test_a_finished_runs_page_hides_its_last_phase(alice_client, make_experiment):
    done = {**TEACHER, "name": "export", "label": "Exporting", "total": None, "finished": True}
    experiment = make_experiment(S.CANCELLED, phase=done)
    html = alice_client.get(f"/experiments/{experiment.pk}/").content.decode()
    assert '<div class="phase" id="phase" hidden>' in html


def test_the_list_shows_the_phase_in_the_progress_cell(alice_client, make_experiment):
    make_experiment(S.RUNNING, name="labelling", phase=TEACHER)
    make_experiment(S.RUNNING, name="exporting", phase={**TEACHER, "label": "Exporting", "total": None})
    html = alice_client.get("/").content.decode()
    assert '<div class="phase-line muted small">Teacher labelling 1,200 / 12,000 examples</div>' in html
    assert '<div class="phase-line muted small">Exporting</div>' in html


def test_the_api_returns_the_phase(api, make_experiment):
    experiment = make_experiment(S.RUNNING, phase=TEACHER)
    assert api.get(f"/api/experiments/{experiment.pk}/").json()["phase"] == TEACHER
    assert api.get("/api/experiments/").json()["results"][0]["phase"] == TEACHER
