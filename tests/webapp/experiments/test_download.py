""""Download student": GET /experiments/<pk>/student.zip streams the export directory as a zip."""

from __future__ import annotations

import io
import os
import zipfile

import pytest

from webapp.experiments.artifacts import zip_stream
from webapp.experiments.models import Experiment

S = Experiment.Status


def download(client, experiment):
    return client.get(f"/experiments/{experiment.pk}/student.zip")


def test_a_member_downloads_the_export_as_a_zip(alice_client, finished_experiment, student_export):
    response = download(alice_client, finished_experiment)
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"] == "application/zip"
    name = f"experiment-{finished_experiment.pk}-student"
    assert response["Content-Disposition"] == f'attachment; filename="{name}.zip"'
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    assert archive.testzip() is None
    assert sorted(archive.namelist()) == sorted(f"{name}/{p.name}" for p in student_export.iterdir())
    assert archive.read(f"{name}/model.safetensors") == (student_export / "model.safetensors").read_bytes()


def test_the_zip_loads_back_as_a_student(alice_client, finished_experiment, tmp_path):
    from distill_core.export import load_student

    response = download(alice_client, finished_experiment)
    zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content))).extractall(tmp_path / "unzipped")
    predictor = load_student(tmp_path / "unzipped" / f"experiment-{finished_experiment.pk}-student")
    assert predictor.labels == ["finance", "sports", "tech"]


def test_the_stream_comes_in_pieces_and_includes_subdirectories(tmp_path):
    export = tmp_path / "export"
    (export / "nested").mkdir(parents=True)
    (export / "big.bin").write_bytes(os.urandom(3 * 2**20))
    (export / "nested" / "a.txt").write_text("hello")
    pieces = list(zip_stream(export, "student"))
    assert len(pieces) > 3
    archive = zipfile.ZipFile(io.BytesIO(b"".join(pieces)))
    assert sorted(archive.namelist()) == ["student/big.bin", "student/nested/a.txt"]
    assert archive.read("student/nested/a.txt") == b"hello"


def test_symbolic_links_are_left_out(alice_client, finished_experiment, student_export, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("do not leak")
    (student_export / "leak.txt").symlink_to(secret)
    (student_export / "leakdir").symlink_to(tmp_path)
    archive = zipfile.ZipFile(io.BytesIO(b"".join(download(alice_client, finished_experiment).streaming_content)))
    assert not any("leak" in name for name in archive.namelist())


@pytest.mark.parametrize("status", [S.QUEUED, S.RUNNING, S.FAILED, S.CANCELLED])
def test_only_a_succeeded_run_has_a_download(alice_client, finished_experiment, status):
    Experiment.objects.filter(pk=finished_experiment.pk).update(status=status)
    assert download(alice_client, finished_experiment).status_code == 404


@pytest.mark.parametrize("export_dir", ["/etc", "/", "relative/dir", "", None, 42, ["a"], "/tmp/../etc", "a\x00b"])
def test_an_export_outside_the_artifact_root_is_never_served(alice_client, finished_experiment, export_dir):
    from django.db import connection

    if connection.vendor == "postgresql" and isinstance(export_dir, str) and "\x00" in export_dir:
        pytest.skip("PostgreSQL's JSON cannot hold NUL, so such a path can never be stored")
    Experiment.objects.filter(pk=finished_experiment.pk).update(
        results={**finished_experiment.results, "export_dir": export_dir})
    assert download(alice_client, finished_experiment).status_code == 404


def test_another_teams_member_gets_404(charlie_client, finished_experiment):
    assert download(charlie_client, finished_experiment).status_code == 404


def test_the_page_links_the_download_only_when_the_export_exists(alice_client, finished_experiment, student_export):
    url = f"/experiments/{finished_experiment.pk}/student.zip"
    assert url in alice_client.get(f"/experiments/{finished_experiment.pk}/").content.decode()
    for path in student_export.iterdir():
        path.unlink()
    student_export.rmdir()
    assert url not in alice_client.get(f"/experiments/{finished_experiment.pk}/").content.decode()


def test_anonymous_users_are_sent_to_login(client, finished_experiment):
    response = download(client, finished_experiment)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
