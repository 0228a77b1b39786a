"""Claiming: the best queued experiment goes to exactly one worker."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from webapp.accounts.models import Team
from webapp.experiments.models import Checkpoint, Dataset, Experiment
from workers import queue

S = Experiment.Status


@pytest.fixture
def make_experiment(db):
    user = get_user_model().objects.create_user("alice", password="pw")
    team = Team.objects.create(name="Acme", slug="acme")
    checkpoint = Checkpoint.objects.create(team=team, name="t", path="/nowhere", info={"num_labels": 2})
    dataset = Dataset.objects.create(team=team, name="d", train_path="/nowhere", labels=["a", "b"])

    def make(name: str, **fields) -> Experiment:
        return Experiment.objects.create(team=team, owner=user, name=name, teacher=checkpoint, dataset=dataset,
                                         student_type="textcnn", config={}, **fields)

    return make


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


def test_runs_whose_lease_expired_fail_with_a_reason(make_experiment, settings):
    from datetime import timedelta

    from django.utils import timezone

    stale = make_experiment("stale", status=S.RUNNING, heartbeat_at=timezone.now() - timedelta(hours=1))
    fresh = make_experiment("fresh", status=S.RUNNING, heartbeat_at=timezone.now())
    assert queue.fail_lost_runs() == [stale.pk]
    stale.refresh_from_db()
    fresh.refresh_from_db()
    assert stale.status == S.FAILED and "heartbeats" in stale.error
    assert fresh.status == S.RUNNING
