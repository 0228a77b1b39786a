"""What stops a claim: paused queue or pool, a draining/disabled worker, a team at its limit."""

from __future__ import annotations

from webapp.experiments.models import Experiment
from webapp.gpuqueue import queue
from webapp.gpuqueue.models import Pool, QueueSwitch, Worker

S = Experiment.Status


def test_a_paused_queue_hands_out_nothing_until_resumed(make_experiment):
    exp = make_experiment("waiting")
    QueueSwitch.set_paused(True)
    assert queue.claim_next("default", "w1") is None and queue.pools_with_work() == []
    QueueSwitch.set_paused(False)
    assert queue.claim_next("default", "w1") == exp.pk


def test_a_paused_pool_waits_while_others_run(make_experiment):
    make_experiment("a100-job", pool="a100")
    other = make_experiment("default-job")
    Pool.objects.create(name="a100", paused=True)
    assert queue.claim_next("a100", "w1") is None
    assert queue.pools_with_work() == ["default"]
    assert queue.claim_next("default", "w1") == other.pk


def test_a_draining_or_disabled_worker_takes_no_new_job(make_experiment):
    make_experiment("waiting")
    Worker.objects.create(name="w1", host="h", mode=Worker.Mode.DRAINING)
    Worker.objects.create(name="w2", host="h", mode=Worker.Mode.DISABLED)
    assert queue.claim_next("default", "w1") is None
    assert queue.claim_next("default", "w2") is None
    assert queue.claim_next("default", "w3") is not None


def test_a_draining_worker_becomes_disabled_once_its_job_ends(make_experiment):
    exp = make_experiment("running")
    worker = Worker.objects.create(name="w1", host="h")
    queue.claim_next("default", "w1")
    Worker.objects.filter(pk=worker.pk).update(mode=Worker.Mode.DRAINING)
    queue.finish_draining_workers()
    assert Worker.objects.get(pk=worker.pk).mode == Worker.Mode.DRAINING
    queue.finish(exp.pk, S.SUCCEEDED)
    queue.finish_draining_workers()
    assert Worker.objects.get(pk=worker.pk).mode == Worker.Mode.DISABLED


def test_work_past_the_team_limit_waits_and_others_go_ahead(make_experiment):
    from webapp.accounts.models import Team

    first = make_experiment("first")
    second = make_experiment("second")
    Team.objects.filter(pk=first.team_id).update(max_running=1)
    outsider_team = Team.objects.create(name="Other", slug="other")
    outsider = make_experiment("outsider")
    Experiment.objects.filter(pk=outsider.pk).update(team=outsider_team)
    assert queue.claim_next("default", "w1") == first.pk
    assert queue.claim_next("default", "w2") == outsider.pk  # Acme is at its limit
    assert queue.claim_next("default", "w3") is None
    queue.finish(first.pk, S.SUCCEEDED)
    assert queue.claim_next("default", "w3") == second.pk
