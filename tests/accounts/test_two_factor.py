"""TOTP 2FA: setup, confirm, sign-in with a code, single use, replacement, disable, throttling."""

import threading
from collections import Counter

import pytest
from django.db import connection
from django_otp.plugins.otp_totp.models import TOTPDevice
from rest_framework.test import APIClient
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from notifications.models import Notification
from tests.accounts.helpers import assert_error, next_time_step, wrong_code
from tests.factories import enable_totp, totp_code

pytestmark = pytest.mark.django_db

TOKEN = "/api/v1/auth/token"
REFRESH = "/api/v1/auth/token/refresh"
SETUP = "/api/v1/auth/2fa/setup"
CONFIRM = "/api/v1/auth/2fa/confirm"
DISABLE = "/api/v1/auth/2fa/disable"
ME = "/api/v1/me"


@pytest.fixture
def slow_otp_throttle(settings):
    """django-otp waits factor * 2**(failures-1) seconds after a wrong code; with the default
    factor of 1 the wait could expire between two requests on a slow machine."""
    settings.OTP_TOTP_THROTTLE_FACTOR = 60


def issue(email, password, otp=None):
    data = {"email": email, "password": password}
    if otp is not None:
        data["otp"] = otp
    return APIClient().post(TOKEN, data, format="json")


# --- setup and confirm ---------------------------------------------------------------------


def test_setup_returns_otpauth_url_and_svg_and_creates_an_inactive_device(auth_api, user):
    response = auth_api.post(SETUP, {}, format="json")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["otpauth_url"].startswith("otpauth://totp/")
    assert "secret=" in body["otpauth_url"]
    assert "<svg" in body["qr_svg"]
    device = TOTPDevice.objects.get(user=user)
    assert device.confirmed is False
    assert body["secret"] and body["secret"] in body["otpauth_url"]

    me = auth_api.get(ME).json()
    assert me["two_factor_enabled"] is False  # not active until confirmed


def test_setup_twice_keeps_one_pending_device(auth_api, user):
    first = auth_api.post(SETUP, {}, format="json").json()
    second = auth_api.post(SETUP, {}, format="json").json()

    assert first["secret"] != second["secret"]
    assert TOTPDevice.objects.filter(user=user, confirmed=False).count() == 1


def test_confirm_activates_two_factor(auth_api, user):
    auth_api.post(SETUP, {}, format="json")
    device = TOTPDevice.objects.get(user=user, confirmed=False)

    response = auth_api.post(CONFIRM, {"otp": totp_code(device)}, format="json")

    assert response.status_code == 200, response.content
    assert response.json() == {"two_factor_enabled": True}
    device.refresh_from_db()
    assert device.confirmed is True
    assert auth_api.get(ME).json()["two_factor_enabled"] is True
    assert Notification.objects.filter(user=user, kind="2fa_enabled").count() == 1
    user.refresh_from_db()
    assert user.otp_reset_at is None  # a first activation is not a reset


def test_confirm_with_a_wrong_code_keeps_it_inactive(auth_api, user, slow_otp_throttle):
    auth_api.post(SETUP, {}, format="json")
    device = TOTPDevice.objects.get(user=user, confirmed=False)

    assert_error(auth_api.post(CONFIRM, {"otp": wrong_code(device)}, format="json"), 401, "otp_invalid", field="otp")
    assert_error(auth_api.post(CONFIRM, {"otp": "abcdef"}, format="json"), 429, "rate_limited")

    device.refresh_from_db()
    assert device.confirmed is False
    assert auth_api.get(ME).json()["two_factor_enabled"] is False


def test_confirm_without_setup(auth_api):
    assert_error(auth_api.post(CONFIRM, {"otp": "123456"}, format="json"), 400, "otp_setup_required")


def test_confirm_missing_otp_is_validation_error(auth_api):
    assert_error(auth_api.post(CONFIRM, {}, format="json"), 400, "validation_error", field="otp")


def test_two_factor_endpoints_need_authentication(api, db):
    for url in (SETUP, CONFIRM, DISABLE):
        assert_error(api.post(url, {}, format="json"), 401, "not_authenticated")


# --- sign-in with 2FA on --------------------------------------------------------------------


def test_token_needs_otp_once_two_factor_is_on(user, password):
    device = enable_totp(user)

    assert_error(issue(user.email, password), 401, "otp_required")
    assert_error(issue(user.email, password, otp=""), 401, "otp_required")
    assert not OutstandingToken.objects.filter(user=user).exists()

    response = issue(user.email, password, otp=totp_code(device))
    assert response.status_code == 200, response.content
    assert set(response.json()) == {"access", "refresh"}


def test_token_with_a_wrong_otp_is_otp_invalid(user, password):
    device = enable_totp(user)

    error = assert_error(issue(user.email, password, otp=wrong_code(device)), 401, "otp_invalid", field="otp")
    assert error["fields"]["otp"] == ["Invalid or already used code."]  # a wrong code is not "used"
    assert not OutstandingToken.objects.filter(user=user).exists()

    next_time_step(device)
    assert issue(user.email, password, otp=totp_code(device)).status_code == 200


def test_wrong_password_with_right_otp_is_invalid_credentials(user, password):
    device = enable_totp(user)

    assert_error(issue(user.email, "not-the-password-1", otp=totp_code(device)), 401, "invalid_credentials")


def test_a_code_cannot_be_used_twice(user, password):
    device = enable_totp(user)
    code = totp_code(device)

    assert issue(user.email, password, otp=code).status_code == 200
    error = assert_error(issue(user.email, password, otp=code), 401, "otp_invalid")
    assert OutstandingToken.objects.filter(user=user).count() == 1
    # the trader is told to wait for the next code, not that the code is wrong
    assert "already used" in error["message"] and "next one" in error["message"]
    assert error["fields"]["otp"] == ["Already used: wait for the next code."]


def test_the_confirm_code_cannot_be_reused_to_sign_in(auth_api, user, password):
    auth_api.post(SETUP, {}, format="json")
    device = TOTPDevice.objects.get(user=user, confirmed=False)
    code = totp_code(device)
    assert auth_api.post(CONFIRM, {"otp": code}, format="json").status_code == 200

    # turning 2FA on and using the same code at once (a withdrawal, a sign-in) says to wait
    error = assert_error(issue(user.email, password, otp=code), 401, "otp_invalid")
    assert error["fields"]["otp"] == ["Already used: wait for the next code."]


def test_wrong_codes_are_throttled(user, password, slow_otp_throttle):
    device = enable_totp(user)
    bad = wrong_code(device)

    codes = [issue(user.email, password, otp=bad).json()["error"]["code"] for _ in range(4)]

    assert codes == ["otp_invalid", "rate_limited", "rate_limited", "rate_limited"]
    response = issue(user.email, password, otp=totp_code(device))  # even the right code waits
    assert_error(response, 429, "rate_limited")
    device.refresh_from_db()
    assert device.throttling_failure_count >= 1
    assert not OutstandingToken.objects.filter(user=user).exists()


def test_non_numeric_otp_counts_as_a_failure(user, password):
    device = enable_totp(user)

    assert_error(issue(user.email, password, otp="12ab56"), 401, "otp_invalid")
    device.refresh_from_db()
    assert device.throttling_failure_count == 1


# --- replacing and disabling ---------------------------------------------------------------


def test_replacing_an_active_device_needs_password_and_otp(auth_api, user, password):
    old = enable_totp(user)

    assert_error(auth_api.post(SETUP, {}, format="json"), 401, "invalid_credentials", field="password")
    assert_error(auth_api.post(SETUP, {"password": "wrong-password-1"}, format="json"), 401, "invalid_credentials")
    assert_error(auth_api.post(SETUP, {"password": password}, format="json"), 401, "otp_required")
    assert_error(
        auth_api.post(SETUP, {"password": password, "otp": wrong_code(old)}, format="json"), 401, "otp_invalid"
    )
    assert TOTPDevice.objects.filter(user=user).count() == 1
    next_time_step(old)

    response = auth_api.post(SETUP, {"password": password, "otp": totp_code(old)}, format="json")
    assert response.status_code == 200, response.content
    new = TOTPDevice.objects.get(user=user, confirmed=False)
    # Until the new device is confirmed, the old one stays active.
    assert TOTPDevice.objects.filter(pk=old.pk, confirmed=True).exists()

    assert auth_api.post(CONFIRM, {"otp": totp_code(new)}, format="json").status_code == 200
    assert list(TOTPDevice.objects.filter(user=user).values_list("pk", flat=True)) == [new.pk]
    user.refresh_from_db()
    assert user.otp_reset_at is not None
    assert Notification.objects.filter(user=user, kind="2fa_replaced").exists()

    # The old device's codes no longer sign in; the new one's do.
    assert_error(issue(user.email, password, otp=totp_code(old, offset_steps=1)), 401, "otp_invalid")
    next_time_step(new)
    assert issue(user.email, password, otp=totp_code(new)).status_code == 200


def test_disable_needs_reauthentication_and_sets_otp_reset_at(auth_api, user, password):
    device = enable_totp(user)
    tokens = issue(user.email, password, otp=totp_code(device)).json()
    next_time_step(device)

    assert_error(auth_api.post(DISABLE, {}, format="json"), 400, "validation_error", field="password")
    assert_error(
        auth_api.post(DISABLE, {"password": "wrong-password-1", "otp": totp_code(device)}, format="json"),
        401,
        "invalid_credentials",
    )
    assert_error(auth_api.post(DISABLE, {"password": password}, format="json"), 401, "otp_required")
    assert TOTPDevice.objects.filter(user=user, confirmed=True).exists()
    user.refresh_from_db()
    assert user.otp_reset_at is None

    response = auth_api.post(DISABLE, {"password": password, "otp": totp_code(device)}, format="json")

    assert response.status_code == 200, response.content
    assert response.json() == {"two_factor_enabled": False}
    assert not TOTPDevice.objects.filter(user=user).exists()
    user.refresh_from_db()
    assert user.otp_reset_at is not None
    assert auth_api.get(ME).json()["two_factor_enabled"] is False
    assert Notification.objects.filter(user=user, kind="2fa_disabled").exists()
    # Refresh tokens issued before are revoked; signing in no longer needs a code.
    assert BlacklistedToken.objects.filter(token__user=user).exists()
    assert_error(APIClient().post(REFRESH, {"refresh": tokens["refresh"]}, format="json"), 401, "token_invalid")
    assert issue(user.email, password).status_code == 200


# --- concurrency: one code, twenty simultaneous sign-ins --------------------------------------


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_one_code_signs_in_exactly_once_under_concurrency(user, password):
    device = enable_totp(user)
    code = totp_code(device)
    threads_count = 20
    barrier = threading.Barrier(threads_count)
    results: list = []
    lock = threading.Lock()

    def attempt():
        try:
            client = APIClient()
            barrier.wait(timeout=30)
            response = client.post(TOKEN, {"email": user.email, "password": password, "otp": code}, format="json")
            body = response.json()
            outcome = "ok" if response.status_code == 200 else body["error"]["code"]
            with lock:
                results.append((response.status_code, outcome))
        except Exception as exc:  # recorded, so a crash in a thread fails the test
            with lock:
                results.append((None, repr(exc)))
        finally:
            connection.close()

    threads = [threading.Thread(target=attempt) for _ in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert len(results) == threads_count, results
    outcomes = Counter(outcome for _, outcome in results)
    assert outcomes["ok"] == 1, outcomes
    assert outcomes["otp_invalid"] + outcomes["rate_limited"] == threads_count - 1, outcomes
    statuses = Counter(status for status, _ in results)
    assert statuses[200] == 1 and statuses[401] + statuses[429] == threads_count - 1, statuses
    assert OutstandingToken.objects.filter(user=user).count() == 1
