"""Uploaded checkpoint archives: the request stores them, a task unpacks and inspects them.

(A checkpoint registered by path is inspected in the request without building its model; a task
counts its parameters afterwards: `count_parameters_later`.)

The web request only streams the archive to disk (capped by archives.CappedUploadHandler),
checks its first bytes and creates the Checkpoint row UNPACKING; after the commit a task on
the housekeeping queue (workers.archive_tasks) unpacks it with a byte budget, reporting how
much of the archive it has read, inspects it and marks the row READY, or FAILED with the
reason. Beside the row's future directory `<dir>` live `<dir>.archive` (the upload, removed
when the task ends) and `<dir>.partial` (renamed to `<dir>` on success), so a failure or a
refusal leaves nothing half-unpacked on disk.
"""

from __future__ import annotations

import logging
import re
import secrets
import shutil
import time
from pathlib import Path
from typing import IO

from django.core.files.move import file_move_safe
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction

from distill_core.errors import CheckpointError
from webapp.registry import archives, ownership
from webapp.registry.archives import ArchiveRefused
from webapp.registry.models import Checkpoint

log = logging.getLogger(__name__)

S = Checkpoint.Status
PROGRESS_INTERVAL = 0.5  # seconds between progress writes to the row


class Interrupted(Exception):
    """The unpacking was stopped from outside (the worker's shutdown); the message says what to do."""


def upload_dir(team) -> Path:
    """The directory a team's uploaded archives are stored and unpacked in (its own upload folder)."""
    try:
        return ownership.upload_dir(team)
    except ownership.PathRefused as exc:
        raise ArchiveRefused(exc.message) from None


def stored_archive(target: Path) -> Path:
    return target.with_name(target.name + ".archive")


def staging_dir(target: Path) -> Path:
    return target.with_name(target.name + ".partial")


def free_failed_name(team, name: str) -> None:
    """A FAILED upload keeps its name only until the next upload or registration under that name."""
    Checkpoint.objects.filter(team=team, name=name, status=S.FAILED).delete()


def accept_upload(*, team, user, name: str, upload: UploadedFile) -> Checkpoint:
    """Store `upload`, create its Checkpoint UNPACKING and send the unpacking task after the commit.

    Raises ArchiveRefused (naming the field) after removing the stored archive.
    """
    if upload.size is not None and upload.size > archives.max_upload_bytes():
        raise ArchiveRefused(archives.too_large_message(upload.size))
    upload.seek(0)
    head = upload.read(4)
    if not head.startswith((archives.ZIP_MAGIC, archives.GZIP_MAGIC)):
        raise ArchiveRefused("This is not a .zip or .tar.gz archive.")
    base = upload_dir(team)
    base.mkdir(parents=True, exist_ok=True)
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.")[:50] or "checkpoint"
    target = base / f"{slug}-{secrets.token_hex(6)}"
    archive = stored_archive(target)
    try:
        _store(upload, archive)
        with transaction.atomic():
            free_failed_name(team, name)
            checkpoint = Checkpoint.objects.create(
                team=team, name=name, path=str(target), status=S.UNPACKING, bytes_total=archive.stat().st_size,
                created_by=user)
    except IntegrityError:
        archive.unlink(missing_ok=True)
        raise ArchiveRefused(f"{team} already has a checkpoint called {name!r}.", "name") from None
    except BaseException:
        archive.unlink(missing_ok=True)
        raise
    transaction.on_commit(lambda: send_unpack(checkpoint.pk))
    log.info("Stored the archive of checkpoint %s (%s) for team %s; unpacking it in a task", checkpoint.pk, name,
             team.pk)
    return checkpoint


def _store(upload: UploadedFile, archive: Path) -> None:
    """Move the streamed temp file into place (a rename on one file system), or copy it in chunks."""
    if hasattr(upload, "temporary_file_path"):
        upload.file.flush()
        file_move_safe(upload.temporary_file_path(), str(archive))
        return
    upload.seek(0)
    with open(archive, "xb") as out:
        for chunk in upload.chunks():
            out.write(chunk)


def count_parameters_later(checkpoint: Checkpoint) -> None:
    """After the commit, have a housekeeping task build the model on the meta device and count its parameters."""

    def send() -> None:
        from workers.dispatch import send_housekeeping

        try:
            send_housekeeping("workers.archive_tasks.describe_checkpoint", checkpoint.pk)
        except Exception:  # the count is shown on the page only; the broker being down must not fail the request
            log.exception("Could not queue the parameter count of checkpoint %s", checkpoint.pk)

    transaction.on_commit(send)


def describe_stored(checkpoint_id: int) -> str:
    """Count a path-registered checkpoint's parameters; a model that cannot be built FAILS the checkpoint."""
    from distill_core.teachers import inspect_checkpoint

    checkpoint = Checkpoint.objects.filter(pk=checkpoint_id, status=S.READY).first()
    if checkpoint is None or (checkpoint.info or {}).get("parameters") is not None:
        return "skipped"
    try:
        info = inspect_checkpoint(checkpoint.path)
    except CheckpointError as exc:
        Checkpoint.objects.filter(pk=checkpoint_id, path=checkpoint.path, status=S.READY).update(
            status=S.FAILED, error=exc.message)
        return S.FAILED
    Checkpoint.objects.filter(pk=checkpoint_id, path=checkpoint.path).update(
        info={**checkpoint.info, "parameters": info["parameters"]})
    return S.READY


def send_unpack(checkpoint_id: int) -> None:
    """Queue the unpacking task; a broker that cannot be reached FAILS the upload with a reason."""
    from workers.dispatch import send_housekeeping

    try:
        send_housekeeping("workers.archive_tasks.unpack_checkpoint", checkpoint_id)
    except Exception:
        log.exception("Could not queue the unpacking of checkpoint %s", checkpoint_id)
        checkpoint = Checkpoint.objects.filter(pk=checkpoint_id, status=S.UNPACKING).first()
        if checkpoint is not None:
            stored_archive(Path(checkpoint.path)).unlink(missing_ok=True)
            _finish(checkpoint_id, "", status=S.FAILED,
                    error="The server could not queue the unpacking (its task queue is unreachable); upload again.")


class _Progress:
    """Writes how much of the archive has been read to the row, at most every PROGRESS_INTERVAL."""

    def __init__(self, checkpoint_id: int, token: str, file: IO[bytes]):
        self.checkpoint_id, self.token, self.file = checkpoint_id, token, file
        self.last = 0.0

    def __call__(self) -> None:
        now = time.monotonic()
        if now - self.last >= PROGRESS_INTERVAL:
            self.last = now
            Checkpoint.objects.filter(pk=self.checkpoint_id, task_id=self.token).update(bytes_done=self.file.tell())


def unpack_stored(checkpoint_id: int, token: str) -> str:
    """Claim an UNPACKING checkpoint, unpack and inspect its archive, end READY or FAILED; the new status.

    The claim (a conditional UPDATE that must change one row) makes a duplicated message a no-op,
    and every later write carries its token. The task is acked late, so when its process dies
    mid-way the broker delivers the message again: the row is then still UNPACKING under this
    same token, and this delivery cleans up and FAILS it rather than retrying what killed it.
    """
    token = token[:64] or secrets.token_hex(8)
    if Checkpoint.objects.filter(pk=checkpoint_id, status=S.UNPACKING, task_id="").update(task_id=token) != 1:
        if Checkpoint.objects.filter(pk=checkpoint_id, status=S.UNPACKING, task_id=token).exists():
            target = Path(Checkpoint.objects.get(pk=checkpoint_id).path)
            stored_archive(target).unlink(missing_ok=True)
            _fail(checkpoint_id, token, "The worker unpacking the archive stopped before it finished (out of "
                                        "memory, or restarted); upload it again.", staging_dir(target), target)
            return S.FAILED
        log.info("Checkpoint %s is not waiting to be unpacked (or another task claimed it)", checkpoint_id)
        return "skipped"
    checkpoint = Checkpoint.objects.get(pk=checkpoint_id)
    target = Path(checkpoint.path)
    archive, staging = stored_archive(target), staging_dir(target)
    try:
        staging.mkdir()
        with open(archive, "rb") as file:
            archives.unpack(file, staging, _Progress(checkpoint_id, token, file))
        # All read: the page says "checking the checkpoint" while it is inspected.
        Checkpoint.objects.filter(pk=checkpoint_id, task_id=token).update(bytes_done=checkpoint.bytes_total)
        path = target / archives.checkpoint_dir(staging).relative_to(staging)
        info = _inspect(archives.checkpoint_dir(staging), staging)
        staging.rename(target)
        if not _finish(checkpoint_id, token, status=S.READY, info=info, path=str(path),
                       bytes_done=checkpoint.bytes_total):
            shutil.rmtree(target, ignore_errors=True)
            return "lost"
    except ArchiveRefused as exc:
        _fail(checkpoint_id, token, exc.message, staging, target)
        return S.FAILED
    except Interrupted as exc:
        _fail(checkpoint_id, token, str(exc), staging, target)
        return S.FAILED
    except Exception as exc:  # a bug or the disk: say so on the page, keep the traceback in the log
        log.exception("Unpacking checkpoint %s crashed", checkpoint_id)
        _fail(checkpoint_id, token, f"The archive could not be unpacked ({type(exc).__name__}); try again, or "
                                    "ask an admin to look at the worker's log.", staging, target)
        return S.FAILED
    finally:
        archive.unlink(missing_ok=True)
    log.info("Unpacked checkpoint %s into %s", checkpoint_id, path)
    return S.READY


def _inspect(path: Path, staging: Path) -> dict:
    from distill_core.teachers import inspect_checkpoint

    try:
        return inspect_checkpoint(path)  # builds the model on the meta device: a task, not a request
    except CheckpointError as exc:  # its messages name the server's directory: name the archive instead
        raise ArchiveRefused(exc.message.replace(str(staging), "the archive")) from None


def _fail(checkpoint_id: int, token: str, message: str, staging: Path, target: Path) -> None:
    shutil.rmtree(staging, ignore_errors=True)
    shutil.rmtree(target, ignore_errors=True)
    _finish(checkpoint_id, token, status=S.FAILED, error=message)


def _finish(checkpoint_id: int, token: str, **fields) -> bool:
    """Write the outcome if this task still holds the claim (True), else change nothing."""
    return Checkpoint.objects.filter(pk=checkpoint_id, task_id=token, status=S.UNPACKING).update(**fields) == 1
