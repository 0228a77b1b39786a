"""kill -9 and SIGTERM of a real run's job process: no metric point is lost or doubled, best/latest survive.

A checkpoint becomes the resume point only once the points it covers are stored, and a resumed
attempt starts from the best/latest its predecessors stored, so however often the job dies, the
run's points, `best` and `latest` equal those of the same config run uninterrupted.

The job child is killed the way the OOM killer would (its worker lives on and runs the next
attempt); the test then plays the beat with the clock moved past the lease instead of waiting it
out (tests/workers/test_faults.py waits for real leases).
"""

from __future__ import annotations

import os
import random
import signal
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from distill_core.checkpointing import checkpoint_path
from tests.conftest import wait_for
from tests.workers.conftest import LEASE, job_child, points_of, wake
from tests.workers.test_faults import wait_status
from webapp.experiments.models import Experiment
from webapp.gpuqueue import queue

S = Experiment.Status
pytestmark = pytest.mark.worker

# Seeded kill moments in one run. Each kill costs a fresh job process (importing torch and transformers
# took ~14 s a kill on a loaded 2-core machine), so CI runs 8; DISTILLERY_FAULT_KILLS=20 runs the 20.
KILLS = int(os.environ.get("DISTILLERY_FAULT_KILLS", "8"))
SEED = 20261201
STEP_DELAY = 0.1  # seconds per step in the worker: a 2 s flush spans ~20 steps, a checkpoint 5
SINGLE_THREAD = {"OMP_NUM_THREADS": "1"}  # as the in-process reference run; also spares a shared CPU


def run_config(tiny_run_config, output_dir: Path, steps: int) -> dict:
    """The tiny run with a checkpoint every 5 steps and a dev evaluation every 8 (each epoch)."""
    config = tiny_run_config(output_dir, max_steps=steps)
    config["train"].update(epochs=-(-steps // 8), checkpoint_every=5)
    return config


def play_the_beat() -> None:
    """What housekeeping does once the dead job's lease has run out, without waiting for it."""
    queue.recover_lost_runs(now=timezone.now() + timedelta(seconds=LEASE + 1))


def running_attempt(exp: Experiment, attempt: int, timeout: float, worker) -> None:
    def started():
        exp.refresh_from_db()
        return exp.status == S.RUNNING and exp.attempts == attempt

    wait_for(started, timeout=timeout, interval=0.05,
             message=lambda: f"attempt {attempt} to run ({exp.status}, {exp.error!r})\n{worker.log()[-3000:]}")


def next_flush(exp: Experiment, timeout: float) -> None:
    """Return as soon as a flush moved the row's step (the lease thread touches only the heartbeat)."""
    exp.refresh_from_db()
    seen = exp.current_step
    wait_for(lambda: Experiment.objects.filter(pk=exp.pk).exclude(current_step=seen).exists(),
             timeout=timeout, interval=0.02, message="the next metrics flush")


def next_checkpoint(path: Path, timeout: float) -> None:
    """Return as soon as a new checkpoint was renamed into place (a rename gives a new inode)."""
    def identity():
        try:
            st = path.stat()
        except FileNotFoundError:
            return None
        return st.st_ino, st.st_mtime_ns

    seen = identity()
    wait_for(lambda: identity() not in (seen, None), timeout=timeout, interval=0.02, message="the next checkpoint")


def assert_same_run(exp: Experiment, reference: Experiment) -> None:
    assert exp.status == S.SUCCEEDED, exp.error
    got, want = points_of(exp), points_of(reference)
    assert len(got) == len({(key, step) for key, step, _ in got})  # each (key, step) once
    missing = sorted({(k, s) for k, s, _ in want} - {(k, s) for k, s, _ in got})
    assert not missing, f"{len(missing)} points lost, e.g. {missing[:10]}"
    assert got == want  # the same steps with the same values
    assert exp.best == reference.best and exp.best
    assert exp.latest == reference.latest
    assert exp.results["best_dev"] == reference.results["best_dev"]
    assert (exp.current_step, exp.progress) == (reference.current_step, reference.progress)


def test_kill_9_at_seeded_moments_after_flushes_and_checkpoints_loses_and_doubles_no_point(
        start_worker, make_experiment, reference_run, tiny_run_config, tmp_path):
    """KILLS kills of the job child in one run, alternately a random 0-2 s after a metrics flush (anywhere
    in the flush interval) and 0-0.5 s after a checkpoint (mostly before the 2 s timer would have flushed
    the points it covers). Each attempt resumes from the last checkpoint on the same worker."""
    steps = KILLS * 20 + 40  # an attempt gains at most ~40 steps before its kill, ~10 on average
    reference = reference_run(run_config(tiny_run_config, tmp_path / "reference", steps))
    out = tmp_path / "out"
    exp = make_experiment("killed", config=run_config(tiny_run_config, out, steps), max_attempts=KILLS + 1)
    worker = start_worker("w", fake=False, DISTILLERY_TEST_STEP_DELAY=str(STEP_DELAY), **SINGLE_THREAD)
    rng = random.Random(SEED)
    wake()
    for attempt in range(1, KILLS + 1):
        running_attempt(exp, attempt, timeout=90, worker=worker)
        if attempt % 2:
            next_flush(exp, timeout=30)
            time.sleep(rng.uniform(0.0, 2.0))
        else:
            next_checkpoint(checkpoint_path(out), timeout=30)
            time.sleep(rng.uniform(0.0, 0.5))
        os.kill(job_child(worker), signal.SIGKILL)
        play_the_beat()
    exp = wait_status(exp, Experiment.FINISHED, timeout=120, workers=[worker])
    assert exp.attempts == KILLS + 1 and exp.results["resumed_from"]
    assert_same_run(exp, reference)


def test_best_and_latest_survive_a_sigterm_and_a_kill_9_after_the_best_evaluation(
        start_worker, make_experiment, reference_run, tiny_run_config, tmp_path):
    steps = 60
    reference = reference_run(run_config(tiny_run_config, tmp_path / "reference", steps))
    best_step = reference.results["best_dev"]["step"]
    assert best_step <= steps - 24, "the config must peak early for this test to see a lost best"
    exp = make_experiment("interrupted", config=run_config(tiny_run_config, tmp_path / "out", steps))
    worker = start_worker("w", fake=False, DISTILLERY_TEST_STEP_DELAY=str(STEP_DELAY), **SINGLE_THREAD)
    wake()

    def past(step: int) -> None:
        wait_for(lambda: Experiment.objects.filter(pk=exp.pk, current_step__gte=step).exists(), timeout=60,
                 interval=0.05, message=lambda: f"step {step}\n{worker.log()[-3000:]}")

    past(best_step + 3)
    os.kill(job_child(worker), signal.SIGTERM)  # saves a checkpoint past the best evaluation, re-queues at once
    running_attempt(exp, 2, timeout=60, worker=worker)
    past(best_step + 16)  # the second attempt checkpointed past the next evaluation
    os.kill(job_child(worker), signal.SIGKILL)
    play_the_beat()
    exp = wait_status(exp, Experiment.FINISHED, timeout=90, workers=[worker])
    assert exp.attempts == 3 and exp.results["resumed_from"] > best_step  # the last attempt never saw the best
    assert_same_run(exp, reference)
