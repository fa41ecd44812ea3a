"""Telling staff: an incident's alert and its recovery message go to every active staff
member as a notification (event ``ops_alert``, a ``risk_alert``: every channel, it cannot be
switched off), to ``OPS_ALERT_EMAILS`` by email, and to ``OPS_ALERT_URLS`` through apprise
(Slack, Teams, PagerDuty, ntfy, a JSON webhook...). The emails and apprise go out directly
from the monitor, not through Celery: an alert must not wait for the broker it may be
reporting down. Each channel's failure is logged and does not stop the others."""

from __future__ import annotations

import json
import logging

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import transaction

from notifications.services import Message, notify_many
from trading.formatting import utc_string

from .services import Alert

logger = logging.getLogger(__name__)
EVENT = "ops_alert"


def text(alert: Alert) -> tuple[str, str]:
    """Subject and body of the message."""
    started = utc_string(alert.started_at)
    detail = json.dumps(alert.detail, default=str, sort_keys=True)[:1500]
    if alert.kind == "failed":
        title = f"[{settings.PLATFORM_NAME}] ALERT: {alert.check} is failing"
        body = (
            f"The check {alert.check} has been failing since {started}.\n"
            f"What the probe found: {detail}\n"
            f'Runbook: docs/operations.md, section "Monitor checks", {alert.check.split(":")[0]}.'
        )
    else:
        resolved = utc_string(alert.resolved_at)
        title = f"[{settings.PLATFORM_NAME}] RECOVERED: {alert.check} is ok again"
        body = f"The check {alert.check} failed from {started} to {resolved}; it is ok again."
    return title, body


def alerts_send(alerts: list[Alert], *, direct_only: bool = False) -> None:
    """Send each alert on every channel (``direct_only``: email and apprise, not the staff
    notifications, which need the database)."""
    channels = (_email, _apprise) if direct_only else (_email, _apprise, _staff)
    for alert in alerts:
        title, body = text(alert)
        logger.warning("OPS %s %s: %s", alert.kind.upper(), alert.check, title)
        for channel in channels:
            try:
                channel(alert, title, body)
            except Exception:
                logger.exception("ops alert: %s failed for incident %s", channel.__name__, alert.incident_id)


def _email(alert: Alert, title: str, body: str) -> None:
    if settings.OPS_ALERT_EMAILS:
        send_mail(title, body, settings.DEFAULT_FROM_EMAIL, list(settings.OPS_ALERT_EMAILS), fail_silently=False)


def _apprise(alert: Alert, title: str, body: str) -> None:
    if not settings.OPS_ALERT_URLS:
        return
    import apprise

    sender = apprise.Apprise()
    for url in settings.OPS_ALERT_URLS:
        sender.add(url)
    kind = apprise.NotifyType.FAILURE if alert.kind == "failed" else apprise.NotifyType.SUCCESS
    if not sender.notify(title=title, body=body, notify_type=kind):
        raise RuntimeError("apprise could not deliver to every OPS_ALERT_URLS entry")


def _staff(alert: Alert, title: str, body: str) -> None:
    staff = get_user_model().objects.filter(is_staff=True, is_active=True).values_list("pk", flat=True)
    data = {"check": alert.check, "incident": alert.incident_id, "state": alert.kind, "detail": alert.detail}
    messages = [
        Message(
            user_id=pk,
            kind=EVENT,
            title=title,
            body=body,
            dedupe_key=f"ops:incident:{alert.incident_id}:{alert.kind}",
            data=data,
            critical=True,
        )
        for pk in staff
    ]
    with transaction.atomic(durable=True):
        notify_many(messages)
