"""A full or unwritable disk fails a run with a StorageError naming the path, the free space and what to do."""

from __future__ import annotations

import errno
import os

import pytest
import torch

from distill_core import checkpointing, storage, teacher_cache
from distill_core.config import ExperimentConfig
from distill_core.distiller import run
from distill_core.errors import StorageError
from tests.distill_core.conftest import ListSink

TORCH_FULL_DISK = "[enforce fail at inline_container.cc:672] . unexpected pos 4062528 vs 4062456"


def no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_checkpoint_on_a_full_disk_fails_naming_the_path_and_the_free_space(make_config, tmp_path, monkeypatch):
    config = ExperimentConfig.from_dict(make_config(train={"epochs": 1, "checkpoint_every": 2}))
    monkeypatch.setattr(checkpointing.torch, "save", no_space)
    with pytest.raises(StorageError) as caught:
        run(config)
    message = str(caught.value)
    assert f"{tmp_path / 'export' / 'checkpoint'}" in message and "the disk is full" in message
    assert " free of " in message and "Free space on that disk" in message
    assert not list((tmp_path / "export" / "checkpoint").glob(".last-*"))  # no half-written temp file left


def test_torchs_inline_container_error_reads_as_a_full_disk(tmp_path, monkeypatch):
    def torch_full(*args, **kwargs):
        raise RuntimeError(TORCH_FULL_DISK)

    monkeypatch.setattr(checkpointing.torch, "save", torch_full)
    with pytest.raises(StorageError, match="Cannot write the checkpoint at .*: the disk is full"):
        checkpointing.save(tmp_path / "checkpoint" / "last.pt", {"step": 1})


def test_an_export_that_safetensors_cannot_write_names_the_export_directory(tmp_path):
    error = 'Error while serializing: IoError(Os { code: 28, kind: StorageFull, message: "No space left on device" })'
    with pytest.raises(StorageError, match="student export at .*out: the disk is full"):
        with storage.writing(tmp_path / "out", "student export"):
            raise Exception(error)


def test_a_teacher_cache_on_a_full_disk_names_the_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(teacher_cache.np.lib.format, "write_array_header_1_0", no_space)  # the logits file's first write
    with pytest.raises(StorageError, match="teacher cache at .*cache: the disk is full"):
        teacher_cache.get_or_write(tmp_path / "cache", "k", 2, lambda: iter([torch.zeros(2, 2)]))
    assert [p.name for p in (tmp_path / "cache").iterdir()] == []  # the temp entry is removed


def test_an_unwritable_output_directory_fails_before_the_teacher_runs(make_config, tmp_path, monkeypatch):
    def denied(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(storage.tempfile, "mkstemp", denied)
    sink = ListSink()
    with pytest.raises(StorageError, match="output directory at .*export: permission denied for user id"):
        run(ExperimentConfig.from_dict(make_config()), sink=sink)
    assert sink.events == []  # nothing was computed


def test_a_read_only_filesystem_says_so(tmp_path):
    with pytest.raises(StorageError, match="the filesystem is read-only .*Mount it read-write"):
        with storage.writing(tmp_path, "output directory"):
            raise OSError(errno.EROFS, "Read-only file system")


def test_an_unrelated_error_passes_through_unchanged(tmp_path):
    with pytest.raises(RuntimeError, match="shape mismatch"):
        with storage.writing(tmp_path, "checkpoint"):
            raise RuntimeError("shape mismatch")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a mode-555 directory anyway")
def test_a_real_read_only_directory_fails_the_up_front_check(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        with pytest.raises(StorageError, match=f"output directory at {locked / 'run'}: permission denied"):
            storage.check_writable(locked / "run", "output directory")
    finally:
        locked.chmod(0o755)


def test_a_disk_with_almost_no_space_left_fails_the_up_front_check(tmp_path, monkeypatch):
    monkeypatch.setattr(storage, "free_space", lambda path: (4096, 10 * 2**30))
    with pytest.raises(StorageError, match=r"the disk is full \(4.0 KiB free of 10.0 GiB\)"):
        storage.check_writable(tmp_path / "run", "output directory")
