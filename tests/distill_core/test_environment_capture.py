"""Every run records where it ran: versions, every package, commit, host, CPU/GPU and the teacher's checksums."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import socket
from pathlib import Path

import torch

from distill_core import environment, system_info
from distill_core.config import ExperimentConfig
from distill_core.distiller import run
from tests.distill_core.conftest import ListSink


def test_a_run_emits_and_writes_its_full_environment_first(make_config, tiny_teacher):
    sink = ListSink()
    config = ExperimentConfig.from_dict(make_config(train={"epochs": 1}))
    results = run(config, sink=sink)
    kind, env = sink.events[0]
    assert kind == "environment" and env == results["environment"]
    assert env["format"] == 2 and env["python"] and env["torch"] == torch.__version__
    assert env["packages"]["torch"] == importlib.metadata.version("torch")
    assert env["packages"]["transformers"] == env["transformers"] and len(env["packages"]) > 20
    host = env["host"]
    assert host["hostname"] == socket.gethostname() and host["cpu_count"] == os.cpu_count() and host["cpu_model"]
    assert host["gpus"] == [] if not torch.cuda.is_available() else host["gpus"][0]["name"]
    assert set(env["project"]) == {"commit", "dirty", "release"} and (env["project"]["commit"]
                                                                     or env["project"]["release"])
    files = env["teacher_files"][str(tiny_teacher)]
    config_sha = hashlib.sha256((tiny_teacher / "config.json").read_bytes()).hexdigest()
    assert files["config.json"] == config_sha and any(name.endswith(".safetensors") for name in files)
    written = json.loads((Path(config.output_dir) / "environment.json").read_text(encoding="utf-8"))
    assert written["teacher_files"] == env["teacher_files"] and written["host"] == host


def test_the_commit_comes_from_git_or_else_the_release(monkeypatch, tmp_path):
    system_info.project_revision.cache_clear()
    monkeypatch.setattr(system_info, "REPO", tmp_path)  # no .git here
    monkeypatch.setenv(system_info.RELEASE_ENV, "2026.12")
    try:
        assert system_info.project_revision() == {"commit": None, "dirty": None, "release": "2026.12"}
    finally:
        system_info.project_revision.cache_clear()


def test_checksums_cover_every_file_and_change_with_the_content(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.bin").write_bytes(b"one")
    (tmp_path / "sub" / "b.txt").write_bytes(b"two")
    first = system_info.checksums(tmp_path)
    assert first == {"a.bin": hashlib.sha256(b"one").hexdigest(), "sub/b.txt": hashlib.sha256(b"two").hexdigest()}
    (tmp_path / "a.bin").write_bytes(b"changed")
    assert system_info.checksums(tmp_path)["a.bin"] == hashlib.sha256(b"changed").hexdigest()
    assert system_info.checksums(tmp_path / "missing") is None


def test_new_fields_do_not_make_a_rerun_warn():
    recorded = environment.record(1, torch.device("cpu"))
    assert environment.differences(recorded, environment.record(1, torch.device("cpu"))) == []


def test_the_commit_is_read_from_the_files_without_the_git_program(tmp_path):
    import subprocess

    repo = system_info.REPO
    assert system_info.read_head(repo / ".git") == subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=True).stdout.strip()
    dot_git = tmp_path / ".git"
    dot_git.mkdir()
    (dot_git / "HEAD").write_text("ref: refs/heads/main\n")
    (dot_git / "packed-refs").write_text("# pack-refs with: peeled\n" + "ab" * 20 + " refs/heads/main\n")
    assert system_info.read_head(dot_git) == "ab" * 20
    (dot_git / "HEAD").write_text("cd" * 20 + "\n")  # detached
    assert system_info.read_head(dot_git) == "cd" * 20
