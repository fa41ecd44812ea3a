from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from trading.errors import NotFound

from .models import Notification


def notification_create(*, user, kind: str, title: str, body: str = "") -> Notification:
    """Joins the caller's transaction if there is one: the message exists only if the event does."""
    return Notification.objects.create(user=user, kind=kind, title=title, body=body)


def notification_mark_read(*, user, notification_id: int) -> Notification:
    with transaction.atomic(durable=True):
        notification = Notification.objects.select_for_update().filter(user=user, pk=notification_id).first()
        if notification is None:
            raise NotFound("Notification not found.")
        if notification.read_at is None:
            notification.read_at = timezone.now()
            notification.save(update_fields=["read_at"])
    return notification


def notification_mark_all_read(*, user) -> int:
    with transaction.atomic(durable=True):
        return Notification.objects.filter(user=user, read_at__isnull=True).update(read_at=timezone.now())
