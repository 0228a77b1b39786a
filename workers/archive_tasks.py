"""Celery task: unpack and inspect an uploaded checkpoint archive, on the housekeeping queue."""

from __future__ import annotations

from celery import shared_task


@shared_task(bind=True, name="workers.archive_tasks.unpack_checkpoint")
def unpack_checkpoint(self, checkpoint_id: int) -> str:
    """Turn an UNPACKING checkpoint into READY or FAILED; a duplicate message is a no-op."""
    from webapp.experiments import archive_jobs

    return archive_jobs.unpack_stored(checkpoint_id, self.request.id or "")
