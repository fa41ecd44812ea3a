"""Sensitive changes re-authenticate; a password reset does not bypass 2FA."""

import re

import pytest
from django.core import mail
from django.test import Client
from rest_framework.test import APIClient
from rest_framework_simplejwt.token_blacklist.models import OutstandingToken

from accounts.models import User
from notifications.models import Notification
from tests.accounts.helpers import assert_error, next_time_step, wrong_code
from tests.factories import UserFactory, enable_totp, totp_code

pytestmark = pytest.mark.django_db

TOKEN = "/api/v1/auth/token"
REFRESH = "/api/v1/auth/token/refresh"
PASSWORD = "/api/v1/auth/password"
EMAIL = "/api/v1/auth/email"
NEW_PASSWORD = "Another-long-secret-77"


def issue(email, password, otp=None):
    data = {"email": email, "password": password}
    if otp:
        data["otp"] = otp
    return APIClient().post(TOKEN, data, format="json")


def refresh(token):
    return APIClient().post(REFRESH, {"refresh": token}, format="json")


# --- password change -------------------------------------------------------------------------


def test_password_change_needs_the_current_password(auth_api, user, password):
    response = auth_api.post(
        PASSWORD, {"current_password": "wrong-password-1", "new_password": NEW_PASSWORD}, format="json"
    )

    assert_error(response, 401, "invalid_credentials", field="password")
    user.refresh_from_db()
    assert user.check_password(password)
    assert user.password_changed_at is None


def test_password_change_missing_fields_is_validation_error(auth_api):
    error = assert_error(auth_api.post(PASSWORD, {}, format="json"), 400, "validation_error")
    assert {"current_password", "new_password"} <= set(error["fields"])


def test_password_change_rejects_a_weak_new_password(auth_api, user, password):
    response = auth_api.post(PASSWORD, {"current_password": password, "new_password": "short"}, format="json")

    assert_error(response, 400, "validation_error", field="new_password")
    user.refresh_from_db()
    assert user.check_password(password)


def test_password_change_sets_password_and_revokes_refresh_tokens(auth_api, user, password):
    old_tokens = issue(user.email, password).json()

    response = auth_api.post(PASSWORD, {"current_password": password, "new_password": NEW_PASSWORD}, format="json")

    assert response.status_code == 204, response.content
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)
    assert user.password.startswith("argon2")
    assert user.password_changed_at is not None
    assert Notification.objects.filter(user=user, kind="password_changed").count() == 1
    assert_error(refresh(old_tokens["refresh"]), 401, "token_invalid")
    assert_error(issue(user.email, password), 401, "invalid_credentials")
    assert issue(user.email, NEW_PASSWORD).status_code == 200


def test_password_change_with_two_factor_needs_otp(auth_api, user, password):
    device = enable_totp(user)
    data = {"current_password": password, "new_password": NEW_PASSWORD}

    assert_error(auth_api.post(PASSWORD, data, format="json"), 401, "otp_required")
    assert_error(auth_api.post(PASSWORD, {**data, "otp": wrong_code(device)}, format="json"), 401, "otp_invalid")
    user.refresh_from_db()
    assert user.password_changed_at is None

    next_time_step(device)
    response = auth_api.post(PASSWORD, {**data, "otp": totp_code(device)}, format="json")

    assert response.status_code == 204, response.content
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)
    assert user.password_changed_at is not None
    # 2FA stays on.
    assert_error(issue(user.email, NEW_PASSWORD), 401, "otp_required")


def test_password_change_needs_authentication(api, db):
    assert_error(api.post(PASSWORD, {}, format="json"), 401, "not_authenticated")


# --- email change ---------------------------------------------------------------------------


def test_email_change_needs_the_password(auth_api, user):
    original = user.email
    response = auth_api.post(EMAIL, {"password": "wrong-password-1", "new_email": "fresh@example.com"}, format="json")

    assert_error(response, 401, "invalid_credentials", field="password")
    user.refresh_from_db()
    assert user.email == original


def test_email_change(auth_api, user, password):
    response = auth_api.post(EMAIL, {"password": password, "new_email": "Fresh@Example.com"}, format="json")

    assert response.status_code == 200, response.content
    assert response.json() == {"email": "fresh@example.com"}
    user.refresh_from_db()
    assert user.email == "fresh@example.com"
    assert issue("fresh@example.com", password).status_code == 200


def test_email_change_to_a_taken_email_is_validation_error(auth_api, user, password):
    other = UserFactory()
    original = user.email

    response = auth_api.post(EMAIL, {"password": password, "new_email": other.email}, format="json")

    assert_error(response, 400, "validation_error", field="new_email")
    user.refresh_from_db()
    assert user.email == original


def test_email_change_with_two_factor_needs_otp(auth_api, user, password):
    device = enable_totp(user)
    original = user.email

    assert_error(
        auth_api.post(EMAIL, {"password": password, "new_email": "fresh@example.com"}, format="json"),
        401,
        "otp_required",
    )
    user.refresh_from_db()
    assert user.email == original

    response = auth_api.post(
        EMAIL, {"password": password, "otp": totp_code(device), "new_email": "fresh@example.com"}, format="json"
    )
    assert response.status_code == 200, response.content
    assert User.objects.get(pk=user.pk).email == "fresh@example.com"


# --- password reset by email link ----------------------------------------------------------------


def _reset_link(email: str) -> str:
    client = Client()
    response = client.post("/password-reset/", {"email": email})
    assert response.status_code == 302, response.status_code
    assert response["Location"].endswith("/password-reset/sent/")
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == [email]
    match = re.search(r"https?://[^/\s]+(/password-reset/[^/\s]+/[^/\s]+/)", message.body)
    assert match, message.body
    return match.group(1)


def test_password_reset_does_not_bypass_two_factor(user, password):
    device = enable_totp(user)
    old_tokens = issue(user.email, password, otp=totp_code(device)).json()
    link = _reset_link(user.email)

    client = Client()
    response = client.get(link)
    assert response.status_code == 302  # the token moves into the session
    form_url = response["Location"]
    assert form_url.endswith("/set-password/")
    assert client.get(form_url).status_code == 200
    response = client.post(form_url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    assert response.status_code == 302, response.content[:2000]
    assert response["Location"] == "/login/"

    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)
    assert user.password_changed_at is not None
    assert Notification.objects.filter(user=user, kind="password_changed").exists()
    # 2FA is untouched: the new password alone does not sign in.
    assert user.otp_reset_at is None
    assert_error(issue(user.email, NEW_PASSWORD), 401, "otp_required")
    assert_error(refresh(old_tokens["refresh"]), 401, "token_invalid")
    next_time_step(device)
    assert issue(user.email, NEW_PASSWORD, otp=totp_code(device)).status_code == 200
    # Not signed in by the reset either.
    assert "_auth_user_id" not in client.session

    # The link is single-use.
    assert client.get(link).status_code == 200
    assert not client.get(link).context["validlink"]


def test_password_reset_rejects_a_weak_password(user, password):
    link = _reset_link(user.email)
    client = Client()
    form_url = client.get(link)["Location"]

    response = client.post(form_url, {"new_password1": "short", "new_password2": "short"})

    assert response.status_code == 200
    assert response.context["form"].errors
    user.refresh_from_db()
    assert user.check_password(password)
    assert user.password_changed_at is None


def test_password_reset_for_an_unknown_email_sends_nothing(db):
    response = Client().post("/password-reset/", {"email": "nobody@example.com"})

    assert response.status_code == 302
    assert len(mail.outbox) == 0
    assert OutstandingToken.objects.count() == 0


def test_the_account_page_asks_for_a_code_only_with_2fa_on(client, user, password):
    from tests.factories import enable_totp

    client.force_login(user)
    page = client.get("/account/").content.decode()
    assert 'name="password"' in page and 'name="new_password"' in page and 'name="new_email"' in page
    assert 'autocomplete="one-time-code"' not in page.split('id="api-keys-panel"')[0]
    # and the password change goes through without one
    response = client.post("/account/password/", {"password": password, "new_password": "Quartz-Meadow-Falcon-93"})
    assert response.status_code == 302, response.content.decode()[:2000]

    enable_totp(user)
    user.refresh_from_db()  # the new password's session hash
    client.force_login(user)
    page = client.get("/account/").content.decode()
    before_keys = page.split('id="api-keys-panel"')[0]
    assert before_keys.count('autocomplete="one-time-code"') == 2  # the password and the email form
