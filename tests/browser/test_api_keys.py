"""End to end in a real browser: the account page's API keys panel. A trader with 2FA makes
a key (the secret shown once), a bot uses it over HTTP, the page shows its last use, and a
revoke with a fresh code stops it; at desktop and phone width."""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request

import pytest
from playwright.sync_api import expect

from accounts import api_keys
from accounts.models import ApiKey
from tests.accounts.helpers import next_time_step
from tests.factories import enable_totp, totp_code
from tests.orders.spot.conftest import funded_trader

from .screens import DESKTOP, PHONE
from .test_limits import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def bot_get(base: str, key: str, secret: str, path: str) -> tuple[int, dict]:
    ts = str(int(time.time() * 1000))
    request = urllib.request.Request(
        base + path,
        headers={"X-API-KEY": key, "X-API-TIMESTAMP": ts, "X-API-SIGNATURE": api_keys.sign(secret, ts, "GET", path)},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_make_use_and_revoke_a_key_in_the_browser(page, live_server_url, screenshot_dir):
    user = funded_trader(usdt="5000", btc="0")
    page.set_viewport_size(DESKTOP)
    sign_in(page, user, "/account/")
    panel = page.locator("#api-keys-panel")
    expect(panel).to_contain_text("Turn on two-factor authentication to make API keys")
    expect(panel.locator("tbody")).to_contain_text("No keys yet")

    device = enable_totp(user)
    page.reload()
    form = panel.locator("#api-key-form")
    form.locator("input[name=label]").fill("grid bot")
    form.locator("input[value=trade]").check()
    form.locator("input[name=otp]").fill("000000")
    form.get_by_role("button", name="Make key").click()
    expect(form.locator("[data-field=error]")).to_be_visible()  # a wrong code: nothing made
    assert not ApiKey.objects.filter(user=user).exists()

    next_time_step(device)  # the wrong code's throttle would last a second
    form.locator("input[name=otp]").fill(totp_code(device))
    form.get_by_role("button", name="Make key").click()
    created = panel.locator("#api-key-created")
    expect(created).to_be_visible()
    secret = created.locator("[data-field=secret]").inner_text()
    key = created.locator("[data-field=key]").inner_text()
    assert re.fullmatch(r"[0-9a-f]{64}", secret) and re.fullmatch(r"[0-9a-f]{40}", key)
    row = panel.locator("tbody tr[data-status=active]")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("grid bot")
    expect(row).to_contain_text("never")
    page.screenshot(path=str(screenshot_dir / "account-api-keys-desktop.png"), full_page=True)

    status, balances = bot_get(live_server_url, key, secret, "/api/v1/balances")
    assert status == 200 and {b["asset"] for b in balances} >= {"USDT"}
    page.reload()
    expect(created).to_be_hidden()  # the secret is not shown again
    assert secret not in page.content()
    expect(row).to_contain_text("127.0.0.1")  # its last use

    page.set_viewport_size(PHONE)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the account page is {width}px wide at {PHONE['width']}px"
    page.screenshot(path=str(screenshot_dir / "account-api-keys-phone.png"), full_page=True)

    next_time_step(device)
    row.locator("input[name=otp]").fill(totp_code(device))
    row.get_by_role("button", name="Revoke").click()
    expect(panel.locator("tbody tr[data-status=revoked]")).to_have_count(1)
    status, body = bot_get(live_server_url, key, secret, "/api/v1/balances")
    assert status == 401 and body["error"]["code"] == "api_key_revoked"
