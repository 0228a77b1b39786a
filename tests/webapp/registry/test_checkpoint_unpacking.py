"""An uploaded archive is unpacked by a task on the housekeeping queue, with progress on the page.

The request stores the archive and creates the checkpoint UNPACKING; the task (inline here:
eager, on commit) unpacks it, reporting how much of the archive it has read, and ends READY or
FAILED with the reason, leaving nothing half-unpacked.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from tests.webapp.factories import run_on_commit, tar_bytes, zip_bytes
from webapp.registry import archive_jobs, archives
from webapp.registry.models import Checkpoint

S = Checkpoint.Status


@pytest.fixture(scope="module")
def teacher_files(teacher_dir) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(Path(teacher_dir).iterdir()) if p.is_file()}


@pytest.fixture
def uploads(teacher_root) -> Path:
    return Path(teacher_root) / "uploads"


def listing(uploads: Path) -> list[str]:
    return sorted(os.listdir(uploads)) if uploads.exists() else []


def post(client, acme, data: bytes, name: str = "uploaded", run: bool = True):
    body = {"team": acme.pk, "name": name, "path": "", "archive": SimpleUploadedFile("a", data)}
    if not run:
        return client.post("/checkpoints/new/", body)
    with run_on_commit():
        return client.post("/checkpoints/new/", body)


def padded(teacher_files: dict[str, bytes]) -> dict[str, bytes]:
    """The teacher plus 3 MB that does not compress, so the archive is read in several chunks."""
    return {**teacher_files, "extra.bin": random.Random(0).randbytes(3 * 2**20)}


@pytest.mark.parametrize("build", [zip_bytes, tar_bytes])
def test_progress_is_reported_while_unpacking_and_reaches_100_percent(alice_client, acme, teacher_files,
                                                                     monkeypatch, eager_tasks, build):
    seen: list[tuple[int, int]] = []
    report = archive_jobs._Progress.__call__

    def recording(self):
        report(self)
        row = Checkpoint.objects.get(pk=self.checkpoint_id)
        seen.append((row.bytes_done, row.percent))

    monkeypatch.setattr(archive_jobs, "PROGRESS_INTERVAL", 0)
    monkeypatch.setattr(archive_jobs._Progress, "__call__", recording)
    data = build(padded(teacher_files))
    response = post(alice_client, acme, data)
    checkpoint = Checkpoint.objects.get(name="uploaded")
    assert checkpoint.status == S.READY and checkpoint.bytes_total == len(data)
    done = [d for d, _ in seen]
    assert len(seen) >= 3 and done == sorted(done) and 0 < done[0] < len(data)
    assert any(0 < percent < 100 for _, percent in seen)
    status = alice_client.get(f"/checkpoints/{checkpoint.pk}/status.json").json()
    assert status == {"id": checkpoint.pk, "status": "READY", "percent": 100, "bytes_done": len(data),
                      "bytes_total": len(data), "error": ""}
    page = alice_client.get(response["Location"]).content.decode()
    assert "Distil it" in page and "Unpacking the archive" not in page


def test_the_page_of_an_unpacking_checkpoint_polls_its_status(alice_client, acme, teacher_files):
    response = post(alice_client, acme, zip_bytes(teacher_files), run=False)  # no task has run yet
    checkpoint = Checkpoint.objects.get(name="uploaded")
    assert checkpoint.status == S.UNPACKING and checkpoint.path and not Path(checkpoint.path).exists()
    assert archive_jobs.stored_archive(Path(checkpoint.path)).is_file()
    page = alice_client.get(response["Location"]).content.decode()
    assert f'data-status-url="/checkpoints/{checkpoint.pk}/status.json"' in page
    assert "js/checkpoint.js" in page and "Distil it" not in page
    status = alice_client.get(f"/checkpoints/{checkpoint.pk}/status.json").json()
    assert status["status"] == "UNPACKING" and status["percent"] == 0
    assert archive_jobs.unpack_stored(checkpoint.pk, "task-1") == S.READY
    assert not archive_jobs.stored_archive(Path(checkpoint.path)).exists()


def test_another_teams_status_is_not_found(charlie_client, checkpoint):
    assert charlie_client.get(f"/checkpoints/{checkpoint.pk}/status.json").status_code == 404


def test_the_task_goes_to_the_housekeeping_queue(alice_client, acme, teacher_files, monkeypatch, settings):
    from workers.archive_tasks import unpack_checkpoint

    sent = []
    monkeypatch.setattr(unpack_checkpoint, "apply_async", lambda **kwargs: sent.append(kwargs))
    post(alice_client, acme, zip_bytes(teacher_files))
    checkpoint = Checkpoint.objects.get(name="uploaded")
    assert sent == [{"args": [checkpoint.pk], "queue": settings.HOUSEKEEPING_QUEUE}]


def test_a_duplicated_message_is_a_no_op(alice_client, acme, teacher_files):
    post(alice_client, acme, zip_bytes(teacher_files), run=False)
    checkpoint = Checkpoint.objects.get(name="uploaded")
    assert archive_jobs.unpack_stored(checkpoint.pk, "first") == S.READY
    ready = Checkpoint.objects.get(pk=checkpoint.pk)
    assert archive_jobs.unpack_stored(checkpoint.pk, "second") == "skipped"
    again = Checkpoint.objects.get(pk=checkpoint.pk)
    assert (again.status, again.path, again.info, again.task_id) == (S.READY, ready.path, ready.info, "first")


def test_an_unreachable_broker_fails_the_upload_with_a_reason(alice_client, acme, teacher_files, uploads,
                                                             monkeypatch):
    from workers.archive_tasks import unpack_checkpoint

    def down(**kwargs):
        raise ConnectionError("broker down")

    before = listing(uploads)
    monkeypatch.setattr(unpack_checkpoint, "apply_async", down)
    post(alice_client, acme, zip_bytes(teacher_files))
    checkpoint = Checkpoint.objects.get(name="uploaded")
    assert checkpoint.status == S.FAILED and "task queue is unreachable" in checkpoint.error
    assert listing(uploads) == before


def test_a_crash_while_unpacking_fails_it_and_leaves_nothing(alice_client, acme, teacher_files, uploads,
                                                            monkeypatch, eager_tasks):
    def crash(*args, **kwargs):
        raise MemoryError()

    before = listing(uploads)
    monkeypatch.setattr(archives, "_unpack_zip", crash)
    post(alice_client, acme, zip_bytes(teacher_files))
    checkpoint = Checkpoint.objects.get(name="uploaded")
    assert checkpoint.status == S.FAILED and "could not be unpacked (MemoryError)" in checkpoint.error
    assert listing(uploads) == before


def test_a_failed_upload_gives_its_name_back(alice_client, acme, teacher_files, eager_tasks):
    post(alice_client, acme, zip_bytes({**teacher_files, "../x": b"x"}))
    failed = Checkpoint.objects.get(name="uploaded")
    assert failed.status == S.FAILED
    post(alice_client, acme, tar_bytes(teacher_files))
    assert [(c.status, c.pk > failed.pk) for c in Checkpoint.objects.filter(name="uploaded")] == [(S.READY, True)]


def test_the_list_marks_checkpoints_that_are_not_ready(alice_client, acme, teacher_files):
    post(alice_client, acme, zip_bytes(teacher_files), run=False)
    assert "(unpacking)" in alice_client.get("/checkpoints/").content.decode()


@pytest.mark.worker
def test_the_housekeeping_worker_alone_unpacks_an_upload(transactional_db, alice_client, acme, teacher_files,
                                                         tmp_path):
    """No run worker is up: a worker consuming only the housekeeping queue takes the task."""
    import signal
    import subprocess
    import sys

    from tests.conftest import REPO, database_url_for_tests, wait_for
    from workers.dispatch import housekeeping_queue

    # The housekeeping worker's command line (compose's `housekeeping` service): solo pool, that queue only.
    argv = [sys.executable, "-m", "celery", "-A", "workers", "worker", "--queues", housekeeping_queue(),
            "--pool", "solo", "--concurrency", "1", "--hostname", "hk-test@%h", "--without-gossip", "--without-mingle"]
    log_path = tmp_path / "housekeeping.log"
    env = {**os.environ, "DATABASE_URL": database_url_for_tests(), "PYTHONUNBUFFERED": "1"}
    with open(log_path, "wb") as log:
        worker = subprocess.Popen(argv, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                                  start_new_session=True)
    try:
        response = alice_client.post("/checkpoints/new/", {"team": acme.pk, "name": "uploaded", "path": "",
                                                           "archive": SimpleUploadedFile("a", tar_bytes(teacher_files))})
        checkpoint = Checkpoint.objects.get(name="uploaded")
        assert response.status_code == 302 and checkpoint.status == S.UNPACKING

        def settled():
            checkpoint.refresh_from_db()
            return checkpoint.status != S.UNPACKING

        wait_for(settled, timeout=90, message=lambda: f"the unpacking; worker log:\n{log_path.read_text()[-3000:]}")
        assert checkpoint.status == S.READY, checkpoint.error
        assert checkpoint.info["num_labels"] == 3 and checkpoint.percent == 100
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:  # a slow warm shutdown on a busy machine: the test is over anyway
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()


def test_a_worker_stopping_mid_unpack_fails_it_and_leaves_nothing(alice_client, acme, teacher_files, uploads,
                                                                 monkeypatch):
    import signal

    from workers.archive_tasks import unpack_checkpoint

    before = listing(uploads)
    post(alice_client, acme, tar_bytes(padded(teacher_files)), run=False)
    checkpoint = Checkpoint.objects.get(name="uploaded")
    monkeypatch.setattr(archive_jobs, "PROGRESS_INTERVAL", 0)
    monkeypatch.setattr(archive_jobs._Progress, "__call__", lambda self: os.kill(os.getpid(), signal.SIGTERM))
    handed_on = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: handed_on.append(signum))  # the worker's own
    try:
        assert unpack_checkpoint.apply(args=[checkpoint.pk]).get() == S.FAILED
        assert handed_on == [signal.SIGTERM], "the stop request goes on to the worker's handler"
    finally:
        signal.signal(signal.SIGTERM, previous)
    checkpoint.refresh_from_db()
    assert checkpoint.status == S.FAILED and "worker was stopped while unpacking" in checkpoint.error
    assert listing(uploads) == before


def test_a_redelivered_message_of_a_dead_unpack_fails_it_and_cleans_up(alice_client, acme, teacher_files, uploads):
    before = listing(uploads)
    post(alice_client, acme, zip_bytes(teacher_files), run=False)
    checkpoint = Checkpoint.objects.get(name="uploaded")
    # The first delivery claimed the row and died mid-way, leaving half an unpacked directory.
    Checkpoint.objects.filter(pk=checkpoint.pk).update(task_id="task-1", bytes_done=100)
    staging = archive_jobs.staging_dir(Path(checkpoint.path))
    (staging / "sub").mkdir(parents=True)
    (staging / "sub" / "half.bin").write_bytes(b"x")
    assert archive_jobs.unpack_stored(checkpoint.pk, "task-1") == S.FAILED
    checkpoint.refresh_from_db()
    assert checkpoint.status == S.FAILED and "stopped before it finished" in checkpoint.error
    assert listing(uploads) == before
    assert archive_jobs.unpack_stored(checkpoint.pk, "task-1") == "skipped"
