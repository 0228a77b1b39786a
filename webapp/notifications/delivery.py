"""Sending one Delivery row (the Celery task in workers/notify_tasks.py calls this).

The row is locked while it is sent and marked DELIVERED in the same transaction, so a task the broker
hands out twice sends once.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from webapp.notifications.models import Delivery
from webapp.notifications.send import SendError, post_webhook, send_email


def attempt_delivery(delivery_id: int) -> str | None:
    """Send the row once unless it was sent already; None on success (or nothing to do), else the error."""
    with transaction.atomic():
        row = Delivery.objects.select_for_update(of=("self",)).select_related("webhook").filter(pk=delivery_id).first()
        if row is None or row.status == Delivery.Status.DELIVERED:
            return None
        row.attempts += 1
        try:
            if row.webhook_id is not None:
                post_webhook(row.webhook.url, row.webhook.secret, row.payload, delivery_id=str(row.pk))
            else:
                user = get_user_model().objects.get(pk=row.user_id)
                send_email(user.email, row.payload)
        except SendError as exc:
            row.last_error = str(exc)[:2000]
            row.save(update_fields=["attempts", "last_error"])
            return row.last_error
        row.status, row.delivered_at, row.last_error = Delivery.Status.DELIVERED, timezone.now(), ""
        row.save(update_fields=["attempts", "status", "delivered_at", "last_error"])
    return None
