"""Celery wiring and tasks: thin adapters from a database row to distill_core and back."""

from workers.celery import app as celery_app

__all__ = ["celery_app"]
