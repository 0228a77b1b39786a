"""Dependencies between runs: a run that waits for another is claimed only after that one succeeds."""

from __future__ import annotations

import pytest

from webapp.experiments.dependencies import end_orphans
from webapp.experiments.models import Experiment
from webapp.gpuqueue import queue
from webapp.registry.models import Checkpoint

S = Experiment.Status


@pytest.fixture
def woken(monkeypatch) -> list[str]:
    """The pools sent a wake-up, instead of the broker."""
    pools: list[str] = []
    monkeypatch.setattr("workers.dispatch.wake_workers", pools.append)
    return pools


@pytest.fixture
def teacher_run(make_experiment) -> Experiment:
    return make_experiment("training the demo teacher")


@pytest.fixture
def distillation(make_experiment, teacher_run) -> Experiment:
    return make_experiment("demo distillation", depends_on=teacher_run)


def test_a_dependent_run_is_not_claimed_before_its_dependency_succeeds(teacher_run, distillation, woken):
    assert queue.claim_next("default", "w1", "t1") == teacher_run.pk
    assert queue.claim_next("default", "w2", "t2") is None
    assert queue.pools_with_work() == []  # nothing claimable: no wake-ups for a run that waits
    assert queue.mark_running(teacher_run.pk, "t1")
    assert queue.claim_next("default", "w2", "t2") is None


def test_it_is_claimed_after_its_dependency_succeeds_and_the_success_wakes_its_pool(
        make_experiment, woken):
    teacher = make_experiment("teacher")
    waiting = make_experiment("on the a100s", pool="a100", depends_on=teacher)
    assert queue.claim_next("default", "w1", "t1") == teacher.pk and queue.mark_running(teacher.pk, "t1")
    assert queue.finish(teacher.pk, S.SUCCEEDED, results={}, token="t1")
    assert woken == ["a100"]
    assert queue.pools_with_work() == ["a100"]
    assert queue.claim_next("a100", "w2", "t2") == waiting.pk


def test_it_fails_with_a_reason_naming_its_dependency_when_that_fails(teacher_run, distillation, make_experiment):
    third = make_experiment("after the distillation", depends_on=distillation)
    queue.claim_next("default", "w1", "t1")
    assert queue.finish(teacher_run.pk, S.FAILED, error="out of memory", token="t1")
    distillation.refresh_from_db()
    third.refresh_from_db()
    assert distillation.status == S.FAILED and distillation.finished_at is not None
    assert f"#{teacher_run.pk} (training the demo teacher), which failed" in distillation.error
    assert third.status == S.FAILED and f"#{distillation.pk} (demo distillation)" in third.error


def test_it_is_cancelled_when_its_dependency_is_cancelled_while_running(teacher_run, distillation):
    queue.claim_next("default", "w1", "t1")
    queue.finish(teacher_run.pk, S.CANCELLED, error="Cancelled by a user while running.", token="t1")
    distillation.refresh_from_db()
    assert distillation.status == S.CANCELLED and "which was cancelled" in distillation.error


def test_it_fails_when_its_dependency_runs_out_of_attempts(make_experiment):
    teacher = make_experiment("teacher", max_attempts=1)
    waiting = make_experiment("waiting", depends_on=teacher)
    queue.claim_next("default", "w1", "t1")
    assert queue.interrupt(teacher.pk, "The run crashed.", token="t1") == S.FAILED
    waiting.refresh_from_db()
    assert waiting.status == S.FAILED and f"#{teacher.pk} (teacher)" in waiting.error


def test_a_requeued_dependency_keeps_the_run_waiting(teacher_run, distillation, woken):
    queue.claim_next("default", "w1", "t1")
    assert queue.interrupt(teacher_run.pk, "The worker was stopped.", token="t1") == S.QUEUED
    distillation.refresh_from_db()
    assert distillation.status == S.QUEUED
    assert queue.claim_next("default", "w1", "t2") == teacher_run.pk


def test_the_sweep_ends_runs_whose_dependency_ended_another_way(teacher_run, distillation):
    Experiment.objects.filter(pk=teacher_run.pk).update(status=S.CANCELLED)  # e.g. an admin's direct edit
    assert end_orphans() == [distillation.pk]
    distillation.refresh_from_db()
    assert distillation.status == S.CANCELLED and f"#{teacher_run.pk}" in distillation.error
    assert end_orphans() == []


def test_cancelling_a_queued_dependency_from_the_admin_ends_its_dependents(teacher_run, distillation):
    from webapp.gpuqueue import actions

    ok, _ = actions.cancel(teacher_run)
    distillation.refresh_from_db()
    assert ok and distillation.status == S.CANCELLED


def test_success_rereads_the_checkpoint_the_run_trained(teacher_run, tmp_path, woken):
    from distill_core.testing import make_tiny_teacher
    from tests.conftest import demo_labels

    produced = Checkpoint.objects.create(team=teacher_run.team, name="new teacher", path=str(tmp_path / "teacher"),
                                         info={"num_labels": 2, "size_bytes": 0}, trained_by=teacher_run)
    queue.claim_next("default", "w1", "t1")
    make_tiny_teacher(tmp_path / "teacher", demo_labels(), "央行宣布降准", layers=1, hidden=16)  # what the run writes
    assert queue.finish(teacher_run.pk, S.SUCCEEDED, results={}, token="t1")
    produced.refresh_from_db()
    assert produced.info["num_labels"] == len(demo_labels()) and produced.info["size_bytes"] > 0
