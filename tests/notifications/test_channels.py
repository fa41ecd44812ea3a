"""The outside channels against real local servers: mail read from an SMTP server
(aiosmtpd), a webhook received by an HTTP server that checks the signature and answers
500 once before accepting."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
from datetime import timedelta
from email import message_from_bytes
from email.policy import default as default_policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from aiosmtpd.controller import Controller
from django.utils import timezone

from notifications import services
from notifications.models import Delivery, DeliveryAttempt, DeliveryStatus
from notifications.services import notify

pytestmark = pytest.mark.django_db


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Mailbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.rcpt_tos, message_from_bytes(envelope.content, policy=default_policy)))
        return "250 OK"


@pytest.fixture
def smtp(settings):
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", controller.port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.DEFAULT_FROM_EMAIL = "no-reply@meridian.test"
    yield mailbox
    controller.stop()


def test_the_email_arrives_at_the_smtp_server(user, smtp, eager_tasks, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        message = notify(
            user=user,
            kind="withdrawal_updated",
            title="Withdrawal of 0.50000000 BTC approved and sent",
            body="To bc1qexample. Network transaction: abc123.",
            dedupe_key="withdrawal:9:approved",
        )
        # The same event again: still one email.
        notify(user=user, kind="withdrawal_updated", title="again", body="again", dedupe_key="withdrawal:9:approved")

    assert len(smtp.messages) == 1
    recipients, mail = smtp.messages[0]
    assert recipients == [user.email]
    assert mail["To"] == user.email
    assert mail["From"] == "no-reply@meridian.test"
    assert mail["Subject"] == "[Meridian Exchange] Withdrawal of 0.50000000 BTC approved and sent"
    assert mail["X-Meridian-Notification"] == str(message.pk)
    assert mail["X-Meridian-Kind"] == "withdrawal_updated"
    text = mail.get_content()
    assert text.startswith("To bc1qexample. Network transaction: abc123.")
    assert "notification preferences" in text
    attempt = DeliveryAttempt.objects.get(delivery__notification=message)
    assert attempt.ok and attempt.detail == f"sent to {user.email}"


def test_a_mail_server_that_is_down_is_retried_with_backoff(
    user, settings, eager_tasks, django_capture_on_commit_callbacks
):
    port = free_port()  # nothing listens here yet
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", port, 2
    settings.NOTIFICATIONS_RETRY_BASE_SECONDS = 30

    with django_capture_on_commit_callbacks(execute=True):
        message = notify(user=user, kind="kyc", title="Identity verified", body="Approved.", dedupe_key="kyc:1")

    delivery = Delivery.objects.get(notification=message)
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.PENDING, 1)
    assert 25 < (delivery.due_at - timezone.now()).total_seconds() <= 30
    assert "ConnectionRefusedError" in delivery.last_error
    assert services.deliveries_due(grace=0) == 0  # not before its backoff is over

    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        Delivery.objects.filter(pk=delivery.pk).update(due_at=timezone.now() - timedelta(seconds=1))
        assert services.deliveries_due(grace=0) == 1
    finally:
        controller.stop()
    assert [mail["Subject"] for _, mail in mailbox.messages] == ["[Meridian Exchange] Identity verified"]
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.SENT, 2)
    assert list(DeliveryAttempt.objects.filter(delivery=delivery).values_list("number", "ok")) == [
        (1, False),
        (2, True),
    ]


def test_every_attempt_of_one_email_has_the_same_message_id(user, smtp):
    """A sender that dies after the server took the email but before the attempt was recorded
    sends it again: the copy has the same Message-ID, by which mail systems drop it."""
    from notifications.delivery import send_email

    message = notify(user=user, kind="kyc", title="Identity verified", body="", dedupe_key="kyc:7:approved")
    delivery = Delivery.objects.get(notification=message, channel="email")
    send_email(delivery)
    send_email(Delivery.objects.get(pk=delivery.pk))  # as another worker would, reading it again
    ids = [mail["Message-ID"] for _, mail in smtp.messages]
    assert ids == [f"<notification-{message.pk}.delivery-{delivery.pk}@meridian.test>"] * 2

    other = notify(user=user, kind="kyc", title="Identity verified", body="", dedupe_key="kyc:8:approved")
    send_email(Delivery.objects.get(notification=other, channel="email"))
    assert smtp.messages[-1][1]["Message-ID"] not in ids


class Receiver:
    """An HTTP server answering the given statuses in turn (then 200), keeping what came."""

    def __init__(self, statuses):
        self.statuses = list(statuses)
        self.requests = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((dict(self.headers), body))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/meridian"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver(settings):
    settings.NOTIFICATIONS_WEBHOOK_ALLOW_PRIVATE = True
    server = Receiver([500])
    yield server
    server.close()


def verify(secret: str, headers: dict, body: bytes) -> bool:
    expected = hmac.new(
        secret.encode(), headers["X-Meridian-Timestamp"].encode() + b"." + body, hashlib.sha256
    ).hexdigest()
    return hmac.compare_digest(headers["X-Meridian-Signature"], f"sha256={expected}")


def test_the_webhook_is_signed_and_retried_after_a_500(
    user, receiver, settings, eager_tasks, django_capture_on_commit_callbacks
):
    settings.NOTIFICATIONS_RETRY_BASE_SECONDS = 10
    endpoint = services.webhook_set(user=user, url=receiver.url)

    with django_capture_on_commit_callbacks(execute=True):
        message = notify(
            user=user,
            kind="order_filled",
            title="Buy BTC-USDT order 5 filled",
            body="Filled 0.100000 BTC for 6500.00 USDT.",
            dedupe_key="spot:5:filled",
            data={"order_id": 5},
        )

    delivery = Delivery.objects.get(notification=message, channel="webhook")
    assert (delivery.status, delivery.attempts, delivery.last_error) == (
        DeliveryStatus.PENDING,
        1,
        "DeliveryRefused: HTTP 500",
    )
    assert 5 < (delivery.due_at - timezone.now()).total_seconds() <= 10
    Delivery.objects.filter(pk=delivery.pk).update(due_at=timezone.now())
    assert services.deliveries_due(grace=0) == 1

    assert len(receiver.requests) == 2
    for headers, body in receiver.requests:
        assert verify(endpoint.secret, headers, body)
        assert headers["X-Meridian-Delivery"] == str(delivery.pk)
        assert headers["Content-Type"] == "application/json"
        sent = json.loads(body)
        assert sent["id"] == message.pk and sent["kind"] == "order_filled" and sent["data"] == {"order_id": 5}
        assert sent["title"] == "Buy BTC-USDT order 5 filled"
    assert receiver.requests[0][1] == receiver.requests[1][1]  # a retry sends the same body
    assert not verify("another secret", *receiver.requests[0])
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SENT
    log = list(DeliveryAttempt.objects.filter(delivery=delivery).values_list("number", "ok", "detail"))
    assert log == [(1, False, "DeliveryRefused: HTTP 500"), (2, True, "HTTP 200")]
    # Fills are not emailed by default: the webhook is the only outside delivery.
    assert list(Delivery.objects.filter(notification=message).values_list("channel", flat=True)) == ["webhook"]


def test_a_webhook_that_keeps_failing_is_given_up(
    user, receiver, settings, eager_tasks, django_capture_on_commit_callbacks
):
    settings.NOTIFICATIONS_MAX_ATTEMPTS = 3
    settings.NOTIFICATIONS_RETRY_BASE_SECONDS = 0  # each retry is due at once
    receiver.statuses = [503, 503, 503, 503]
    services.webhook_set(user=user, url=receiver.url)

    with django_capture_on_commit_callbacks(execute=True):
        message = notify(user=user, kind="price_alert", title="BTC above 70000", body="", dedupe_key="alert:1:1")
    services.deliveries_due(grace=0)

    delivery = Delivery.objects.get(notification=message, channel="webhook")
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.FAILED, 3)
    assert len(receiver.requests) == 3
    assert DeliveryAttempt.objects.filter(delivery=delivery, ok=False).count() == 3


def test_webhooks_to_private_addresses_are_refused_unless_allowed(
    user, receiver, settings, eager_tasks, django_capture_on_commit_callbacks
):
    settings.NOTIFICATIONS_WEBHOOK_ALLOW_PRIVATE = False
    settings.NOTIFICATIONS_RETRY_BASE_SECONDS = 60
    services.webhook_set(user=user, url=receiver.url)

    with django_capture_on_commit_callbacks(execute=True):
        message = notify(user=user, kind="price_alert", title="BTC above 70000", body="", dedupe_key="alert:1:2")

    assert receiver.requests == []
    attempt = DeliveryAttempt.objects.get(delivery__notification=message, delivery__channel="webhook")
    assert not attempt.ok and "non-public address (127.0.0.1)" in attempt.detail


def test_an_email_provider_through_django_anymail(user, settings, mailoutbox):
    """In production EMAIL_BACKEND may name a provider's django-anymail backend: the same
    message goes out through it (anymail's test backend records what it would send)."""
    from notifications.delivery import send_email

    settings.EMAIL_BACKEND = "anymail.backends.test.EmailBackend"
    message = notify(user=user, kind="kyc", title="Identity verified", body="Welcome.", dedupe_key="kyc:9:approved")
    delivery = Delivery.objects.get(notification=message, channel="email")
    assert send_email(delivery) == f"sent to {user.email}"
    [sent] = mailoutbox
    assert sent.subject == "[Meridian Exchange] Identity verified" and sent.to == [user.email]
    assert sent.anymail_test_params["extra_headers"]["Message-ID"].startswith(f"<notification-{message.pk}.")
    assert sent.anymail_status.status == {"sent"}
