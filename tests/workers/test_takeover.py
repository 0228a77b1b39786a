"""A job process that was given up on and comes back must change nothing of the run another worker finished.

SIGSTOP holds the job past its lease, the beat re-queues the run, a second worker resumes and
finishes it; after SIGCONT the first job finds its claim gone at its first fenced write (row,
metric points or checkpoint) and ends on its own, leaving the row, the points and the run's
directory as the second worker left them.
"""

from __future__ import annotations

import hashlib
import os
import signal
from pathlib import Path

import pytest

from tests.conftest import wait_for
from tests.workers.conftest import LEASE, is_running, job_child, points_of, wake
from tests.workers.test_faults import wait_status, wait_step
from webapp.experiments.models import Experiment
from webapp.gpuqueue import queue
from webapp.metrics.models import MetricPoint

S = Experiment.Status


def files_under(directory: Path) -> dict[str, str]:
    """Every file and folder under `directory`: its relative path and a digest of its bytes ("dir" for folders)."""
    return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(directory.rglob("*"))}


def test_execute_ends_without_a_write_when_the_run_was_taken_over_mid_run(
        transactional_db, make_experiment, monkeypatch, settings):
    from workers import fake_distiller
    from workers.tasks import execute

    monkeypatch.setenv("DISTILLERY_FAKE_DISTILLER", "1")
    settings.LEASE_SECONDS = 5
    exp = make_experiment("fake", config={"fake": {}})
    assert queue.claim_next("default", "w1", "token-1") == exp.pk

    def run_and_get_taken_over(config, sink=None, should_cancel=None, **options):
        sink.emit("start", {"total_steps": 10})
        sink.emit("step", {"step": 1, "epoch": 1, "metrics": {"loss": 0.5}})
        Experiment.objects.filter(pk=exp.pk).update(task_id="token-2", status=S.SUCCEEDED, current_step=10)
        sink.emit("checkpoint", {"step": 1, "path": "/out/checkpoint/last.pt"})  # refused: ClaimLost
        raise AssertionError("the checkpoint must have been refused")

    monkeypatch.setattr(fake_distiller, "run", run_and_get_taken_over)
    execute(exp.pk, "token-1")
    exp.refresh_from_db()
    assert (exp.status, exp.task_id, exp.current_step, exp.error) == (S.SUCCEEDED, "token-2", 10, "")
    assert not MetricPoint.objects.filter(experiment=exp).exists()


@pytest.mark.worker
def test_a_job_given_up_on_leaves_the_finished_run_unchanged_and_exits_by_itself(
        start_worker, make_experiment, tiny_run_config, tmp_path):
    out = tmp_path / "out"
    config = tiny_run_config(out, max_steps=40)
    config["train"]["checkpoint_every"] = 5
    exp = make_experiment("taken-over", config=config)
    first = start_worker("first", fake=False, DISTILLERY_TEST_STEP_DELAY="0.15", OMP_NUM_THREADS="1")
    wake()
    wait_step(exp, 12, timeout=90, workers=[first])  # past two checkpoints and an evaluation
    stale = job_child(first)
    os.kill(stale, signal.SIGSTOP)
    try:
        second = start_worker("second", fake=False, OMP_NUM_THREADS="1")
        exp = wait_status(exp, Experiment.FINISHED, timeout=90 + LEASE, workers=[first, second], recover=True)
        assert exp.status == S.SUCCEEDED and exp.attempts == 2 and exp.worker_name.startswith("second@"), exp.error
        assert exp.results["resumed_from"] >= 10
        row = Experiment.objects.values().get(pk=exp.pk)
        points, files = points_of(exp), files_under(out)
        assert "checkpoint" not in files and "model.safetensors" in files
    finally:
        os.kill(stale, signal.SIGCONT)

    wait_for(lambda: not is_running(stale), timeout=30, interval=0.2,
             message=lambda: f"the stale job process {stale} to exit\n{first.log()[-3000:]}")
    assert "is no longer held" in first.log()  # it stopped at the fence, not by chance
    assert Experiment.objects.values().get(pk=exp.pk) == row
    assert points_of(exp) == points
    assert files_under(out) == files
