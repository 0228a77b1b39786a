"""Claiming: the best queued experiment goes to exactly one worker."""

from __future__ import annotations

from webapp.experiments.models import Experiment
from webapp.gpuqueue import queue

S = Experiment.Status


def test_it_claims_by_priority_then_age(make_experiment):
    old = make_experiment("old")
    make_experiment("new")
    urgent = make_experiment("urgent", priority=5)
    assert queue.claim_next("default", "w1") == urgent.pk
    assert queue.claim_next("default", "w1") == old.pk
    claimed = Experiment.objects.get(pk=old.pk)
    assert claimed.status == S.CLAIMED and claimed.worker_name == "w1" and claimed.heartbeat_at


def test_it_returns_nothing_when_the_queue_is_empty(make_experiment):
    assert queue.claim_next("default", "w1") is None


def test_it_only_claims_from_its_pool(make_experiment):
    make_experiment("gpu-job", pool="a100")
    assert queue.claim_next("default", "w1") is None
    assert queue.claim_next("a100", "w1") is not None


def test_it_skips_experiments_with_a_cancel_request(make_experiment):
    make_experiment("cancelled", cancel_requested=True)
    assert queue.claim_next("default", "w1") is None


def test_a_second_claim_of_the_same_row_changes_nothing(make_experiment):
    exp = make_experiment("once")
    assert queue.claim_next("default", "w1") == exp.pk
    assert queue.claim_next("default", "w2") is None
    assert Experiment.objects.get(pk=exp.pk).worker_name == "w1"


def test_finish_only_ends_active_runs(make_experiment):
    exp = make_experiment("done", status=S.SUCCEEDED)
    queue.finish(exp.pk, S.FAILED, error="late")
    assert Experiment.objects.get(pk=exp.pk).status == S.SUCCEEDED


def test_it_orders_by_priority_then_position_then_age(make_experiment):
    first = make_experiment("first")
    second = make_experiment("second")
    moved = make_experiment("moved", position=first.position - 1)
    assert [queue.claim_next("default", "w1") for _ in range(3)] == [moved.pk, first.pk, second.pk]


def test_each_claim_counts_an_attempt_and_records_its_token(make_experiment):
    exp = make_experiment("one")
    assert queue.claim_next("default", "w1", "task-1") == exp.pk
    exp.refresh_from_db()
    assert exp.attempts == 1 and exp.task_id == "task-1"


def test_a_late_worker_cannot_finish_a_run_it_no_longer_holds(make_experiment):
    exp = make_experiment("one")
    queue.claim_next("default", "w1", "old-claim")
    assert queue.interrupt(exp.pk, "Lost.") == S.QUEUED
    queue.claim_next("default", "w2", "new-claim")
    assert not queue.finish(exp.pk, S.SUCCEEDED, token="old-claim")
    assert queue.finish(exp.pk, S.SUCCEEDED, token="new-claim")
