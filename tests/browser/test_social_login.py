"""Social login in a real browser, at desktop and phone width, against a local OpenID Connect
provider run by the test (tests.accounts.test_social_login's ``LocalProvider``: discovery,
authorize with PKCE, token with an RS256 id_token, JWKS, userinfo), never a real one.

daphne is started with ``OIDC_PROVIDERS`` naming that provider, as an operator configures
one. Chromium presses the login page's "Sign in with Local ID" button, follows the redirect
to the provider (which signs the identity in and consents at once) and back to the callback,
and lands signed in; a trader with 2FA on stops at the code step until the code is given.
"""

from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import expect

from accounts.models import User
from tests.accounts.helpers import next_time_step, wrong_code
from tests.accounts.test_social_login import CLIENT_ID, CLIENT_SECRET, LocalProvider, identity, provider_running
from tests.browser.screens import DESKTOP, PHONE, phone_context
from tests.factories import UserFactory, enable_totp, totp_code

pytestmark = [pytest.mark.browser, pytest.mark.slow]

BUTTON = "Sign in with Local ID"


@pytest.fixture(scope="module")
def oidc_provider():
    with provider_running() as provider:
        yield provider


@pytest.fixture
def live_server_env(oidc_provider) -> dict[str, str]:
    """daphne's OIDC_PROVIDERS: the local provider, as README's social login section says."""
    oidc_provider.audience = CLIENT_ID
    providers = [
        {
            "id": "local",
            "name": "Local ID",
            "server_url": oidc_provider.url,
            "client_id": CLIENT_ID,
            "secret": CLIENT_SECRET,
        }
    ]
    return {"OIDC_PROVIDERS": json.dumps(providers)}


def press_the_provider_button(page, provider: LocalProvider, who: dict, next_path: str = "") -> None:
    provider.identity = who
    provider.token_requests.clear()
    page.goto(f"/login/?next={next_path}" if next_path else "/login/")
    button = page.get_by_role("button", name=BUTTON)
    expect(button).to_be_visible()
    box = button.bounding_box()
    width = page.viewport_size["width"]
    assert box and box["x"] >= 0 and box["x"] + box["width"] <= width, (box, width)
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    with page.expect_request(re.compile(re.escape(provider.url) + r"/authorize\?")) as authorize:
        button.click()
    query = authorize.value.url
    assert "code_challenge_method=S256" in query and f"client_id={CLIENT_ID}" in query


def signed_in(page) -> None:
    """The page's session is a signed-in trader's (the folded navigation hides Log out on a phone)."""
    assert page.evaluate("fetch('/api/v1/me').then(r => r.status)") == 200


def test_a_new_trader_signs_up_with_the_provider_at_desktop_and_phone(
    page, browser, live_server_url, oidc_provider, screenshot_dir
):
    email = "oidc.trader@example.com"
    page.set_viewport_size(DESKTOP)
    page.goto("/login/")
    expect(page.locator(".social-login [data-provider=local]")).to_have_text(BUTTON)
    page.screenshot(path=str(screenshot_dir / "login-social-desktop.png"))

    press_the_provider_button(page, oidc_provider, identity(email))
    # back from the provider, signed in, on the trade page (/trade/ opens a market or the list)
    expect(page).to_have_url(re.compile(r"/markets/"))
    signed_in(page)
    user = User.objects.get(email=email)
    assert not user.has_usable_password()
    [token_request] = oidc_provider.token_requests  # the browser's round trip reached the token endpoint
    assert token_request["code_verifier"] and token_request["client_secret"] == CLIENT_SECRET
    page.goto("/account/")
    expect(page.locator("#sign-ins tbody tr").first).to_contain_text("Local ID (OpenID Connect)")

    # the phone: the button fits, and the same identity signs in to the same account
    context = phone_context(browser, live_server_url)
    try:
        mobile = context.new_page()
        press_the_provider_button(mobile, oidc_provider, identity(email), next_path="/wallet/")
        expect(mobile).to_have_url(re.compile(r"/wallet/$"))
        signed_in(mobile)
        assert mobile.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        mobile.goto("/login/")
        mobile.screenshot(path=str(screenshot_dir / "login-social-phone.png"))
    finally:
        context.close()
    assert User.objects.filter(email=email).count() == 1


def test_two_factor_still_applies_after_the_provider(page, browser, live_server_url, oidc_provider):
    user = UserFactory(email="careful.oidc@example.com")
    device = enable_totp(user)
    for viewport in (DESKTOP, PHONE):
        page.context.clear_cookies()
        page.set_viewport_size(viewport)
        press_the_provider_button(page, oidc_provider, identity(user.email), next_path="/wallet/")
        expect(page).to_have_url(re.compile(r"/login/otp/$"))
        # not signed in before the code
        assert page.evaluate("fetch('/api/v1/me').then(r => r.status)") in (401, 403)
        page.fill("input[name=otp]", wrong_code(device))
        page.get_by_role("button", name="Verify").click()
        expect(page).to_have_url(re.compile(r"/login/otp/$"))
        expect(page.locator("form")).to_contain_text("code")
        assert page.evaluate("fetch('/api/v1/me').then(r => r.status)") in (401, 403)
        next_time_step(device)  # a new 30 s step, and the wrong code's throttle forgotten
        page.fill("input[name=otp]", totp_code(device))
        page.get_by_role("button", name="Verify").click()
        expect(page).to_have_url(re.compile(r"/wallet/$"))
        signed_in(page)
        assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
        next_time_step(device)
