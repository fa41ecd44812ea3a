"""Account safety (API.md "Account safety"): the trader's sessions and devices (browser
sessions and API sign-ins) with revoke, the sign-in history, and the anti-phishing code
shown in every email."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import User, UserSession
from notifications.delivery import email_message
from notifications.services import notification_create
from tests.factories import DEFAULT_PASSWORD, UserFactory, enable_totp, totp_code
from trading.models import AuditRecord

from .helpers import assert_error, next_time_step
from .test_new_sign_in import CHROME, FIREFOX_LINUX, SAFARI_IPHONE

pytestmark = pytest.mark.django_db

SESSIONS = "/api/v1/sessions"


def browser(ip: str, agent: str) -> Client:
    return Client(REMOTE_ADDR=ip, HTTP_USER_AGENT=agent)


def browser_sign_in(user, ip="198.51.100.1", agent=CHROME) -> Client:
    client = browser(ip, agent)
    response = client.post("/login/", {"email": user.email, "password": DEFAULT_PASSWORD})
    assert response.status_code == 302, response.content[:500]
    return client


def token_sign_in(user, ip="203.0.113.9", agent="python-requests/2.31.0", otp=None) -> dict:
    body = {"email": user.email, "password": DEFAULT_PASSWORD, **({"otp": otp} if otp else {})}
    response = APIClient(REMOTE_ADDR=ip, HTTP_USER_AGENT=agent).post("/api/v1/auth/token", body, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def bearer(tokens: dict, ip="203.0.113.9") -> APIClient:
    client = APIClient(REMOTE_ADDR=ip)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
    return client


def test_sessions_list_every_browser_and_api_sign_in_with_its_device(user):
    laptop = browser_sign_in(user, "198.51.100.1", CHROME)
    browser_sign_in(user, "198.51.100.2", SAFARI_IPHONE)
    tokens = token_sign_in(user)

    listed = laptop.get(SESSIONS)
    assert listed.status_code == 200, listed.content
    sessions = listed.json()
    assert {(s["kind"], s["device"], s["ip"]) for s in sessions} == {
        ("browser", "Chrome on Windows", "198.51.100.1"),
        ("browser", "Safari on iOS", "198.51.100.2"),
        ("token", "python-requests", "203.0.113.9"),
    }
    assert [s["device"] for s in sessions if s["current"]] == ["Chrome on Windows"]
    # an API sign-in knows its own session through its token
    from_api = bearer(tokens).get(SESSIONS).json()
    assert [s["kind"] for s in from_api if s["current"]] == ["token"]
    # signing out ends the session: it is no longer listed
    laptop.post("/logout/")
    assert "Chrome on Windows" not in {s["device"] for s in bearer(tokens).get(SESSIONS).json()}


def test_revoking_a_browser_session_signs_it_out(user, other_user):
    laptop = browser_sign_in(user, "198.51.100.1", CHROME)
    phone = browser_sign_in(user, "198.51.100.2", SAFARI_IPHONE)
    assert phone.get("/account/").status_code == 200
    target = UserSession.objects.get(user=user, device="Safari on iOS")

    intruder = browser_sign_in(other_user, "192.0.2.5", FIREFOX_LINUX)
    assert_error(intruder.delete(f"{SESSIONS}/{target.pk}"), 404, "not_found")
    assert phone.get("/account/").status_code == 200  # untouched by the refusal

    assert laptop.delete(f"{SESSIONS}/{target.pk}").status_code == 204
    assert phone.get("/account/").status_code == 302  # back to the sign-in page
    assert laptop.get("/account/").status_code == 200
    assert laptop.delete(f"{SESSIONS}/{target.pk}").status_code == 204  # revoking again changes nothing
    assert AuditRecord.objects.filter(action="auth.session_revoked", actor=user).count() == 1
    assert_error(laptop.delete(f"{SESSIONS}/999999"), 404, "not_found")


def test_a_revoked_api_sign_in_cannot_refresh(user):
    tokens = token_sign_in(user)
    refreshed = APIClient().post("/api/v1/auth/token/refresh", {"refresh": tokens["refresh"]}, format="json")
    assert refreshed.status_code == 200
    tokens = refreshed.json()
    session = UserSession.objects.get(user=user, kind="token")
    assert session.token_jti  # follows the rotation
    laptop = browser_sign_in(user)
    assert laptop.delete(f"{SESSIONS}/{session.pk}").status_code == 204
    refused = APIClient().post("/api/v1/auth/token/refresh", {"refresh": tokens["refresh"]}, format="json")
    assert_error(refused, 401, "token_invalid")
    assert [s["kind"] for s in laptop.get(SESSIONS).json()] == ["browser"]


def test_revoke_others_keeps_only_the_current_session(user):
    laptop = browser_sign_in(user, "198.51.100.1", CHROME)
    phone = browser_sign_in(user, "198.51.100.2", SAFARI_IPHONE)
    tokens = token_sign_in(user)
    response = laptop.post(f"{SESSIONS}/revoke-others")
    assert response.status_code == 200 and response.json() == {"revoked": 2}
    assert phone.get("/account/").status_code == 302
    assert_error(
        APIClient().post("/api/v1/auth/token/refresh", {"refresh": tokens["refresh"]}, format="json"),
        401,
        "token_invalid",
    )
    assert [s["current"] for s in laptop.get(SESSIONS).json()] == [True]


def test_last_seen_follows_the_session_at_most_once_a_minute(user):
    laptop = browser_sign_in(user)
    session = UserSession.objects.get(user=user)
    UserSession.objects.filter(pk=session.pk).update(last_seen_at=timezone.now() - timedelta(hours=2))
    from django.core.cache import cache

    cache.delete(f"session-seen:{laptop.session.session_key}")
    laptop.get("/account/")
    session.refresh_from_db()
    assert timezone.now() - session.last_seen_at < timedelta(seconds=30)


def test_session_endpoints_need_a_signed_in_trader(api):
    assert_error(api.get(SESSIONS), 401, "not_authenticated")
    assert_error(api.get("/api/v1/login-history"), 401, "not_authenticated")
    assert_error(api.post(f"{SESSIONS}/revoke-others"), 401, "not_authenticated")


def test_login_history_lists_sign_ins_with_ip_device_and_method(user):
    browser_sign_in(user, "198.51.100.1", CHROME)
    token_sign_in(user, "203.0.113.9", "curl/8.5.0")
    device = enable_totp(user)
    client = browser("198.51.100.7", FIREFOX_LINUX)
    client.post("/login/", {"email": user.email, "password": DEFAULT_PASSWORD})
    next_time_step(device)
    assert client.post("/login/otp/", {"otp": totp_code(device)}).status_code == 302
    # a failed sign-in is not a sign-in
    browser("192.0.2.1", CHROME).post("/login/", {"email": user.email, "password": "wrong-password-1"})

    history = client.get("/api/v1/login-history")
    assert history.status_code == 200, history.content
    rows = history.json()
    assert [(r["ip"], r["device"], r["method"]) for r in rows] == [
        ("198.51.100.7", "Firefox on Linux", "2fa"),
        ("203.0.113.9", "curl", "token"),
        ("198.51.100.1", "Chrome on Windows", "password"),
    ]
    assert rows[0]["method_label"] == "Password and 2FA code" and rows[0]["at"].endswith("Z")
    assert [r["ip"] for r in client.get("/api/v1/login-history?limit=1").json()] == ["198.51.100.7"]
    assert_error(client.get("/api/v1/login-history?limit=0"), 400, "validation_error", field="limit")
    assert_error(client.get("/api/v1/login-history?limit=x"), 400, "validation_error", field="limit")
    # another trader sees only their own
    other = UserFactory()
    assert browser_sign_in(other).get("/api/v1/login-history").json()[0]["ip"] == "198.51.100.1"
    assert len(browser_sign_in(other).get("/api/v1/login-history").json()) == 2


def test_the_anti_phishing_code_opens_every_email(user, django_capture_on_commit_callbacks, eager_tasks):
    client = APIClient()
    client.force_authenticate(user)
    assert client.get("/api/v1/anti-phishing-code").json() == {"code": ""}
    assert_error(client.put("/api/v1/anti-phishing-code", {"code": "ab"}, format="json"), 400, "validation_error")
    assert_error(client.put("/api/v1/anti-phishing-code", {"code": "<script>"}, format="json"), 400, "validation_error")
    response = client.put("/api/v1/anti-phishing-code", {"code": "blue-harbor-42"}, format="json")
    assert response.status_code == 200 and response.json() == {"code": "blue-harbor-42"}
    user.refresh_from_db()

    notification = notification_create(user=user, kind="test", title="Hello", body="The body.")
    message = email_message(notification)
    assert message.body.splitlines()[0] == "Anti-phishing code: blue-harbor-42"

    # the password reset email too
    mail.outbox.clear()
    Client().post("/password-reset/", {"email": user.email})
    assert mail.outbox and mail.outbox[-1].body.startswith("Anti-phishing code: blue-harbor-42")

    # cleared: emails open with the message itself
    client.put("/api/v1/anti-phishing-code", {"code": ""}, format="json")
    user.refresh_from_db()
    assert email_message(notification_create(user=user, kind="test", title="A", body="B")).body.startswith("B")


def test_with_2fa_on_changing_the_code_needs_a_fresh_code(user):
    device = enable_totp(user)
    client = APIClient()
    client.force_authenticate(user)
    assert_error(client.put("/api/v1/anti-phishing-code", {"code": "sea-lion"}, format="json"), 401, "otp_required")
    next_time_step(device)
    response = client.put("/api/v1/anti-phishing-code", {"code": "sea-lion", "otp": totp_code(device)}, format="json")
    assert response.status_code == 200
    assert User.objects.get(pk=user.pk).anti_phishing_code == "sea-lion"


def test_the_account_page_shows_sessions_history_and_the_code_form(user):
    laptop = browser_sign_in(user, "198.51.100.1", CHROME)
    browser_sign_in(user, "198.51.100.2", SAFARI_IPHONE)
    page = laptop.get("/account/").content.decode()
    assert 'id="sessions"' in page and "Safari on iOS" in page and "This session" in page
    assert 'id="sign-ins"' in page and "198.51.100.2" in page
    bad = laptop.post("/account/anti-phishing/", {"code": "x"})
    assert bad.status_code == 400 and "4 to 20" in bad.content.decode()
    assert laptop.post("/account/anti-phishing/", {"code": "my-code-7"}).status_code == 302
    assert User.objects.get(pk=user.pk).anti_phishing_code == "my-code-7"
    phone_session = UserSession.objects.get(user=user, device="Safari on iOS")
    assert laptop.post(f"/account/sessions/{phone_session.pk}/revoke/").status_code == 302
    assert (
        "Safari on iOS" not in laptop.get("/account/").content.decode().split('id="sessions"')[1].split("</table>")[0]
    )


def test_a_password_change_keeps_this_session_listed_and_drops_the_others(user):
    laptop = browser_sign_in(user, "198.51.100.1", CHROME)
    phone = browser_sign_in(user, "198.51.100.2", SAFARI_IPHONE)
    response = laptop.post(
        "/account/password/",
        {
            "password": DEFAULT_PASSWORD,
            "new_password": "another-Long-pw-2",
            "new_password_confirm": "another-Long-pw-2",
        },
    )
    assert response.status_code == 302, response.content[:2000]
    sessions = laptop.get(SESSIONS).json()  # the laptop's session has a new key now, and is recorded under it
    assert [(s["device"], s["current"]) for s in sessions] == [("Chrome on Windows", True)]
    assert phone.get("/account/").status_code == 302  # signed out by the password change


def test_a_session_from_before_sessions_were_recorded_is_recorded_at_its_next_request(user):
    laptop = browser_sign_in(user)
    UserSession.objects.filter(user=user).delete()
    from django.core.cache import cache

    cache.delete(f"session-seen:{laptop.session.session_key}")
    sessions = laptop.get(SESSIONS).json()
    assert [(s["device"], s["current"]) for s in sessions] == [("Chrome on Windows", True)]
