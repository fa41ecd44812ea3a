"""GET/PUT /api/v1/notifications/preferences and POST /api/v1/notifications/read-all."""

from __future__ import annotations

import pytest

from notifications import kinds
from notifications.models import NotificationPreference, WebhookEndpoint
from notifications.services import notification_create, notify
from tests.accounts.helpers import assert_error

pytestmark = pytest.mark.django_db

URL = "/api/v1/notifications/preferences"


def test_defaults_for_every_kind(auth_api):
    response = auth_api.get(URL)

    assert response.status_code == 200
    body = response.json()
    assert set(body["events"]) == set(kinds.KINDS)
    for required in (
        "order_filled",
        "order_partially_filled",
        "order_cancelled",
        "option_settled",
        "deposit_credited",
        "withdrawal_updated",
        "price_alert",
        "risk_alert",
        "security",
        "kyc",
        "digest",
    ):
        assert set(body["events"][required]) == {"in_app", "email", "webhook"}
        assert body["events"][required]["in_app"] is True
    assert body["events"]["order_filled"]["email"] is False
    assert body["events"]["withdrawal_updated"]["email"] is True
    assert sorted(body["locked"]) == ["risk_alert", "security"]
    assert body["webhook"] is None


def test_put_changes_only_what_it_names(auth_api, user):
    response = auth_api.put(
        URL, {"events": {"order_filled": {"email": True}, "price_alert": {"in_app": False}}}, format="json"
    )

    assert response.status_code == 200, response.content
    events = response.json()["events"]
    assert events["order_filled"] == {"in_app": True, "email": True, "webhook": True}
    assert events["price_alert"] == {"in_app": False, "email": True, "webhook": True}
    assert auth_api.get(URL).json()["events"] == events
    assert NotificationPreference.objects.filter(user=user).count() == 2


@pytest.mark.parametrize("kind", ["security", "risk_alert"])
@pytest.mark.parametrize("channel", ["in_app", "email", "webhook"])
def test_security_and_risk_cannot_be_switched_off(auth_api, user, kind, channel):
    response = auth_api.put(URL, {"events": {"order_filled": {"email": True}, kind: {channel: False}}}, format="json")

    assert_error(response, 400, "validation_error", field=f"events.{kind}.{channel}")
    # Nothing of the request is stored, not even its valid part.
    assert not NotificationPreference.objects.filter(user=user).exists()
    assert auth_api.get(URL).json()["events"][kind][channel] is True


def test_switching_a_locked_kind_on_is_accepted(auth_api):
    response = auth_api.put(URL, {"events": {"security": {"email": True}}}, format="json")

    assert response.status_code == 200


@pytest.mark.parametrize(
    "events, field",
    [
        ({"order_filed": {"email": True}}, "events.order_filed"),
        ({"order_filled": {"sms": True}}, "events.order_filled.sms"),
        ({"order_filled": {"email": "yes"}}, "events.order_filled.email"),
    ],
)
def test_bad_preferences_name_their_field(auth_api, user, events, field):
    assert_error(auth_api.put(URL, {"events": events}, format="json"), 400, "validation_error", field=field)
    assert not NotificationPreference.objects.filter(user=user).exists()


def test_not_an_object_is_a_validation_error(auth_api):
    assert_error(
        auth_api.put(URL, {"events": ["order_filled"]}, format="json"), 400, "validation_error", field="events"
    )


def test_webhook_url_is_set_with_a_secret_rotated_and_removed(auth_api, user):
    body = auth_api.put(URL, {"webhook_url": "https://hooks.example.com/meridian"}, format="json").json()

    assert body["webhook"]["url"] == "https://hooks.example.com/meridian"
    secret = body["webhook"]["secret"]
    assert len(secret) == 64
    # A new URL keeps the secret; rotating replaces it.
    body = auth_api.put(URL, {"webhook_url": "https://hooks.example.com/v2"}, format="json").json()
    assert body["webhook"] == {"url": "https://hooks.example.com/v2", "secret": secret}
    body = auth_api.put(URL, {"rotate_webhook_secret": True}, format="json").json()
    assert body["webhook"]["secret"] != secret and len(body["webhook"]["secret"]) == 64
    assert auth_api.put(URL, {"webhook_url": ""}, format="json").json()["webhook"] is None
    assert not WebhookEndpoint.objects.filter(user=user).exists()


def test_a_bad_webhook_url_is_refused(auth_api, user):
    assert_error(
        auth_api.put(URL, {"webhook_url": "not a url"}, format="json"), 400, "validation_error", field="webhook_url"
    )
    # nothing to rotate: a 400 naming the field, and nothing of the request is stored
    events = {"order_filled": {"email": True}}
    response = auth_api.put(URL, {"events": events, "rotate_webhook_secret": True}, format="json")
    assert_error(response, 400, "validation_error", field="rotate_webhook_secret")
    assert auth_api.get(URL).json()["events"]["order_filled"]["email"] is False
    assert not WebhookEndpoint.objects.filter(user=user).exists()


def test_preferences_need_authentication(api):
    assert_error(api.get(URL), 401, "not_authenticated")
    assert_error(api.put(URL, {}, format="json"), 401, "not_authenticated")


def test_read_all_marks_only_mine(auth_api, user, other_user):
    for n in range(3):
        notification_create(user=user, kind="test", title=f"mine {n}")
    theirs = notification_create(user=other_user, kind="test", title="theirs")

    response = auth_api.post("/api/v1/notifications/read-all")

    assert response.status_code == 200
    assert response.json() == {"marked": 3}
    assert auth_api.get("/api/v1/notifications", {"unread": "1"}).json()["count"] == 0
    theirs.refresh_from_db()
    assert theirs.read_at is None
    assert auth_api.post("/api/v1/notifications/read-all").json() == {"marked": 0}


def test_the_list_leaves_out_kinds_switched_off_in_app(auth_api, user):
    auth_api.put(URL, {"events": {"order_filled": {"in_app": False}}}, format="json")
    notify(user=user, kind="order_filled", title="hidden", body="", dedupe_key="spot:1:filled")
    shown = notify(
        user=user, kind="order_cancelled", title="shown", body="", dedupe_key="spot:2:cancelled", data={"order_id": 2}
    )

    rows = auth_api.get("/api/v1/notifications").json()["results"]

    assert [row["id"] for row in rows] == [shown.pk]
    assert rows[0]["kind"] == "order_cancelled"
    assert rows[0]["data"] == {"order_id": 2}
