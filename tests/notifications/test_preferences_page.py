"""The preferences page: every kind with its switches, saved all or nothing."""

from __future__ import annotations

import pytest
from django.test import Client

from notifications import kinds
from notifications.models import NotificationPreference, WebhookEndpoint
from notifications.selectors import preferences_for

pytestmark = pytest.mark.django_db

URL = "/notifications/preferences/"


@pytest.fixture
def browser(user):
    client = Client()
    client.force_login(user)
    return client


def test_the_page_lists_every_kind_with_its_switches(browser):
    response = browser.get(URL)

    assert response.status_code == 200
    html = response.content.decode()
    for kind in kinds.KINDS:
        assert f'name="{kind}.email"' in html
    # Locked kinds are shown on and cannot be switched.
    assert 'name="security.email" aria-label="security by email"\n                   checked disabled' in html


def test_saving_stores_the_switches_and_the_webhook(browser, user):
    form = {f"{kind}.in_app": "on" for kind in kinds.KINDS}
    form["order_filled.email"] = "on"
    form["webhook_url"] = "https://hooks.example.com/m"

    response = browser.post(URL, form)

    assert response.status_code == 302
    prefs = preferences_for(user=user)
    assert prefs["order_filled"] == {"in_app": True, "email": True, "webhook": False}
    assert prefs["deposit_credited"] == {"in_app": True, "email": False, "webhook": False}
    assert prefs["security"] == {"in_app": True, "email": True, "webhook": True}  # not in the form, still on
    assert WebhookEndpoint.objects.get(user=user).url == "https://hooks.example.com/m"


def test_a_bad_webhook_url_saves_nothing(browser, user):
    response = browser.post(URL, {"order_filled.email": "on", "webhook_url": "ftp://example.com/x"})

    assert response.status_code == 200
    assert "Enter a valid http(s) URL." in response.content.decode()
    assert not NotificationPreference.objects.filter(user=user).exists()
    assert not WebhookEndpoint.objects.filter(user=user).exists()


def test_the_page_needs_a_sign_in(client):
    response = client.get(URL)
    assert response.status_code == 302 and "login" in response["Location"]
