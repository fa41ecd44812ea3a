"""Display settings (issue 18 "Settings: light and dark theme, timezone"): GET/PUT
/api/v1/me/settings, the settings page, and every page drawn with the trader's theme and
time zone while the API stays in UTC."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from django.test import Client
from rest_framework.test import APIClient

from accounts.models import User
from tests.factories import UserFactory
from trading.formatting import display_datetime

from .helpers import assert_error

pytestmark = pytest.mark.django_db
URL = "/api/v1/me/settings"


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_defaults_then_a_change_of_zone_and_theme():
    user = UserFactory()
    client = api(user)
    assert client.get(URL).json() == {"timezone": "UTC", "theme": "dark"}

    response = client.put(URL, {"timezone": "Europe/Paris", "theme": "light"}, format="json")
    assert response.status_code == 200 and response.json() == {"timezone": "Europe/Paris", "theme": "light"}
    user.refresh_from_db()
    assert (user.time_zone, user.theme) == ("Europe/Paris", "light")
    # one field alone leaves the other
    assert client.put(URL, {"theme": "dark"}, format="json").json() == {"timezone": "Europe/Paris", "theme": "dark"}


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "", "../../etc/passwd", "Europe/", "utc+1", 5])
def test_a_zone_zoneinfo_does_not_know_is_a_400(zone):
    user = UserFactory()
    assert_error(api(user).put(URL, {"timezone": zone}, format="json"), 400, "validation_error", field="timezone")
    user.refresh_from_db()
    assert user.time_zone == "UTC"


def test_a_theme_that_is_not_offered_is_a_400():
    user = UserFactory()
    assert_error(api(user).put(URL, {"theme": "neon"}, format="json"), 400, "validation_error", field="theme")


def test_signed_out_is_refused():
    assert APIClient().get(URL).status_code == 401


def test_pages_use_the_theme_and_zone_the_api_stays_in_utc():
    user = UserFactory()
    browser = Client()
    browser.force_login(user)
    html = browser.get("/account/").content.decode()
    assert '<html lang="en" data-theme="dark" data-timezone="UTC">' in html

    response = browser.post("/account/settings/", {"timezone": "America/New_York", "theme": "light"})
    assert response.status_code == 302
    html = browser.get("/wallet/").content.decode()
    assert 'data-theme="light" data-timezone="America/New_York"' in html
    assert '<meta name="color-scheme" content="light">' in html
    # the account page's member-since date is in the zone's day, in the one format
    joined = display_datetime(User.objects.get(pk=user.pk).date_joined, ZoneInfo("America/New_York"))
    member_since = re.search(r"Member since</dt>\s*<dd>([^<]+)</dd>", html_of(browser)).group(1)
    assert member_since.split() == joined.split()[:3]
    # the API answers in UTC whatever the page zone
    assert api(user).get("/api/v1/me").json()["date_joined"].endswith("Z")

    bad = browser.post("/account/settings/", {"timezone": "Nowhere/City", "theme": "light"})
    assert bad.status_code == 400
    assert User.objects.get(pk=user.pk).time_zone == "America/New_York"


def html_of(browser) -> str:
    return browser.get("/account/").content.decode()


def test_the_display_helpers_name_the_zone():
    moment = datetime(2026, 12, 6, 8, 3, 5, tzinfo=UTC)
    assert display_datetime(moment, ZoneInfo("UTC")) == "06 Dec 2026 08:03:05 UTC"
    assert display_datetime(moment, ZoneInfo("Asia/Kathmandu")) == "06 Dec 2026 13:48:05 UTC+5:45"
    assert display_datetime(moment, ZoneInfo("America/Sao_Paulo")) == "06 Dec 2026 05:03:05 UTC-3"


def test_the_api_and_the_staff_console_keep_utc():
    from django.test import RequestFactory
    from django.utils import timezone

    from accounts.middleware import DisplayTimeZoneMiddleware

    user = UserFactory(time_zone="Asia/Tokyo")
    middleware = DisplayTimeZoneMiddleware(lambda request: timezone.get_current_timezone_name())
    for path, zone in (("/wallet/", "Asia/Tokyo"), ("/api/v1/ledger", "UTC"), ("/admin/compliance/", "UTC")):
        request = RequestFactory().get(path)
        request.user = user
        assert middleware(request) == zone, path
    assert timezone.get_current_timezone_name() == "UTC"  # nothing leaks past the request
