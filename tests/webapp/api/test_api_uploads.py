"""The API's datasets and checkpoints: upload a dataset, register a checkpoint by path or archive."""

from __future__ import annotations

import json
import os
from pathlib import Path

from django.core.files.uploadedfile import SimpleUploadedFile

from tests.webapp.factories import DEV_ROWS, TRAIN_ROWS, run_on_commit, tar_bytes, tsv, zip_bytes
from webapp.registry.models import Checkpoint, Dataset


def files_of(teacher_dir) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in Path(teacher_dir).iterdir() if p.is_file()}


def test_it_uploads_a_dataset(api, acme):
    response = api.post("/api/datasets/", {
        "name": "headlines", "train_file": SimpleUploadedFile("t.tsv", tsv(TRAIN_ROWS).encode()),
        "dev_file": SimpleUploadedFile("d.tsv", tsv(DEV_ROWS).encode())})
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["labels"] == ["finance", "sports", "tech"] and body["stats"]["train"]["rows"] == len(TRAIN_ROWS)
    assert api.get(f"/api/datasets/{body['id']}/").json()["name"] == "headlines"
    assert [d["id"] for d in api.get("/api/datasets/").json()["results"]] == [body["id"]]


def test_a_refused_dataset_names_the_field_and_stores_nothing(api, acme, settings):
    response = api.post("/api/datasets/", {"name": "bad", "train_file": SimpleUploadedFile("t.tsv", b"only\n"),
                                           "label_column": "7"})
    assert response.status_code == 400 and response.json()["fields"]
    assert Dataset.objects.count() == 0
    root = Path(settings.DATASET_ROOT)
    assert not root.exists() or not [p for p in root.rglob("*") if p.is_file()]


def test_a_dataset_must_be_multipart(api, acme):
    response = api.post("/api/datasets/", json.dumps({"name": "x"}), content_type="application/json")
    assert response.status_code == 415 and "multipart/form-data" in response.json()["error"]


def test_it_registers_a_checkpoint_by_path(api, acme, teacher_dir):
    response = api.post("/api/checkpoints/", json.dumps({"name": "by-path", "path": str(teacher_dir)}),
                        content_type="application/json")
    assert response.status_code == 201, response.json()
    assert response.json()["info"]["num_labels"] == 3
    assert Checkpoint.objects.get(name="by-path").path == str(teacher_dir)


def test_a_path_outside_the_roots_is_refused_on_its_field(api, acme):
    response = api.post("/api/checkpoints/", json.dumps({"name": "x", "path": "/etc"}),
                        content_type="application/json")
    assert response.status_code == 400 and "is not a directory in Acme's checkpoint folder" in response.json()["fields"]["path"][0]


def upload(api, name: str, data: bytes):
    """POST an archive; the unpacking task runs inline when the request commits."""
    with run_on_commit():
        return api.post("/api/checkpoints/", {"name": name, "archive": SimpleUploadedFile("a", data)})


def test_it_uploads_a_checkpoint_archive(api, acme, teacher_dir, teacher_root, eager_tasks):
    for name, data in (("zipped", zip_bytes(files_of(teacher_dir))), ("tarred", tar_bytes(files_of(teacher_dir)))):
        response = upload(api, name, data)
        assert response.status_code == 202, response.json()
        accepted = response.json()
        assert accepted["status"] == "UNPACKING" and accepted["status_url"] == f"/api/checkpoints/{accepted['id']}/"
        body = api.get(accepted["status_url"]).json()
        assert body["status"] == "READY" and body["percent"] == 100 and body["info"]["num_labels"] == 3
        assert Path(body["path"]).parent == Path(teacher_root) / "acme" / "uploads"


def test_a_bad_archive_fails_with_the_reason_and_leaves_nothing(api, acme, teacher_dir, teacher_root, eager_tasks):
    uploads = Path(teacher_root) / "acme" / "uploads"
    before = sorted(os.listdir(uploads)) if uploads.exists() else []
    response = upload(api, "evil", zip_bytes({**files_of(teacher_dir), "../escape": b"x"}))
    assert response.status_code == 202
    body = api.get(response.json()["status_url"]).json()
    assert body["status"] == "FAILED" and "outside the archive" in body["error"] and body["info"] == {}
    assert (sorted(os.listdir(uploads)) if uploads.exists() else []) == before
    assert Checkpoint.objects.get(name="evil").status == Checkpoint.Status.FAILED


def test_a_file_that_is_not_an_archive_is_refused_on_its_field(api, acme, teacher_root):
    uploads = Path(teacher_root) / "acme" / "uploads"
    before = sorted(os.listdir(uploads)) if uploads.exists() else []
    response = upload(api, "text", b"hello, this is text")
    assert response.status_code == 400 and "not a .zip or .tar.gz" in response.json()["fields"]["archive"][0]
    assert (sorted(os.listdir(uploads)) if uploads.exists() else []) == before
    assert not Checkpoint.objects.filter(name="text").exists()


def test_an_archive_over_the_limit_is_413(api, acme, teacher_dir, settings):
    settings.MAX_CHECKPOINT_UPLOAD_MB = 1
    for size in (1_300_000, 2_600_000):  # refused while streaming / by Content-Length
        data = zip_bytes({**files_of(teacher_dir), "pad": os.urandom(size)})
        response = api.post("/api/checkpoints/", {"name": "big", "archive": SimpleUploadedFile("a.zip", data)})
        assert response.status_code == 413 and "limit is 1 MB" in response.json()["error"]
    assert not Checkpoint.objects.filter(name="big").exists()


def test_a_multipart_checkpoint_needs_an_archive(api, acme):
    response = api.post("/api/checkpoints/", {"name": "x"})
    assert response.status_code == 400 and "archive" in response.json()["fields"]


def test_another_teams_datasets_and_checkpoints_are_invisible(charlie_api, checkpoint, dataset):
    assert charlie_api.get("/api/checkpoints/").json()["results"] == []
    assert charlie_api.get("/api/datasets/").json()["results"] == []
    assert charlie_api.get(f"/api/checkpoints/{checkpoint.pk}/").status_code == 404
    assert charlie_api.get(f"/api/datasets/{dataset.pk}/").status_code == 404
