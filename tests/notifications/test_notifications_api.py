"""In-app notifications: a user's own list, detail and mark-read (others' are 404)."""

import pytest
from django.utils import timezone

from notifications.models import Notification
from notifications.services import notification_create
from tests.accounts.helpers import assert_error

pytestmark = pytest.mark.django_db

LIST = "/api/v1/notifications"
FIELDS = {"id", "kind", "title", "body", "data", "created_at", "read_at"}


def detail(pk):
    return f"/api/v1/notifications/{pk}"


def read(pk):
    return f"/api/v1/notifications/{pk}/read"


def make(user, n=1, **kwargs):
    return [
        notification_create(
            user=user, kind=kwargs.get("kind", "test"), title=kwargs.get("title", f"Message {i}"), body="Hello"
        )
        for i in range(n)
    ]


def test_list_shows_own_notifications_newest_first(auth_api, user, other_user):
    mine = make(user, 3)
    make(other_user, 2, title="Not yours")

    response = auth_api.get(LIST)

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 3
    assert [row["id"] for row in body["results"]] == [n.pk for n in reversed(mine)]
    for row in body["results"]:
        assert set(row) == FIELDS
        assert row["read_at"] is None
        assert row["title"] != "Not yours"


def test_list_is_empty_for_a_new_user(auth_api):
    body = auth_api.get(LIST).json()

    assert body["count"] == 0
    assert body["results"] == []


def test_list_is_paginated(auth_api, user):
    make(user, 55)

    first = auth_api.get(LIST).json()
    assert first["count"] == 55
    assert len(first["results"]) == 50
    assert first["next"]
    second = auth_api.get(LIST, {"page": 2}).json()
    assert len(second["results"]) == 5
    assert not {row["id"] for row in first["results"]} & {row["id"] for row in second["results"]}


def test_list_unread_filter(auth_api, user):
    unread, done = make(user, 2)
    Notification.objects.filter(pk=done.pk).update(read_at=timezone.now())

    body = auth_api.get(LIST, {"unread": "1"}).json()

    assert [row["id"] for row in body["results"]] == [unread.pk]
    assert auth_api.get(LIST).json()["count"] == 2


def test_detail_of_own_notification(auth_api, user):
    (notification,) = make(user, title="Identity verified", kind="kyc_approved")

    response = auth_api.get(detail(notification.pk))

    assert response.status_code == 200
    body = response.json()
    assert set(body) == FIELDS
    assert body["id"] == notification.pk
    assert body["kind"] == "kyc_approved"
    assert body["title"] == "Identity verified"
    assert body["body"] == "Hello"
    assert body["read_at"] is None
    # Reading the detail does not mark it read.
    notification.refresh_from_db()
    assert notification.read_at is None


def test_mark_read(auth_api, user):
    notification, other = make(user, 2)

    response = auth_api.post(read(notification.pk))

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["id"] == notification.pk
    assert body["read_at"] is not None
    notification.refresh_from_db()
    other.refresh_from_db()
    assert notification.read_at is not None
    assert other.read_at is None
    assert [row["id"] for row in auth_api.get(LIST, {"unread": "true"}).json()["results"]] == [other.pk]


def test_mark_read_is_idempotent(auth_api, user):
    (notification,) = make(user)
    first = auth_api.post(read(notification.pk)).json()["read_at"]

    second = auth_api.post(read(notification.pk))

    assert second.status_code == 200
    assert second.json()["read_at"] == first


def test_other_users_notifications_are_404(auth_api, other_user):
    (theirs,) = make(other_user)

    assert_error(auth_api.get(detail(theirs.pk)), 404, "not_found")
    assert_error(auth_api.post(read(theirs.pk)), 404, "not_found")
    theirs.refresh_from_db()
    assert theirs.read_at is None


def test_missing_notification_is_404(auth_api):
    assert_error(auth_api.get(detail(999999)), 404, "not_found")
    assert_error(auth_api.post(read(999999)), 404, "not_found")


def test_notifications_need_authentication(api, user):
    (notification,) = make(user)

    assert_error(api.get(LIST), 401, "not_authenticated")
    assert_error(api.get(detail(notification.pk)), 401, "not_authenticated")
    assert_error(api.post(read(notification.pk)), 401, "not_authenticated")


def test_account_events_create_notifications(auth_api, user, password):
    response = auth_api.post(
        "/api/v1/auth/password", {"current_password": password, "new_password": "Brand-new-secret-31"}, format="json"
    )
    assert response.status_code == 204

    rows = auth_api.get(LIST).json()["results"]
    assert [row["kind"] for row in rows] == ["password_changed"]
