"""Hostile checkpoint archives, on the page and the API: refused, and nothing unpacked stays.

The request only stores an archive; the unpacking task (run inline here) refuses what is inside.
So a refusal is either on the form's archive field (what the request itself can see: size, not an
archive) or one FAILED checkpoint whose error says why, with no file left on disk and no other row.

Path tricks, links and devices, bombs, damaged or odd zips, and checkpoints whose files no
database or code path should take (NUL or unpaired surrogates in id2label, malformed shard
indexes, remote code, pickles).
"""

from __future__ import annotations

import io
import json
import os
import tarfile
import zipfile
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from tests.webapp.factories import run_on_commit, tar_bytes, zip_bytes
from tests.webapp.hostile.checks import assert_form_refused, assert_json_refused, database_state, files_state
from webapp.registry import archives
from webapp.registry.models import Checkpoint


@pytest.fixture(scope="session")
def teacher_files(teacher_dir) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(Path(teacher_dir).iterdir()) if p.is_file()}


def with_config(files: dict[str, bytes], **changes) -> dict[str, bytes]:
    """The teacher's files with config.json keys replaced (values are raw JSON text)."""
    text = files["config.json"].decode()
    config = json.loads(text)
    body = ", ".join(f'"{k}": {v}' for k, v in changes.items())
    rest = json.dumps({k: v for k, v in config.items() if k not in changes})
    return {**files, "config.json": ("{" + body + ", " + rest[1:]).encode()}


def tar_with_special(files: dict[str, bytes], kind: bytes) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        info = tarfile.TarInfo("weird")
        info.type, info.linkname = kind, "config.json"
        archive.addfile(info)
    return buffer.getvalue()


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


def index(text: str) -> dict[str, bytes]:
    return {"model.safetensors.index.json": text.encode()}


# name -> (archive bytes from the teacher's files, settings, MAX_MEMBERS or None, message on `archive`)
CASES = {
    "a truncated zip": (lambda f: zip_bytes(f)[: len(zip_bytes(f)) // 2], {}, None, "damaged or truncated"),
    "a truncated tar.gz": (lambda f: tar_bytes(f)[: len(tar_bytes(f)) // 2], {}, None, "damaged or truncated"),
    "a zip member ../evil": (lambda f: zip_bytes({**f, "../evil.txt": b"x"}), {}, None, "points outside the archive"),
    "a tar member ../evil": (lambda f: tar_bytes({**f, "../evil.txt": b"x"}), {}, None, "points outside the archive"),
    "a zip member sub/../../evil": (lambda f: zip_bytes({**f, "sub/../../evil.txt": b"x"}), {}, None,
                                    "points outside the archive"),
    "a tar member sub/../../evil": (lambda f: tar_bytes({**f, "sub/../../evil.txt": b"x"}), {}, None,
                                    "points outside the archive"),
    "an absolute zip member": (lambda f: zip_bytes({**f, "/etc/evil.txt": b"x"}), {}, None, "absolute path"),
    "an absolute tar member": (lambda f: tar_bytes({**f, "/etc/evil.txt": b"x"}), {}, None, "absolute path"),
    "a zip symlink": (lambda f: zip_bytes(f, {"link.txt": "/etc/passwd"}), {}, None, "is a link or a device"),
    "a tar symlink": (lambda f: tar_bytes(f, {"link.txt": "/etc/passwd"}), {}, None, "is a link or a device"),
    "a tar hard link": (lambda f: tar_with_special(f, tarfile.LNKTYPE), {}, None, "is a link or a device"),
    "a tar character device": (lambda f: tar_with_special(f, tarfile.CHRTYPE), {}, None, "is a link or a device"),
    "a tar FIFO": (lambda f: tar_with_special(f, tarfile.FIFOTYPE), {}, None, "is a link or a device"),
    "a zip bomb": (lambda f: zip_bytes({**f, "bomb.bin": b"\0" * 5_000_000}), {"MAX_CHECKPOINT_UNPACKED_MB": 1},
                   None, "unpacks to more than 1 MB"),
    "a gzip bomb": (lambda f: tar_bytes({**f, "bomb.bin": b"\0" * 5_000_000}), {"MAX_CHECKPOINT_UNPACKED_MB": 1},
                    None, "unpacks to more than 1 MB"),
    "too many zip members": (lambda f: zip_bytes({**f, **{f"f{i}": b"" for i in range(10)}}), {}, 5,
                             "more than 5 members"),
    "too many tar members": (lambda f: tar_bytes({**f, **{f"f{i}": b"" for i in range(10)}}), {}, 5,
                             "more than 5 members"),
    "text that is not an archive": (lambda f: b"hello, this is text", {}, None, "not a .zip or .tar.gz archive"),
    "an encrypted zip": (lambda f: patched_zip(6, 8, 0x1), {}, None, "cannot be read"),
    "a zip with compression method 99": (lambda f: patched_zip(8, 10, 99), {}, None, "unsupported format"),
    "a NUL in id2label": (lambda f: zip_bytes(with_config(f, id2label='{"0": "a", "1": "b\\u0000", "2": "c"}')), {},
                          None, "id2label[1] contains a NUL character"),
    "a surrogate in id2label": (lambda f: zip_bytes(with_config(f, id2label='{"0": "\\ud800", "1": "b", "2": "c"}')),
                                {}, None, "id2label[0] contains an unpaired surrogate (U+D800)"),
    "a NUL in architectures": (lambda f: zip_bytes(with_config(f, architectures='["Bert\\u0000"]')), {}, None,
                               "architectures[0] contains a NUL character"),
    "an index that is a list": (lambda f: zip_bytes({**f, **index("[]")}), {}, None,
                                'model.safetensors.index.json has no "weight_map" object'),
    "an index that is empty": (lambda f: zip_bytes({**f, **index("{}")}), {}, None, 'has no "weight_map" object'),
    "an index with an empty map": (lambda f: zip_bytes({**f, **index('{"weight_map": {}}')}), {}, None,
                                   'has no "weight_map" object'),
    "an index of numbers": (lambda f: zip_bytes({**f, **index('{"weight_map": {"a": 1}}')}), {}, None,
                            'has no "weight_map" object'),
    "an index that is not JSON": (lambda f: zip_bytes({**f, **index("{nope")}), {}, None,
                                  "model.safetensors.index.json cannot be read: Not valid JSON"),
    "an index nested 100,000 deep": (lambda f: zip_bytes({**f, **index("[" * 100_000)}), {}, None,
                                     "cannot be read: The JSON is nested too deeply"),
    "a NUL in a shard name": (lambda f: zip_bytes({**f, **index('{"weight_map": {"a": "x\\u0000"}}')}), {}, None,
                              "weight_map.a contains a NUL character"),
}


@pytest.fixture
def refuse(settings, monkeypatch, teacher_files, eager_tasks):
    """Post case `name` to the page or the API; return the response, its refusal message and the case's text.

    Asserts that the only trace left is the FAILED checkpoint (removed again before comparing the
    row counts) and that no file under the storage roots changed.
    """

    def post(client, acme, name: str, via: str):
        build, overrides, max_members, text = CASES[name]
        for key, value in overrides.items():
            setattr(settings, key, value)
        if max_members:
            monkeypatch.setattr(archives, "MAX_MEMBERS", max_members)
        data = build(teacher_files)
        upload = SimpleUploadedFile("teacher.zip", data, content_type="application/octet-stream")
        url = "/checkpoints/new/" if via == "page" else "/api/checkpoints/"
        rows, files = database_state(), files_state()
        with run_on_commit():
            response = client.post(url, {"team": acme.pk, "name": "uploaded", "archive": upload}, format="multipart")
        failed = Checkpoint.objects.filter(name="uploaded").first()
        if failed is None:  # refused by the request itself, on the archive field
            assert database_state() == rows and files_state() == files, "a refused request changed something"
            return response, None, text
        assert failed.status == Checkpoint.Status.FAILED, f"{name}: the hostile archive was accepted"
        error = failed.error
        failed.delete()
        assert database_state() == rows, "a refused archive left rows besides its FAILED checkpoint"
        assert files_state() == files, "a refused archive left files behind"
        return response, error, text

    return post


@pytest.mark.parametrize("name", CASES)
def test_the_page_refuses_a_hostile_archive_with_its_reason(alice_client, acme, refuse, teacher_root, name):
    response, error, text = refuse(alice_client, acme, name, "page")
    if error is None:
        assert_form_refused(response, "archive", text)
        error = str(response.context["form"].errors)
    else:
        assert response.status_code == 302 and response["Location"].startswith("/checkpoints/")
        assert text in error
    assert str(teacher_root) not in error, "the server's paths are not shown"


@pytest.mark.parametrize("name", CASES)
def test_the_api_refuses_a_hostile_archive_with_its_reason(api, acme, refuse, name):
    response, error, text = refuse(api, acme, name, "api")
    if error is None:
        assert_json_refused(response, 400, text, field="archive")
    else:
        assert response.status_code == 202 and response.json()["status"] == "UNPACKING"
        assert text in error


def test_an_archive_over_the_size_limit_is_refused_while_streaming(alice_client, acme, teacher_files, settings,
                                                                   unchanged):
    settings.MAX_CHECKPOINT_UPLOAD_MB = 1
    data = zip_bytes({**teacher_files, "padding.bin": os.urandom(1_300_000)})
    assert 2**20 < len(data) < 2 * 2**20  # over the limit, under the Content-Length slack
    with unchanged():
        response = alice_client.post("/checkpoints/new/", {"team": acme.pk, "name": "uploaded",
                                                           "archive": SimpleUploadedFile("t.zip", data)})
    assert_form_refused(response, "archive", "limit is 1 MB", status=413)


def test_a_body_declared_over_the_limit_is_refused_before_it_is_read(alice_client, acme, teacher_files, settings,
                                                                     unchanged):
    settings.MAX_CHECKPOINT_UPLOAD_MB = 1
    data = zip_bytes({**teacher_files, "padding.bin": os.urandom(2_500_000)})
    with unchanged():
        response = alice_client.post("/checkpoints/new/", {"team": acme.pk, "name": "uploaded",
                                                           "archive": SimpleUploadedFile("t.zip", data)})
    assert_form_refused(response, "__all__", "limit is 1 MB", status=413)


def test_remote_code_in_auto_map_is_never_run(api, acme, teacher_files, tmp_path, eager_tasks):
    marker = tmp_path / "code-ran"
    evil = f"open({str(marker)!r}, 'w').write('ran')\n".encode()
    files = with_config(teacher_files, auto_map='{"AutoConfig": "evil.EvilConfig", '
                                               '"AutoModelForSequenceClassification": "evil.EvilModel"}')
    upload = SimpleUploadedFile("teacher.zip", zip_bytes({**files, "evil.py": evil}))
    with run_on_commit():  # the unpacking task (and its inspection) runs inline
        response = api.post("/api/checkpoints/", {"team": acme.pk, "name": "uploaded", "archive": upload})
    assert not marker.exists(), "the checkpoint's code ran"
    assert response.status_code == 202, response.content
    if Checkpoint.objects.get(name="uploaded").is_ready:  # a plain BERT: loading it must not run the code either
        from distill_core.teachers import load_teacher

        load_teacher(Checkpoint.objects.get(name="uploaded").path)
        assert not marker.exists(), "loading the teacher ran the checkpoint's code"


def test_a_pickled_weights_file_is_never_unpickled(api, acme, teacher_files, tmp_path, eager_tasks):
    import pickle

    from distill_core.errors import CheckpointError
    from distill_core.teachers import load_teacher

    marker = tmp_path / "code-ran"

    class Evil:
        def __reduce__(self):
            return (exec, (f"open({str(marker)!r}, 'w').write('ran')",))

    files = {n: d for n, d in teacher_files.items() if not n.endswith(".safetensors")}
    files["pytorch_model.bin"] = pickle.dumps(Evil())
    with run_on_commit():
        response = api.post("/api/checkpoints/", {"team": acme.pk, "name": "uploaded",
                                                  "archive": SimpleUploadedFile("t.zip", zip_bytes(files))})
    assert response.status_code == 202, response.content
    assert Checkpoint.objects.get(name="uploaded").is_ready  # registering only inspects the files
    assert not marker.exists()
    with pytest.raises(CheckpointError, match="Cannot load the teacher"):
        load_teacher(Checkpoint.objects.get(name="uploaded").path)
    assert not marker.exists(), "loading the teacher unpickled its weights"
