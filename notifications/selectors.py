from __future__ import annotations

from trading.errors import NotFound

from . import kinds
from .models import Delivery, DeliveryStatus, Notification, NotificationPreference, WebhookEndpoint


def notification_list(*, user, unread_only: bool = False):
    qs = Notification.objects.filter(user=user, in_app=True)
    if unread_only:
        qs = qs.filter(read_at__isnull=True)
    return qs


def notification_get(*, user, notification_id: int) -> Notification:
    notification = Notification.objects.filter(user=user, pk=notification_id, in_app=True).first()
    if notification is None:
        raise NotFound("Notification not found.")
    return notification


def notification_unread_count(*, user) -> int:
    return Notification.objects.filter(user=user, in_app=True, read_at__isnull=True).count()


def preferences_for(*, user) -> dict[str, dict[str, bool]]:
    """Every kind with every channel on or off: the user's choice, else the default."""
    overrides = {
        (kind, channel): enabled
        for kind, channel, enabled in NotificationPreference.objects.filter(user=user).values_list(
            "kind", "channel", "enabled"
        )
    }
    return {kind: kinds.resolve(kind, overrides) for kind in kinds.KINDS}


def webhook_for(*, user) -> WebhookEndpoint | None:
    return WebhookEndpoint.objects.filter(user=user).first()


def emails_sent_to(*, user):
    """The emails sent to ``user``, newest first (the demo's mailbox page)."""
    return (
        Delivery.objects.filter(notification__user=user, channel=kinds.EMAIL, status=DeliveryStatus.SENT)
        .select_related("notification__user")
        .order_by("-sent_at", "-id")
    )
