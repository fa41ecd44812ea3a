"""Every page loads clean in a real browser, at desktop and phone width (issue 18, defect 1:
``/favicon.ico`` was a 404 and a console error on every page): the page's icon is served,
and no page logs a console error or gets a failed answer (4xx/5xx) from its own origin,
signed out and signed in."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.screens import DESKTOP, PHONE, phone_context
from tests.factories import DEFAULT_PASSWORD
from tests.orders.conftest import IndexTicker, list_series
from tests.orders.spot.conftest import funded_trader

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SIGNED_OUT = ["/", "/login/", "/signup/", "/markets/", "/markets/BTC-USDT/", "/options/"]
SIGNED_IN = [
    "/markets/BTC-USDT/",
    "/options/",
    "/wallet/",
    "/account/",
    "/portfolio/",
    "/notifications/",
    "/alerts/",
]


@pytest.fixture
def listed(live_server_url):
    list_series()
    with IndexTicker():
        yield


def watch(page, base_url: str) -> list[str]:
    """What went wrong on ``page`` while it loads: console errors, page errors and failed
    answers from its own origin."""
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on(
        "response",
        lambda r: problems.append(f"{r.status} {r.url}") if r.status >= 400 and r.url.startswith(base_url) else None,
    )
    return problems


def visit(page, path: str, problems: list[str]) -> None:
    before = len(problems)
    page.goto(path)
    page.wait_for_load_state("networkidle")
    icon = page.evaluate(
        "fetch('/favicon.ico').then(async r => [r.status, r.headers.get('content-type'),"
        " Array.from(new Uint8Array(await r.arrayBuffer()).slice(0, 4))])"
    )
    assert icon[0] == 200 and icon[1] in ("image/x-icon", "image/vnd.microsoft.icon"), (path, icon)
    assert icon[2] == [0, 0, 1, 0], (path, icon)  # an ICO file
    assert problems[before:] == [], (path, problems[before:])


def test_every_page_has_its_icon_and_loads_without_errors(page, browser, listed, live_server_url):
    trader = funded_trader(usdt="1000", btc="0")
    for viewport in (DESKTOP, PHONE):
        context = phone_context(browser, live_server_url) if viewport is PHONE else page.context
        tab = context.new_page() if viewport is PHONE else page
        if viewport is DESKTOP:
            tab.set_viewport_size(DESKTOP)
        try:
            problems = watch(tab, live_server_url)
            for path in SIGNED_OUT:
                visit(tab, path, problems)
            tab.goto("/login/")
            tab.fill("input[name=email]", trader.email)
            tab.fill("input[name=password]", DEFAULT_PASSWORD)
            tab.get_by_role("button", name="Log in").click()
            expect(tab).to_have_url(re.compile(r"/markets/BTC-USDT/$"))
            for path in SIGNED_IN:
                visit(tab, path, problems)
        finally:
            if viewport is PHONE:
                context.close()
