"""The delivery log in the admin: each email and webhook with every attempt and its outcome."""

from __future__ import annotations

import pytest
from django.utils import timezone

from notifications.models import Delivery, DeliveryAttempt, Notification

pytestmark = pytest.mark.django_db


@pytest.fixture
def logged(user):
    notification = Notification.objects.create(
        user=user, kind="deposit_credited", title="Deposit of 1 BTC credited", dedupe_key="deposit:x"
    )
    delivery = Delivery.objects.create(
        notification=notification, channel="webhook", status="sent", attempts=2, due_at=timezone.now()
    )
    DeliveryAttempt.objects.create(delivery=delivery, number=1, ok=False, detail="DeliveryRefused: HTTP 500")
    DeliveryAttempt.objects.create(delivery=delivery, number=2, ok=True, detail="HTTP 200")
    return notification, delivery


def test_the_admin_shows_deliveries_and_their_attempts(admin_client_otp, logged):
    notification, delivery = logged

    listing = admin_client_otp.get("/admin/notifications/delivery/")
    assert listing.status_code == 200
    assert "Deposit of 1 BTC credited" in listing.content.decode()

    page = admin_client_otp.get(f"/admin/notifications/delivery/{delivery.pk}/change/").content.decode()
    assert "DeliveryRefused: HTTP 500" in page and "HTTP 200" in page

    attempts = admin_client_otp.get("/admin/notifications/deliveryattempt/?ok__exact=0").content.decode()
    assert "DeliveryRefused: HTTP 500" in attempts and "HTTP 200" not in attempts

    detail = admin_client_otp.get(f"/admin/notifications/notification/{notification.pk}/change/")
    assert detail.status_code == 200 and "webhook" in detail.content.decode()


def test_the_log_cannot_be_edited(admin_client_otp, logged):
    _, delivery = logged

    response = admin_client_otp.post(f"/admin/notifications/delivery/{delivery.pk}/delete/", {"post": "yes"})

    assert response.status_code == 403
    assert Delivery.objects.filter(pk=delivery.pk).exists()
