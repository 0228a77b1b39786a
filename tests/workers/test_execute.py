"""Running a claimed experiment in-process: cancel before start, the runtime limit, crashes, SIGTERM."""

from __future__ import annotations

import os
import signal

import pytest

from webapp.experiments.models import Experiment
from webapp.gpuqueue import actions, queue
from webapp.metrics.models import MetricPoint
from workers.tasks import execute

S = Experiment.Status


@pytest.fixture
def fake_run(monkeypatch, transactional_db, make_experiment, settings):
    """Claim a stand-in job (see workers/fake_distiller.py) and return (experiment, claim token)."""
    monkeypatch.setenv("DISTILLERY_FAKE_DISTILLER", "1")
    settings.LEASE_SECONDS = 5

    def claim(**fake):
        exp = make_experiment("fake", config={"fake": fake}, **fake.pop("fields", {}))
        assert queue.claim_next("default", "w1", "token-1") == exp.pk
        return exp, "token-1"

    return claim


def test_a_run_cancelled_while_claimed_ends_cancelled_without_starting(fake_run):
    exp, token = fake_run(steps=3)
    ok, message = actions.cancel(exp)
    assert ok and "Cancelling" in message
    execute(exp.pk, token)
    exp.refresh_from_db()
    assert exp.status == S.CANCELLED and exp.started_at is None and not MetricPoint.objects.exists()


def test_a_run_past_its_maximum_runtime_saves_and_fails_with_the_reason(fake_run):
    exp, token = fake_run(steps=500, sleep=0.01, fields={"max_runtime_seconds": 1})
    execute(exp.pk, token)
    exp.refresh_from_db()
    assert exp.status == S.FAILED and "maximum runtime of 1 s" in exp.error
    steps = list(MetricPoint.objects.filter(experiment=exp).values_list("step", flat=True))
    assert steps and len(steps) == exp.current_step < 500  # what it logged before stopping is kept


def test_a_crash_is_retried_until_the_attempt_limit(fake_run):
    exp, token = fake_run(crash=True, fields={"max_attempts": 2})
    execute(exp.pk, token)
    exp.refresh_from_db()
    assert exp.status == S.QUEUED and exp.error.startswith("Re-queued after attempt 1 of 2")
    assert queue.claim_next("default", "w1", "token-2") == exp.pk
    execute(exp.pk, "token-2")
    exp.refresh_from_db()
    assert exp.status == S.FAILED and exp.error.startswith("Gave up after 2 of 2 attempts")


def test_a_config_error_fails_at_once(fake_run):
    exp, token = fake_run(fail=True)
    execute(exp.pk, token)
    exp.refresh_from_db()
    assert exp.status == S.FAILED and exp.attempts == 1 and exp.error == "This fake run always fails."


def test_sigterm_during_a_run_requeues_it(fake_run, monkeypatch):
    from workers import fake_distiller

    exp, token = fake_run(steps=50, sleep=0.01)
    real_run = fake_distiller.run

    def run_and_get_stopped(config, sink=None, should_cancel=None, **options):
        os.kill(os.getpid(), signal.SIGTERM)  # the handler only sets a flag while the job runs
        return real_run(config, sink, should_cancel, **options)

    monkeypatch.setattr(fake_distiller, "run", run_and_get_stopped)
    before = signal.getsignal(signal.SIGTERM)
    execute(exp.pk, token)
    exp.refresh_from_db()
    assert exp.status == S.QUEUED and "stopped while running" in exp.error
    assert signal.getsignal(signal.SIGTERM) is before and exp.current_step == 1
