"""Delivering notifications (webapp/notifications): one Celery task per Delivery row, retried with backoff.

webapp/notifications/delivery.py sends a row at most once. A failing receiver is retried `MAX_RETRIES`
times, waiting base * 2**attempt seconds (settings.NOTIFY_RETRY_BASE_SECONDS), then the row is marked FAILED.
"""

from __future__ import annotations

import logging

from celery import shared_task

log = logging.getLogger(__name__)

MAX_RETRIES = 5


def backoff(attempt: int, base: float) -> float:
    """Seconds before retry number `attempt` (1-based): base, 2 base, 4 base, ... at most an hour."""
    return min(3600.0, base * 2 ** (attempt - 1))


@shared_task(bind=True, name="workers.notify_tasks.deliver", max_retries=MAX_RETRIES)
def deliver(self, delivery_id: int) -> bool:
    from django.conf import settings

    from webapp.notifications.delivery import attempt_delivery
    from webapp.notifications.models import Delivery

    error = attempt_delivery(delivery_id)
    if error is None:
        return True
    if self.request.retries >= self.max_retries:
        Delivery.objects.filter(pk=delivery_id).exclude(status=Delivery.Status.DELIVERED).update(
            status=Delivery.Status.FAILED)
        log.warning("Notification %s gave up after %s attempts: %s", delivery_id, self.request.retries + 1, error)
        return False
    base = float(getattr(settings, "NOTIFY_RETRY_BASE_SECONDS", 30))
    raise self.retry(countdown=backoff(self.request.retries + 1, base))
