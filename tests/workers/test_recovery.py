"""Liveness: runs whose lease expired are re-queued, and fail for good past their attempt limit."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from webapp.experiments.models import Experiment
from webapp.gpuqueue import queue

S = Experiment.Status


def stale(make, name: str, **fields) -> Experiment:
    return make(name, status=S.RUNNING, heartbeat_at=timezone.now() - timedelta(hours=1), **fields)


def test_a_run_whose_lease_expired_is_requeued_with_a_reason(make_experiment):
    lost = stale(make_experiment, "lost", attempts=1, worker_name="w1", task_id="t1")
    fresh = make_experiment("fresh", status=S.RUNNING, heartbeat_at=timezone.now(), attempts=1)
    assert queue.recover_lost_runs() == {S.QUEUED: [lost.pk]}
    lost.refresh_from_db()
    fresh.refresh_from_db()
    assert lost.status == S.QUEUED and "heartbeats" in lost.error and "attempt 1 of 3" in lost.error
    assert lost.worker_name == "" and lost.task_id == ""
    assert fresh.status == S.RUNNING


def test_a_requeued_run_keeps_its_place_in_the_queue(make_experiment):
    lost = stale(make_experiment, "lost", attempts=1)
    make_experiment("newer")
    queue.recover_lost_runs()
    assert queue.claim_next("default", "w2") == lost.pk


def test_a_run_past_its_attempt_limit_fails_with_the_reason(make_experiment):
    lost = stale(make_experiment, "lost", attempts=3, max_attempts=3)
    assert queue.recover_lost_runs() == {S.FAILED: [lost.pk]}
    lost.refresh_from_db()
    assert lost.status == S.FAILED and lost.finished_at
    assert "Gave up after 3 of 3 attempts" in lost.error and "heartbeats" in lost.error


def test_a_lost_run_with_a_cancel_request_ends_cancelled(make_experiment):
    lost = stale(make_experiment, "lost", attempts=1, cancel_requested=True)
    assert queue.recover_lost_runs() == {S.CANCELLED: [lost.pk]}


def test_a_renewed_lease_is_not_recovered(make_experiment):
    exp = make_experiment("alive")
    queue.claim_next("default", "w1", "t1")
    queue.mark_running(exp.pk, "t1")
    assert queue.renew_lease(exp.pk, "t1") is False
    assert queue.recover_lost_runs() == {}
    assert queue.renew_lease(exp.pk, "other-claim") is None


def test_a_hung_cancel_is_killed_and_ends_cancelled(make_experiment, monkeypatch):
    from workers import revoke
    from workers.celery import app

    revoked = []
    monkeypatch.setattr(app.control, "revoke", lambda task_id, **kw: revoked.append((task_id, kw)))
    hung = make_experiment("hung", status=S.RUNNING, heartbeat_at=timezone.now(), task_id="t9",
                           cancel_requested=True, cancel_requested_at=timezone.now() - timedelta(hours=1))
    assert revoke.kill_hung_cancels() == [hung.pk]
    hung.refresh_from_db()
    assert hung.status == S.CANCELLED and revoked == [("t9", {"terminate": True, "signal": "SIGKILL"})]
