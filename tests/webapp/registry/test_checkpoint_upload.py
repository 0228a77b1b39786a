"""Registering a teacher by uploading a .zip/.tar.gz of its save_pretrained() directory.

The request stores the archive; the unpacking task runs inline here (eager, on commit), so a
refusal shows either on the form (size, not an archive, the name) or on the FAILED checkpoint.
Hostile archives (path tricks, links, devices, bombs, odd zips) are in tests/webapp/hostile/test_archives.py.
"""

from __future__ import annotations

import html
import os
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from tests.webapp.factories import run_on_commit, tar_bytes, zip_bytes
from webapp.registry.models import Checkpoint

URL = "/checkpoints/new/"


@pytest.fixture(autouse=True)
def _tasks_inline(eager_tasks):
    pass


@pytest.fixture(scope="session")
def teacher_files(teacher_dir) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(Path(teacher_dir).iterdir()) if p.is_file()}


@pytest.fixture
def uploads(teacher_root) -> Path:
    return Path(teacher_root) / "acme" / "uploads"


def leftovers(uploads: Path) -> list[str]:
    return sorted(os.listdir(uploads)) if uploads.exists() else []


def post(client, acme, data: bytes, filename: str = "teacher.zip", name: str = "uploaded", **extra):
    upload = SimpleUploadedFile(filename, data, content_type="application/octet-stream")
    with run_on_commit():
        response = client.post(URL, {"team": acme.pk, "name": name, "path": "", "archive": upload, **extra})
    response.client = client
    return response


def refused(response, uploads: Path, before: list[str]) -> str:
    """The page's message: the form's (refused in the request) or the FAILED checkpoint's (by the task)."""
    assert leftovers(uploads) == before, "nothing half-created may remain"
    checkpoint = Checkpoint.objects.filter(name="uploaded").first()
    if response.status_code == 302:
        assert checkpoint is not None and checkpoint.status == Checkpoint.Status.FAILED and checkpoint.error
        assert response["Location"] == f"/checkpoints/{checkpoint.pk}/"
        page = html.unescape(response.client.get(response["Location"]).content.decode())
        assert checkpoint.error in page and "Distil it" not in page
        return page
    assert response.status_code in (200, 413)
    assert checkpoint is None
    return response.content.decode()


def test_a_zip_of_a_checkpoint_registers_it(alice_client, acme, teacher_files, uploads):
    response = post(alice_client, acme, zip_bytes(teacher_files))
    checkpoint = Checkpoint.objects.get(name="uploaded")
    assert response["Location"] == f"/checkpoints/{checkpoint.pk}/"
    assert checkpoint.status == Checkpoint.Status.READY and checkpoint.percent == 100
    path = Path(checkpoint.path)
    assert path.parent == uploads and (path / "config.json").is_file()
    assert checkpoint.info["num_labels"] == 3 and checkpoint.team == acme


def test_a_tar_gz_with_one_top_level_directory_registers_it(alice_client, acme, teacher_files, uploads):
    data = tar_bytes({"tiny-bert/": b"", **{f"tiny-bert/{n}": d for n, d in teacher_files.items()}})
    post(alice_client, acme, data, "teacher.tar.gz")
    checkpoint = Checkpoint.objects.get(name="uploaded")
    assert checkpoint.status == Checkpoint.Status.READY
    assert Path(checkpoint.path).name == "tiny-bert" and Path(checkpoint.path).parent.parent == uploads
    assert sorted(os.listdir(Path(checkpoint.path).parent)) == ["tiny-bert"]


def test_an_archive_without_config_json_is_refused(alice_client, acme, teacher_files, uploads):
    before = leftovers(uploads)
    files = {n: d for n, d in teacher_files.items() if n != "config.json"}
    assert "no config.json" in refused(post(alice_client, acme, zip_bytes(files)), uploads, before)


def test_an_archive_of_a_broken_checkpoint_is_refused(alice_client, acme, teacher_files, uploads):
    before = leftovers(uploads)
    files = {n: d for n, d in teacher_files.items() if not n.endswith((".safetensors", ".bin"))}
    html = refused(post(alice_client, acme, zip_bytes(files)), uploads, before)
    assert "has no weights" in html and str(uploads) not in html


def test_a_duplicate_name_removes_the_unpacked_directory(alice_client, acme, checkpoint, teacher_files, uploads):
    before = leftovers(uploads)
    response = post(alice_client, acme, zip_bytes(teacher_files), name=checkpoint.name)
    assert "already has a checkpoint" in response.content.decode()
    assert leftovers(uploads) == before


def test_a_path_and_an_archive_together_are_refused(alice_client, acme, teacher_files, teacher_dir):
    response = post(alice_client, acme, zip_bytes(teacher_files), path=str(teacher_dir))
    assert "not both" in response.content.decode()


def test_the_form_offers_the_archive_upload(alice_client):
    html = alice_client.get(URL).content.decode()
    assert 'enctype="multipart/form-data"' in html and 'name="archive"' in html


def test_the_upload_form_still_checks_the_csrf_token(alice, acme, teacher_files):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    assert post(client, acme, zip_bytes(teacher_files)).status_code == 403
    assert not Checkpoint.objects.filter(name="uploaded").exists()
