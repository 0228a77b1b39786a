"""Tune KD in the web app: the form option, the trials on the page, the list and the API (team-checked)."""

from __future__ import annotations

import pytest

from distill_core.config import ExperimentConfig
from webapp.experiments.models import Experiment, TuneTrial

S = Experiment.Status
URL = "/experiments/new/"
EXPLANATION = ("T = 4, alpha = 0.2, kl: dev accuracy 91.30, +1.30 dev points over the next best, "
               "T = 1, alpha = 0.8, kl (90.00) (2 trials of 300 steps).")


def test_the_tune_option_submits_and_reaches_the_config(alice_client, form_data, wake):
    response = alice_client.post(URL, {**form_data, "tune_kd": "on", "tune_temperatures": "1, 4",
                                       "tune_alphas": "0.2, 0.8", "tune_losses": "kl, MSE", "tune_steps": "200"})
    assert response.status_code == 302, response.context["form"].errors
    tune = ExperimentConfig.from_dict(Experiment.objects.get().config).tune
    assert (tune.enabled, tune.temperatures, tune.alphas, tune.losses, tune.steps) == (
        True, [1.0, 4.0], [0.2, 0.8], ["kl", "mse"], 200)


def test_the_form_offers_the_option_with_its_defaults(alice_client, form_data):
    html = alice_client.get(URL).content.decode()
    assert 'name="tune_kd"' in html and 'name="tune_temperatures" value="2.0, 4.0"' in html
    assert 'name="tune_alphas" value="0.2, 0.5, 0.8"' in html and 'name="tune_steps" value="300"' in html


@pytest.mark.parametrize("changes, field, text", [
    ({"tune_alphas": "0.2, 1.5"}, "tune_alphas", "out of range"),
    ({"tune_losses": "kl, hinge"}, "tune_losses", "'hinge' is not a soft loss"),
    ({"tune_steps": "5"}, "tune_steps", "greater than or equal to 10"),
    ({"tune_temperatures": "1, 2, 3, 4, 5, 6, 7", "tune_alphas": "0.1, 0.2, 0.3, 0.4, 0.5, 0.6"},
     "tune_temperatures", "at most 36"),
])
def test_bad_tune_values_are_refused_on_their_field(alice_client, form_data, wake, changes, field, text):
    response = alice_client.post(URL, {**form_data, "tune_kd": "on", **changes})
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert field in errors and any(text in e for e in errors[field]), errors
    assert not Experiment.objects.exists()


@pytest.fixture
def tuned(make_experiment) -> Experiment:
    """A running experiment whose tuning finished: two trials, the second chosen, one more failed."""
    exp = make_experiment(S.RUNNING, name="tuned run")
    curve = {"train/loss": [[1, 1.2], [2, 0.9], [3, 0.7]], "dev/accuracy": [[2, 0.85], [3, 0.90]]}
    TuneTrial.objects.create(experiment=exp, index=0, temperature=1.0, alpha=0.8, loss="kl", status="SUCCEEDED",
                             steps=300, score=0.90, curve=curve, metrics={"accuracy": 0.90, "macro_f1": 0.8})
    TuneTrial.objects.create(experiment=exp, index=1, temperature=4.0, alpha=0.2, loss="kl", status="SUCCEEDED",
                             steps=300, score=0.913, curve=curve, chosen=True, explanation=EXPLANATION)
    TuneTrial.objects.create(experiment=exp, index=2, temperature=8.0, alpha=0.2, loss="mse", status="FAILED",
                             steps=300, error="The loss is not finite at step 12 <script>")
    return exp


def test_the_page_shows_every_trial_its_curve_and_the_explanation(alice_client, tuned):
    html = alice_client.get(f"/experiments/{tuned.pk}/").content.decode()
    assert 'id="tune-trials"' in html and "Tune KD: 3 trials" in html
    assert f"<strong>Chosen:</strong> {EXPLANATION}" in html
    assert html.count('<tr class="trial') == 3 and html.count('<tr class="trial chosen"') == 1
    assert html.count("<polyline") == 4  # loss and dev curves of the two finished trials
    assert "0.9130" in html and "not finite at step 12 &lt;script&gt;" in html


def test_the_list_marks_a_tuned_run(alice_client, tuned, make_experiment):
    make_experiment(S.QUEUED, name="plain run")
    html = alice_client.get("/").content.decode()
    assert html.count("KD tuned · 3 trials") == 1


def test_the_api_returns_the_trials_and_other_teams_see_none(api, tuned):
    body = api.get(f"/api/experiments/{tuned.pk}/").json()
    assert [(t["index"], t["status"], t["chosen"]) for t in body["trials"]] == [
        (0, "SUCCEEDED", False), (1, "SUCCEEDED", True), (2, "FAILED", False)]
    assert body["trials"][1]["explanation"] == EXPLANATION and body["trials"][0]["curve"]["dev/accuracy"][-1] == [3, 0.9]


def test_another_team_cannot_see_the_trials(charlie_client, tuned):
    assert charlie_client.get(f"/experiments/{tuned.pk}/").status_code == 404


def test_a_clone_of_a_tuned_run_keeps_its_grid(alice_client, form_data, wake):
    from tests.webapp.experiments.test_clone import form_values

    alice_client.post(URL, {**form_data, "tune_kd": "on", "tune_temperatures": "1, 4", "tune_alphas": "0.2",
                            "tune_losses": "kl, mse", "tune_steps": "50"})
    original = Experiment.objects.get()
    html = alice_client.get(f"{URL}?clone={original.pk}").content.decode()
    response = alice_client.post(f"{URL}?clone={original.pk}", form_values(html))
    assert response.status_code == 302, response.context["form"].errors
    copy = Experiment.objects.exclude(pk=original.pk).get()
    assert copy.config["tune"] == original.config["tune"] == {
        "enabled": True, "temperatures": [1.0, 4.0], "alphas": [0.2], "losses": ["kl", "mse"], "steps": 50,
        "metric": None}
