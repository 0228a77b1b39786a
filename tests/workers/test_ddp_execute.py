"""A 2-GPU run through the worker's execute(): torchrun with 2 gloo ranks, events bridged into the database.

The two "GPUs" are faked at the inventory boundary (CUDA_VISIBLE_DEVICES); torch here has no CUDA, so the
ranks train on the CPU with gloo. Killing one rank mid-run interrupts and re-queues the run; the next
attempt resumes from the checkpoint to the weights of an uninterrupted 2-process run.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from distill_core.checkpointing import checkpoint_path
from tests.workers.conftest import points_of
from webapp.experiments.models import Experiment
from webapp.gpuqueue import queue
from workers import inventory
from workers.tasks import execute

pytestmark = pytest.mark.slow  # torchrun with two ranks per run

S = Experiment.Status


@pytest.fixture
def two_fake_gpus(monkeypatch, transactional_db):
    """Two GPUs for the claim; committed rows, as a worker has, so execute()'s lease thread (its own
    connection) sees the claim (workers.lease.require_autocommit)."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    return inventory.visible_cuda_indices()


def ddp_config(tiny_run_config, output_dir: Path) -> dict:
    config = tiny_run_config(output_dir, max_steps=24)
    config["train"].update(checkpoint_every=3, device="auto")
    config["student"]["options"] = {"dropout": 0.0}
    return config


def claim_and_execute(exp: Experiment, gpus: list[int], token: str) -> Experiment:
    assert queue.claim_next("default", "gpu-host", token, gpus=gpus) == exp.pk
    execute(exp.pk, token)
    exp.refresh_from_db()
    return exp


def rank_pids(rank: int) -> list[int]:
    """Processes of this test's torchrun ranks (they inherit our CUDA_VISIBLE_DEVICES and the bridge socket)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            env = dict(i.split("=", 1) for i in (entry / "environ").read_text().split("\0") if "=" in i)
        except OSError:
            continue
        if env.get("RANK") == str(rank) and "DISTILLERY_BRIDGE_SOCKET" in env and \
                env.get("DISTILLERY_TEST_PID") == str(os.getpid()):
            found.append(int(entry.name))
    return found


def test_a_two_gpu_run_trains_on_two_ranks_and_resumes_after_a_rank_is_killed(
        make_experiment, tiny_run_config, two_fake_gpus, tmp_path, monkeypatch):
    monkeypatch.setenv("DISTILLERY_TEST_PID", str(os.getpid()))
    straight = claim_and_execute(make_experiment("straight", gpus=2, config=ddp_config(tiny_run_config,
                                                                                           tmp_path / "a")),
                                 two_fake_gpus, "s")
    assert straight.status == S.SUCCEEDED, straight.error
    assert straight.gpu_ids == [0, 1] and straight.results["steps"] == 24
    steps = [step for key, step, _ in points_of(straight) if key == "train/loss"]
    assert steps == list(range(1, 25))  # one set of curves: rank 0's, each point once

    out = tmp_path / "b"
    exp = make_experiment("killed", gpus=2, config=ddp_config(tiny_run_config, out))
    killed: list[int] = []

    def kill_rank_one_after_a_checkpoint():
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not killed:
            if checkpoint_path(out).is_file():
                for pid in rank_pids(1):
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
            time.sleep(0.05)

    killer = threading.Thread(target=kill_rank_one_after_a_checkpoint, daemon=True)
    killer.start()
    exp = claim_and_execute(exp, two_fake_gpus, "k1")
    killer.join()
    assert killed, "rank 1 was never seen"
    assert exp.status == S.QUEUED and exp.attempts == 1, exp.error  # INTERRUPTED, then re-queued
    assert "rank 1 of 2" in exp.error and "SIGKILL" in exp.error, exp.error
    assert exp.gpu_ids == []  # its GPUs were given back

    exp = claim_and_execute(exp, two_fake_gpus, "k2")
    assert exp.status == S.SUCCEEDED, exp.error
    assert exp.results["resumed_from"] > 0
    a, b = load_file(str(tmp_path / "a" / "model.safetensors")), load_file(str(out / "model.safetensors"))
    for key, value in a.items():
        torch.testing.assert_close(b[key], value, rtol=1e-5, atol=1e-6, msg=key)
    assert [s for k, s, _ in points_of(exp) if k == "train/loss"] == list(range(1, 25))


def test_a_failing_rank_fails_the_run_with_its_rank_and_error(make_experiment, tiny_run_config, two_fake_gpus,
                                                               tmp_path):
    config = ddp_config(tiny_run_config, tmp_path / "c")
    config["train"]["batch_size"] = 7  # the global batch does not divide across 2 ranks: every rank refuses
    exp = claim_and_execute(make_experiment("odd", gpus=2, config=config), two_fake_gpus, "f")
    assert exp.status == S.FAILED
    assert "of 2 failed: ConfigError: train.batch_size=7 is the global batch" in exp.error, exp.error


@pytest.fixture
def late_sigterm_ignored():
    """A SIGTERM the test sends after execute() put the handler back (a run that ended early) fails the test
    instead of killing the pytest process (and, under xdist, the tests queued behind it)."""
    previous = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    yield
    signal.signal(signal.SIGTERM, previous)


def test_sigterm_to_the_job_stops_every_rank_at_one_step_and_the_run_resumes(make_experiment, tiny_run_config,
                                                                             two_fake_gpus, tmp_path,
                                                                             late_sigterm_ignored):
    """The job's SIGTERM (a worker's warm shutdown) reaches rank 0 through the bridge and the ranks through it."""
    out = tmp_path / "t"
    exp = make_experiment("stopped", gpus=2, config=ddp_config(tiny_run_config, out))
    sent: list[bool] = []

    def stop_after_a_checkpoint():
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not checkpoint_path(out).is_file():
            time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGTERM)  # caught by the job's ShutdownSignal (execute runs in this thread)
        sent.append(True)

    stopper = threading.Thread(target=stop_after_a_checkpoint, daemon=True)
    stopper.start()
    exp = claim_and_execute(exp, two_fake_gpus, "s1")
    stopper.join()
    assert sent and exp.status == S.QUEUED, exp.error
    assert "The worker was stopped while running it." in exp.error
    stopped_at = torch.load(checkpoint_path(out), weights_only=False)["step"]
    assert 0 < stopped_at < 24
    exp = claim_and_execute(exp, two_fake_gpus, "s2")
    assert exp.status == S.SUCCEEDED and exp.results["resumed_from"] == stopped_at, exp.error


def test_torchrun_dies_with_a_killed_job(tmp_path):
    """The job starts torchrun with a parent-death signal: kill -9 of the job ends it (and so its ranks)."""
    import subprocess
    import sys

    from tests.workers.conftest import is_running

    pid_file = tmp_path / "child.pid"
    script = ("import subprocess, sys, time\n"
              "from workers.ddp_run import _death_signal\n"
              "p = subprocess.Popen(['sleep', '300'], start_new_session=True, preexec_fn=_death_signal())\n"
              f"open({str(pid_file)!r}, 'w').write(str(p.pid))\n"
              "time.sleep(300)\n")
    job = subprocess.Popen([sys.executable, "-c", script], cwd=Path(__file__).resolve().parents[2])
    deadline = time.monotonic() + 60
    while not (pid_file.is_file() and pid_file.read_text()):
        assert time.monotonic() < deadline and job.poll() is None
        time.sleep(0.05)
    child = int(pid_file.read_text())
    assert is_running(child)
    job.kill()
    job.wait()
    deadline = time.monotonic() + 10
    while is_running(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not is_running(child)
