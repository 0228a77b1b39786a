"""A run whose output disk is full or unwritable FAILS on its first attempt, naming the path: no retries."""

from __future__ import annotations

import errno

import pytest

from webapp.experiments.models import Experiment
from webapp.gpuqueue import queue
from workers.tasks import execute

S = Experiment.Status


@pytest.fixture
def real_run(transactional_db, make_experiment, tiny_run_config, settings, tmp_path, monkeypatch):
    """Claim a real (tiny) distill_core experiment writing to tmp_path/out; returns (experiment, token)."""
    monkeypatch.delenv("DISTILLERY_FAKE_DISTILLER", raising=False)
    settings.ARTIFACT_ROOT = tmp_path / "artifacts"
    exp = make_experiment("disk", config=tiny_run_config(tmp_path / "out", max_steps=12), max_attempts=3)
    exp.config["train"]["checkpoint_every"] = 4
    exp.save(update_fields=["config"])
    assert queue.claim_next("default", "w1", "token-1") == exp.pk
    return exp, "token-1"


def test_a_full_disk_at_the_checkpoint_fails_the_run_once_naming_the_path(real_run, tmp_path, monkeypatch):
    from distill_core import checkpointing

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpointing.torch, "save", no_space)
    exp, token = real_run
    execute(exp.pk, token)
    exp.refresh_from_db()
    assert exp.status == S.FAILED and exp.attempts == 1, exp.error
    assert f"Cannot write the checkpoint at {tmp_path / 'out' / 'checkpoint'}: the disk is full" in exp.error
    assert " free of " in exp.error and "Traceback" not in exp.error
    assert exp.current_step == 4  # it stopped at the first checkpoint, keeping what it logged


def test_torchs_unreadable_full_disk_error_fails_once_with_a_readable_message(real_run, tmp_path, monkeypatch):
    from distill_core import checkpointing

    def torch_full(*args, **kwargs):
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 4062528 vs 4062456")

    monkeypatch.setattr(checkpointing.torch, "save", torch_full)
    exp, token = real_run
    execute(exp.pk, token)
    exp.refresh_from_db()
    assert exp.status == S.FAILED and exp.attempts == 1
    assert exp.error.startswith(f"Cannot write the checkpoint at {tmp_path / 'out' / 'checkpoint'}: the disk is full")


def test_an_unwritable_output_directory_fails_before_any_step(real_run, tmp_path, monkeypatch):
    from distill_core import storage

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(storage.tempfile, "mkstemp", read_only)
    exp, token = real_run
    execute(exp.pk, token)
    exp.refresh_from_db()
    assert exp.status == S.FAILED and exp.attempts == 1 and exp.current_step == 0
    assert exp.error.startswith(f"Cannot write the output directory at {tmp_path / 'out'}: the filesystem is read-only")
