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


def test_the_demo_mailbox_shows_the_emails_sent(
    browser, user, settings, eager_tasks, django_capture_on_commit_callbacks
):
    from notifications.services import notify

    settings.DEMO_MODE = True
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    with django_capture_on_commit_callbacks(execute=True):
        notify(user=user, kind="deposit_credited", title="Deposit of 1 BTC", body="1 BTC credited.", dedupe_key="d:1")
        notify(user=user, kind="order_filled", title="Order filled", body="Not emailed.", dedupe_key="f:1")

    html = browser.get("/notifications/mailbox/").content.decode()

    assert "[Meridian Exchange] Deposit of 1 BTC" in html
    assert "1 BTC credited." in html
    assert "Order filled" not in html  # fills are not emailed by default
    assert "Mailbox" in browser.get("/notifications/").content.decode()


def test_the_mailbox_is_only_in_demo_mode(browser, settings):
    settings.DEMO_MODE = False
    assert browser.get("/notifications/mailbox/").status_code == 404
    assert "Mailbox" not in browser.get("/notifications/").content.decode()
