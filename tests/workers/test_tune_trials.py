"""Tune KD through the real worker path: trials become TuneTrial child rows, the choice is explained, cancel stops."""

from __future__ import annotations

import pytest

from webapp.experiments.models import Experiment, TuneTrial
from webapp.gpuqueue import actions, queue
from webapp.metrics.models import MetricPoint
from workers.sink import DatabaseSink
from workers.tasks import execute

S = Experiment.Status
TUNE = {"enabled": True, "temperatures": [1.0, 4.0], "alphas": [0.2, 0.8], "losses": ["kl"], "steps": 10}


@pytest.fixture
def tuned_experiment(transactional_db, make_experiment, tiny_run_config, settings, tmp_path, monkeypatch):
    monkeypatch.delenv("DISTILLERY_FAKE_DISTILLER", raising=False)
    settings.ARTIFACT_ROOT = tmp_path / "artifacts"

    def make(name: str = "tuned") -> Experiment:
        config = tiny_run_config(tmp_path / name, max_steps=15)
        exp = make_experiment(name, config={**config, "tune": TUNE})
        assert queue.claim_next("default", "w1", f"token-{name}") == exp.pk
        return exp

    return make


def test_every_trial_is_a_child_run_with_its_curve_and_the_winner_is_explained(tuned_experiment):
    exp = tuned_experiment()
    execute(exp.pk, f"token-{exp.name}")
    exp.refresh_from_db()
    assert exp.status == S.SUCCEEDED, exp.error
    trials = list(TuneTrial.objects.filter(experiment=exp))
    assert [(t.temperature, t.alpha, t.loss) for t in trials] == [(1.0, 0.2, "kl"), (1.0, 0.8, "kl"),
                                                                   (4.0, 0.2, "kl"), (4.0, 0.8, "kl")]
    assert all(t.status == TuneTrial.Status.SUCCEEDED and t.steps == 10 for t in trials)
    for t in trials:  # each curve: a train loss per step, the dev score at its evaluations
        assert [s for s, _ in t.curve["train/loss"]] == list(range(1, 11))
        assert t.curve["dev/accuracy"][-1][0] == 10 and t.score == max(v for _, v in t.curve["dev/accuracy"])
    results = exp.results["tuning"]
    winner = trials[results["winner"]]
    assert [t.chosen for t in trials].count(True) == 1 and winner.chosen
    assert winner.score == max(t.score for t in trials)
    assert winner.explanation == results["explanation"] and "dev points over the next best" in winner.explanation
    assert exp.config["tune"]["enabled"] and exp.results["tuning"]["settings"] == {
        "temperature": winner.temperature, "alpha": winner.alpha, "loss": winner.loss}
    assert f"Tune KD chose {winner.explanation}" in exp.log_tail  # the run log says it too
    # the trials' points are theirs: the parent's own curve is the full run's only
    assert MetricPoint.objects.filter(experiment=exp, key="train/loss").count() == 15


def test_cancel_during_tuning_stops_the_run_and_keeps_the_finished_trials(tuned_experiment, monkeypatch):
    exp = tuned_experiment("cancelled")
    real_emit = DatabaseSink.emit

    def emit_and_cancel(self, kind, payload):
        real_emit(self, kind, payload)
        if kind == "trial" and payload["index"] == 1 and payload["status"] == "running":
            actions.cancel(Experiment.objects.get(pk=self.experiment_id))
            self.flush()  # reads the flag, as the sink's timer would

    monkeypatch.setattr(DatabaseSink, "emit", emit_and_cancel)
    execute(exp.pk, f"token-{exp.name}")
    exp.refresh_from_db()
    assert exp.status == S.CANCELLED
    statuses = list(TuneTrial.objects.filter(experiment=exp).values_list("status", flat=True))
    assert statuses[0] == TuneTrial.Status.SUCCEEDED and statuses[2:] == [TuneTrial.Status.PENDING] * 2
    assert not TuneTrial.objects.filter(experiment=exp, chosen=True).exists()
    assert not MetricPoint.objects.filter(experiment=exp).exists()  # the full run never started


def test_a_crashed_tuning_run_resumes_without_redoing_finished_trials(tuned_experiment, monkeypatch):
    from distill_core import distiller

    exp = tuned_experiment("crashed")
    real_run, trials_run = distiller.run, []

    def run(config, *args, **kwargs):
        if not config.tune.enabled and config.data.test is None:  # a trial
            trials_run.append((config.kd.temperature, config.kd.alpha))
            if len(trials_run) == 3 and crash:
                raise RuntimeError("the machine fell over")
        return real_run(config, *args, **kwargs)

    crash = True
    monkeypatch.setattr(distiller, "run", run)
    execute(exp.pk, "token-crashed")
    exp.refresh_from_db()
    assert exp.status == S.QUEUED and "the machine fell over" in exp.error  # re-queued for another attempt
    kept = {t.index: t.curve for t in TuneTrial.objects.filter(experiment=exp, status=TuneTrial.Status.SUCCEEDED)}
    assert sorted(kept) == [0, 1]

    crash, trials_run[:] = False, []
    assert queue.claim_next("default", "w2", "token-again") == exp.pk
    execute(exp.pk, "token-again")
    exp.refresh_from_db()
    assert exp.status == S.SUCCEEDED, exp.error
    assert trials_run == [(4.0, 0.2), (4.0, 0.8)]  # only the two trials not finished before the crash
    trials = list(TuneTrial.objects.filter(experiment=exp))
    assert all(t.status == TuneTrial.Status.SUCCEEDED for t in trials) and sum(t.chosen for t in trials) == 1
    assert {t.index: t.curve for t in trials if t.index < 2} == kept  # their curves survive the resume
