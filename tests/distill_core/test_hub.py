"""Teachers by Hugging Face id: resolved into a shared cache once, offline from the cache, clear errors.

No network: a stand-in Hub on 127.0.0.1 (tests/hub_server.py) serves the tiny teacher, and HF_ENDPOINT
points at it.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from distill_core import hub
from distill_core.config import ExperimentConfig
from distill_core.distiller import run
from distill_core.errors import CheckpointError
from distill_core.teachers import inspect_checkpoint
from tests.hub_server import FakeHub

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def fake_hub(tmp_path, tiny_teacher, monkeypatch):
    server = FakeHub(tmp_path / "downloads.txt", delay_s=0.2).start()
    server.commit = server.add("org/tiny-bert", tiny_teacher)
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    yield server
    server.stop()


def files_of(directory: Path) -> int:
    return sum(1 for p in directory.rglob("*") if p.is_file())


def test_a_hub_id_resolves_to_a_snapshot_in_the_cache_and_its_commit(fake_hub, tiny_teacher, tmp_path):
    resolved = hub.resolve(hub.parse("org/tiny-bert"), tmp_path / "cache")
    assert resolved.commit == fake_hub.commit
    assert resolved.path == tmp_path / "cache" / "models--org--tiny-bert" / "snapshots" / fake_hub.commit
    assert inspect_checkpoint(resolved.path) == inspect_checkpoint(tiny_teacher)
    assert fake_hub.downloads() == files_of(tiny_teacher)

    again = hub.resolve(hub.parse("hub:org/tiny-bert@main"), tmp_path / "cache")
    assert again.path == resolved.path and fake_hub.downloads() == files_of(tiny_teacher)  # nothing downloaded


def test_offline_resolution_reads_the_cache_and_names_what_is_missing(fake_hub, tmp_path, monkeypatch):
    first = hub.resolve(hub.parse("org/tiny-bert"), tmp_path / "cache")
    fake_hub.stop()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert hub.resolve(hub.parse("org/tiny-bert"), tmp_path / "cache") == first
    with pytest.raises(CheckpointError, match=r"hub:org/other is not in the model cache .* HF_HUB_OFFLINE is set"):
        hub.resolve(hub.parse("org/other"), tmp_path / "cache")


def test_a_hub_cache_laid_out_by_hand_resolves_offline(tiny_teacher, tmp_path, monkeypatch):
    commit = "0123456789abcdef0123456789abcdef01234567"
    storage = tmp_path / "cache" / "models--acme--tiny"
    shutil.copytree(tiny_teacher, storage / "snapshots" / commit)
    (storage / "refs").mkdir()
    (storage / "refs" / "main").write_text(commit)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    resolved = hub.resolve(hub.parse("acme/tiny"), tmp_path / "cache")
    assert resolved.commit == commit and (resolved.path / "config.json").is_file()


def test_two_processes_resolving_one_id_at_once_download_it_once(fake_hub, tiny_teacher, tmp_path):
    script = ("import sys; from distill_core import hub; "
              "print(hub.resolve(hub.parse('org/tiny-bert'), sys.argv[1]).commit)")
    env = {**os.environ, "HF_ENDPOINT": fake_hub.url, "PYTHONPATH": str(REPO)}
    procs = [subprocess.Popen([sys.executable, "-c", script, str(tmp_path / "cache")], env=env, cwd=REPO,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    assert [out.strip() for out, _ in outputs] == [fake_hub.commit] * 2
    assert fake_hub.downloads() == files_of(tiny_teacher)  # each file once, not once per process
    # The second process waited on the lock and found every file cached: it asked nothing about any file.
    heads = [r for r in fake_hub.requests() if r.startswith("HEAD ")]
    assert len(heads) == files_of(tiny_teacher), heads


def test_a_resolution_waits_for_the_lock_holder_and_says_so(fake_hub, tmp_path, caplog):
    from filelock import FileLock

    held = FileLock(str(tmp_path / "cache" / ".distillery-locks" / "models--org--tiny-bert.lock"))
    held.acquire()
    result: list[hub.Resolved] = []
    with caplog.at_level(logging.INFO, logger="distill_core.hub"):
        worker = threading.Thread(target=lambda: result.append(hub.resolve(hub.parse("org/tiny-bert"), tmp_path / "cache")))
        worker.start()
        time.sleep(1.0)
        assert not result and fake_hub.requests() == []  # nothing asked while the holder works
        held.release()
        worker.join(timeout=60)
    assert result and result[0].commit == fake_hub.commit
    assert "Waiting for another process that is downloading hub:org/tiny-bert" in caplog.text


def test_an_unknown_id_or_revision_fails_the_run_with_a_message(fake_hub, make_config, tmp_path):
    with pytest.raises(CheckpointError, match="hub:org/missing: no such model on the Hugging Face Hub") as caught:
        run(ExperimentConfig.from_dict(make_config(teacher={"path": "hub:org/missing"})), hub_cache=tmp_path / "c")
    assert caught.value.field == "teacher.path"
    with pytest.raises(CheckpointError, match="has no revision 'v2'"):
        hub.resolve(hub.parse("org/tiny-bert@v2"), tmp_path / "c")


def test_an_id_that_is_not_one_is_refused_before_the_hub_is_asked():
    for bad in ("a//b", "org/name@", "../etc", "org/na me"):
        with pytest.raises(CheckpointError, match="is not a"):
            hub.parse(bad)
    assert hub.parse("hub:org/name@v1.0").spec() == "hub:org/name@v1.0"
    assert hub.parse("bert-base-uncased") == hub.HubRef("bert-base-uncased", None)


def test_a_run_distils_from_a_teacher_given_by_hub_id(fake_hub, make_config, tiny_teacher, tmp_path):
    by_path = run(ExperimentConfig.from_dict(make_config(train={"epochs": 1}, output_dir=None)))
    by_id = run(ExperimentConfig.from_dict(make_config(teacher={"path": "hub:org/tiny-bert"}, train={"epochs": 1},
                                                       output_dir=None)), hub_cache=tmp_path / "cache")
    assert by_id["student"]["accuracy"] == pytest.approx(by_path["student"]["accuracy"], abs=1e-6)
    assert by_id["teacher"]["accuracy"] == by_path["teacher"]["accuracy"]


def test_a_fine_tune_base_may_be_a_hub_id(fake_hub, make_config, tmp_path):
    out = tmp_path / "fine-tuned"
    raw = make_config(kind="finetune_teacher", teacher={"path": "hub:org/tiny-bert"}, train={"epochs": 1},
                      output_dir=str(out))
    results = run(ExperimentConfig.from_dict(raw), hub_cache=tmp_path / "cache")
    assert results["teacher_checkpoint"] == str(out) and inspect_checkpoint(out)["num_labels"] == 10
    assert fake_hub.downloads() > 0
