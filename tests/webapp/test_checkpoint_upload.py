"""Registering a teacher by uploading a .zip/.tar.gz of its save_pretrained() directory.

The request stores the archive; the unpacking task runs inline here (eager, on commit), so a
refusal shows either on the form (size, not an archive, the name) or on the FAILED checkpoint.
"""

from __future__ import annotations

import html
import io
import os
import tarfile
import zipfile
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from tests.webapp.factories import run_on_commit, tar_bytes, zip_bytes
from webapp.experiments import archives
from webapp.experiments.models import Checkpoint

URL = "/checkpoints/new/"


@pytest.fixture(autouse=True)
def _tasks_inline(eager_tasks):
    pass


@pytest.fixture(scope="session")
def teacher_files(teacher_dir) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(Path(teacher_dir).iterdir()) if p.is_file()}


@pytest.fixture
def uploads(teacher_root) -> Path:
    return Path(teacher_root) / "uploads"


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


def test_a_truncated_archive_is_refused(alice_client, acme, teacher_files, uploads):
    before = leftovers(uploads)
    for data in (zip_bytes(teacher_files), tar_bytes(teacher_files)):
        html = refused(post(alice_client, acme, data[: len(data) // 2]), uploads, before)
        assert "damaged or truncated" in html


@pytest.mark.parametrize("build", [zip_bytes, tar_bytes])
@pytest.mark.parametrize("member, message", [
    ("../evil.txt", "points outside the archive"),
    ("sub/../../evil.txt", "points outside the archive"),
    ("/etc/evil.txt", "absolute path"),
])
def test_members_escaping_the_directory_are_refused(alice_client, acme, teacher_files, uploads, build, member,
                                                    message):
    before = leftovers(uploads)
    html = refused(post(alice_client, acme, build({**teacher_files, member: b"x"})), uploads, before)
    assert message in html


@pytest.mark.parametrize("build", [zip_bytes, tar_bytes])
def test_a_symlink_member_is_refused(alice_client, acme, teacher_files, uploads, build):
    before = leftovers(uploads)
    html = refused(post(alice_client, acme, build(teacher_files, {"link.txt": "/etc/passwd"})), uploads, before)
    assert "is a link or a device" in html


def test_hard_links_and_devices_are_refused(teacher_files, tmp_path):
    for kind in (tarfile.LNKTYPE, tarfile.CHRTYPE, tarfile.FIFOTYPE):
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
            info = tarfile.TarInfo("weird")
            info.type, info.linkname = kind, "config.json"
            archive.addfile(info)
        buffer.seek(0)
        with pytest.raises(archives.ArchiveRefused, match="link or a device"):
            archives.unpack(buffer, tmp_path)


def test_an_archive_over_the_size_limit_is_refused_while_streaming(alice_client, acme, teacher_files, uploads,
                                                                   settings):
    settings.MAX_CHECKPOINT_UPLOAD_MB = 1
    before = leftovers(uploads)
    data = zip_bytes({**teacher_files, "padding.bin": os.urandom(1_300_000)})
    assert 2**20 < len(data) < 2 * 2**20  # over the limit, under the Content-Length slack
    html = refused(post(alice_client, acme, data), uploads, before)
    assert "limit is 1 MB" in html


def test_a_body_declared_over_the_limit_is_refused_before_it_is_read(alice_client, acme, teacher_files, uploads,
                                                                     settings):
    settings.MAX_CHECKPOINT_UPLOAD_MB = 1
    before = leftovers(uploads)
    data = zip_bytes({**teacher_files, "padding.bin": os.urandom(2_500_000)})
    response = post(alice_client, acme, data)
    assert response.status_code == 413 and "limit is 1 MB" in refused(response, uploads, before)


def test_a_zip_bomb_is_refused_by_its_unpacked_size(alice_client, acme, teacher_files, uploads, settings):
    settings.MAX_CHECKPOINT_UNPACKED_MB = 1
    before = leftovers(uploads)
    data = zip_bytes({**teacher_files, "bomb.bin": b"\0" * 5_000_000})
    assert len(data) < 200_000
    assert "unpacks to more than 1 MB" in refused(post(alice_client, acme, data), uploads, before)


@pytest.mark.parametrize("build", [zip_bytes, tar_bytes])
def test_too_many_members_are_refused(alice_client, acme, teacher_files, uploads, monkeypatch, build):
    monkeypatch.setattr(archives, "MAX_MEMBERS", 5)
    before = leftovers(uploads)
    data = build({**teacher_files, **{f"f{i}": b"" for i in range(10)}})
    assert "more than 5 members" in refused(post(alice_client, acme, data), uploads, before)


def test_a_file_that_is_not_an_archive_is_refused(alice_client, acme, uploads):
    before = leftovers(uploads)
    html = refused(post(alice_client, acme, b"hello, this is text", "teacher.zip"), uploads, before)
    assert "not a .zip or .tar.gz archive" in html


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


def patched_zip(local_offset: int, central_offset: int, value: int) -> bytes:
    """A one-member zip with a 2-byte header field set to `value` in both of its headers."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("config.json", b"{}")
    data = bytearray(buffer.getvalue())
    central = data.index(b"PK\x01\x02")
    data[local_offset:local_offset + 2] = value.to_bytes(2, "little")
    data[central + central_offset:central + central_offset + 2] = value.to_bytes(2, "little")
    return bytes(data)


def test_an_encrypted_zip_is_refused(tmp_path):
    with pytest.raises(archives.ArchiveRefused, match="cannot be read"):
        archives.unpack(io.BytesIO(patched_zip(6, 8, 0x1)), tmp_path)  # flag bit 0: encrypted


def test_a_zip_with_an_unknown_compression_is_refused(tmp_path):
    with pytest.raises(archives.ArchiveRefused, match="unsupported format"):
        archives.unpack(io.BytesIO(patched_zip(8, 10, 99)), tmp_path)  # compression method 99
