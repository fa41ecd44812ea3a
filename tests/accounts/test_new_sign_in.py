"""A sign-in from a device and address the account never signed in from is told: a ``security``
notification (in-app and by email, which cannot be switched off), once per sign-in, through
every way in: the browser's password form, its 2FA step, the API's token. The first sign-in,
right after signing up, and sign-ins from a known device say nothing."""

from __future__ import annotations

import pytest
from django.test import Client
from rest_framework.test import APIClient

from accounts import devices, signals
from accounts.models import User
from notifications.models import Delivery, Notification
from tests.factories import DEFAULT_PASSWORD, enable_totp, totp_code
from trading.models import AuditRecord

pytestmark = pytest.mark.django_db

CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
)
CHROME_NEXT = CHROME.replace("Chrome/120", "Chrome/121")
SAFARI_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.1 Mobile/15E148 Safari/604.1"
)
FIREFOX_LINUX = "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0"


def notices(user) -> list[Notification]:
    return list(Notification.objects.filter(user=user, kind="new_sign_in").order_by("id"))


def browser(ip: str, agent: str) -> Client:
    return Client(REMOTE_ADDR=ip, HTTP_USER_AGENT=agent)


def sign_up(client: Client, email: str) -> User:
    response = client.post(
        "/signup/", {"email": email, "password": DEFAULT_PASSWORD, "password_confirm": DEFAULT_PASSWORD}
    )
    assert response.status_code == 302, response.content[:1000]
    return User.objects.get(email=email)


def sign_in(client: Client, email: str):
    response = client.post("/login/", {"email": email, "password": DEFAULT_PASSWORD})
    assert response.status_code == 302, response.content[:1000]
    return response


@pytest.mark.parametrize(
    "agent, device, described",
    [
        (CHROME, "Chrome on Windows", "Chrome 120 on Windows"),
        (SAFARI_IPHONE, "Safari on iOS", "Safari 17 on iOS"),
        (FIREFOX_LINUX, "Firefox on Linux", "Firefox 121 on Linux"),
        ("curl/8.5.0", "curl", "curl"),
        ("python-requests/2.31.0", "python-requests", "python-requests"),
        ("", "", "unknown device"),
    ],
)
def test_devices_are_named_without_versions(agent, device, described):
    assert devices.device_of(agent) == device
    assert devices.describe(agent) == described
    assert devices.device_of(CHROME_NEXT) == devices.device_of(CHROME)  # an update is the same device


def test_signing_up_then_in_from_the_same_browser_says_nothing():
    home = browser("198.51.100.10", CHROME)
    user = sign_up(home, "ada@example.com")
    home.logout()
    sign_in(home, user.email)
    sign_in(browser("198.51.100.10", CHROME_NEXT), user.email)  # the browser updated
    assert notices(user) == []
    logins = AuditRecord.objects.filter(action="auth.login", target_id=str(user.pk))
    assert logins.count() == 3
    assert logins.order_by("seq").first().data == {
        "path": "/signup/",
        "method": "password",
        "user_agent": CHROME,
        "device": "Chrome on Windows",
    }


def test_a_new_device_or_address_is_told_once_each():
    home = browser("198.51.100.10", CHROME)
    user = sign_up(home, "grace@example.com")
    sign_in(browser("203.0.113.7", SAFARI_IPHONE), user.email)
    (notice,) = notices(user)
    login = AuditRecord.objects.filter(action="auth.login", target_id=str(user.pk)).order_by("-seq").first()
    assert notice.title == "New sign-in to your account"
    assert notice.dedupe_key == f"sign_in:{login.seq}"
    assert notice.body.startswith(f"Signed in from 203.0.113.7 on Safari 17 on iOS, {login.at:%Y-%m-%d %H:%M} UTC.")
    assert notice.data["ip"] == "203.0.113.7" and notice.data["device"] == "Safari 17 on iOS"
    assert notice.data["user_agent"] == SAFARI_IPHONE and notice.data["login_id"] == login.seq
    # security: by email too, whatever the preferences
    assert Delivery.objects.filter(notification=notice, channel="email").count() == 1

    sign_in(browser("203.0.113.7", SAFARI_IPHONE), user.email)  # now a known device there
    assert len(notices(user)) == 1
    sign_in(browser("192.0.2.99", CHROME), user.email)  # a known browser from a new address
    assert len(notices(user)) == 2
    assert notices(user)[-1].data["ip"] == "192.0.2.99"


def test_with_2fa_the_sign_in_is_told_after_the_code_not_the_password():
    home = browser("198.51.100.10", CHROME)
    user = sign_up(home, "linus@example.com")
    device = enable_totp(user)
    away = browser("203.0.113.50", FIREFOX_LINUX)
    response = sign_in(away, user.email)
    assert response["Location"].endswith("/login/otp/")
    assert notices(user) == []  # the password alone is not a sign-in
    response = away.post("/login/otp/", {"otp": totp_code(device)})
    assert response.status_code == 302
    (notice,) = notices(user)
    assert notice.data["device"] == "Firefox 121 on Linux"


def test_the_api_token_is_a_sign_in_too():
    home = browser("198.51.100.10", CHROME)
    user = sign_up(home, "barbara@example.com")
    api = APIClient(REMOTE_ADDR="198.51.100.10", HTTP_USER_AGENT="python-requests/2.31.0")
    response = api.post("/api/v1/auth/token", {"email": user.email, "password": DEFAULT_PASSWORD}, format="json")
    assert response.status_code == 200, response.content
    (notice,) = notices(user)
    assert notice.data["device"] == "python-requests"
    response = api.post("/api/v1/auth/token", {"email": user.email, "password": DEFAULT_PASSWORD}, format="json")
    assert response.status_code == 200
    assert len(notices(user)) == 1  # the bot again: known


def test_one_sign_in_told_twice_is_one_message():
    home = browser("198.51.100.10", CHROME)
    user = sign_up(home, "margaret@example.com")
    sign_in(browser("203.0.113.7", SAFARI_IPHONE), user.email)
    (notice,) = notices(user)
    data = notice.data
    login = AuditRecord.objects.get(seq=data["login_id"])
    for _ in range(2):  # the same sign-in delivered again
        signals.new_sign_in.send(
            sender=User, user=user, login_id=login.seq, ip=data["ip"], user_agent=data["user_agent"], at=login.at
        )
    assert notices(user) == [notice]
    assert Delivery.objects.filter(notification=notice).count() == 1


def test_an_account_registered_through_the_api_is_quiet_on_its_first_token():
    bot = APIClient(REMOTE_ADDR="198.51.100.20", HTTP_USER_AGENT="curl/8.5.0")
    email = "hedy@example.com"
    response = bot.post("/api/v1/auth/register", {"email": email, "password": DEFAULT_PASSWORD}, format="json")
    assert response.status_code == 201, response.content
    assert (
        bot.post("/api/v1/auth/token", {"email": email, "password": DEFAULT_PASSWORD}, format="json").status_code == 200
    )
    user = User.objects.get(email=email)
    assert notices(user) == []
    # the same account from a browser elsewhere is news
    sign_in(browser("203.0.113.7", CHROME), email)
    assert [n.data["device"] for n in notices(user)] == ["Chrome 120 on Windows"]
