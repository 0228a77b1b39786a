"""A sharded checkpoint's weight_map may name only files inside the checkpoint directory.

Otherwise the size reported on the checkpoint page is a file-size oracle for any path on the
server (`/etc/shadow`, `../../etc/passwd`); the checkpoint is refused before anything is looked up.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from distill_core.errors import CheckpointError
from distill_core.teachers import inspect_checkpoint
from tests.webapp.factories import run_on_commit, zip_bytes
from webapp.registry.models import Checkpoint


@pytest.fixture(autouse=True)
def _tasks_inline(eager_tasks):
    """The request stores the archive; the unpacking task (which inspects it) runs inline on commit."""

SHARD = "model-00001-of-00001.safetensors"


@pytest.fixture(scope="session")
def sharded_files(teacher_dir) -> dict[str, bytes]:
    """The tiny teacher's files with its weights as one shard named by model.safetensors.index.json."""
    from safetensors import safe_open

    files = {p.name: p.read_bytes() for p in Path(teacher_dir).iterdir() if p.is_file()}
    weights = files.pop("model.safetensors")
    with safe_open(str(Path(teacher_dir) / "model.safetensors"), "pt") as f:
        names = list(f.keys())
    files[SHARD] = weights
    files["model.safetensors.index.json"] = index({name: SHARD for name in names})
    return files


def index(weight_map) -> bytes:
    return json.dumps({"metadata": {}, "weight_map": weight_map}).encode()


def upload(client, team, files: dict[str, bytes], name: str = "sharded"):
    with run_on_commit():
        return client.post("/checkpoints/new/", {"team": team.pk, "name": name, "path": "",
                                                 "archive": SimpleUploadedFile("t.zip", zip_bytes(files))})


def refusal(client, team, files: dict[str, bytes]) -> str:
    """Upload `files`; the unpacking task must FAIL the checkpoint: return its reason."""
    response = upload(client, team, files)
    checkpoint = Checkpoint.objects.get()
    assert response.status_code == 302 and checkpoint.status == Checkpoint.Status.FAILED, checkpoint.status
    assert not Path(checkpoint.path).exists(), "nothing unpacked stays"
    return checkpoint.error


def test_a_sharded_checkpoint_reports_the_size_of_its_shards(alice_client, acme, sharded_files):
    response = upload(alice_client, acme, sharded_files)
    assert response.status_code == 302, response.context["form"].errors
    assert Checkpoint.objects.get().is_ready
    assert Checkpoint.objects.get().info["size_bytes"] == len(sharded_files[SHARD])


@pytest.mark.parametrize("escape", ["/etc/shadow", "/etc/passwd", "../../etc/passwd", "../../../../../../etc/passwd",
                                    "./../" + SHARD, "/proc/self/environ", ".", ""])
def test_a_shard_outside_the_checkpoint_is_refused_without_its_size(alice_client, acme, sharded_files, escape):
    files = {**sharded_files, "model.safetensors.index.json": index({"bert.pooler.dense.bias": escape,
                                                                     "classifier.weight": SHARD})}
    message = refusal(alice_client, acme, files)
    if escape == "":  # an empty name is refused with the index's shape, before any path is formed
        assert 'has no "weight_map" object' in message
    else:
        assert "not a file inside the checkpoint directory" in message and repr(escape) in message
    for real in ("/etc/passwd", "/etc/shadow"):
        if os.path.exists(real):
            assert str(os.stat(real).st_size) not in message


@pytest.mark.parametrize("body", [b"[]", b"{}", b"not json", json.dumps({"weight_map": []}).encode(),
                                  json.dumps({"weight_map": {"w": 3}}).encode(), b"\xff\xfe"])
def test_an_index_without_a_usable_weight_map_is_refused_with_a_message(alice_client, acme, sharded_files, body):
    message = refusal(alice_client, acme, {**sharded_files, "model.safetensors.index.json": body})
    assert 'has no "weight_map" object' in message or "model.safetensors.index.json cannot be read" in message


def test_a_shard_missing_from_the_checkpoint_is_named(alice_client, acme, sharded_files):
    files = {**sharded_files, "model.safetensors.index.json": index({"w": "model-00002-of-00002.safetensors"})}
    message = refusal(alice_client, acme, files)
    assert "'model-00002-of-00002.safetensors', which is missing" in message


def test_a_symlinked_shard_leading_outside_is_refused(tmp_path, sharded_files):
    # Archives cannot hold links; a directory registered by path can, so inspect checks the real path.
    directory = tmp_path / "teacher"
    directory.mkdir()
    for name, data in sharded_files.items():
        (directory / name).write_bytes(data)
    (directory / SHARD).unlink()
    (directory / SHARD).symlink_to("/etc/passwd")
    with pytest.raises(CheckpointError, match="not a file inside the checkpoint directory") as caught:
        inspect_checkpoint(directory)
    assert str(os.stat("/etc/passwd").st_size) not in caught.value.message
