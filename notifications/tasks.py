"""Celery tasks of the notifications: thin, they take ids and call the services."""

from __future__ import annotations

from celery import shared_task
from django.db import DatabaseError

from . import services

_DB_RETRY = {"autoretry_for": (DatabaseError,), "retry_backoff": 1, "retry_backoff_max": 60, "max_retries": 10}


@shared_task(name="notifications.deliver", time_limit=60, acks_late=True, **_DB_RETRY)
def deliver(delivery_id: int) -> bool | None:
    """One email or webhook attempt; a failure schedules the next one with backoff itself."""
    return services.delivery_attempt(delivery_id=delivery_id)


@shared_task(name="notifications.sweep", time_limit=120, acks_late=True)
def sweep() -> int:
    """Every delivery that is due and not sent (lost message, broker down, crashed sender)."""
    return services.deliveries_due()
