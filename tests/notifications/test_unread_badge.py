"""Every page's navigation shows the signed-in user's unread count (the notifications app's
context processor: the kernel does not import notifications)."""

import pytest
from django.test import Client

from notifications.services import notification_create

pytestmark = pytest.mark.django_db


def test_the_navigation_counts_the_unread_notifications(user, other_user):
    for n in range(3):
        notification_create(user=user, kind="test", title=f"unread {n}")
    notification_create(user=other_user, kind="test", title="someone else's")
    client = Client()
    client.force_login(user)
    page = client.get("/markets/")
    assert page.status_code == 200
    assert page.context["unread_notifications"] == 3
    assert b'aria-label="3 unread"' in page.content


def test_signed_out_pages_count_nothing():
    page = Client().get("/login/")
    assert page.status_code == 200
    assert page.context["unread_notifications"] == 0
    assert b"nav-badge" not in page.content
