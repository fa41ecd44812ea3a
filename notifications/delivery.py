"""The outside channels: email through Django's email API (console or file backend in the
embedded mode, SMTP or an anymail provider in the stack), and the user's webhook, an HTTP
POST of the notification as JSON signed with the user's secret.

Webhook signature: header ``X-Meridian-Signature: sha256=<hex>``, the HMAC-SHA256 with the
user's secret of ``<X-Meridian-Timestamp>.<body>`` (the timestamp in Unix seconds, so a
receiver can refuse old replays). ``X-Meridian-Delivery`` is the same on every retry of one
delivery: receivers can drop duplicates by it, as mail systems can by an email's Message-ID,
also the same on every attempt.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import socket
import time
from email.utils import parseaddr
from urllib.parse import urlsplit

from django.conf import settings
from django.core.mail import EmailMessage

from trading.formatting import utc_string

from . import kinds
from .models import Delivery

WEBHOOK_TIMEOUT = 5.0  # seconds per attempt (connect and read)


class DeliveryRefused(Exception):
    """The receiving side said no (an HTTP status other than 2xx)."""


def send(delivery: Delivery) -> str:
    """Send one delivery; the outcome's detail, or an exception."""
    if delivery.channel == kinds.EMAIL:
        return send_email(delivery)
    if delivery.channel == kinds.WEBHOOK:
        return send_webhook(delivery)
    raise ValueError(f"unknown channel {delivery.channel!r}")


def email_message(notification) -> EmailMessage:
    """The email of one notification (also what the demo's mailbox page shows)."""
    platform = settings.PLATFORM_NAME
    # The trader's anti-phishing code opens every email: one without it is not from us.
    code = notification.user.anti_phishing_code
    opening = f"Anti-phishing code: {code}\n\n" if code else ""
    body = (
        f"{opening}{notification.body}\n\n"
        f"-- \n{platform}. You can choose which messages reach you by email on your notification preferences page."
    )
    return EmailMessage(
        subject=f"[{platform}] {notification.title}",
        body=body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[notification.user.email],
        headers={"X-Meridian-Notification": str(notification.pk), "X-Meridian-Kind": notification.kind},
    )


def message_id(delivery: Delivery) -> str:
    """The email's Message-ID, the same on every attempt of one delivery (whichever worker
    sends it): a send repeated after a sender died between the server's acceptance and its
    record carries the same id, by which mail systems drop the duplicate (as webhook
    receivers do by ``X-Meridian-Delivery``)."""
    domain = parseaddr(settings.DEFAULT_FROM_EMAIL)[1].rpartition("@")[2] or "meridian.invalid"
    return f"<notification-{delivery.notification_id}.delivery-{delivery.pk}@{domain}>"


def send_email(delivery: Delivery) -> str:
    user = delivery.notification.user
    message = email_message(delivery.notification)
    message.extra_headers["Message-ID"] = message_id(delivery)
    sent = message.send(fail_silently=False)
    if not sent:
        raise DeliveryRefused("the email backend sent nothing")
    return f"sent to {user.email}"


def payload(delivery: Delivery) -> bytes:
    notification = delivery.notification
    return json.dumps(
        {
            "id": notification.pk,
            "kind": notification.kind,
            "title": notification.title,
            "body": notification.body,
            "data": notification.data,
            "created_at": utc_string(notification.created_at),
        },
        separators=(",", ":"),
        default=str,
    ).encode()


def signature(secret: str, timestamp: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def check_destination(url: str) -> None:
    """Refuse URLs that are not http(s), and, unless allowed, hosts on private, loopback or
    link-local addresses (a webhook must not reach into the exchange's own network)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DeliveryRefused(f"not an http(s) URL: {url}")
    if settings.NOTIFICATIONS_WEBHOOK_ALLOW_PRIVATE:
        return
    for info in socket.getaddrinfo(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)):
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global:
            raise DeliveryRefused(f"{parts.hostname} resolves to a non-public address ({address})")


def send_webhook(delivery: Delivery) -> str:
    import requests

    endpoint = delivery.notification.user.webhook_endpoint
    check_destination(endpoint.url)
    body = payload(delivery)
    timestamp = str(int(time.time()))
    response = requests.post(
        endpoint.url,
        data=body,
        headers={
            "Content-Type": "application/json",
            "User-Agent": "Meridian-Webhooks/1",
            "X-Meridian-Delivery": str(delivery.pk),
            "X-Meridian-Timestamp": timestamp,
            "X-Meridian-Signature": signature(endpoint.secret, timestamp, body),
        },
        timeout=WEBHOOK_TIMEOUT,
        allow_redirects=False,
    )
    if not 200 <= response.status_code < 300:
        raise DeliveryRefused(f"HTTP {response.status_code}")
    return f"HTTP {response.status_code}"
