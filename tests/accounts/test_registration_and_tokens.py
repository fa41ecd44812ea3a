"""Registration, JWT issue and refresh rotation (API.md › Accounts)."""

import pytest
from rest_framework.test import APIClient
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from accounts.models import KycProfile, KycStatus, User
from tests.accounts.helpers import assert_error
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

REGISTER = "/api/v1/auth/register"
TOKEN = "/api/v1/auth/token"
REFRESH = "/api/v1/auth/token/refresh"
ME = "/api/v1/me"
STRONG = "Plenty-of-entropy-42"


def issue(api, email, password, **extra):
    return api.post(TOKEN, {"email": email, "password": password, **extra}, format="json")


# --- registration --------------------------------------------------------------------------


def test_register_creates_user_with_argon2_hash_and_kyc_profile(api, production_password_hashers):
    assert production_password_hashers[0] == "django.contrib.auth.hashers.Argon2PasswordHasher"
    response = api.post(REGISTER, {"email": "New.Trader@Example.com", "password": STRONG}, format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == {"id", "email"}
    assert body["email"] == "new.trader@example.com"
    user = User.objects.get(pk=body["id"])
    assert user.email == "new.trader@example.com"
    assert user.password.startswith("argon2$argon2id$")
    assert STRONG not in user.password
    assert user.check_password(STRONG)
    assert not user.is_staff and not user.is_superuser
    assert KycProfile.objects.get(user=user).status == KycStatus.NONE


@pytest.mark.parametrize("weak", ["short1!", "password123", "1234567890123", "newtrader@example"])
def test_register_weak_password_is_validation_error(api, weak):
    response = api.post(REGISTER, {"email": "newtrader@example.com", "password": weak}, format="json")

    assert_error(response, 400, "validation_error", field="password")
    assert not User.objects.filter(email="newtrader@example.com").exists()


def test_register_duplicate_email_is_validation_error(api, user):
    response = api.post(REGISTER, {"email": user.email.upper(), "password": STRONG}, format="json")

    error = assert_error(response, 400, "validation_error", field="email")
    assert "password" not in error["fields"]
    assert User.objects.filter(email__iexact=user.email).count() == 1


def test_register_malformed_json_is_400_not_500(api):
    response = api.post(REGISTER, data='{"email": "a@example.com", "password": ', content_type="application/json")

    assert_error(response, 400, "parse_error")
    assert User.objects.count() == 0


@pytest.mark.parametrize("body", ["[1, 2]", '"text"', "null", "42"])
@pytest.mark.parametrize("url", [REGISTER, TOKEN, REFRESH])
def test_non_object_json_bodies_are_validation_errors(api, db, url, body):
    response = api.post(url, data=body, content_type="application/json")

    assert_error(response, 400, "validation_error", field="non_field_errors")


def test_register_missing_fields_is_validation_error(api):
    response = api.post(REGISTER, {}, format="json")

    error = assert_error(response, 400, "validation_error")
    assert set(error["fields"]) == {"email", "password"}


def test_register_invalid_email_is_validation_error(api):
    response = api.post(REGISTER, {"email": "not-an-email", "password": STRONG}, format="json")

    assert_error(response, 400, "validation_error", field="email")


# --- token issue ------------------------------------------------------------------------------


def test_token_issue_with_email_and_password(api, user, password):
    response = issue(api, user.email.upper(), password)

    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"access", "refresh"}
    assert OutstandingToken.objects.filter(user=user).count() == 1
    user.refresh_from_db()
    assert user.last_login is not None


def test_token_wrong_password_is_invalid_credentials(api, user):
    response = issue(api, user.email, "not-the-password-1")

    assert_error(response, 401, "invalid_credentials")
    assert not OutstandingToken.objects.filter(user=user).exists()


def test_token_unknown_email_is_invalid_credentials(api):
    response = issue(api, "nobody@example.com", "whatever-password-1")

    assert_error(response, 401, "invalid_credentials")


def test_token_missing_password_is_validation_error(api, user):
    response = api.post(TOKEN, {"email": user.email}, format="json")

    assert_error(response, 400, "validation_error", field="password")


def test_access_token_works_on_me(api, user, password):
    tokens = issue(api, user.email, password).json()

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
    response = client.get(ME)

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["id"] == user.pk
    assert body["email"] == user.email
    assert body["two_factor_enabled"] is False
    assert body["kyc_status"] == "none"
    assert body["kyc_tier"] == 0


def test_refresh_token_is_not_an_access_token(api, user, password):
    tokens = issue(api, user.email, password).json()

    api.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['refresh']}")
    assert_error(api.get(ME), 401, "token_invalid")


@pytest.mark.parametrize("header", ["Bearer garbage.not.ajwt", "Bearer ", "Bearer a b", "Token abc"])
def test_garbage_bearer_token_is_401_in_error_format(api, db, header):
    api.credentials(HTTP_AUTHORIZATION=header)
    response = api.get(ME)

    assert response.status_code == 401, response.content
    error = assert_error(response, 401, response.json()["error"]["code"])
    assert error["code"] in {"token_invalid", "authentication_failed", "not_authenticated"}


def test_garbage_jwt_is_token_invalid(api, db):
    api.credentials(HTTP_AUTHORIZATION="Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl")

    assert_error(api.get(ME), 401, "token_invalid")


# --- refresh rotation ---------------------------------------------------------------------------


def test_refresh_rotates_and_old_refresh_token_stops_working(api, user, password):
    first = issue(api, user.email, password).json()

    response = api.post(REFRESH, {"refresh": first["refresh"]}, format="json")

    assert response.status_code == 200, response.content
    second = response.json()
    assert set(second) == {"access", "refresh"}
    assert second["refresh"] != first["refresh"]
    assert second["access"] != first["access"]
    assert BlacklistedToken.objects.filter(token__user=user).count() == 1

    # The new access token works.
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {second['access']}")
    assert client.get(ME).status_code == 200

    # The old refresh token is spent.
    assert_error(api.post(REFRESH, {"refresh": first["refresh"]}, format="json"), 401, "token_invalid")

    # The new refresh token rotates again, once.
    third = api.post(REFRESH, {"refresh": second["refresh"]}, format="json")
    assert third.status_code == 200, third.content
    assert_error(api.post(REFRESH, {"refresh": second["refresh"]}, format="json"), 401, "token_invalid")


def test_refresh_with_garbage_is_token_invalid(api, db):
    assert_error(api.post(REFRESH, {"refresh": "garbage"}, format="json"), 401, "token_invalid")


def test_refresh_with_an_access_token_is_token_invalid(api, user, password):
    tokens = issue(api, user.email, password).json()

    assert_error(api.post(REFRESH, {"refresh": tokens["access"]}, format="json"), 401, "token_invalid")


def test_refresh_missing_field_is_validation_error(api, db):
    assert_error(api.post(REFRESH, {}, format="json"), 400, "validation_error", field="refresh")


def test_inactive_user_cannot_get_tokens(api, password):
    user = UserFactory(is_active=False)

    assert_error(issue(api, user.email, password), 401, "invalid_credentials")
