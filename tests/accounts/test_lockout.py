"""django-axes: repeated wrong passwords lock the (email, address) pair out of sign-in."""

import pytest
from axes.models import AccessAttempt
from rest_framework.test import APIClient

from tests.accounts.helpers import assert_error
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

TOKEN = "/api/v1/auth/token"


def issue(email, password):
    return APIClient().post(TOKEN, {"email": email, "password": password}, format="json")


def test_lockout_after_failure_limit_even_with_the_right_password(settings, user, password):
    limit = settings.AXES_FAILURE_LIMIT
    assert limit == 5

    for attempt in range(1, limit):
        assert_error(issue(user.email, f"wrong-password-{attempt}"), 401, "invalid_credentials")
    # The attempt that reaches the limit is refused either way.
    last = issue(user.email, "wrong-password-last")
    assert last.status_code in (401, 429)
    assert AccessAttempt.objects.filter(username=user.email).get().failures_since_start == limit

    assert_error(issue(user.email, password), 429, "rate_limited")
    assert_error(issue(user.email.upper(), password), 429, "rate_limited")


def test_failures_below_the_limit_do_not_lock_out(settings, user, password):
    for attempt in range(settings.AXES_FAILURE_LIMIT - 1):
        assert_error(issue(user.email, f"wrong-password-{attempt}"), 401, "invalid_credentials")

    assert issue(user.email, password).status_code == 200
    # A success resets the count (AXES_RESET_ON_SUCCESS).
    assert not AccessAttempt.objects.filter(username=user.email).exists()


def test_lockout_is_per_account(settings, user, password):
    other = UserFactory()
    for attempt in range(settings.AXES_FAILURE_LIMIT + 1):
        issue(user.email, f"wrong-password-{attempt}")

    assert_error(issue(user.email, password), 429, "rate_limited")
    assert issue(other.email, password).status_code == 200
